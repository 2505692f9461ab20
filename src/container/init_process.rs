//! The container's init, found again by `exec`, `kill`, `stop` and `rm`: the pid in
//! state.json is trusted only together with the start time recorded beside it (field 22 of
//! /proc/PID/stat, clock ticks after boot). A pidfd is opened for the pid first and the
//! start time checked after, so that the check covers the very process the pidfd holds;
//! signals then go through the pidfd (pidfd_send_signal) and `exec` joins the namespaces
//! through it (setns on the pidfd), never by number. An init that died and whose pid went
//! to another process is "not running", and that process never hears from us.

use super::state::{State, is_locked};
use crate::pidfd::{self, is_alive, send_signal};
use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::sys::signal::Signal;
use std::os::fd::OwnedFd;
use std::path::Path;

/// The container's init, held by a pidfd that was checked against its start time.
#[derive(Debug)]
pub struct InitProcess {
    pid: i32,
    pidfd: OwnedFd,
}

impl InitProcess {
    /// The process `pid` if it is the one that started at `start_time` and still lives;
    /// `None` if it is gone, a zombie, or another process that got the pid.
    pub fn open(pid: i32, start_time: u64) -> Result<Option<InitProcess>> {
        let pidfd = match pidfd::open(pid) {
            Ok(fd) => fd,
            Err(Errno::ESRCH) => return Ok(None),
            Err(Errno::ENOSYS) => {
                bail!("finding the container's init: pidfd_open needs Linux 5.3 or later")
            }
            Err(err) => {
                return Err(err)
                    .context(format!("finding the container's init (pidfd_open {pid})"));
            }
        };
        // After the pidfd: if the process it holds ended before this read, the read was of
        // nothing or of another process (another start time), or the signal check below
        // fails.
        if !is_alive(pid, start_time) {
            log::debug!("process {pid} is not the container's init any more");
            return Ok(None);
        }
        // Still alive now, so it held the pid all along, and the stat read was its own.
        match send_signal(&pidfd, 0) {
            Ok(()) => Ok(Some(InitProcess { pid, pidfd })),
            Err(Errno::ESRCH) => Ok(None),
            Err(err) => Err(err).context("checking the container's init (pidfd_send_signal)"),
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    pub fn pidfd(&self) -> &OwnedFd {
        &self.pidfd
    }

    /// Sends `signal` through the pidfd; an init that ended meanwhile is not an error.
    pub fn signal(&self, signal: Signal) -> Result<()> {
        match send_signal(&self.pidfd, signal as i32) {
            Ok(()) | Err(Errno::ESRCH) => Ok(()),
            Err(err) => Err(err).with_context(|| format!("sending {signal} to the container")),
        }
    }
}

/// The init of the container in `dir`, while its runner holds the container and the
/// process state.json names is still the one that started then; `None` otherwise.
pub fn find(dir: &Path, state: &State) -> Result<Option<InitProcess>> {
    if !is_locked(dir) {
        return Ok(None); // the init dies with its runner
    }
    match (state.pid, state.start_time) {
        (Some(pid), Some(start)) => InitProcess::open(pid, start),
        // No start time to check the pid against (a state file of an older version).
        _ => Ok(None),
    }
}

/// True while the container in `dir` runs, as `ps` and `inspect` show it: its runner holds
/// it, and its init is still the process state.json names (or does not exist yet).
pub fn is_running(dir: &Path, state: &State) -> bool {
    is_locked(dir)
        && match (state.pid, state.start_time) {
            (None, _) => true, // being created
            (Some(pid), Some(start)) => is_alive(pid, start),
            (Some(_), None) => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_is_found_with_its_own_start_time_only() {
        let pid = std::process::id() as i32;
        let start = pidfd::start_time(pid).unwrap();
        assert_eq!(InitProcess::open(pid, start).unwrap().unwrap().pid(), pid);
        assert!(InitProcess::open(pid, start + 1).unwrap().is_none());
    }
}
