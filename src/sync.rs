//! The sync socket between `run` (the parent) and `child` (the container's init).
//!
//! One `socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC)`: each send is one message, and the
//! child's end closes when it execs the command, which the parent reads as end of file. The
//! protocol, in order:
//!
//! ```text
//! parent                         child
//!   Mapped                 --->  (only with a user namespace: the re-exec waits for it)
//!   JoinCgroup (files)     --->
//!   spec (JSON, in parts)  --->
//!                          <---  Ready | SetupFailed
//!   Go                     --->
//!                          <---  end of file (exec worked) | ExecFailed
//! ```
//!
//! On the wire a message is a tag byte and its payload; failures carry the errno and the text,
//! JoinCgroup the paths of the cgroup files the child writes itself into, NUL-separated.

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, MsgFlags, SockFlag, SockType};
use std::ffi::OsStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// The fd the child finds its end of the socket on, set up by the parent before the re-exec.
pub const CHILD_SYNC_FD: RawFd = 3;

/// Largest payload of one spec part; well under the socket's send buffer.
const PART_SIZE: usize = 32 * 1024;

const TAG_SPEC_PART: u8 = b'P';
const TAG_SPEC_LAST: u8 = b'S';
const TAG_READY: u8 = b'R';
const TAG_MAPPED: u8 = b'M';
const TAG_FD: u8 = b'F';
const TAG_GO: u8 = b'G';
const TAG_SETUP_FAILED: u8 = b'E';
const TAG_EXEC_FAILED: u8 = b'X';
const TAG_JOIN_CGROUP: u8 = b'J';

/// A message after the spec. Failures carry the errno (0 when there is none) and `what: why`.
#[derive(Debug, PartialEq, Eq)]
pub enum Message {
    /// Join the container's cgroup: write "0" (this thread, or this process) to each file.
    /// The child does so before it reads the spec, which follows.
    JoinCgroup(Vec<PathBuf>),
    Ready,
    Go,
    SetupFailed {
        errno: i32,
        what: String,
    },
    ExecFailed {
        errno: i32,
        what: String,
    },
}

/// One end of the sync socket.
#[derive(Debug)]
pub struct SyncSocket(OwnedFd);

impl SyncSocket {
    /// A connected pair: (parent's end, child's end), both close-on-exec.
    pub fn pair() -> Result<(SyncSocket, SyncSocket)> {
        let (parent, child) = socket::socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .context("creating the sync socket")?;
        Ok((SyncSocket(parent), SyncSocket(child)))
    }

    /// The child's end, inherited on [`CHILD_SYNC_FD`]. Checks that it is a seqpacket socket,
    /// so that `mini-container child` typed by hand fails cleanly, and makes it close-on-exec.
    pub fn inherited() -> Result<SyncSocket> {
        let fd = CHILD_SYNC_FD;
        // SAFETY: fd 3 is only borrowed for a type check; it is not closed or used otherwise.
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        match socket::getsockopt(&borrowed, socket::sockopt::SockType) {
            Ok(SockType::SeqPacket) => {}
            _ => bail!("this command is internal to 'mini-container run'"),
        }
        nix::fcntl::fcntl(
            borrowed,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .context("marking the sync socket close-on-exec")?;
        // SAFETY: fd 3 is a socket this process owns from here on (checked above); nothing
        // else in the child uses or closes it.
        Ok(SyncSocket(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    pub fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// Sends the container's spec, as JSON, in parts the socket can carry.
    pub fn send_spec(&self, json: &[u8]) -> Result<()> {
        let mut parts = json.chunks(PART_SIZE).peekable();
        if parts.peek().is_none() {
            return self.send(TAG_SPEC_LAST, &[]);
        }
        while let Some(part) = parts.next() {
            let tag = if parts.peek().is_some() {
                TAG_SPEC_PART
            } else {
                TAG_SPEC_LAST
            };
            self.send(tag, part)?;
        }
        Ok(())
    }

    /// Receives the spec's JSON; `None` if the parent went away first.
    pub fn recv_spec(&self) -> Result<Option<Vec<u8>>> {
        let mut json = Vec::new();
        loop {
            let Some(packet) = self.recv_packet()? else {
                return Ok(None);
            };
            match packet.split_first() {
                Some((&TAG_SPEC_PART, part)) => json.extend_from_slice(part),
                Some((&TAG_SPEC_LAST, part)) => {
                    json.extend_from_slice(part);
                    return Ok(Some(json));
                }
                _ => bail!("unexpected message on the sync socket while reading the spec"),
            }
        }
    }

    /// Tells the freshly cloned child that its uid and gid maps are written, so it may
    /// re-exec (an exec before that would drop its capabilities in the new user namespace).
    /// The child reads it with a plain read(2) before its exec.
    pub fn send_mapped(&self) -> Result<()> {
        self.send(TAG_MAPPED, &[])
    }

    /// Passes a file descriptor (SCM_RIGHTS): the id-mapped root filesystem.
    pub fn send_fd(&self, fd: &OwnedFd) -> Result<()> {
        let raw = [fd.as_raw_fd()];
        let tag = [TAG_FD];
        socket::sendmsg::<socket::UnixAddr>(
            self.as_raw_fd(),
            &[std::io::IoSlice::new(&tag)],
            &[socket::ControlMessage::ScmRights(&raw)],
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .context("passing a file descriptor on the sync socket")?;
        Ok(())
    }

    /// Receives a file descriptor sent with [`SyncSocket::send_fd`].
    pub fn recv_fd(&self) -> Result<OwnedFd> {
        let mut tag = [0u8; 1];
        let mut iov = [std::io::IoSliceMut::new(&mut tag)];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let message = socket::recvmsg::<socket::UnixAddr>(
            self.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .context("receiving a file descriptor on the sync socket")?;
        for cmsg in message
            .cmsgs()
            .context("reading the sync socket's control data")?
        {
            if let socket::ControlMessageOwned::ScmRights(fds) = cmsg
                && let Some(&fd) = fds.first()
            {
                // SAFETY: the kernel just installed this fd in our table for us alone.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
        bail!("expected a file descriptor on the sync socket")
    }

    pub fn send_message(&self, message: &Message) -> Result<()> {
        match message {
            Message::JoinCgroup(files) => {
                let paths: Vec<&[u8]> = files.iter().map(|f| f.as_os_str().as_bytes()).collect();
                self.send(TAG_JOIN_CGROUP, &paths.join(&b'\0'))
            }
            Message::Ready => self.send(TAG_READY, &[]),
            Message::Go => self.send(TAG_GO, &[]),
            Message::SetupFailed { errno, what } => {
                self.send(TAG_SETUP_FAILED, &failure_payload(*errno, what))
            }
            Message::ExecFailed { errno, what } => {
                self.send(TAG_EXEC_FAILED, &failure_payload(*errno, what))
            }
        }
    }

    /// The next message, or `None` at end of file (the peer exited or exec'd).
    pub fn recv_message(&self) -> Result<Option<Message>> {
        let Some(packet) = self.recv_packet()? else {
            return Ok(None);
        };
        let message = match packet.split_first() {
            Some((&TAG_JOIN_CGROUP, [])) => Message::JoinCgroup(Vec::new()),
            Some((&TAG_JOIN_CGROUP, payload)) => Message::JoinCgroup(
                payload
                    .split(|&b| b == 0)
                    .map(|path| PathBuf::from(OsStr::from_bytes(path)))
                    .collect(),
            ),
            Some((&TAG_READY, [])) => Message::Ready,
            Some((&TAG_GO, [])) => Message::Go,
            Some((&TAG_SETUP_FAILED, payload)) => {
                let (errno, what) = parse_failure(payload)?;
                Message::SetupFailed { errno, what }
            }
            Some((&TAG_EXEC_FAILED, payload)) => {
                let (errno, what) = parse_failure(payload)?;
                Message::ExecFailed { errno, what }
            }
            _ => bail!("malformed message on the sync socket"),
        };
        Ok(Some(message))
    }

    fn send(&self, tag: u8, payload: &[u8]) -> Result<()> {
        let mut packet = Vec::with_capacity(1 + payload.len());
        packet.push(tag);
        packet.extend_from_slice(payload);
        loop {
            match socket::send(self.as_raw_fd(), &packet, MsgFlags::MSG_NOSIGNAL) {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(err) => return Err(err).context("writing to the sync socket"),
            }
        }
    }

    fn recv_packet(&self) -> Result<Option<Vec<u8>>> {
        let mut buf = vec![0u8; PART_SIZE + 1];
        loop {
            match socket::recv(self.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(0) => return Ok(None),
                Ok(n) => {
                    buf.truncate(n);
                    return Ok(Some(buf));
                }
                Err(Errno::EINTR) => continue,
                // The peer died with messages of ours unread: what it sent before is still
                // queued (the error is reported first, and only once), else end of file.
                Err(Errno::ECONNRESET) => {
                    return match socket::recv(self.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                        Ok(n) if n > 0 => {
                            buf.truncate(n);
                            Ok(Some(buf))
                        }
                        _ => Ok(None),
                    };
                }
                Err(err) => return Err(err).context("reading from the sync socket"),
            }
        }
    }
}

/// SetupFailed from the cloned child before its re-exec, which has its end of the socket as
/// a bare fd: the failures of that stage reach the parent as any setup failure does.
pub fn report_setup_failure(fd: RawFd, errno: i32, what: &str) {
    let mut packet = vec![TAG_SETUP_FAILED];
    packet.extend_from_slice(&failure_payload(errno, what));
    let _ = socket::send(fd, &packet, MsgFlags::MSG_NOSIGNAL);
}

fn failure_payload(errno: i32, what: &str) -> Vec<u8> {
    let mut payload = errno.to_le_bytes().to_vec();
    payload.extend_from_slice(what.as_bytes());
    payload
}

fn parse_failure(payload: &[u8]) -> Result<(i32, String)> {
    let Some((errno, what)) = payload.split_first_chunk::<4>() else {
        bail!("malformed failure message on the sync socket");
    };
    Ok((
        i32::from_le_bytes(*errno),
        String::from_utf8_lossy(what).into_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_spec_arrives_whole() {
        let (parent, child) = SyncSocket::pair().unwrap();
        let json: Vec<u8> = (0..100_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        // The socket buffer holds a few parts; send from a thread so both sides progress.
        let sent = json.clone();
        let sender = std::thread::spawn(move || parent.send_spec(&sent).map(|_| parent));
        assert_eq!(child.recv_spec().unwrap().unwrap(), json);
        drop(sender.join().unwrap().unwrap());
        assert_eq!(
            child.recv_spec().unwrap(),
            None,
            "end of file after the parent closes"
        );
    }

    #[test]
    fn messages_round_trip() {
        let (parent, child) = SyncSocket::pair().unwrap();
        let failure = Message::SetupFailed {
            errno: 13,
            what: "mounting proc on /proc: Permission denied".into(),
        };
        for message in [
            Message::JoinCgroup(vec![
                "/sys/fs/cgroup/freezer/mini-container-x/tasks".into(),
                "/sys/fs/cgroup/memory/a b/mini-container-x/tasks".into(),
            ]),
            Message::JoinCgroup(Vec::new()),
            Message::Ready,
            failure,
            Message::ExecFailed {
                errno: 2,
                what: "x".into(),
            },
        ] {
            child.send_message(&message).unwrap();
            assert_eq!(parent.recv_message().unwrap(), Some(message));
        }
        parent.send_message(&Message::Go).unwrap();
        assert_eq!(child.recv_message().unwrap(), Some(Message::Go));
        drop(child);
        assert_eq!(parent.recv_message().unwrap(), None);
    }

    #[test]
    fn an_empty_spec_is_one_message() {
        let (parent, child) = SyncSocket::pair().unwrap();
        parent.send_spec(b"").unwrap();
        assert_eq!(child.recv_spec().unwrap(), Some(Vec::new()));
    }
}
