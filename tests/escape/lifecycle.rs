//! CVE-2019-5736: a container process must not be able to overwrite the mini-container
//! binary through /proc/PID/exe of a mini-container process it can see. The init re-execs
//! itself from a read-only mount of the binary (or a sealed memfd copy), never from the
//! writable file.

use crate::common::*;
use std::path::Path;
use std::process::{Command, Stdio};

/// Marks the victim's command line, for the attack program to find it.
const MARKER: &str = "lifecycle-victim:1";

/// Inside the container `id`: `binary exec`s a victim, a mini-container process (what an
/// image whose command is /proc/self/exe, or a `#!/proc/self/exe` script, makes of `exec`)
/// that waits on its stdin; the attack program, exec'd beside it, tries to overwrite the
/// victim's binary. Returns what the attack reported.
fn attack(root: &TestRoot, binary: &Path, id: &str, disabled: &str) -> String {
    let mut command = Command::new(binary);
    command
        .arg("--root")
        .arg(&root.path)
        .args(["exec", id, "/proc/self/exe", "--root", "/tmp/victim"])
        .args(["import", "-", MARKER])
        .env("MINI_CONTAINER_TEST_DISABLE", disabled)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // ETXTBSY: another test's child, forked while the copy of the binary was open for
    // writing, holds that descriptor until it execs (a known race of copying an executable
    // in a multi-threaded process); it lets go within moments.
    let mut tries = 0;
    let mut victim = loop {
        match command.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 200 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            spawned => break spawned.unwrap(),
        }
    };
    let attacker = root.run(&["exec", id, "overwrite_exe", MARKER]);
    drop(victim.stdin.take());
    let _ = victim.wait();
    stdout(&attacker).trim().to_string()
}

#[test]
fn a_container_process_cannot_overwrite_the_binary_through_proc_pid_exe() {
    let root = TestRoot::new();
    let rootfs = root.attack_rootfs();
    let id = ok_stdout(&root.run(&["run", "-d", "--rootfs", path_str(&rootfs), "sleep", "1000"]))
        .trim()
        .to_string();
    // Every attempt on a scratch copy of the binary: the real one is never exposed, not
    // even if the protection breaks.
    let scratch = root.path.join("scratch-bin");
    std::fs::create_dir_all(&scratch).unwrap();
    let binary = scratch.join("mini-container");
    std::fs::copy(BIN, &binary).unwrap();
    let written = || std::fs::metadata(&binary).unwrap().modified().unwrap();
    let before = written();

    // The read-only mount: the reopen for writing fails.
    assert_eq!(attack(&root, &binary, &id, ""), "EROFS");
    // The sealed copy (where no mount can be made): the write fails.
    assert_eq!(attack(&root, &binary, &id, "exe-protection-mount"), "EPERM");
    assert_eq!(written(), before, "the binary was written to");
    // Unprotected, the container process writes to the binary.
    assert_eq!(attack(&root, &binary, &id, "exe-protection"), "ok");
    assert_ne!(
        written(),
        before,
        "the unprotected binary was not written to"
    );

    ok_stdout(&root.run(&["rm", "-f", &id]));
}

#[test]
fn without_a_protected_copy_of_the_binary_nothing_starts() {
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    let rootfs = path_str(&rootfs);
    let neither = "exe-protection-mount,exe-protection-copy";
    let id = ok_stdout(&root.run(&["run", "-d", "--rootfs", rootfs, "sleep", "1000"]))
        .trim()
        .to_string();
    for args in [
        &["run", "--rootfs", rootfs, "echo", "started"][..],
        &["exec", &id, "echo", "started"],
    ] {
        let output = root
            .command(args)
            .env("MINI_CONTAINER_TEST_DISABLE", neither)
            .output()
            .unwrap();
        assert!(!stdout(&output).contains("started"), "{args:?}");
        let line = assert_fails(&output, 125);
        assert!(
            line.contains("cannot protect this binary from being overwritten (CVE-2019-5736)"),
            "{line}"
        );
    }
    // Either way alone is enough.
    for one in ["exe-protection-mount", "exe-protection-copy"] {
        let output = root
            .command(&["run", "--rootfs", rootfs, "echo", "started"])
            .env("MINI_CONTAINER_TEST_DISABLE", one)
            .output()
            .unwrap();
        assert_eq!(ok_stdout(&output), "started\n", "{one}");
    }
    ok_stdout(&root.run(&["rm", "-f", &id]));
}
