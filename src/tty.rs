//! The caller's terminal. Stdio is inherited, so when `run` is the foreground job of a
//! terminal, the container's process group becomes the foreground (as a shell does for a job)
//! and gets it back when the container ends. Its shell then owns job control and Ctrl-C, and
//! the process group ids it sees are its own, inside its PID namespace.

use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use nix::unistd::{Pid, getpgrp, isatty, tcgetpgrp, tcsetpgrp};
use std::io::stdin;

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
