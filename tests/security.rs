//! Capabilities, no_new_privs and --privileged, as the container's processes see them.

mod common;

use common::*;

/// The capability and no_new_privs lines of /proc/self/status inside a container.
fn status(
    root: &TestRoot,
    rootfs: &std::path::Path,
    flags: &[&str],
) -> std::collections::HashMap<String, String> {
    let mut args = vec!["run", "--rootfs", path_str(rootfs)];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["cat", "/proc/self/status"]);
    ok_stdout(&root.run(&args))
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

fn host_bounding_set() -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn dockers_default_capabilities() {
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    let status = status(&root, &rootfs, &[]);
    for set in ["CapPrm", "CapEff", "CapBnd"] {
        assert_eq!(status[set], "00000000a80425fb", "{set}");
    }
    assert_eq!(status["CapInh"], "0000000000000000");
    assert_eq!(status["CapAmb"], "0000000000000000");
    assert_eq!(status["NoNewPrivs"], "0");
    // Without a rootfs too.
    let out = ok_stdout(&root.run(&["run", "grep", "CapEff", "/proc/self/status"]));
    assert!(out.contains("00000000a80425fb"), "{out}");
}

#[test]
fn cap_add_cap_drop_and_privileged() {
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    assert_eq!(
        status(&root, &rootfs, &["--cap-drop", "ALL"])["CapEff"],
        "0000000000000000"
    );
    assert_eq!(
        status(&root, &rootfs, &["--cap-drop", "ALL"])["CapBnd"],
        "0000000000000000"
    );
    assert_eq!(
        status(&root, &rootfs, &["--cap-add", "SYS_ADMIN"])["CapEff"],
        "00000000a82425fb"
    );
    assert_eq!(
        status(&root, &rootfs, &["--cap-add", "cap_sys_admin"])["CapBnd"],
        "00000000a82425fb"
    );
    assert_eq!(
        status(
            &root,
            &rootfs,
            &["--cap-drop", "chown", "--cap-drop", "CAP_KILL"]
        )["CapEff"],
        "00000000a80425da"
    );
    assert_eq!(
        status(&root, &rootfs, &["--cap-drop", "ALL", "--cap-add", "KILL"])["CapEff"],
        "0000000000000020"
    );
    let privileged = status(&root, &rootfs, &["--privileged"]);
    assert_eq!(
        privileged["Seccomp"], "0",
        "--privileged has no seccomp filter"
    );
    assert_eq!(status(&root, &rootfs, &[])["Seccomp"], "2");
    assert_eq!(privileged["CapEff"], host_bounding_set());
    assert_eq!(privileged["CapBnd"], host_bounding_set());
}

#[test]
fn a_user_other_than_root_has_no_effective_capabilities() {
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    let status = status(&root, &rootfs, &["-u", "nobody"]);
    assert_eq!(status["CapEff"], "0000000000000000");
    assert_eq!(status["CapPrm"], "0000000000000000");
    assert_eq!(status["CapBnd"], "00000000a80425fb");
}

#[test]
fn no_new_privileges() {
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    for flag in [
        "no-new-privileges",
        "no-new-privileges=true",
        "no-new-privileges:true",
    ] {
        assert_eq!(
            status(&root, &rootfs, &["--security-opt", flag])["NoNewPrivs"],
            "1",
            "{flag}"
        );
    }
    assert_eq!(
        status(
            &root,
            &rootfs,
            &["--security-opt", "no-new-privileges=false"]
        )["NoNewPrivs"],
        "0"
    );
}

#[test]
fn the_container_cannot_undo_its_limits() {
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    let out = ok_stdout(&root.run(&[
        "run",
        "--rootfs",
        path_str(&rootfs),
        "--cap-drop",
        "CHOWN",
        "sh",
        "-c",
        "mount -o remount,rw /proc/sys 2>/dev/null || echo remount-refused; \
         echo x > /proc/sys/kernel/domainname 2>/dev/null || echo proc-sys-ro; \
         umount /proc/kcore 2>/dev/null; umount /sys/firmware 2>/dev/null || echo umount-refused; \
         touch /f; chown 1 /f 2>/dev/null || echo chown-refused; \
         mount -t tmpfs x /tmp 2>/dev/null || echo mount-refused; \
         unshare -U -r chown 1 /f 2>/dev/null || echo userns-refused; \
         sh -c 'grep -E \"^(Seccomp|CapBnd):\" /proc/self/status' | tr -s '\\t' ' '",
    ]));
    // A new user namespace would give back every capability: the filter refuses it, and
    // the filter and the bounding set pass on to every process started inside.
    assert_eq!(
        out,
        "remount-refused\nproc-sys-ro\numount-refused\nchown-refused\nmount-refused\n\
         userns-refused\nCapBnd: 00000000a80425fa\nSeccomp: 2\n"
    );
}

#[test]
fn privileged_has_no_masks_and_a_writable_sys() {
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    let out = ok_stdout(&root.run(&[
        "run",
        "--rootfs",
        path_str(&rootfs),
        "--privileged",
        "sh",
        "-c",
        "grep -c -E ' /proc/(keys|sys|timer_list) | /sys/firmware ' /proc/self/mountinfo; \
         grep ' /sys ' /proc/self/mountinfo | cut -d' ' -f6 | cut -d, -f1",
    ]));
    assert_eq!(out, "0\nrw\n");
}

#[test]
fn bad_security_flags_are_125() {
    let root = TestRoot::new();
    for (flags, expected) in [
        (vec!["--cap-add", "FLY"], "unknown capability \"FLY\""),
        (
            vec!["--cap-drop", "CAP_NOPE"],
            "unknown capability \"CAP_NOPE\"",
        ),
        (
            vec!["--security-opt", "no-new-privileges=maybe"],
            "invalid --security-opt",
        ),
        (
            vec!["--security-opt", "apparmor=x"],
            "invalid --security-opt",
        ),
    ] {
        let mut args = vec!["run"];
        args.extend(flags);
        args.push("true");
        let line = assert_fails(&root.run(&args), 125);
        assert!(line.contains(expected), "{line}");
    }
}

#[test]
fn the_runners_binary_cannot_be_overwritten_through_proc_exe() {
    // CVE-2019-5736: a container process that holds /proc/PID/exe of a mini-container
    // process must not be able to reopen it for writing once that process is gone.
    use nix::fcntl::{OFlag, open};
    use nix::sys::stat::Mode;
    use std::time::Duration;
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    // The init blocks while it reads the container's /etc/passwd: make that a FIFO.
    let passwd = rootfs.join("etc/passwd");
    let contents = std::fs::read(&passwd).unwrap();
    std::fs::remove_file(&passwd).unwrap();
    nix::unistd::mkfifo(&passwd, Mode::from_bits_truncate(0o644)).unwrap();
    let runner = spawn(
        &root,
        &["run", "--rootfs", path_str(&rootfs), "-u", "app", "true"],
    );
    let runner_pid = runner.id();
    let init = wait_until(Duration::from_secs(10), || {
        let children =
            std::fs::read_to_string(format!("/proc/{runner_pid}/task/{runner_pid}/children"))
                .ok()?;
        let pid: u32 = children.split_whitespace().next()?.parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        (cmdline == b"mini-container\0child\0").then_some(pid)
    })
    .expect("the container's init never re-exec'd");
    let exe = open(
        format!("/proc/{init}/exe").as_str(),
        OFlag::O_PATH,
        Mode::empty(),
    )
    .unwrap();
    std::fs::write(&passwd, contents).unwrap();
    let output = runner.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    // Once no process runs the binary (tests in parallel may, for a moment: ETXTBSY), only
    // the mount protects it.
    let reopened = wait_until(Duration::from_secs(10), || {
        let result = open(
            format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&exe)).as_str(),
            OFlag::O_WRONLY,
            Mode::empty(),
        );
        (result.as_ref().err() != Some(&nix::errno::Errno::ETXTBSY)).then_some(result)
    })
    .expect("the binary stayed busy");
    assert_eq!(reopened.err(), Some(nix::errno::Errno::EROFS));
}
