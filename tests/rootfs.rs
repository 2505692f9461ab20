//! `--rootfs`, /dev, /proc and /sys, volumes, tmpfs, --read-only and -u, on a busybox root
//! filesystem built by the harness.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;

fn run_in(
    root: &TestRoot,
    rootfs: &std::path::Path,
    args: &[&str],
    script: &str,
) -> std::process::Output {
    let mut all = vec!["run", "--rootfs", path_str(rootfs)];
    all.extend_from_slice(args);
    all.extend_from_slice(&["sh", "-c", script]);
    root.run(&all)
}

#[test]
fn the_rootfs_is_visible_and_the_host_is_not() {
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    fs::write(rootfs.join("inside-marker"), "inside").unwrap();
    // A marker on the host, next to the rootfs and at the top of the host's filesystem.
    let marker = format!("mc-host-marker-{}", std::process::id());
    fs::write(root.path.join(&marker), "host").unwrap();
    let out = ok_stdout(&run_in(
        &root,
        &rootfs,
        &[],
        &format!(
            "cat /inside-marker; echo; \
             find / -path /proc -prune -o -name '{marker}' -print; \
             ls /proc/1/root/../../ | tr '\\n' ' '; echo; \
             cd /..; pwd; ls /proc/1/root/{marker} 2>&1; true"
        ),
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "inside");
    assert!(
        !out.contains(&format!("/{marker}\n")),
        "the host marker was found: {out}"
    );
    let top: Vec<&str> = lines[1].split_whitespace().collect();
    assert!(
        top.contains(&"inside-marker") && top.contains(&"bin"),
        "{out}"
    );
    assert!(!top.contains(&"usr"), "the host's / shows through: {out}");
    assert_eq!(lines[2], "/");
    assert!(lines[3].contains("No such file or directory"), "{out}");
    assert!(fs::read_dir(&root.path).unwrap().count() >= 2);
}

#[test]
fn mountinfo_lists_only_the_containers_mounts() {
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    let out = ok_stdout(&run_in(&root, &rootfs, &[], "cat /proc/1/mountinfo"));
    let points: Vec<&str> = out
        .lines()
        .map(|l| l.split_whitespace().nth(4).unwrap())
        .collect();
    let allowed_prefixes = [
        "/proc",
        "/dev",
        "/sys",
        "/etc/resolv.conf",
        "/etc/hostname",
        "/etc/hosts",
    ];
    assert_eq!(points[0], "/", "{out}");
    for point in &points[1..] {
        assert!(
            allowed_prefixes.iter().any(|p| point.starts_with(p)),
            "unexpected mount {point} in:\n{out}"
        );
    }
    for expected in [
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/sys",
        "/etc/hosts",
    ] {
        assert!(
            points.contains(&expected),
            "{expected} missing from:\n{out}"
        );
    }
    assert!(
        !out.contains(" - ext4 ")
            || out.lines().filter(|l| l.contains(" - ext4 ")).all(|l| {
                let point = l.split_whitespace().nth(4).unwrap();
                point == "/" || point.starts_with("/etc/")
            }),
        "a host filesystem is mounted somewhere else:\n{out}"
    );
}

#[test]
fn every_dev_node_works() {
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    let output = run_in(
        &root,
        &rootfs,
        &[],
        "head -c 16 /dev/zero | wc -c; echo discarded > /dev/null && echo null-ok; \
         head -c 8 /dev/urandom | wc -c; head -c 8 /dev/random | wc -c; \
         echo x > /dev/full 2>/dev/null || echo full-enospc; \
         stat -c '%a %t,%T' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty; \
         exec 3<>/dev/ptmx; ls /dev/pts; \
         for l in fd stdin stdout stderr ptmx core; do readlink /dev/$l; done; \
         stat -c '%a' /dev/shm; \
         for m in shm mqueue pts; do grep \" /dev/$m \" /proc/mounts | cut -d' ' -f3; done",
    );
    let out = ok_stdout(&output);
    let expected = "16\nnull-ok\n8\n8\nfull-enospc\n\
                    666 1,3\n666 1,5\n666 1,7\n666 1,8\n666 1,9\n666 5,0\n\
                    0\nptmx\n\
                    /proc/self/fd\n/proc/self/fd/0\n/proc/self/fd/1\n/proc/self/fd/2\npts/ptmx\n/proc/kcore\n\
                    1777\ntmpfs\nmqueue\ndevpts\n";
    assert_eq!(out, expected);
}

#[test]
fn proc_and_sys_are_protected() {
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    let out = ok_stdout(&run_in(
        &root,
        &rootfs,
        &[],
        "for f in /proc/kcore /proc/keys /proc/timer_list /proc/interrupts; do \
           [ -e $f ] && echo \"$f $(wc -c < $f)\"; done; \
         for d in /proc/acpi /proc/scsi /sys/firmware; do [ -d $d ] && echo \"$d $(ls -A $d | wc -l)\"; done; \
         echo 1 > /proc/sys/kernel/domainname 2>/dev/null || echo proc-sys-ro; \
         echo 1 > /proc/sysrq-trigger 2>/dev/null || echo sysrq-ro; \
         touch /sys/mc-test 2>/dev/null || echo sys-ro; \
         grep -E ' /proc ' /proc/self/mountinfo | grep -o 'nosuid,nodev,noexec'",
    ));
    for line in out
        .lines()
        .filter(|l| l.starts_with("/proc/") || l.starts_with("/sys/"))
    {
        let (path, size) = line.rsplit_once(' ').unwrap();
        assert_eq!(size, "0", "{path} is not masked: {out}");
    }
    // The masks that this kernel has paths for are all in place.
    for path in [
        "/proc/keys",
        "/proc/timer_list",
        "/proc/interrupts",
        "/sys/firmware",
    ] {
        if std::path::Path::new(path).exists() {
            assert!(out.contains(&format!("{path} 0")), "{path}: {out}");
        }
    }
    for expected in ["proc-sys-ro", "sysrq-ro", "sys-ro", "nosuid,nodev,noexec"] {
        assert!(out.contains(expected), "{expected} missing: {out}");
    }
}

#[test]
fn read_only_root_with_a_writable_tmpfs() {
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    let out = ok_stdout(&run_in(
        &root,
        &rootfs,
        &["--read-only", "--tmpfs", "/tmp:size=1m,mode=1777"],
        "touch /written 2>/dev/null || echo root-ro; touch /tmp/ok && echo tmp-rw; \
         echo x > /dev/null && echo dev-ok; cat /proc/self/stat > /dev/null && echo proc-ok; \
         stat -c %a /tmp; df -k /tmp | tail -1 | awk '{print $2}'",
    ));
    assert_eq!(out, "root-ro\ntmp-rw\ndev-ok\nproc-ok\n1777\n1024\n");
    assert!(!rootfs.join("written").exists());
    // The host's filesystem under the rootfs is still writable.
    fs::write(rootfs.join("host-can-write"), "x").unwrap();
}

#[test]
fn volumes_read_write_and_read_only() {
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    let shared = root.path.join("shared");
    fs::create_dir(&shared).unwrap();
    fs::write(shared.join("from-host"), "hello").unwrap();
    let rw = format!("{}:/data", path_str(&shared));
    let ro = format!("{}:/ro:ro", path_str(&shared));
    let file = format!("{}:/etc/greeting:ro", path_str(&shared.join("from-host")));
    let out = ok_stdout(&run_in(
        &root,
        &rootfs,
        &["-v", &rw, "-v", &ro, "-v", &file],
        "cat /data/from-host; echo; echo written > /data/from-container; \
         touch /ro/nope 2>/dev/null || echo ro-refused; cat /etc/greeting",
    ));
    assert_eq!(out, "hello\nro-refused\nhello");
    assert_eq!(
        fs::read_to_string(shared.join("from-container")).unwrap(),
        "written\n"
    );
    assert!(!shared.join("nope").exists());
}

#[test]
fn volumes_and_tmpfs_without_a_rootfs_stay_in_the_container() {
    let root = TestRoot::new();
    let shared = root.path.join("shared");
    fs::create_dir(&shared).unwrap();
    let volume = format!("{}:/mnt", path_str(&shared));
    let out = ok_stdout(&root.run(&[
        "run",
        "-v",
        &volume,
        "--tmpfs",
        "/media",
        "sh",
        "-c",
        "echo hi > /mnt/file && touch /media/scratch && ls /media",
    ]));
    assert_eq!(out, "scratch\n");
    assert_eq!(fs::read_to_string(shared.join("file")).unwrap(), "hi\n");
    assert!(!std::path::Path::new("/media/scratch").exists());
    // A missing mount point is not created on the host.
    let line = assert_fails(
        &root.run(&["run", "--tmpfs", "/no-such-dir-mc", "true"]),
        125,
    );
    assert_eq!(
        line,
        "mini-container: mounting tmpfs on /no-such-dir-mc: No such file or directory"
    );
    assert!(!std::path::Path::new("/no-such-dir-mc").exists());
}

#[test]
fn users_by_id_and_name() {
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    let script = "id; echo $HOME; touch /root/x 2>/dev/null || echo denied";
    let as_ids = ok_stdout(&run_in(&root, &rootfs, &["-u", "1000:1000"], script));
    assert_eq!(
        as_ids,
        "uid=1000(app) gid=1000(app) groups=1000(app),2000(extra)\n/home/app\ndenied\n"
    );
    let nobody = ok_stdout(&run_in(&root, &rootfs, &["-u", "nobody"], script));
    assert_eq!(
        nobody,
        "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n/nonexistent\ndenied\n"
    );
    let unknown = ok_stdout(&run_in(
        &root,
        &rootfs,
        &["-u", "4242"],
        "id -u; id -g; echo $HOME",
    ));
    assert_eq!(unknown, "4242\n0\n/\n");
    let with_home = ok_stdout(&run_in(
        &root,
        &rootfs,
        &["-u", "app", "-e", "HOME=/elsewhere"],
        "echo $HOME",
    ));
    assert_eq!(with_home, "/elsewhere\n");
    let as_root = ok_stdout(&run_in(&root, &rootfs, &[], "id -u; echo $HOME"));
    assert_eq!(as_root, "0\n/root\n");
}

#[test]
fn workdir_is_created_inside_the_rootfs() {
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    let out = ok_stdout(&run_in(
        &root,
        &rootfs,
        &["-w", "/srv/app", "-u", "app"],
        "pwd",
    ));
    assert_eq!(out, "/srv/app\n");
    assert!(rootfs.join("srv/app").is_dir());
}

#[test]
fn etc_files_come_from_the_state_directory() {
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    fs::write(rootfs.join("etc/hosts"), "original\n").unwrap();
    let out = ok_stdout(&run_in(
        &root,
        &rootfs,
        &["--hostname", "web1"],
        "cat /etc/hostname; cat /etc/hosts; echo added >> /etc/hosts; cat /etc/resolv.conf | wc -c",
    ));
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("web1"));
    let hosts: Vec<&str> = lines.by_ref().take(7).collect();
    assert_eq!(hosts[0], "127.0.0.1\tlocalhost");
    assert_eq!(hosts[1], "::1\tlocalhost ip6-localhost ip6-loopback");
    assert!(hosts.contains(&"ff02::2\tip6-allrouters"));
    assert_eq!(hosts[6], "127.0.0.1\tweb1");
    let resolv_len: usize = lines.next().unwrap().trim().parse().unwrap();
    assert_eq!(
        resolv_len,
        fs::read("/etc/resolv.conf").map(|r| r.len()).unwrap_or(0)
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("etc/hosts")).unwrap(),
        "original\n",
        "the rootfs was edited"
    );
}

#[test]
fn symlinks_in_the_rootfs_cannot_lead_mounts_out() {
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    let target = format!("mc-escape-{}", std::process::id());
    std::os::unix::fs::symlink("/", rootfs.join("absolute")).unwrap();
    std::os::unix::fs::symlink("../../../../../../..", rootfs.join("relative")).unwrap();
    let out = ok_stdout(&run_in(
        &root,
        &rootfs,
        &[
            "--tmpfs",
            &format!("/absolute/{target}/a"),
            "--tmpfs",
            &format!("/relative/{target}/b"),
        ],
        &format!("ls /{target}"),
    ));
    assert_eq!(out, "a\nb\n");
    assert!(
        rootfs.join(&target).join("a").is_dir(),
        "created inside the rootfs"
    );
    assert!(
        !std::path::Path::new("/").join(&target).exists(),
        "created on the host"
    );
}

#[test]
fn bad_input_is_one_line_and_125() {
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    let rootfs = path_str(&rootfs);
    let file = temp_file(&root, "a-file", b"x");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--rootfs", "/nonexistent/rootfs"],
            "invalid --rootfs /nonexistent/rootfs: No such file or directory",
        ),
        (vec!["--rootfs", path_str(&file)], "not a directory"),
        (vec!["--rootfs", rootfs, "-v", "/tmp"], "use SRC:DST"),
        (
            vec!["--rootfs", rootfs, "-v", "/nonexistent/src:/data"],
            "source /nonexistent/src: No such file or directory",
        ),
        (
            vec!["--rootfs", rootfs, "-v", "/tmp:/data:bogus"],
            "unknown option",
        ),
        (
            vec!["--rootfs", rootfs, "-u", "ghost"],
            "unable to find user ghost: no matching entries in passwd file",
        ),
        (
            vec!["--rootfs", rootfs, "-u", "app:ghosts"],
            "unable to find group ghosts",
        ),
        (
            vec!["--rootfs", rootfs, "--tmpfs", "/tmp:size=lots"],
            "mounting tmpfs on /tmp: Invalid argument",
        ),
        (vec!["--read-only"], "--read-only needs --rootfs"),
    ];
    for (flags, expected) in cases {
        let mut args = vec!["run"];
        args.extend(flags.iter().copied());
        args.push("true");
        let line = assert_fails(&root.run(&args), 125);
        assert!(line.contains(expected), "{args:?}: {line}");
    }
    let _ = fs::set_permissions(&file, fs::Permissions::from_mode(0o644));
}

#[test]
fn nothing_propagates_to_a_shared_host_root() {
    // systemd hosts mount / shared: pivot_root and every mount must stay inside. The
    // container mounts a tmpfs itself, which Docker's seccomp profile denies: unconfined.
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    let shared = root.path.join("shared");
    fs::create_dir(&shared).unwrap();
    let script = format!(
        "mount --make-rshared / && {BIN} --root {} run --rootfs {} -v {}:/data --tmpfs /scratch \
         --cap-add SYS_ADMIN sh -c 'mount -t tmpfs mc-test-inner /tmp' && grep -c -E 'mc-test-inner|/scratch|{}' /proc/self/mountinfo",
        path_str(&root.path),
        path_str(&rootfs),
        path_str(&shared),
        path_str(&rootfs),
    );
    let output = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "unchanged", "sh", "-c", &script])
        .output()
        .unwrap();
    assert_eq!(stdout(&output), "0\n", "stderr: {}", stderr(&output));
}
