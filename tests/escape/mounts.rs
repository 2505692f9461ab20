//! Mounts: the host's kernel settings behind /proc/sys and /sys, the host's cgroups, and
//! read-only volumes. Every write here writes back the value the file holds, and sysrq is
//! only opened, so that nothing changes on the host even when the protection is off.

use crate::common::attack::attack_programs;
use crate::common::*;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output};

const SWITCH: &str = "MINI_CONTAINER_TEST_DISABLE";

/// The host path of an attack program, for runs without a root filesystem of their own.
fn program(name: &str) -> String {
    let path = attack_programs()
        .iter()
        .find(|p| p.file_name().unwrap() == name)
        .unwrap_or_else(|| panic!("no attack program {name}"));
    path_str(path).to_string()
}

/// `run [--rootfs R] ARGS` with the test switches `disabled` (empty: none).
fn run(root: &TestRoot, rootfs: Option<&Path>, disabled: &str, args: &[&str]) -> Output {
    let mut full = vec!["run"];
    if let Some(rootfs) = rootfs {
        full.extend(["--rootfs", path_str(rootfs)]);
    }
    full.extend(args);
    let mut command = root.command(&full);
    if !disabled.is_empty() {
        command.env(SWITCH, disabled);
    }
    command.output().unwrap()
}

/// Runs attack `name` with `args` in a default container (with `flags` and switches), once in
/// `rootfs` (an attack root filesystem) and once without a root filesystem of its own, and
/// returns both answers.
fn attack(
    root: &TestRoot,
    rootfs: &Path,
    flags: &[&str],
    disabled: &str,
    name: &str,
    args: &[&str],
) -> [String; 2] {
    let host_path = program(name);
    [(Some(rootfs), name.to_string()), (None, host_path)].map(|(rootfs, program)| {
        let mut full: Vec<&str> = flags.to_vec();
        full.push(&program);
        full.extend(args);
        let out = run(root, rootfs, disabled, &full);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{name} {args:?} (rootfs {rootfs:?}): {out:?}"
        );
        stdout(&out).trim_end().to_string()
    })
}

fn current(path: &str) -> String {
    fs::read_to_string(path)
        .unwrap()
        .trim_end_matches('\n')
        .to_string()
}

#[test]
fn core_pattern_cannot_be_written() {
    let root = TestRoot::new();
    let rootfs = root.attack_rootfs();
    let path = "/proc/sys/kernel/core_pattern";
    let value = current(path);
    let write = |flags: &[&str], disabled| {
        attack(
            &root,
            &rootfs,
            flags,
            disabled,
            "mounts_write",
            &[path, &value],
        )
    };
    assert_eq!(write(&[], ""), ["EROFS", "EROFS"]);
    // Without the read-only /proc/sys, the container's root writes the host's setting (the
    // same value back here).
    assert_eq!(write(&[], "masks"), ["ok", "ok"]);
    assert_eq!(write(&["--privileged"], ""), ["ok", "ok"]);
    assert_eq!(current(path), value, "the host's core_pattern is unchanged");
}

#[test]
fn sysrq_trigger_cannot_be_opened_for_writing() {
    let path = "/proc/sysrq-trigger";
    if !Path::new(path).exists() {
        eprintln!("skipped: this kernel has no {path} (CONFIG_MAGIC_SYSRQ is off)");
        return;
    }
    let root = TestRoot::new();
    let rootfs = root.attack_rootfs();
    // Opened only: nothing is ever written to it.
    let open =
        |flags: &[&str], disabled| attack(&root, &rootfs, flags, disabled, "open", &[path, "w"]);
    assert_eq!(open(&[], ""), ["EROFS", "EROFS"]);
    assert_eq!(open(&[], "masks"), ["ok", "ok"]);
}

#[test]
fn sys_is_read_only() {
    let root = TestRoot::new();
    let rootfs = root.attack_rootfs();
    // Opened only: nothing is ever written to it.
    let path = "/sys/kernel/rcu_expedited";
    assert!(Path::new(path).exists(), "this test needs {path}");
    let open = |flags: &[&str]| attack(&root, &rootfs, flags, "", "open", &[path, "w"]);
    assert_eq!(open(&[]), ["EROFS", "EROFS"]);
    assert_eq!(open(&["--privileged"]), ["ok", "ok"]);
}

#[test]
fn masked_paths_hide_the_hosts_kernel_details() {
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    let script = "wc -c < /proc/timer_list; ls /sys/firmware | wc -l";
    let counts = |rootfs: Option<&Path>, disabled| {
        let out = ok_stdout(&run(&root, rootfs, disabled, &["sh", "-c", script]));
        let counts: Vec<u64> = out.split_whitespace().map(|n| n.parse().unwrap()).collect();
        counts
    };
    for rootfs in [Some(rootfs.as_path()), None] {
        assert_eq!(counts(rootfs, ""), [0, 0], "rootfs {rootfs:?}");
        let open = counts(rootfs, "masks");
        assert!(open.iter().all(|n| *n > 0), "rootfs {rootfs:?}: {open:?}");
    }
}

/// cgroup v1 here; on v2 (the guest suite) [`the_container_sees_its_own_cgroup2_read_only`].
#[test]
fn the_container_sees_its_own_cgroup_read_only() {
    if is_cgroup_v2() {
        eprintln!("skipped: the v1 memory hierarchy is not mounted on this host");
        return;
    }
    let root = TestRoot::new();
    let rootfs = root.attack_rootfs();
    let limit = "/sys/fs/cgroup/memory/memory.limit_in_bytes";
    for rootfs in [Some(rootfs.as_path()), None] {
        let script = format!("cat {limit}; ls /sys/fs/cgroup; ls /sys/fs/cgroup/memory");
        let out = ok_stdout(&run(
            &root,
            rootfs,
            "",
            &["-m", "256m", "--pids-limit", "50", "sh", "-c", &script],
        ));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "268435456", "rootfs {rootfs:?}");
        // The hierarchies it has a cgroup of its own in (the freezer is always used), each
        // rooted there: no other container's cgroup below it, no host's.
        for hierarchy in ["memory", "pids", "freezer"] {
            assert!(lines.contains(&hierarchy), "rootfs {rootfs:?}: {out}");
        }
        assert!(!lines.contains(&"systemd"), "rootfs {rootfs:?}: {out}");
        assert!(!out.contains("mini-container-"), "rootfs {rootfs:?}: {out}");
        assert!(lines.contains(&"memory.limit_in_bytes"), "{out}");
    }
    let write = |flags: &[&str], disabled| {
        let mut flags = flags.to_vec();
        flags.extend(["-m", "256m"]);
        attack(
            &root,
            &rootfs,
            &flags,
            disabled,
            "mounts_write",
            &[limit, "268435456"],
        )
    };
    assert_eq!(write(&[], ""), ["EROFS", "EROFS"]);
    assert_eq!(write(&[], "cgroupfs-ro"), ["ok", "ok"]);
    assert_eq!(write(&["--privileged"], ""), ["ok", "ok"]);
    // The tmpfs that holds the hierarchies is read-only too.
    let mkdir = |disabled| {
        let out = run(
            &root,
            Some(&rootfs),
            disabled,
            &["sh", "-c", "mkdir /sys/fs/cgroup/new 2>&1; true"],
        );
        ok_stdout(&out)
    };
    assert!(mkdir("").contains("Read-only file system"), "{}", mkdir(""));
    assert_eq!(mkdir("cgroupfs-ro"), "");
}

/// cgroup v2 (the guest suite): one cgroup2 mount rooted at the container's own cgroup, so
/// that its limits are at the top, read-only but with `--privileged`.
#[test]
fn the_container_sees_its_own_cgroup2_read_only() {
    if !is_cgroup_v2() {
        eprintln!("skipped: this host's cgroups are v1 (the guest suite runs this on v2)");
        return;
    }
    let root = TestRoot::new();
    let rootfs = root.attack_rootfs();
    let limit = "/sys/fs/cgroup/memory.max";
    for rootfs in [Some(rootfs.as_path()), None] {
        let script = format!("cat {limit} /sys/fs/cgroup/pids.max; ls /sys/fs/cgroup");
        let out = ok_stdout(&run(
            &root,
            rootfs,
            "",
            &["-m", "256m", "--pids-limit", "50", "sh", "-c", &script],
        ));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[..2], ["268435456", "50"], "rootfs {rootfs:?}: {out}");
        // Rooted at its own cgroup: no other container's cgroup, nothing of the host's.
        assert!(!out.contains("mini-container-"), "rootfs {rootfs:?}: {out}");
        assert!(lines.contains(&"cgroup.procs"), "rootfs {rootfs:?}: {out}");
    }
    let write = |flags: &[&str], disabled| {
        let mut flags = flags.to_vec();
        flags.extend(["-m", "256m"]);
        attack(
            &root,
            &rootfs,
            &flags,
            disabled,
            "mounts_write",
            &[limit, "268435456"],
        )
    };
    assert_eq!(write(&[], ""), ["EROFS", "EROFS"]);
    // Mounted writable, the kernel itself (nsdelegate) still refuses writes to the interface
    // files of the cgroup namespace's root: what a writable mount gives is new cgroups below
    // it (made and removed again here, so the container's cgroup is left as it was).
    assert_eq!(write(&[], "cgroupfs-ro"), ["EPERM", "EPERM"]);
    let mkdir = |flags: &[&str], disabled| {
        let mut args = flags.to_vec();
        args.extend([
            "sh",
            "-c",
            "mkdir /sys/fs/cgroup/sub 2>&1 && rmdir /sys/fs/cgroup/sub && echo made",
        ]);
        stdout(&run(&root, Some(&rootfs), disabled, &args))
    };
    let refused = mkdir(&[], "");
    assert!(refused.contains("Read-only file system"), "{refused}");
    assert_eq!(mkdir(&[], "cgroupfs-ro"), "made\n");
    assert_eq!(mkdir(&["--privileged"], ""), "made\n");
}

/// Nothing a container mounts reaches the host's mount table, with or without a root
/// filesystem, even where the host's `/` propagates mounts (`mount --make-rshared /` in a
/// mount namespace of the test's own).
#[test]
fn no_mount_reaches_the_host() {
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    let volume = root.path.join("volume");
    fs::create_dir_all(&volume).unwrap();
    let volume = format!("{}:/data:ro", path_str(&volume));
    let runs = [
        format!("{BIN} --root {r} run -m 64m true", r = path_str(&root.path)),
        format!(
            "{BIN} --root {r} run --rootfs {f} -v {volume} -m 64m true",
            r = path_str(&root.path),
            f = path_str(&rootfs)
        ),
        format!(
            "{BIN} --root {r} run --privileged true",
            r = path_str(&root.path)
        ),
    ];
    let script = format!(
        "mount --make-rshared / && before=$(cut -d' ' -f5 /proc/self/mountinfo | sort) && \
         {runs} && after=$(cut -d' ' -f5 /proc/self/mountinfo | sort) && \
         [ \"$before\" = \"$after\" ] && echo unchanged",
        runs = runs.join(" && ")
    );
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .output()
        .unwrap();
    assert_eq!(ok_stdout(&out), "unchanged\n");
    // TestRoot's drop checks the host's own table too.
}

/// `-v SRC:/data:ro` while another container in the same root filesystem swaps /data with
/// a symlink (to /dev/shm, a mount of the new container's): the old way remounted "/data"
/// read-only by path, found the symlink's target instead, and left the volume writable (a
/// file appeared in SRC). Made read-only on the mount itself, the volume never is.
#[test]
fn a_read_only_volume_stays_read_only_while_its_mount_point_is_swapped() {
    let root = TestRoot::new();
    let rootfs = root.attack_rootfs();
    fs::create_dir(rootfs.join("data")).unwrap();
    std::os::unix::fs::symlink("/dev/shm", rootfs.join("data-link")).unwrap();
    let source = root.path.join("source");
    fs::create_dir(&source).unwrap();
    let volume = format!("{}:/data:ro", path_str(&source));

    let mut racer = spawn(
        &root,
        &[
            "run",
            "--rootfs",
            path_str(&rootfs),
            "mounts_swap",
            "/data",
            "/data-link",
        ],
    );
    let mut line = String::new();
    BufReader::new(racer.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(
        line,
        "swapping\n",
        "the racer did not start: {:?}",
        racer.try_wait()
    );

    // Each start writes into whichever name the volume has ended up under; true when the
    // write reached SRC.
    let start = |disabled| {
        let out = run(
            &root,
            Some(&rootfs),
            disabled,
            &[
                "-v",
                &volume,
                "sh",
                "-c",
                "for d in /data /data-link; do echo x > $d/written; done 2>/dev/null; true",
            ],
        );
        let written = source.join("written");
        let won = written.exists();
        let _ = fs::remove_file(&written);
        (out, won)
    };
    let safe_starts = 100;
    let mut writable = 0;
    for _ in 0..safe_starts {
        let (out, won) = start("");
        ok_stdout(&out);
        writable += usize::from(won);
    }
    // The old way lost about 7 starts in 100 on the development VM (and 7 more failed: the
    // remount by path found a directory that is no mount point, EINVAL); 200 tries make a
    // miss all but impossible.
    let mut old_way = None;
    for attempt in 1..=200 {
        let (out, won) = start("ro-by-fd");
        assert!(
            out.status.success() || stderr(&out).contains("read-only: Invalid argument"),
            "{out:?}"
        );
        if won {
            old_way = Some(attempt);
            break;
        }
    }

    // SIGTERM to the runner reaches the racer (its PID 1), which exits.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(racer.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = racer.wait().unwrap();
    assert_eq!(status.code(), Some(0), "the racer's runner");

    assert_eq!(writable, 0, "writable volumes in {safe_starts} starts");
    assert!(
        old_way.is_some(),
        "the old bind-then-remount never lost the race in 200 starts"
    );
    eprintln!(
        "the old way left the volume writable at start {}",
        old_way.unwrap()
    );
}

/// `-v SRC:DST:ro` where SRC has a mount below it (made in a mount namespace of the test's
/// own): the bind is recursive, and so is read-only; the old remount made only its top
/// read-only.
#[test]
fn a_read_only_volume_is_read_only_all_the_way_down() {
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    let source = root.path.join("source");
    fs::create_dir_all(source.join("sub")).unwrap();
    let touch = |disabled: &str| {
        let script = format!(
            "mount --make-rprivate / && mount -t tmpfs mounts-test {s}/sub && \
             MINI_CONTAINER_TEST_DISABLE={disabled} {BIN} --root {r} run --rootfs {f} \
             -v {s}:/data:ro sh -c 'touch /data/sub/new 2>&1; touch /data/top 2>&1; true'",
            s = path_str(&source),
            r = path_str(&root.path),
            f = path_str(&rootfs),
        );
        let out = Command::new("unshare")
            .args(["-m", "sh", "-c", &script])
            .output()
            .unwrap();
        ok_stdout(&out)
    };
    assert_eq!(
        touch(""),
        "touch: /data/sub/new: Read-only file system\ntouch: /data/top: Read-only file system\n"
    );
    assert_eq!(
        touch("ro-by-fd"),
        "touch: /data/top: Read-only file system\n"
    );
    assert!(!source.join("top").exists());
}
