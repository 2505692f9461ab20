//! Seccomp on the real binary: Docker's default profile, `--security-opt seccomp=unconfined`
//! and `seccomp=FILE`, on a busybox root filesystem built by the harness.

mod common;

use common::*;

/// `run --rootfs <the test's busybox rootfs> OPTIONS sh -c SCRIPT`, building the rootfs once.
fn run_sh(root: &TestRoot, options: &[&str], script: &str) -> std::process::Output {
    let rootfs = root.path.join("rootfs");
    if !rootfs.exists() {
        root.busybox_rootfs();
    }
    let mut args = vec!["run", "--rootfs", path_str(&rootfs)];
    args.extend_from_slice(options);
    args.extend_from_slice(&["sh", "-c", script]);
    root.run(&args)
}

fn seccomp_mode(out: &str) -> &str {
    out.lines()
        .find_map(|line| line.strip_prefix("Seccomp:"))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no Seccomp line in {out}"))
}

#[test]
fn the_default_profile_filters_and_unconfined_does_not() {
    let root = TestRoot::new();
    let out = ok_stdout(&run_sh(&root, &[], "cat /proc/self/status"));
    assert_eq!(seccomp_mode(&out), "2", "{out}");
    let out = ok_stdout(&run_sh(
        &root,
        &["--security-opt", "seccomp=unconfined"],
        "cat /proc/self/status",
    ));
    assert_eq!(seccomp_mode(&out), "0", "{out}");
}

#[test]
fn what_docker_denies_fails_with_eperm_inside() {
    let root = TestRoot::new();
    let script = "unshare -m true; echo unshare=$?; \
                  mkdir -p /mnt; mount -t tmpfs none /mnt; echo mount=$?; \
                  umount /proc; echo umount=$?; \
                  grep -c ' /mnt ' /proc/self/mounts";
    let out = run_sh(&root, &[], script);
    let (stdout, stderr) = (stdout(&out), stderr(&out));
    assert_eq!(stdout, "unshare=1\nmount=1\numount=1\n0\n", "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines,
        [
            "unshare: unshare(0x20000): Operation not permitted",
            // busybox's message when mount(2) fails with EPERM.
            "mount: permission denied (are you root?)",
            "umount: can't unmount /proc: Operation not permitted",
        ]
    );
    // Without the filter, and with CAP_SYS_ADMIN, root in the container may mount and
    // unshare.
    let out = ok_stdout(&run_sh(
        &root,
        &[
            "--security-opt",
            "seccomp=unconfined",
            "--cap-add",
            "SYS_ADMIN",
        ],
        "unshare -m true && mkdir -p /mnt && mount -t tmpfs none /mnt && echo mounted",
    ));
    assert_eq!(out.trim(), "mounted");
}

#[test]
fn the_default_profile_holds_for_other_users_too() {
    let root = TestRoot::new();
    let out = run_sh(
        &root,
        &["-u", "app"],
        "grep Seccomp: /proc/self/status; id -u; unshare -U true",
    );
    let stdout = stdout(&out);
    assert!(stdout.contains("Seccomp:\t2\n1000\n"), "{stdout}");
    assert!(
        stderr(&out).contains("Operation not permitted"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_json_profile_that_denies_mkdir_makes_mkdir_fail() {
    let root = TestRoot::new();
    let profile = temp_file(
        &root,
        "no-mkdir.json",
        br#"{
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}
            ]
        }"#,
    );
    let option = format!("seccomp={}", path_str(&profile));
    let out = run_sh(
        &root,
        &["--security-opt", &option],
        "grep Seccomp: /proc/self/status; mkdir /tmp/x; echo mkdir=$?; touch /tmp/y && echo touch=$?",
    );
    let stdout = stdout(&out);
    assert!(stdout.contains("Seccomp:\t2"), "{stdout}");
    assert!(stdout.contains("mkdir=1"), "{stdout}");
    assert!(stdout.contains("touch=0"), "{stdout}");
    assert!(
        stderr(&out).contains("Operation not permitted"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_json_profile_can_set_the_errno() {
    let root = TestRoot::new();
    let profile = temp_file(
        &root,
        "mkdir-eacces.json",
        br#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
    );
    let option = format!("seccomp={}", path_str(&profile));
    let out = run_sh(&root, &["--security-opt", &option], "mkdir /tmp/x");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("Permission denied"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn malformed_profiles_are_one_line_errors() {
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    let cases: [(&str, &[u8], &str); 4] = [
        ("syntax.json", b"{\"defaultAction\": ", "EOF while parsing"),
        (
            "action.json",
            br#"{"defaultAction": "SCMP_ACT_PERHAPS"}"#,
            r#"unknown action "SCMP_ACT_PERHAPS""#,
        ),
        (
            "op.json",
            br#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"],
                "action": "SCMP_ACT_ERRNO", "args": [{"index": 9, "value": 0, "op": "SCMP_CMP_EQ"}]}]}"#,
            "argument index 9 out of range",
        ),
        (
            "names.json",
            br#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_ERRNO"}]}"#,
            "it names no system call",
        ),
    ];
    for (name, json, why) in cases {
        let file = temp_file(&root, name, json);
        let option = format!("seccomp={}", path_str(&file));
        let out = root.run(&[
            "run",
            "--rootfs",
            path_str(&rootfs),
            "--security-opt",
            &option,
            "true",
        ]);
        let line = assert_fails(&out, 125);
        assert!(
            line.starts_with(&format!(
                "mini-container: invalid seccomp profile {}: ",
                path_str(&file)
            )),
            "{line}"
        );
        assert!(line.contains(why), "{line}");
    }
    let out = root.run(&[
        "run",
        "--security-opt",
        "seccomp=/nonexistent/profile.json",
        "true",
    ]);
    assert_eq!(
        assert_fails(&out, 125),
        "mini-container: reading seccomp profile /nonexistent/profile.json: \
         No such file or directory"
    );
    let out = root.run(&["run", "--security-opt", "apparmor=unconfined", "true"]);
    assert!(assert_fails(&out, 125).contains("invalid --security-opt"));
}

#[test]
fn the_spec_describes_the_filter() {
    let root = TestRoot::new();
    let mut child = spawn(&root, &["run", "sleep", "5"]);
    let state = root.wait_for_running_state();
    let dir = root.state_dirs().pop().unwrap();
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    let pid = state["pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
    let seccomp = &config["linux"]["seccomp"];
    assert_eq!(seccomp["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(seccomp["defaultErrnoRet"], 1);
    assert_eq!(seccomp["architectures"][0], "SCMP_ARCH_X86_64");
    let names: Vec<&str> = seccomp["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|rule| rule["names"].as_array().unwrap())
        .map(|name| name.as_str().unwrap())
        .collect();
    assert!(names.contains(&"clone3") && names.contains(&"read"));
    assert!(!names.contains(&"mount"), "mount needs CAP_SYS_ADMIN");
}
