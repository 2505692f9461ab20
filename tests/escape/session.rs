//! The caller's session: its terminal (TIOCSTI, /dev/tty), the descriptors it leaves open
//! (`-w /proc/self/fd/N`, an image's WorkingDir, /proc/PID/fd of a process `exec` starts) and
//! the dumpable flag of the processes we start inside. Each attack is also made with its
//! protection switched off (`new-session`, `close-fds`, `cwd-check`, `dumpable`) and then
//! succeeds.

use crate::common::image::{path_string, sh, umoci_layout};
use crate::common::pty::{reader, wait_for};
use crate::common::*;
use nix::pty::{OpenptyResult, openpty};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Output, Stdio};
use std::time::Duration;

const SWITCHES: &str = "MINI_CONTAINER_TEST_DISABLE";

/// A new pty pair, as a user's terminal: the test holds the master side.
fn terminal() -> OpenptyResult {
    openpty(None, None).unwrap()
}

/// `mini-container ARGS` with the pty's slave as its controlling terminal (a session of its
/// own, made in the spawned child) and as stdin unless `stdin` is given, output piped.
fn spawn_on_terminal(
    root: &TestRoot,
    slave: &OwnedFd,
    args: &[&str],
    switches: &str,
    stdin: Option<Stdio>,
) -> Child {
    let slave_fd = slave.as_raw_fd();
    let mut command = root.command(args);
    command
        .env(SWITCHES, switches)
        .stdin(stdin.unwrap_or_else(|| Stdio::from(slave.try_clone().unwrap())))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec only setsid and ioctl, both async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            if libc::ioctl(slave_fd, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.spawn().unwrap()
}

/// What waits in the terminal's input queue: what the caller's shell would read next.
fn pending_input(slave: &OwnedFd) -> String {
    let fd = slave.try_clone().unwrap();
    let flags = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_GETFL).unwrap();
    let nonblocking = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFL(nonblocking)).unwrap();
    let mut buf = [0u8; 256];
    match nix::unistd::read(&fd, &mut buf) {
        Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        Err(nix::errno::Errno::EAGAIN) => String::new(),
        Err(err) => panic!("reading the terminal's input queue: {err}"),
    }
}

/// Runs `tiocsti TTY TEXT` through `args` (a `run` or an `exec` ending in the attack) on a
/// fresh terminal; returns what it reported and what is left in the terminal's input.
fn inject(
    root: &TestRoot,
    args: &[&str],
    switches: &str,
    stdin: Option<Stdio>,
) -> (Output, String) {
    let OpenptyResult { master, slave } = terminal();
    let runner = spawn_on_terminal(root, &slave, args, switches, stdin);
    let output = runner.wait_with_output().unwrap();
    let pending = pending_input(&slave);
    drop(master);
    (output, pending)
}

#[test]
fn a_container_cannot_type_into_the_callers_terminal() {
    let root = TestRoot::new();
    let rootfs = root.attack_rootfs();
    let run = |tty: &str| -> Vec<String> {
        vec![
            "run".into(),
            "--rootfs".into(),
            path_string(&rootfs),
            "tiocsti".into(),
            tty.into(),
            "echo INJECTED".into(),
        ]
    };
    let args = run("-");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // stdin is the caller's terminal, but it is not the container's controlling terminal.
    let (output, pending) = inject(&root, &args, "", None);
    assert_eq!(stdout(&output), "EPERM\n", "{}", stderr(&output));
    assert_eq!(pending, "");
    let (output, pending) = inject(&root, &args, "new-session", None);
    assert_eq!(stdout(&output), "ok\n", "{}", stderr(&output));
    assert_eq!(
        pending, "echo INJECTED\n",
        "the caller's shell would run it"
    );

    // With every stdio redirected, through /dev/tty: the container has no controlling tty.
    let args = run("/dev/tty");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (output, pending) = inject(&root, &args, "", Some(Stdio::null()));
    assert_eq!(stdout(&output), "ENXIO\n", "{}", stderr(&output));
    assert_eq!(pending, "");
    let (output, pending) = inject(&root, &args, "new-session", Some(Stdio::null()));
    assert_eq!(stdout(&output), "ok\n", "{}", stderr(&output));
    assert_eq!(pending, "echo INJECTED\n");
}

#[test]
fn a_process_started_by_exec_cannot_type_into_the_callers_terminal() {
    let root = TestRoot::new();
    let rootfs = root.attack_rootfs();
    let rootfs = path_str(&rootfs);
    ok_stdout(&root.run(&[
        "run", "-d", "--name", "box", "--rootfs", rootfs, "sleep", "60",
    ]));
    for tty in ["-", "/dev/tty"] {
        let args = ["exec", "box", "tiocsti", tty, "echo INJECTED"];
        let (output, pending) = inject(&root, &args, "", None);
        let refused = if tty == "-" { "EPERM\n" } else { "ENXIO\n" };
        assert_eq!(stdout(&output), refused, "{tty}: {}", stderr(&output));
        assert_eq!(pending, "");
        let (output, pending) = inject(&root, &args, "new-session", None);
        assert_eq!(stdout(&output), "ok\n", "{tty}: {}", stderr(&output));
        assert_eq!(pending, "echo INJECTED\n");
    }
    ok_stdout(&root.run(&["rm", "-f", "box"]));
}

/// The pids of the processes whose parent is `pid` and whose name is `name`.
fn children_named(pid: i64, name: &str) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/comm")).is_ok_and(|c| c.trim() == name)
        })
        .map(String::from)
        .collect()
}

/// The one-letter state of process `pid` (R, S, T, Z...), '?' when it is gone.
fn state_of(pid: &str) -> char {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit(')').next()?.trim_start().chars().next())
        .unwrap_or('?')
}

#[test]
fn an_interactive_shell_without_a_tty_reads_the_terminal_and_ctrl_c_and_ctrl_z_reach_it() {
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    let OpenptyResult { master, slave } = terminal();
    let slave_fd = slave.as_raw_fd();
    let mut command = root.command(&["run", "--rootfs", path_str(&rootfs), "sh"]);
    command
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave.try_clone().unwrap()));
    // SAFETY: between fork and exec only setsid and ioctl, both async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            if libc::ioctl(slave_fd, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut runner = command.spawn().unwrap();
    let output = reader(&master);
    let mut typed = std::fs::File::from(master.try_clone().unwrap());
    let mut seen = String::new();
    typed.write_all(b"echo started\n").unwrap();
    wait_for(&output, &mut seen, "started\r\n");
    // A foreground command; Ctrl-C goes to the runner (the terminal's foreground job), which
    // passes it to the container's process group.
    typed.write_all(b"sleep 100\n").unwrap();
    let init = root.wait_for_running_state()["pid"].as_i64().unwrap();
    wait_until(Duration::from_secs(10), || {
        (!children_named(init, "sleep").is_empty()).then_some(())
    })
    .expect("the shell never started sleep");
    let sleep = children_named(init, "sleep").remove(0);
    // Ctrl-Z stops the container with the runner; continuing the runner (as `fg` would)
    // continues the container.
    typed.write_all(b"\x1a").unwrap();
    let runner_pid = runner.id().to_string();
    for pid in [&runner_pid, &sleep] {
        wait_until(Duration::from_secs(10), || {
            (state_of(pid) == 'T').then_some(())
        })
        .unwrap_or_else(|| panic!("{pid} was not stopped: {seen}"));
    }
    kill(Pid::from_raw(runner.id() as i32), Signal::SIGCONT).unwrap();
    for pid in [&runner_pid, &sleep] {
        wait_until(Duration::from_secs(10), || {
            (state_of(pid) == 'S').then_some(())
        })
        .unwrap_or_else(|| panic!("{pid} was not continued: {seen}"));
    }
    typed.write_all(b"\x03").unwrap();
    typed.write_all(b"echo alive $$\n").unwrap();
    wait_for(&output, &mut seen, "alive 1\r\n");
    assert!(children_named(init, "sleep").is_empty(), "{seen}");
    typed.write_all(b"exit 4\n").unwrap();
    assert_eq!(runner.wait().unwrap().code(), Some(4), "{seen}");
    // What busybox sh says when it finds no controlling terminal.
    assert!(seen.contains("job control turned off"), "{seen}");
}

/// `sh -c 'exec 7<HOST_DIR; exec mini-container ARGS'` with `switches`: the caller leaves
/// a directory of the host's open on fd 7.
fn with_host_dir_on_fd_7(
    root: &TestRoot,
    host_dir: &std::path::Path,
    args: &[&str],
    switches: &str,
) -> Output {
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let script = format!(
        "exec 7<'{}'; exec '{BIN}' --root '{}' {}",
        path_string(host_dir),
        path_string(&root.path),
        quoted.join(" ")
    );
    std::process::Command::new("sh")
        .args(["-c", &script])
        .env(SWITCHES, switches)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn host_dir(root: &TestRoot) -> std::path::PathBuf {
    let dir = root.path.join("host");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("host-secret"), "secret\n").unwrap();
    dir
}

/// The command every working-directory attack runs: list the cwd, write into it.
const WRITE_INTO_CWD: &[&str] = &["sh", "-c", "ls; echo x > escaped"];

#[test]
fn a_working_directory_through_an_inherited_fd_is_refused() {
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    let host = host_dir(&root);
    let mut args = vec![
        "run",
        "--rootfs",
        path_str(&rootfs),
        "-w",
        "/proc/self/fd/7",
    ];
    args.extend_from_slice(WRITE_INTO_CWD);
    // Either protection alone is enough: fd 7 is closed before the setup, and a cwd outside
    // the root is refused after chdir.
    for (switches, why) in [
        (
            "",
            "creating working directory /proc/self/fd/7: No such file or directory",
        ),
        (
            "cwd-check",
            "creating working directory /proc/self/fd/7: No such file or directory",
        ),
        ("close-fds", "it is outside the container's root"),
    ] {
        let output = with_host_dir_on_fd_7(&root, &host, &args, switches);
        let line = assert_fails(&output, 125);
        assert!(line.contains(why), "{switches}: {line}");
        assert!(!host.join("escaped").exists(), "{switches}");
    }
    let output = with_host_dir_on_fd_7(&root, &host, &args, "close-fds,cwd-check");
    assert_eq!(ok_stdout(&output), "host-secret\n");
    assert!(
        host.join("escaped").exists(),
        "the container wrote into the host's directory"
    );
}

#[test]
fn an_image_working_directory_through_an_inherited_fd_is_refused() {
    let root = TestRoot::new();
    let layout = umoci_layout(&root.path, "evil");
    sh(&format!(
        "umoci config --image '{}:evil' --config.workingdir /proc/self/fd/7",
        path_string(&layout)
    ));
    ok_stdout(&root.run(&["load", "-i", &path_string(&layout)]));
    let host = host_dir(&root);
    let mut args = vec!["run", "--image", "evil"];
    args.extend_from_slice(WRITE_INTO_CWD);
    for switches in ["", "cwd-check", "close-fds"] {
        let output = with_host_dir_on_fd_7(&root, &host, &args, switches);
        let line = assert_fails(&output, 125);
        assert!(line.contains("/proc/self/fd/7"), "{switches}: {line}");
        assert!(!host.join("escaped").exists(), "{switches}");
    }
    let output = with_host_dir_on_fd_7(&root, &host, &args, "close-fds,cwd-check");
    assert_eq!(ok_stdout(&output), "host-secret\n");
    assert!(host.join("escaped").exists());
    ok_stdout(&root.run(&["rmi", "evil"]));
}

#[test]
fn a_process_being_started_by_exec_cannot_be_read_through_proc() {
    let root = TestRoot::new();
    let rootfs = root.attack_rootfs();
    let host = host_dir(&root);
    // Thousands of PATH entries to try before `true` is found: the exec'ing process lingers
    // a few milliseconds between fork and exec, so the attacker surely catches it there.
    let mut path: Vec<String> = (0..4000).map(|i| format!("/nonexistent/{i}")).collect();
    path.push("/bin".into());
    let path = format!("PATH={}", path.join(":"));
    for (switches, expected) in [
        ("", "EACCES"),
        ("close-fds", "EACCES"),
        // Dumpable: its fds can be opened, but the host's fd 7 is no longer among them.
        ("dumpable", "ENOENT"),
        ("dumpable,close-fds", "ok"),
    ] {
        let ready = rootfs.join("tmp/procfd-ready");
        let _ = std::fs::remove_file(&ready);
        ok_stdout(&root.run(&[
            "run",
            "-d",
            "--name",
            "box",
            "--rootfs",
            path_str(&rootfs),
            "procfd",
            "7",
            "host-secret",
        ]));
        wait_until(Duration::from_secs(10), || ready.exists().then_some(()))
            .expect("the attacker never got ready");
        let exec = ["exec", "-e", &path, "box", "true"];
        let output = with_host_dir_on_fd_7(&root, &host, &exec, switches);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{switches}: {}",
            stderr(&output)
        );
        // The attacker reports once the process it stopped has gone on and ended.
        let logs = wait_until(Duration::from_secs(10), || {
            let logs = ok_stdout(&root.run(&["logs", "box"]));
            logs.ends_with('\n').then_some(logs)
        })
        .expect("the attacker never reported");
        assert_eq!(logs, format!("{expected}\n"), "{switches}");
        ok_stdout(&root.run(&["rm", "-f", "box"]));
    }
}

#[test]
fn the_command_itself_is_dumpable_again() {
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    // Another process may read PID 1's cwd and environment (its own user, without
    // CAP_SYS_PTRACE) only if the kernel made PID 1 dumpable again when it exec'd the command.
    for user in ["0", "1000"] {
        let out = ok_stdout(&root.run(&[
            "run",
            "--rootfs",
            path_str(&rootfs),
            "-u",
            user,
            "sh",
            "-c",
            "(readlink /proc/1/cwd); (grep -c . /proc/1/environ)",
        ]));
        assert!(out.starts_with("/\n"), "{user}: {out}");
    }
}
