//! User namespaces: rootless runs by a user other than root, and --userns auto for root.

mod common;

use common::*;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// An unprivileged user with no passwd entry on the host.
const USER: u32 = 4242;

fn chown_tree(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid)).unwrap();
    if fs::symlink_metadata(path).unwrap().is_dir() {
        for entry in fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), uid);
        }
    }
}

/// `mini-container run ARGS` as USER, with XDG_RUNTIME_DIR in the test's directory.
fn run_as_user(root: &TestRoot, args: &[&str]) -> Output {
    let runtime_dir = root.path.join("xdg");
    fs::create_dir_all(&runtime_dir).unwrap();
    chown_tree(&runtime_dir, USER);
    Command::new(BIN)
        .args(args)
        .uid(USER)
        .gid(USER)
        .env("XDG_RUNTIME_DIR", &runtime_dir)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn a_user_other_than_root_runs_a_rootless_container() {
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    chown_tree(&rootfs, USER);
    let output = run_as_user(
        &root,
        &[
            "run",
            "--rootfs",
            path_str(&rootfs),
            "--hostname",
            "rootless",
            "sh",
            "-c",
            "id -u; id -g; cat /proc/self/uid_map | tr -s ' '; hostname; touch /made-inside; \
             grep CapEff /proc/self/status; cat /dev/null && echo dev-ok",
        ],
    );
    assert_eq!(
        ok_stdout(&output),
        format!("0\n0\n 0 {USER} 1\nrootless\nCapEff:\t00000000a80425fb\ndev-ok\n")
    );
    let made = fs::metadata(rootfs.join("made-inside")).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&made),
        USER,
        "owned by the user outside"
    );
    // Its state lived under XDG_RUNTIME_DIR and is gone.
    let state = root.path.join("xdg/mini-container");
    assert!(state.is_dir());
    assert_eq!(
        fs::read_dir(&state)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name() != "names")
            .count(),
        0
    );
}

#[test]
fn rootless_needs_a_rootfs_and_a_runtime_dir() {
    let root = TestRoot::new();
    let line = assert_fails(&run_as_user(&root, &["run", "true"]), 125);
    assert!(line.contains("needs --rootfs"), "{line}");
    let output = Command::new(BIN)
        .args(["run", "--rootfs", "/", "true"])
        .uid(USER)
        .gid(USER)
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .unwrap();
    let line = assert_fails(&output, 125);
    assert!(line.contains("XDG_RUNTIME_DIR is not set"), "{line}");
    let rootfs = root.busybox_rootfs();
    chown_tree(&rootfs, USER);
    let line = assert_fails(
        &run_as_user(
            &root,
            &["run", "--rootfs", path_str(&rootfs), "-u", "app", "true"],
        ),
        125,
    );
    assert!(
        line.contains("uid 1000 is not mapped") || line.contains("gid 1000 is not mapped"),
        "{line}"
    );
}

/// Runs `mini-container` as root in a mount namespace of the test's own where /etc/subuid
/// and /etc/subgid are `subids`: the host's files are never touched.
fn run_with_subids(root: &TestRoot, subids: &str, args: &[&str]) -> Output {
    let file = temp_file(root, "subids", subids.as_bytes());
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let script = format!(
        "mount --bind {f} /etc/subuid && mount --bind {f} /etc/subgid && exec {BIN} --root {r} {a}",
        f = path_str(&file),
        r = path_str(&root.path),
        a = quoted.join(" ")
    );
    Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn userns_auto_maps_root_to_a_subordinate_range() {
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    let volume = root.path.join("volume");
    fs::create_dir(&volume).unwrap();
    fs::set_permissions(&volume, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let volume_arg = format!("{}:/vol", path_str(&volume));
    let output = run_with_subids(
        &root,
        "root:200000:65536\n",
        &[
            "run",
            "--userns",
            "auto",
            "--rootfs",
            path_str(&rootfs),
            "-v",
            &volume_arg,
            "sh",
            "-c",
            "id -u; read a b c < /proc/self/uid_map; echo $a $b $c; stat -c %u /bin/busybox; touch /vol/made /rootfs-made",
        ],
    );
    assert_eq!(ok_stdout(&output), "0\n0 200000 65536\n0\n");
    let uid = |p: &Path| std::os::unix::fs::MetadataExt::uid(&fs::metadata(p).unwrap());
    assert_eq!(
        uid(&volume.join("made")),
        200000,
        "root inside is the mapped uid outside"
    );
    assert_eq!(
        uid(&rootfs.join("rootfs-made")),
        0,
        "the id-mapped rootfs keeps its owner"
    );
}

#[test]
fn userns_auto_without_subordinate_ids_is_a_clear_error() {
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    let output = run_with_subids(
        &root,
        "someone:100000:65536\n",
        &[
            "run",
            "--userns",
            "auto",
            "--rootfs",
            path_str(&rootfs),
            "true",
        ],
    );
    let line = assert_fails(&output, 125);
    assert!(line.contains("no subordinate ids for root"), "{line}");
    let line = assert_fails(&root.run(&["run", "--userns", "private", "true"]), 125);
    assert!(line.contains("invalid --userns"), "{line}");
}

#[test]
fn a_rootless_user_with_subordinate_ids_gets_a_range_through_newuidmap() {
    assert!(
        Path::new("/usr/bin/newuidmap").exists(),
        "this test needs newuidmap: apt-get install uidmap (tests/run-all.sh does)"
    );
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    chown_tree(&rootfs, USER);
    let runtime_dir = root.path.join("xdg");
    fs::create_dir_all(&runtime_dir).unwrap();
    chown_tree(&runtime_dir, USER);
    // newuidmap wants the user in /etc/passwd and a range in /etc/subuid: both are given in a
    // mount namespace of the test's own, so the host's files are never touched.
    let passwd = format!(
        "{}rootless:x:{USER}:{USER}::/:/bin/sh\n",
        fs::read_to_string("/etc/passwd").unwrap()
    );
    let passwd = temp_file(&root, "passwd", passwd.as_bytes());
    let subids = temp_file(&root, "subids", b"rootless:300000:65536\n");
    let script = format!(
        "mount --bind {p} /etc/passwd && mount --bind {s} /etc/subuid && mount --bind {s} /etc/subgid && \
         exec setpriv --reuid={USER} --regid={USER} --clear-groups env XDG_RUNTIME_DIR={x} \
         {BIN} run --rootfs {r} -u app sh -c 'id -u; id -g; cat /proc/self/uid_map'",
        p = path_str(&passwd),
        s = path_str(&subids),
        x = path_str(&runtime_dir),
        r = path_str(&rootfs),
    );
    let output = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = ok_stdout(&output);
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["1000"], "{out}");
    assert_eq!(lines[1], ["1000"], "{out}");
    assert_eq!(lines[2], ["0", &USER.to_string(), "1"], "{out}");
    assert_eq!(lines[3], ["1", "300000", "65536"], "{out}");
}

/// A rootless run on a root filesystem that belongs to root (an image unpacked by root, as
/// bwrap runs it): the runner's /etc files that have no mount point there are skipped
/// rather than created, and everything under /sys (the host's, bound, as a rootless
/// container may not mount a sysfs of its own) is read-only, the host's cgroup hierarchies
/// too (covered by the container's view, an empty read-only tmpfs here: a rootless run on
/// v1 has no cgroup of its own).
#[test]
fn a_rootless_run_works_on_a_root_filesystem_its_user_cannot_write() {
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    for dir in ["proc", "dev", "sys"] {
        fs::create_dir_all(rootfs.join(dir)).unwrap();
    }
    assert!(!rootfs.join("etc/resolv.conf").exists());
    let script = "hostname; touch /made-inside 2>&1; \
                  awk '$5 ~ \"^/sys\" && $6 !~ \"^ro\" { print \"writable:\", $5 }' /proc/self/mountinfo; \
                  touch /sys/fs/cgroup/x 2>&1; true";
    let run = |disabled: &str| {
        let args = [
            "run",
            "--rootfs",
            path_str(&rootfs),
            "--hostname",
            "unwritable",
            "sh",
            "-c",
            script,
        ];
        let runtime_dir = root.path.join("xdg");
        fs::create_dir_all(&runtime_dir).unwrap();
        chown_tree(&runtime_dir, USER);
        Command::new(BIN)
            .args(args)
            .uid(USER)
            .gid(USER)
            .env("XDG_RUNTIME_DIR", &runtime_dir)
            .env("MINI_CONTAINER_TEST_DISABLE", disabled)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    assert_eq!(
        ok_stdout(&run("")),
        "unwritable\ntouch: /made-inside: Permission denied\n\
         touch: /sys/fs/cgroup/x: Read-only file system\n"
    );
    assert!(!rootfs.join("etc/resolv.conf").exists());
    // The old way made only the top of the bound /sys read-only.
    let old = ok_stdout(&run("ro-by-fd"));
    assert!(old.contains("writable: /sys/"), "{old}");
}
