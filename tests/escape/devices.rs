//! Host devices (issue 10, way out 2): a default container may open only Docker's list of
//! devices (null, zero, full, random, urandom, tty, console, ptys, tun), whatever nodes it
//! makes; on a host directory (`--rootfs`) it cannot make a node of any other device at
//! all, so none is left there for the host's users. `exec` is under the same rules. Each
//! attack succeeds with the protection off: the test switch `devices` or `--privileged`
//! (which also gives the host's own /dev nodes, as Docker's does).

use crate::common::*;

/// Nodes a container must not open, and how each is opened (never written to): kvm,
/// loop-control, tty1, vsock for reading; kmsg for writing (reading it needs CAP_SYSLOG,
/// which the container lacks anyway; writing would forge kernel log lines).
const FORBIDDEN: &[(&str, &str, &str)] = &[
    ("10", "232", "r"),
    ("10", "237", "r"),
    ("4", "1", "r"),
    ("1", "11", "w"),
    ("10", "258", "r"),
];

/// The attempts, one line each: make `/dev/k<i>` (the container's own tmpfs /dev, nothing
/// on the host's disk) for each forbidden device and open it for reading.
fn attempts(dir: &str) -> String {
    attempts_of(dir, FORBIDDEN.iter())
}

fn attempts_of<'a>(
    dir: &str,
    devices: impl Iterator<Item = &'a (&'a str, &'a str, &'a str)>,
) -> String {
    devices
        .enumerate()
        .map(|(i, (major, minor, access))| {
            format!("mknod_open {dir}/k{i} c {major} {minor} {access}; ")
        })
        .collect()
}

/// The forbidden devices this host's kernel has a driver for: only those open with the
/// rules off (the guest suite's VM has no kvm or vsock, for one). With the rules on, every
/// one is refused before its driver is looked for.
fn present() -> Vec<&'static (&'static str, &'static str, &'static str)> {
    FORBIDDEN
        .iter()
        .filter(|(major, minor, _)| {
            std::path::Path::new(&format!("/sys/dev/char/{major}:{minor}")).exists()
        })
        .collect()
}

fn run_with(root: &TestRoot, env: Option<&str>, args: &[&str]) -> std::process::Output {
    let mut command = root.command(args);
    if let Some(list) = env {
        command.env("MINI_CONTAINER_TEST_DISABLE", list);
    }
    command.output().unwrap()
}

#[test]
fn a_default_container_opens_only_dockers_devices() {
    let root = TestRoot::new();
    let rootfs = root.attack_rootfs();
    let rootfs = path_str(&rootfs);
    // Docker's rules let a container make any node ('c *:* m'): the open is refused.
    let script = attempts("/dev");
    let out = stdout(&root.run(&[
        "run",
        "--rootfs",
        rootfs,
        "--device-cgroup-rule",
        "c *:* m",
        "sh",
        "-c",
        &script,
    ]));
    assert_eq!(out, "EPERM\n".repeat(FORBIDDEN.len()), "{out}");
    // The devices of Docker's list open.
    let out = ok_stdout(&root.run(&[
        "run",
        "--rootfs",
        rootfs,
        "sh",
        "-c",
        "for d in null zero full random urandom; do open /dev/$d rw; done; \
         mknod_open /dev/null2 c 1 3 rw; open /dev/ptmx rw",
    ]));
    assert_eq!(out, "ok\n".repeat(7), "{out}");
}

#[test]
fn without_the_rules_the_same_attacks_open_host_devices() {
    let root = TestRoot::new();
    let rootfs = root.attack_rootfs();
    let rootfs = path_str(&rootfs);
    let present = present();
    assert!(
        present.len() >= 2,
        "loop-control and kmsg are on every host"
    );
    let script = attempts_of("/dev", present.iter().copied());
    let all_ok = "ok\n".repeat(present.len());
    let out = ok_stdout(&run_with(
        &root,
        Some("devices"),
        &["run", "--rootfs", rootfs, "sh", "-c", &script],
    ));
    assert_eq!(out, all_ok, "test switch devices: {out}");
    let out = ok_stdout(&root.run(&[
        "run",
        "--rootfs",
        rootfs,
        "--privileged",
        "sh",
        "-c",
        &script,
    ]));
    assert_eq!(out, all_ok, "--privileged: {out}");
}

#[test]
fn a_host_directory_keeps_no_device_node_of_the_container() {
    let root = TestRoot::new();
    let rootfs = root.attack_rootfs();
    let rootfs_str = path_str(&rootfs);
    // Default: mknod itself is refused, in the host directory and in the container's /dev.
    let script = format!("{} {}", attempts("/tmp"), attempts("/dev"));
    let out = stdout(&root.run(&["run", "--rootfs", rootfs_str, "sh", "-c", &script]));
    assert_eq!(out, "mknod EPERM\n".repeat(2 * FORBIDDEN.len()), "{out}");
    assert!(!rootfs.join("tmp/k0").exists());
    // Without the rules the node stays on the host's disk, and the host opens it: the
    // loop-control node, mode 0666, is anyone's.
    let out = ok_stdout(&run_with(
        &root,
        Some("devices"),
        &[
            "run",
            "--rootfs",
            rootfs_str,
            "mknod_open",
            "/tmp/k0",
            "c",
            "10",
            "237",
            "r",
        ],
    ));
    assert_eq!(out, "ok\n");
    let left = rootfs.join("tmp/k0");
    assert!(
        std::fs::File::open(&left).is_ok(),
        "the host opens the node left"
    );
    std::fs::remove_file(&left).unwrap();
}

#[test]
fn device_flags_give_the_devices_they_name() {
    let root = TestRoot::new();
    let rootfs = root.attack_rootfs();
    let rootfs = path_str(&rootfs);
    // --device makes the node in /dev and allows it.
    let out = ok_stdout(&root.run(&[
        "run",
        "--rootfs",
        rootfs,
        "--device",
        "/dev/loop-control",
        "--device",
        "/dev/fuse:/dev/vm:r",
        "sh",
        "-c",
        "open /dev/loop-control rw; open /dev/vm r; open /dev/vm w; ls -l /dev/vm",
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..3], ["ok", "ok", "EPERM"], "{out}");
    assert!(
        lines[3].starts_with('c') && lines[3].contains("10, 229"),
        "{out}"
    );
    // --device-cgroup-rule allows a device the container makes itself.
    let out = stdout(&root.run(&[
        "run",
        "--rootfs",
        rootfs,
        "--device-cgroup-rule",
        "c 10:237 rwm",
        "sh",
        "-c",
        "mknod_open /dev/lc c 10 237 r; mknod_open /dev/kvm c 10 232 r",
    ]));
    assert_eq!(out, "ok\nmknod EPERM\n");
    // Bad values fail the run with 125.
    for flags in [
        ["--device", "/etc/hostname"],
        ["--device", "/dev/null:/x:rx"],
        ["--device-cgroup-rule", "c 10:237"],
    ] {
        let mut args = vec!["run", "--rootfs", rootfs];
        args.extend(flags);
        args.push("true");
        assert_fails(&root.run(&args), 125);
    }
}

#[test]
fn privileged_sees_the_hosts_device_nodes() {
    let root = TestRoot::new();
    let rootfs = root.attack_rootfs();
    let rootfs = path_str(&rootfs);
    let host = std::fs::metadata("/dev/loop-control").expect("this test needs /dev/loop-control");
    use std::os::unix::fs::MetadataExt;
    let out = ok_stdout(&root.run(&[
        "run",
        "--rootfs",
        rootfs,
        "--privileged",
        "sh",
        "-c",
        "open /dev/loop-control r; open /dev/full r; stat -c '%t:%T %a %u:%g' /dev/loop-control",
    ]));
    assert_eq!(
        out,
        format!(
            "ok\nok\na:ed {:o} {}:{}\n",
            host.mode() & 0o7777,
            host.uid(),
            host.gid()
        )
    );
    // Without --privileged there is no such node.
    let out = root.run(&["run", "--rootfs", rootfs, "open", "/dev/loop-control", "r"]);
    assert_eq!(stdout(&out), "ENOENT\n");
}

#[test]
fn exec_is_under_the_same_rules() {
    let root = TestRoot::new();
    let rootfs = root.attack_rootfs();
    let rootfs = path_str(&rootfs);
    for (switch, expected) in [(None, "EPERM\nok\n"), (Some("devices"), "ok\nok\n")] {
        let id = ok_stdout(&run_with(
            &root,
            switch,
            &[
                "run",
                "-d",
                "--rootfs",
                rootfs,
                "--device-cgroup-rule",
                "c *:* m",
                "sleep",
                "60",
            ],
        ));
        let id = id.trim();
        let out = ok_stdout(&root.run(&[
            "exec",
            id,
            "sh",
            "-c",
            "mknod_open /dev/k c 10 237 r; mknod_open /dev/n c 1 3 rw",
        ]));
        assert_eq!(out, expected, "switch {switch:?}");
        ok_stdout(&root.run(&["rm", "-f", id]));
    }
}

/// /dev/userfaultfd (a misc device with a minor the kernel picks) gives what the userfaultfd
/// call gives, which seccomp refuses: the device rules refuse the node.
#[test]
fn the_userfaultfd_device_is_refused() {
    let Ok(dev) = std::fs::read_to_string("/sys/class/misc/userfaultfd/dev") else {
        eprintln!("this kernel has no /dev/userfaultfd: nothing to show");
        return;
    };
    let (major, minor) = dev.trim().split_once(':').unwrap();
    let root = TestRoot::new();
    let rootfs = root.attack_rootfs();
    let script = format!("mknod_open /dev/uffd c {major} {minor} rw");
    let args = [
        "run",
        "--rootfs",
        path_str(&rootfs),
        "--device-cgroup-rule",
        "c *:* m",
        "sh",
        "-c",
        &script,
    ];
    assert_eq!(stdout(&run_with(&root, None, &args)), "EPERM\n");
    assert_eq!(ok_stdout(&run_with(&root, Some("devices"), &args)), "ok\n");
}
