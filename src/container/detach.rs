//! `run -d`: the runner forks a monitor in a session of its own and returns as soon as the
//! monitor reports the container started (printing its id) or failed (printing why, with
//! the exit status `run` would have had). The monitor is the container's runner from then
//! on: the container's stdout and stderr go through its logger to `container.log` in its
//! state directory (bounded and rotated: see `log`), and when it ends its status is recorded
//! and the state kept until `rm` (unless `--rm`).

use crate::cli::RunArgs;
use crate::errors::{CommandFailed, EXIT_SETUP_FAILED, describe, exit_status};
use anyhow::{Context, Result, bail};
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::{ForkResult, fork, pipe2};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use super::logfile::{LogOptions, spawn_logger};
use super::state::Paths;

/// The monitor's side: tells the waiting `run -d` how the start went.
#[derive(Debug)]
pub struct Monitor {
    report: Option<std::fs::File>,
    log: LogOptions,
    /// The logger, once the log is attached.
    logger: Option<nix::unistd::Pid>,
}

impl Monitor {
    /// Sends the container's output to its logger and stdin to /dev/null, as the container
    /// inherits them.
    pub fn attach_log(&mut self, state_dir: &Path) -> Result<()> {
        let (logger, log) = spawn_logger(state_dir, self.log)?;
        self.logger = Some(logger);
        let null = nix::fcntl::open(
            "/dev/null",
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .context("opening /dev/null")?;
        for (from, to) in [(&null, 0), (&log, 1), (&log, 2)] {
            // SAFETY: dup2 onto this process's own standard fds from fds it holds.
            if unsafe { libc::dup2(from.as_raw_fd(), to) } < 0 {
                return Err(std::io::Error::last_os_error()).context("redirecting to the log");
            }
        }
        Ok(())
    }

    /// Once the container has ended: lets go of the log pipe and waits for the logger to
    /// have written everything, so that the log is whole when the state directory is let go
    /// (what `logs -f` waits for). What the monitor prints after this is lost.
    pub fn close_log(&mut self) {
        let Some(logger) = self.logger.take() else {
            return;
        };
        if let Ok(null) = nix::fcntl::open("/dev/null", OFlag::O_RDWR, Mode::empty()) {
            for fd in [1, 2] {
                // SAFETY: dup2 onto this process's own standard fds.
                unsafe { libc::dup2(null.as_raw_fd(), fd) };
            }
            let _ = nix::unistd::close(null);
        }
        let _ = nix::sys::wait::waitpid(logger, None);
    }

    /// The container runs: `run -d` prints its id and returns.
    pub fn started(&mut self, id: &str) {
        self.send(&format!("started {id}\n"));
    }

    /// Reports a failure to start; false once the start was reported (the failure then
    /// goes to the log).
    fn failed(&mut self, err: &anyhow::Error) -> bool {
        self.send(&format!("failed {}\n{}", exit_status(err), describe(err)))
    }

    fn send(&mut self, message: &str) -> bool {
        match self.report.take() {
            Some(mut pipe) => pipe.write_all(message.as_bytes()).is_ok(),
            None => false,
        }
    }
}

/// `run -d`: forks the monitor and waits for its report.
pub fn run(paths: &Paths, args: RunArgs, log: LogOptions) -> Result<i32> {
    if args.tty {
        bail!("-d with -t is not supported yet");
    }
    let (read, write) = pipe2(OFlag::O_CLOEXEC).context("creating a pipe for the monitor")?;
    // SAFETY: mini-container is single-threaded, so the child may run any code after fork.
    match unsafe { fork() }.context("starting the container's monitor")? {
        ForkResult::Parent { .. } => {
            drop(write);
            wait_for_report(read)
        }
        ForkResult::Child => {
            drop(read);
            // Out of the caller's session: a closing terminal does not end the container.
            let _ = nix::unistd::setsid();
            let mut monitor = Monitor {
                report: Some(std::fs::File::from(write)),
                log,
                logger: None,
            };
            if let Err(err) = super::run_container(paths, args, Some(&mut monitor))
                && !monitor.failed(&err)
            {
                eprintln!("mini-container: {}", describe(&err));
            }
            std::process::exit(0);
        }
    }
}

/// Prints the id of a container that started, or returns why it did not.
fn wait_for_report(read: OwnedFd) -> Result<i32> {
    let mut report = String::new();
    std::fs::File::from(read)
        .read_to_string(&mut report)
        .context("reading the monitor's report")?;
    if let Some(id) = report.strip_prefix("started ") {
        println!("{}", id.trim());
        return Ok(0);
    }
    if let Some(failure) = report.strip_prefix("failed ") {
        let (status, message) = failure.split_once('\n').unwrap_or((failure, ""));
        return Err(CommandFailed {
            status: status.parse().unwrap_or(EXIT_SETUP_FAILED),
            message: message.to_string(),
        }
        .into());
    }
    bail!("the container's monitor exited before it started the container")
}
