//! Terminals. Without `-t` stdio is inherited but the container has a session of its own
//! and no controlling terminal (see `spawn::Session`): the runner stays the terminal's
//! foreground job and passes Ctrl-C on. Only with the `new-session` test switch is the
//! container's process group made the foreground (as a shell does for a job) and given back
//! when the container ends ([`Foreground`]). With `-t` the container gets a pty of its own,
//! whose master side the runner relays in raw mode.

use anyhow::{Context, Result};
use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use nix::sys::stat::Mode;
use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};
use nix::unistd::{Pid, getpgrp, isatty, tcgetpgrp, tcsetpgrp};
use std::io::stdin;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};

/// The terminal's foreground given to a container; given back when dropped.
#[derive(Debug)]
pub struct Foreground {
    previous: Pid,
}

impl Foreground {
    /// Makes `pgrp` the foreground of the terminal on stdin, if there is one and this
    /// process's group holds it now; `None` otherwise (pipes, background jobs, CI).
    pub fn hand_to(pgrp: Pid) -> Option<Foreground> {
        if !isatty(stdin()).unwrap_or(false) {
            return None;
        }
        let previous = tcgetpgrp(stdin()).ok()?;
        if previous != getpgrp() {
            return None;
        }
        match tcsetpgrp(stdin(), pgrp) {
            Ok(()) => {
                log::debug!("gave the terminal's foreground to process group {pgrp}");
                Some(Foreground { previous })
            }
            Err(err) => {
                log::warn!("giving the terminal to the container: {err}");
                None
            }
        }
    }
}

impl Drop for Foreground {
    fn drop(&mut self) {
        // A background process that sets the foreground gets SIGTTOU: block it meanwhile.
        let mut ttou = SigSet::empty();
        ttou.add(Signal::SIGTTOU);
        let mut old = SigSet::empty();
        let blocked = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&ttou), Some(&mut old)).is_ok();
        if let Err(err) = tcsetpgrp(stdin(), self.previous) {
            log::warn!("taking the terminal back: {err}");
        }
        if blocked {
            let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
        }
    }
}

/// The window size of the terminal on `fd`, if it is one.
pub fn window_size(fd: BorrowedFd<'_>) -> Option<libc::winsize> {
    // SAFETY: winsize is plain old data; TIOCGWINSZ writes one into it.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: a valid fd and a valid, writable winsize for the duration of the call.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut size) };
    (ret == 0).then_some(size)
}

/// Sets the window size of the terminal on `fd`.
pub fn set_window_size(fd: BorrowedFd<'_>, size: &libc::winsize) {
    // SAFETY: a valid fd and a valid winsize that TIOCSWINSZ only reads.
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, size) };
}

/// In the container's init (`-t`): opens a new pty from the container's /dev/ptmx, makes its
/// other end the controlling terminal and stdin, stdout and stderr of a new session, and
/// returns the master side for the runner to relay.
pub fn open_container_terminal(rows: u16, columns: u16) -> Result<OwnedFd> {
    let what = "opening the container's terminal";
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).context(what)?;
    grantpt(&master).context(what)?;
    unlockpt(&master).context(what)?;
    let slave_path = ptsname_r(&master).context(what)?;
    let slave = nix::fcntl::open(
        slave_path.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY,
        Mode::empty(),
    )
    .with_context(|| format!("{what}: {slave_path}"))?;
    if rows > 0 && columns > 0 {
        let size = libc::winsize {
            ws_row: rows,
            ws_col: columns,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        set_window_size(slave.as_fd(), &size);
    }
    nix::unistd::setsid().context("starting a session for the terminal")?;
    // SAFETY: TIOCSCTTY on a valid terminal fd with argument 0 (do not steal).
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } < 0 {
        return Err(std::io::Error::last_os_error()).context("making the terminal controlling");
    }
    for target in 0..=2 {
        // SAFETY: dup2 onto the standard fds, which this process owns; the slave stays valid.
        if unsafe { libc::dup2(slave.as_raw_fd(), target) } < 0 {
            return Err(std::io::Error::last_os_error()).context("attaching the terminal");
        }
    }
    // SAFETY: the master is a pty fd this process owns (PtyMaster wraps it); into_raw_fd
    // hands that ownership to the OwnedFd.
    Ok(unsafe { OwnedFd::from_raw_fd(master.into_raw_fd()) })
}

/// The caller's terminal in raw mode while the container's terminal is relayed; restored
/// when dropped, on every way out.
#[derive(Debug)]
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    pub fn enter() -> Result<RawMode> {
        let saved = tcgetattr(stdin()).context("reading the terminal's mode")?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(stdin(), SetArg::TCSANOW, &raw).context("setting the terminal to raw mode")?;
        Ok(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(stdin(), SetArg::TCSADRAIN, &self.saved);
    }
}

/// Refuses `-t` without a terminal on stdin, as Docker does.
pub fn check_stdin_is_a_terminal() -> Result<()> {
    if !isatty(stdin()).unwrap_or(false) {
        anyhow::bail!("the input device is not a TTY");
    }
    Ok(())
}
