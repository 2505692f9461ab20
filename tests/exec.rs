//! `exec`: a new process in a running container, as the container's own processes are.

mod common;

use common::*;

fn start(root: &TestRoot, flags: &[&str]) -> String {
    let rootfs = root.busybox_rootfs();
    let mut args = vec![
        "run",
        "-d",
        "--name",
        "box",
        "--rootfs",
        path_str(&rootfs),
        "--hostname",
        "boxy",
        "-e",
        "FROM_RUN=1",
    ];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["sleep", "60"]);
    ok_stdout(&root.run(&args)).trim().to_string()
}

#[test]
fn exec_joins_everything_the_container_has() {
    let root = TestRoot::new();
    start(
        &root,
        &[
            "--cap-drop",
            "NET_RAW",
            "--security-opt",
            "no-new-privileges",
        ],
    );
    let out = ok_stdout(&root.run(&[
        "exec", "box", "sh", "-c",
        "hostname; echo $FROM_RUN; ps -o pid,comm | grep -c sleep; \
         [ \"$(cat /proc/1/cgroup)\" = \"$(cat /proc/self/cgroup)\" ] && echo same-cgroup; \
         [ \"$(cut -d' ' -f5 /proc/1/mountinfo)\" = \"$(cut -d' ' -f5 /proc/self/mountinfo)\" ] && echo same-mounts; \
         for ns in mnt uts ipc pid cgroup net; do [ $(readlink /proc/1/ns/$ns) = $(readlink /proc/self/ns/$ns) ] || echo differs-$ns; done; \
         grep -E 'CapEff|NoNewPrivs|Seccomp:' /proc/self/status | tr -s '\\t' ' '; cat /proc/1/comm",
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..5],
        ["boxy", "1", "1", "same-cgroup", "same-mounts"],
        "{out}"
    );
    assert!(!out.contains("differs-"), "{out}");
    assert!(out.contains("CapEff: 00000000a80405fb"), "{out}");
    assert!(out.contains("NoNewPrivs: 1"), "{out}");
    assert!(
        out.contains("Seccomp: 2"),
        "exec gets the container's filter: {out}"
    );
    assert!(out.ends_with("sleep\n"), "the container's PID 1: {out}");
    ok_stdout(&root.run(&["rm", "-f", "box"]));
}

#[test]
fn exec_options_and_statuses() {
    let root = TestRoot::new();
    let id = start(&root, &[]);
    let out = ok_stdout(&root.run(&[
        "exec",
        "-e",
        "EXTRA=2",
        "-u",
        "app",
        "-w",
        "/tmp",
        &id[..10],
        "sh",
        "-c",
        "echo $FROM_RUN $EXTRA; id -u; pwd; echo $HOME",
    ]));
    assert_eq!(out, "1 2\n1000\n/tmp\n/home/app\n");
    assert_eq!(
        root.run(&["exec", "box", "sh", "-c", "exit 7"])
            .status
            .code(),
        Some(7)
    );
    let line = assert_fails(&root.run(&["exec", "box", "no-such-command"]), 127);
    assert_eq!(
        line,
        "mini-container: executing \"no-such-command\": executable file not found in $PATH"
    );
    let output = root.run_with_input(&["exec", "-i", "box", "cat"], b"through exec\n");
    assert_eq!(ok_stdout(&output), "through exec\n");
    ok_stdout(&root.run(&["stop", "-t", "0", "box"]));
    let line = assert_fails(&root.run(&["exec", "box", "true"]), 125);
    assert_eq!(line, "mini-container: container box is not running");
    assert_fails(&root.run(&["exec", "nosuch", "true"]), 125);
    assert_fails(&root.run(&["exec", "box"]), 125);
    ok_stdout(&root.run(&["rm", "box"]));
}
