//! The battery's own check: an attack program runs inside a container and reports what the
//! kernel answered.

use crate::common::*;

#[test]
fn an_attack_program_reports_the_kernels_answer() {
    let root = TestRoot::new();
    let rootfs = root.attack_rootfs();
    let rootfs = path_str(&rootfs);
    assert_eq!(
        ok_stdout(&root.run(&["run", "--rootfs", rootfs, "open", "/dev/null", "rw"])),
        "ok\n"
    );
    let out = root.run(&["run", "--rootfs", rootfs, "open", "/nosuch", "r"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "ENOENT\n");
}
