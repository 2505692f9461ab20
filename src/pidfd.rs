//! pidfds and process start times: the raw calls (pidfd_open, pidfd_send_signal) and the
//! start time of /proc/PID/stat, which tells a process from a later one that got its pid.
//! Shared by the front end (`exec`, `kill`, `stop`) and the `exec` side of the init.

use anyhow::{Context, Result};
use nix::errno::Errno;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// What /proc/PID/stat says of a process: its state letter and start time.
fn stat_of(pid: i32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

/// The state (field 3) and start time (field 22) of a /proc/PID/stat line. The command
/// name (field 2) is in parentheses and may itself hold spaces and parentheses: the fields
/// are counted after the last ')'.
fn parse_stat(stat: &str) -> Option<(char, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Fields 4 to 21 lie between the state and the start time.
    let start_time = fields.nth(18)?.parse().ok()?;
    Some((state, start_time))
}

/// The start time of process `pid`, for state.json when the container starts.
pub fn start_time(pid: i32) -> Result<u64> {
    stat_of(pid)
        .map(|(_, start)| start)
        .with_context(|| format!("reading the start time of process {pid} (/proc/{pid}/stat)"))
}

/// True if `pid` is a live process (not a zombie) that started at `start_time`. For `ps`,
/// which only shows: nothing is sent on this answer.
pub fn is_alive(pid: i32, start_time: u64) -> bool {
    stat_of(pid).is_some_and(|(state, start)| start == start_time && !matches!(state, 'Z' | 'X'))
}

/// pidfd_open(2).
pub fn open(pid: i32) -> nix::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd, which is owned here.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0u32) };
    Errno::result(fd).map(|fd| {
        // SAFETY: the kernel just returned this fd and nothing else refers to it.
        unsafe { OwnedFd::from_raw_fd(fd as i32) }
    })
}

/// pidfd_send_signal(2); signal 0 only checks that the process still exists.
pub fn send_signal(pidfd: &OwnedFd, signal: i32) -> nix::Result<()> {
    // SAFETY: a signal number and a null siginfo (the kernel fills in a kill()-like one).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0u32,
        )
    };
    Errno::result(ret).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let line = "42 (a) b (c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 12345 \
                    1000 10 18446744073709551615";
        assert_eq!(parse_stat(line), Some(('S', 12345)));
        assert_eq!(parse_stat("42 (x"), None);
    }

    #[test]
    fn this_process_is_alive_with_its_own_start_time_only() {
        let pid = std::process::id() as i32;
        let start = start_time(pid).unwrap();
        assert!(is_alive(pid, start));
        assert!(!is_alive(pid, start + 1));
        assert_eq!(send_signal(&open(pid).unwrap(), 0), Ok(()));
    }
}
