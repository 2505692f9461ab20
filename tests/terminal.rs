//! `-t` through a real pty driven by the test, and `--init`.

mod common;

use common::pty::{reader, wait_for};
use common::*;
use nix::pty::{OpenptyResult, Winsize, openpty};
use nix::sys::signal::{Signal, kill};
use nix::sys::termios::{LocalFlags, tcgetattr};
use nix::unistd::Pid;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::Duration;

fn size(rows: u16, cols: u16) -> Winsize {
    Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

/// Starts `mini-container ARGS` with the pty's slave as its stdio and controlling terminal,
/// as a user's shell would.
fn spawn_on_pty(root: &TestRoot, slave: &OwnedFd, args: &[&str]) -> std::process::Child {
    let slave_fd = slave.as_raw_fd();
    let mut command = root.command(args);
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
    command.spawn().unwrap()
}

#[test]
fn a_terminal_of_its_own_with_size_resize_and_status() {
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    let OpenptyResult { master, slave } = openpty(Some(&size(33, 111)), None).unwrap();
    let before = tcgetattr(&slave).unwrap();
    let mut runner = spawn_on_pty(
        &root,
        &slave,
        &[
            "run",
            "-t",
            "--rootfs",
            path_str(&rootfs),
            "sh",
            "-c",
            "tty; stty size; echo ready; read line; stty size; echo \"got $line\"; exit 5",
        ],
    );
    let output = reader(&master);
    let mut seen = String::new();
    wait_for(&output, &mut seen, "ready");
    assert!(seen.contains("/dev/pts/0"), "{seen}");
    assert!(seen.contains("33 111"), "{seen}");
    // Resize the outer terminal: the kernel signals the runner, which resizes the inner one.
    // SAFETY: TIOCSWINSZ reads a valid winsize.
    unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size(44, 120)) };
    std::thread::sleep(Duration::from_millis(200));
    std::fs::File::from(master.try_clone().unwrap())
        .write_all(b"hello\r")
        .unwrap();
    wait_for(&output, &mut seen, "got hello");
    assert!(seen.contains("44 120"), "{seen}");
    let status = runner.wait().unwrap();
    assert_eq!(status.code(), Some(5), "{seen}");
    let after = tcgetattr(&slave).unwrap();
    assert_eq!(
        after.local_flags, before.local_flags,
        "the outer terminal's mode was not restored"
    );
    assert!(
        after
            .local_flags
            .contains(LocalFlags::ICANON | LocalFlags::ECHO)
    );
}

#[test]
fn tty_without_a_terminal_is_refused() {
    let root = TestRoot::new();
    let line = assert_fails(&root.run(&["run", "-t", "true"]), 125);
    assert_eq!(line, "mini-container: the input device is not a TTY");
}

/// Zombie children of the container's init, seen from the host, while `run FLAGS` runs a
/// command that orphans a short sleep and then becomes a `sleep` that reaps nothing.
fn zombies_under_init(root: &TestRoot, flags: &[&str]) -> usize {
    let mut args = vec!["run"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["sh", "-c", "(sleep 0.1 &); exec sleep 1"]);
    let runner = spawn(root, &args);
    let init = root.wait_for_running_state()["pid"].as_i64().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let mut pids = vec![init.to_string()];
    let mut zombies = 0;
    while let Some(pid) = pids.pop() {
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        for child in children.split_whitespace() {
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            if stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
            {
                zombies += 1;
            }
            pids.push(child.to_string());
        }
    }
    assert!(runner.wait_with_output().unwrap().status.success());
    zombies
}

#[test]
fn init_reaps_orphans() {
    let root = TestRoot::new();
    assert_eq!(
        zombies_under_init(&root, &[]),
        1,
        "without --init the orphan stays a zombie"
    );
    assert_eq!(zombies_under_init(&root, &["--init"]), 0, "--init reaps it");
    assert_eq!(
        ok_stdout(&root.run(&["run", "--init", "sh", "-c", "echo $$"])),
        "2\n"
    );
}

#[test]
fn init_forwards_signals_and_statuses() {
    let root = TestRoot::new();
    // SIGTERM to the runner ends a command that does not trap it.
    let runner = spawn(&root, &["run", "--init", "sleep", "30"]);
    root.wait_for_running_state();
    std::thread::sleep(Duration::from_millis(100));
    kill(Pid::from_raw(runner.id() as i32), Signal::SIGTERM).unwrap();
    let output = runner.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(143), "{}", stderr(&output));

    assert_fails(&root.run(&["run", "--init", "no-such-command"]), 127);
    assert_eq!(
        root.run(&["run", "--init", "sh", "-c", "exit 9"])
            .status
            .code(),
        Some(9)
    );
}

#[test]
fn exec_t_gets_a_terminal_in_the_container() {
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    ok_stdout(&root.run(&[
        "run",
        "-d",
        "--name",
        "term",
        "--rootfs",
        path_str(&rootfs),
        "sleep",
        "60",
    ]));
    let OpenptyResult { master, slave } = openpty(Some(&size(20, 70)), None).unwrap();
    let mut runner = spawn_on_pty(
        &root,
        &slave,
        &[
            "exec",
            "-it",
            "term",
            "sh",
            "-c",
            "tty; stty size; echo $TERM; exit 6",
        ],
    );
    let output = reader(&master);
    let mut seen = String::new();
    wait_for(&output, &mut seen, "xterm");
    assert!(seen.contains("/dev/pts/0"), "{seen}");
    assert!(seen.contains("20 70"), "{seen}");
    assert_eq!(runner.wait().unwrap().code(), Some(6), "{seen}");
    ok_stdout(&root.run(&["rm", "-f", "term"]));
}
