//! What only a pure cgroup v2 host has, on the real files: a runner started from a cgroup
//! that has processes of its own (the no-internal-processes rule of `subtree_control`),
//! `--cgroup-parent` as the way out of it, and rootless runs with and without a cgroup
//! delegated to the user (as systemd's `user@.service` delegates one). tests/limits.rs holds
//! the checks both layouts share. This development host is cgroup v1: these tests are ignored
//! here and run in the pure cgroup v2 guest of tests/vm/run.sh (`--include-ignored`), where
//! each fails unless the host is v2.

mod common;

use common::*;
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// An unprivileged user with no passwd entry (as in tests/userns.rs).
const USER: u32 = 4243;

/// Allocates about 100 MB in the shell itself, PID 1 of the container.
const MEMORY_HOG: &str = "x=$(head -c 100000000 /dev/zero | tr '\\0' x)";

fn require_v2() {
    assert!(
        is_cgroup_v2(),
        "this test needs cgroup v2 alone at /sys/fs/cgroup (tests/vm/run.sh boots such a guest)"
    );
}

/// A cgroup the test makes below the root; removed when dropped.
struct TestCgroup {
    path: PathBuf,
}

impl TestCgroup {
    fn new(name: &str) -> TestCgroup {
        let path = Path::new(CGROUP_ROOT).join(format!("{name}-{}", std::process::id()));
        fs::create_dir(&path).unwrap_or_else(|err| panic!("creating {}: {err}", path.display()));
        TestCgroup { path }
    }

    fn child(&self, name: &str) -> TestCgroup {
        let path = self.path.join(name);
        fs::create_dir(&path).unwrap();
        TestCgroup { path }
    }

    /// Delegates it to `uid` as systemd does: the directory and the files that manage the
    /// subtree (cgroup(7), "Delegation").
    fn delegate(&self, uid: u32) {
        for file in [
            "",
            "cgroup.procs",
            "cgroup.subtree_control",
            "cgroup.threads",
        ] {
            std::os::unix::fs::chown(self.path.join(file), Some(uid), Some(uid)).unwrap();
        }
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.path);
    }
}

/// `mini-container ARGS` started in `cgroup` (moved there as root, before anything runs),
/// as `user` when given (with XDG_RUNTIME_DIR in the test's directory), else as root.
fn run_in(root: &TestRoot, cgroup: &Path, user: Option<u32>, args: &[&str]) -> Output {
    let procs = CString::new(cgroup.join("cgroup.procs").as_os_str().as_bytes()).unwrap();
    let mut command = match user {
        None => root.command(args),
        Some(uid) => {
            let runtime_dir = root.path.join("xdg");
            fs::create_dir_all(&runtime_dir).unwrap();
            std::os::unix::fs::chown(&runtime_dir, Some(uid), Some(uid)).unwrap();
            let mut command = Command::new(BIN);
            command
                .args(args)
                .env("XDG_RUNTIME_DIR", &runtime_dir)
                .env_remove("RUST_LOG")
                .stdin(Stdio::null());
            command
        }
    };
    // SAFETY: between fork and exec the closure makes only async-signal-safe calls (open,
    // write, close, setgroups, setgid, setuid) on memory prepared before the fork.
    unsafe {
        command.pre_exec(move || {
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let written = libc::write(fd, b"0".as_ptr().cast(), 1);
            libc::close(fd);
            if written != 1 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(uid) = user
                && (libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(uid) != 0
                    || libc::setuid(uid) != 0)
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.output().unwrap()
}

fn chown_tree(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid)).unwrap();
    if fs::symlink_metadata(path).unwrap().is_dir() {
        for entry in fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), uid);
        }
    }
}

fn assert_oom_killed(output: &Output, limit: &str) {
    assert_eq!(output.status.code(), Some(137), "{}", stderr(output));
    assert_eq!(
        stderr(output),
        format!("mini-container: container killed: out of memory (limit {limit})\n")
    );
}

#[test]
#[ignore = "needs cgroup v2 alone at /sys/fs/cgroup: tests/vm/run.sh runs it in a guest"]
fn a_runner_in_a_cgroup_with_processes_needs_cgroup_parent_for_limits() {
    require_v2();
    let root = TestRoot::new();
    let busy = TestCgroup::new("mc-test-busy");
    // The runner itself is the process of its own: a limit needs a controller enabled in
    // busy's subtree_control, which the kernel refuses.
    let line = assert_fails(
        &run_in(&root, &busy.path, None, &["run", "-m", "64m", "true"]),
        125,
    );
    assert_eq!(
        line,
        format!(
            "mini-container: enabling cgroup controllers \"+memory\" in {}: the cgroup has processes of its own, which cgroup v2 forbids there (try --cgroup-parent)",
            busy.path.join("cgroup.subtree_control").display()
        )
    );
    // Without a limit no controller is needed: the container's cgroup goes below busy.
    let output = run_in(
        &root,
        &busy.path,
        None,
        &["run", "cat", "/proc/self/cgroup"],
    );
    assert_eq!(ok_stdout(&output), "0::/\n");
    // --cgroup-parent names a cgroup without processes: the limit holds.
    let parent = TestCgroup::new("mc-test-parent");
    let parent_flag = format!("/{}", parent.path.file_name().unwrap().to_str().unwrap());
    let output = run_in(
        &root,
        &busy.path,
        None,
        &[
            "run",
            "--cgroup-parent",
            &parent_flag,
            "-m",
            "32m",
            "sh",
            "-c",
            MEMORY_HOG,
        ],
    );
    assert_oom_killed(&output, "32MiB");
    assert!(
        fs::read_to_string(parent.path.join("cgroup.subtree_control"))
            .unwrap()
            .contains("memory"),
        "memory is enabled for the parent's children"
    );
}

#[test]
#[ignore = "needs cgroup v2 alone at /sys/fs/cgroup: tests/vm/run.sh runs it in a guest"]
fn rootless_runs_are_limited_in_a_delegated_cgroup() {
    require_v2();
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    chown_tree(&rootfs, USER);
    let rootfs = path_str(&rootfs);
    // As systemd's user@.service: a cgroup delegated to the user, the user's processes in a
    // cgroup below it (the service's own), the container next to them.
    let delegated = TestCgroup::new("mc-test-delegated");
    delegated.delegate(USER);
    let session = delegated.child("session");
    session.delegate(USER);
    let parent_flag = format!("/{}", delegated.path.file_name().unwrap().to_str().unwrap());
    let output = run_in(
        &root,
        &session.path,
        Some(USER),
        &[
            "run",
            "--rootfs",
            rootfs,
            "--cgroup-parent",
            &parent_flag,
            "-m",
            "32m",
            "sh",
            "-c",
            MEMORY_HOG,
        ],
    );
    assert_oom_killed(&output, "32MiB");
    let output = run_in(
        &root,
        &session.path,
        Some(USER),
        &[
            "run",
            "--rootfs",
            rootfs,
            "--cgroup-parent",
            &parent_flag,
            "-m",
            "512m",
            "--stats",
            "sh",
            "-c",
            MEMORY_HOG,
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).starts_with("mini-container: stats: "),
        "{}",
        stderr(&output)
    );
    // In its own delegated cgroup, which has the runner in it, the rule of the test above.
    let line = assert_fails(
        &run_in(
            &root,
            &session.path,
            Some(USER),
            &["run", "--rootfs", rootfs, "-m", "32m", "true"],
        ),
        125,
    );
    assert!(
        line.contains("the cgroup has processes of its own"),
        "{line}"
    );
}

#[test]
#[ignore = "needs cgroup v2 alone at /sys/fs/cgroup: tests/vm/run.sh runs it in a guest"]
fn rootless_without_a_delegated_cgroup_warns_and_runs_unlimited() {
    require_v2();
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    chown_tree(&rootfs, USER);
    let rootfs = path_str(&rootfs);
    // A session scope as systemd makes one for a login: root's, not the user's.
    let session = TestCgroup::new("mc-test-session");
    let output = run_in(
        &root,
        &session.path,
        Some(USER),
        &[
            "run",
            "--rootfs",
            rootfs,
            "-m",
            "32m",
            "sh",
            "-c",
            &format!("{MEMORY_HOG}; echo allocated"),
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "allocated\n");
    assert_eq!(
        stderr(&output),
        "mini-container: warning: rootless: no cgroup is delegated to this user, so the resource limits and --stats cannot be applied\n"
    );
}
