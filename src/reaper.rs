//! `--init`: the container's PID 1 stays mini-container, a tiny init that runs the command as
//! its child, forwards signals to it, reaps every zombie that is re-parented to it and exits
//! with the command's status (128+N when signal N killed it). Unlike PID 1, the command can
//! then be ended by a SIGTERM it does not handle.

use crate::errors::exec_failure_status;
use crate::exec::Command;
use crate::launch::FORWARDED_SIGNALS;
use crate::sync::{Message, SyncSocket};
use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

/// Runs `command` under this process as init; returns the status to exit with.
pub fn run(command: &Command, sync: SyncSocket) -> i32 {
    let mut mask = SigSet::empty();
    // What the runner forwards, and SIGWINCH for a terminal.
    mask.add(Signal::SIGCHLD);
    mask.add(Signal::SIGWINCH);
    for signal in FORWARDED_SIGNALS {
        mask.add(signal);
    }
    let signals = mask
        .thread_block()
        .and_then(|()| SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC));
    let signals = match signals {
        Ok(signals) => signals,
        Err(errno) => {
            let _ = sync.send_message(&Message::SetupFailed {
                errno: errno as i32,
                what: format!("--init: setting up signal handling: {}", errno.desc()),
            });
            return crate::errors::EXIT_SETUP_FAILED;
        }
    };
    // SAFETY: the init is single-threaded, so the child may run any code after the fork; it
    // only execs the command (which resets the signal mask) or reports why it could not.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            // The command dies with its init, as the init dies with the runner.
            let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
            let failure = command.exec();
            let _ = sync.send_message(&Message::ExecFailed {
                errno: failure.errno as i32,
                what: failure.what,
            });
            std::process::exit(exec_failure_status(failure.errno));
        }
        Ok(ForkResult::Parent { child }) => {
            // The runner reads end of file once the command has exec'd and closed its copy.
            drop(sync);
            supervise(child, &signals)
        }
        Err(errno) => {
            let _ = sync.send_message(&Message::SetupFailed {
                errno: errno as i32,
                what: format!("--init: starting the command: {}", errno.desc()),
            });
            crate::errors::EXIT_SETUP_FAILED
        }
    }
}

/// Forwards signals to `command` and reaps children until it exits.
fn supervise(command: Pid, signals: &SignalFd) -> i32 {
    loop {
        let info = match signals.read_signal() {
            Ok(Some(info)) => info,
            Ok(None) | Err(Errno::EINTR) => continue,
            Err(_) => return crate::errors::EXIT_SETUP_FAILED,
        };
        let signo = info.ssi_signo as i32;
        if signo != libc::SIGCHLD {
            if let Ok(signal) = Signal::try_from(signo) {
                let _ = kill(command, signal);
            }
            continue;
        }
        // Reap everything that has exited: the command and any orphan re-parented to us.
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == command => return code,
                Ok(WaitStatus::Signaled(pid, signal, _)) if pid == command => {
                    return 128 + signal as i32;
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    }
}
