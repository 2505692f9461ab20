//! `-t`: while the container runs, copies the caller's stdin to the container's pty and the
//! pty's output to the caller's stdout, follows window size changes (SIGWINCH), and passes
//! every other signal to the runner's handler. One poll loop, no threads.

use crate::tty;
use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signalfd::SignalFd;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};

/// Relays until `on_signal` returns the container's exit status (when it has reaped it).
pub fn run(
    master: &OwnedFd,
    signals: &SignalFd,
    mut on_signal: impl FnMut(i32) -> Result<Option<i32>>,
) -> Result<i32> {
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    let mut to_container: Vec<u8> = Vec::new();
    let (mut stdin_open, mut master_open) = (true, true);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        let master_index = master_open.then(|| {
            let mut events = PollFlags::POLLIN;
            if !to_container.is_empty() {
                events |= PollFlags::POLLOUT;
            }
            fds.push(PollFd::new(master.as_fd(), events));
            fds.len() - 1
        });
        let stdin_index = (stdin_open && to_container.len() < buf.len()).then(|| {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(err) => return Err(err).context("waiting on the terminal"),
        }
        let ready = |index: Option<usize>, flags: PollFlags| {
            index.is_some_and(|i| fds[i].revents().is_some_and(|r| r.intersects(flags)))
        };
        let hangup = PollFlags::POLLHUP | PollFlags::POLLERR;
        let signal_ready = ready(Some(0), PollFlags::POLLIN);
        let master_readable = ready(master_index, PollFlags::POLLIN | hangup);
        let master_writable = ready(master_index, PollFlags::POLLOUT);
        let stdin_readable = ready(stdin_index, PollFlags::POLLIN | hangup);
        drop(fds);

        if master_readable {
            match nix::unistd::read(master, &mut buf) {
                Ok(0) | Err(Errno::EIO) => master_open = false,
                Ok(n) => {
                    stdout
                        .write_all(&buf[..n])
                        .context("writing the container's output")?;
                    stdout.flush().context("writing the container's output")?;
                }
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                Err(err) => return Err(err).context("reading the container's terminal"),
            }
        }
        if master_writable {
            match nix::unistd::write(master, &to_container) {
                Ok(n) => {
                    to_container.drain(..n);
                }
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                Err(_) => to_container.clear(),
            }
        }
        if stdin_readable {
            match nix::unistd::read(&stdin, &mut buf) {
                Ok(0) | Err(Errno::EIO) => stdin_open = false,
                Ok(n) => to_container.extend_from_slice(&buf[..n]),
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                Err(err) => return Err(err).context("reading stdin"),
            }
        }
        if signal_ready {
            let Some(info) = signals.read_signal().context("reading signals")? else {
                continue;
            };
            let signo = info.ssi_signo as i32;
            if signo == libc::SIGWINCH {
                if let Some(size) = tty::window_size(stdin.as_fd()) {
                    tty::set_window_size(master.as_fd(), &size);
                }
                continue;
            }
            if let Some(status) = on_signal(signo)? {
                drain(master, &mut buf, &mut stdout);
                return Ok(status);
            }
        }
    }
}

/// Copies what the container wrote before it exited and nobody read yet.
fn drain(master: &OwnedFd, buf: &mut [u8], stdout: &mut std::io::Stdout) {
    let _ = nix::fcntl::fcntl(
        master,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    while let Ok(n) = nix::unistd::read(master, buf) {
        if n == 0 || stdout.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = stdout.flush();
}
