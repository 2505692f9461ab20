//! The parent's side of starting a container: clone a child into new namespaces, have it
//! re-exec `/proc/self/exe child`, drive the sync protocol, then forward signals to the
//! container's init and wait for it.
//!
//! `create` leaves the child set up and blocked just before exec; `start` releases it; `wait`
//! returns its exit status. `run` is the three in a row, after `block_signals`.

use crate::cgroups::Cgroup;
use crate::errors::{CommandFailed, exec_failure_status};
use crate::relay;
use crate::rootfs;
use crate::security::userns::{self, Mappings};
use crate::spawn::{self, Session};
use crate::spec::test_switch;
use crate::sync::{Message, SyncSocket};
use crate::tty::{Foreground, RawMode};
use anyhow::{Context, Result, anyhow, bail};
use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::os::fd::OwnedFd;
use std::path::PathBuf;

/// Signals sent to `run` that are passed on to the container's init. Job-control signals
/// stay with the runner, and faults are never caught.
pub const FORWARDED_SIGNALS: [Signal; 8] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGALRM,
    Signal::SIGPWR,
];

/// The container's init, which this process will reap: killed and reaped if dropped early.
#[derive(Debug)]
struct Child {
    pid: Pid,
    reaped: bool,
}

impl Child {
    /// Waits for the child to end and returns its status as a shell reports it.
    fn reap(&mut self, flags: Option<WaitPidFlag>) -> Result<Option<i32>> {
        let status = loop {
            match waitpid(self.pid, flags) {
                Err(Errno::EINTR) => continue,
                other => break other.context("waiting for the container")?,
            }
        };
        let status = match status {
            WaitStatus::Exited(_, code) => code,
            WaitStatus::Signaled(_, signal, _) => 128 + signal as i32,
            _ => return Ok(None),
        };
        self.reaped = true;
        Ok(Some(status))
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = self.reap(None);
        }
    }
}

/// A container whose init has finished its setup and waits for `start`.
#[derive(Debug)]
pub struct Created {
    child: Child,
    sync: SyncSocket,
    signals: SignalFd,
    /// With `-t`: the master side of the container's pty.
    terminal: Option<OwnedFd>,
    session: Session,
}

/// A container whose command is running.
#[derive(Debug)]
pub struct Running {
    child: Child,
    signals: SignalFd,
    terminal: Option<(OwnedFd, RawMode)>,
    // Dropped after the child is reaped: the terminal comes back once the container is gone.
    _foreground: Option<Foreground>,
}

/// True when the spec gives the container a terminal of its own (`-t`).
pub fn has_terminal(spec: &Spec) -> bool {
    spec.process()
        .as_ref()
        .is_some_and(|p| p.terminal() == Some(true))
}

/// Blocks the forwarded signals and SIGCHLD (and SIGWINCH with a terminal), and returns the
/// signalfd they are read from once the command runs. Called before anything that needs
/// cleaning up exists (the cgroup, the child), so that no signal can kill the runner midway:
/// they are all forwarded or handled. The child unblocks them before exec.
pub fn block_signals(terminal: bool) -> Result<SignalFd> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    for signal in FORWARDED_SIGNALS {
        mask.add(signal);
    }
    if terminal {
        mask.add(Signal::SIGWINCH);
    }
    // Ctrl-Z: the container is stopped with the runner, and continued with it.
    mask.add(Signal::SIGTSTP);
    mask.add(Signal::SIGCONT);
    mask.thread_block().context("blocking signals")?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC).context("creating a signalfd")
}

/// Where the container's init goes once cloned.
#[derive(Debug, Clone, Copy)]
pub enum Placement<'a> {
    /// No cgroup of its own (a rootless run without a delegated cgroup).
    Nowhere,
    /// The container's new cgroup (`run`).
    New(&'a Cgroup),
    /// A running container's cgroup directories, and a pidfd of its init whose namespaces
    /// the new process joins (`exec`).
    Existing(&'a [PathBuf], &'a OwnedFd),
}

/// Starts the container's init in new namespaces, has it join its cgroup, sends it the spec
/// and waits until it has done its setup. Setup failures come back as the init
/// reported them. `signals` comes from [`block_signals`].
pub fn create(
    spec: &Spec,
    spec_json: &[u8],
    signals: SignalFd,
    place: Placement,
) -> Result<Created> {
    let maps = Mappings::from_spec(spec);
    let terminal = has_terminal(spec);
    let flags = clone_flags(spec)?;
    let (sync, child_end) = SyncSocket::pair()?;
    let session = session_of(spec);
    let close_fds = !test_switch::disabled(spec, "close-fds");
    log::debug!("cloning the container's init with {flags:?}, {session:?}");
    let protection = spawn::ExeProtection::for_spec(spec);
    let pid = spawn::spawn_init(flags, child_end.as_raw_fd(), session, close_fds, protection)?;
    let mut child = Child { pid, reaped: false };
    drop(child_end);
    if session == Session::Group {
        // The init's own process group, set on both sides of the clone so neither races:
        // its group ids are then valid inside its PID namespace. EACCES: it already exec'd.
        // (Never with a new session: a group leader could not call setsid.)
        let _ = nix::unistd::setpgid(pid, pid);
    }
    log::debug!("container init is pid {pid} on the host");
    let mut rootfs_tree = None;
    if let Some(maps) = &maps {
        userns::write_mappings(pid, maps)?;
        log::debug!("wrote the user namespace's id maps");
        if let Some(root) = spec.root().as_ref().filter(|_| idmaps_rootfs(spec)) {
            let userns = std::path::PathBuf::from(format!("/proc/{pid}/ns/user"));
            rootfs_tree = Some(rootfs::idmapped_tree(root.path(), &userns)?);
        }
        sync.send_mapped()?;
    }

    // The init joins its cgroup first, before it reads the spec, so before it can act on
    // anything, let alone run the user's code (joining is much cheaper than being moved: see
    // `cgroups`). The spec follows without waiting for an answer, which would cost a round
    // trip (0.2 ms): a failed join is reported instead of Ready, and the spec is then never
    // read. A child that is gone closes its end: sending fails or the reply is end of file.
    let join_files = match place {
        Placement::Nowhere => Vec::new(),
        // A remapped init may not write the host's cgroup files: it is moved, the slow way.
        Placement::New(cgroup) if maps.is_some() => {
            cgroup.add_process(pid)?;
            Vec::new()
        }
        Placement::New(cgroup) => cgroup.join_files(),
        Placement::Existing(dirs, _) => crate::cgroups::join_files_of(dirs),
    };
    let init_pidfd = match place {
        Placement::Existing(_, pidfd) => Some(pidfd),
        _ => None,
    };
    log::debug!("having the container's init join its cgroup");
    let sent = sync
        .send_message(&Message::JoinCgroup(join_files))
        .and_then(|()| sync.send_spec(spec_json))
        .and_then(|()| rootfs_tree.map_or(Ok(()), |tree| sync.send_fd(&tree)))
        .and_then(|()| init_pidfd.map_or(Ok(()), |pidfd| sync.send_fd(pidfd)));
    match sync.recv_message()? {
        Some(Message::Ready) => {
            sent?;
            let terminal = if terminal {
                Some(
                    sync.recv_fd()
                        .context("receiving the container's terminal")?,
                )
            } else {
                None
            };
            Ok(Created {
                child,
                sync,
                signals,
                terminal,
                session,
            })
        }
        reply => Err(setup_failure(&mut child, reply)),
    }
}

/// The error for an init that replied `reply` instead of going on with its setup.
fn setup_failure(child: &mut Child, reply: Option<Message>) -> anyhow::Error {
    match reply {
        Some(Message::SetupFailed { what, .. }) => {
            let _ = child.reap(None);
            anyhow!(what)
        }
        Some(other) => anyhow!("container init sent {other:?} during setup"),
        None => match child.reap(None) {
            Ok(status) => anyhow!(
                "starting the container: its init exited during setup with status {}",
                status.unwrap_or_default()
            ),
            Err(err) => err,
        },
    }
}

impl Created {
    /// The container's init as the host sees it.
    pub fn pid(&self) -> Pid {
        self.child.pid
    }

    /// Lets the init exec the command. Fails with 126/127 when the command cannot be run.
    pub fn start(mut self) -> Result<Running> {
        let (foreground, terminal) = match self.terminal.take() {
            Some(master) => (None, Some((master, RawMode::enter()?))),
            // In a session of its own the container cannot be the terminal's foreground: the
            // runner keeps it, and passes on what the terminal sends (`handle_signal`).
            None if self.session == Session::New => (None, None),
            None => (Foreground::hand_to(self.child.pid), None),
        };
        self.sync.send_message(&Message::Go)?;
        match self.sync.recv_message()? {
            // The init's end closed on exec: the command runs.
            None => Ok(Running {
                child: self.child,
                signals: self.signals,
                terminal,
                _foreground: foreground,
            }),
            Some(Message::ExecFailed { errno, what }) => {
                let _ = self.child.reap(None);
                Err(CommandFailed {
                    status: exec_failure_status(Errno::from_raw(errno)),
                    message: what,
                }
                .into())
            }
            Some(other) => bail!("container init sent {other:?} instead of exec'ing"),
        }
    }
}

impl Running {
    /// Forwards signals to the container's init until it exits; returns its status
    /// (128+N if signal N killed it).
    pub fn wait(mut self) -> Result<i32> {
        if let Some((master, _raw)) = self.terminal.take() {
            let child = &mut self.child;
            return relay::run(&master, &self.signals, |signo| {
                handle_signal(child, signo, false)
            });
        }
        loop {
            let info = match self.signals.read_signal() {
                Ok(Some(info)) => info,
                Ok(None) | Err(Errno::EINTR) => continue,
                Err(err) => return Err(err).context("reading signals"),
            };
            let from_terminal = info.ssi_code == libc::SI_KERNEL;
            if let Some(status) =
                handle_signal(&mut self.child, info.ssi_signo as i32, from_terminal)?
            {
                return Ok(status);
            }
        }
    }
}

/// Handles a signal that reached the runner: SIGCHLD reaps the container's init (its status
/// once it has exited), anything else is forwarded to it. A signal the kernel sent
/// (`from_terminal`: Ctrl-C, Ctrl-\\, a hangup of the terminal, which the runner gets as its
/// foreground job when the container has a session of its own) goes to the init's whole
/// process group, as the terminal would have sent it to the container's foreground job: a
/// shell without job control runs its commands in its own group, and Ctrl-C must reach them.
fn handle_signal(child: &mut Child, signo: i32, from_terminal: bool) -> Result<Option<i32>> {
    if signo == libc::SIGCHLD {
        return child.reap(Some(WaitPidFlag::WNOHANG));
    }
    let group = Pid::from_raw(-child.pid.as_raw());
    if signo == libc::SIGTSTP {
        // As a shell's job: the whole container stops, then the runner, whose caller's
        // shell sees a stopped job; `fg` or `bg` continues the runner (SIGCONT, below).
        log::debug!("stopping the container and the runner");
        let _ = kill(group, Signal::SIGSTOP);
        let _ = nix::sys::signal::raise(Signal::SIGSTOP);
        return Ok(None);
    }
    if signo == libc::SIGCONT {
        log::debug!("continuing the container");
        let _ = kill(group, Signal::SIGCONT);
        return Ok(None);
    }
    if let Ok(signal) = Signal::try_from(signo) {
        let target = if from_terminal {
            log::debug!("forwarding {signal} from the terminal to the container's process group");
            group
        } else {
            log::debug!("forwarding {signal} to the container's init");
            child.pid
        };
        match kill(target, signal) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(err) => log::warn!("forwarding {signal}: {err}"),
        }
    }
    Ok(None)
}

/// The init's session: its own without `-t` (no controlling terminal shared with the
/// caller) unless the `new-session` test switch leaves it in the caller's.
fn session_of(spec: &Spec) -> Session {
    if has_terminal(spec) {
        Session::Terminal
    } else if test_switch::disabled(spec, "new-session") {
        Session::Group
    } else {
        Session::New
    }
}

/// True when the spec asks for an id-mapped root filesystem.
pub fn idmaps_rootfs(spec: &Spec) -> bool {
    crate::spec::annotation(spec, crate::spec::IDMAP_ROOTFS)
}

/// The namespaces to create at clone time. The cgroup namespace is made by the init itself,
/// after it has been placed in its cgroup, so that the cgroup is its root.
fn clone_flags(spec: &Spec) -> Result<CloneFlags> {
    let namespaces = spec
        .linux()
        .as_ref()
        .and_then(|linux| linux.namespaces().as_ref())
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut flags = CloneFlags::empty();
    for namespace in namespaces {
        if namespace.path().is_some() {
            // Joined by the init (`exec`); it re-execs from a private mount namespace of
            // its own first, where its binary is bound read-only.
            flags |= CloneFlags::CLONE_NEWNS;
            continue;
        }
        flags |= match namespace.typ() {
            LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
            LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
            LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
            LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
            LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
            LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
            LinuxNamespaceType::Cgroup => CloneFlags::empty(),
            other => bail!("{other} namespaces are not supported yet"),
        };
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The std Child is reaped through `Child::reap`, the code under test.
    #[allow(clippy::zombie_processes)]
    fn status_of(script: &str) -> i32 {
        let child = std::process::Command::new("sh")
            .args(["-c", script])
            .spawn()
            .unwrap();
        let mut child = Child {
            pid: Pid::from_raw(child.id() as i32),
            reaped: false,
        };
        child.reap(None).unwrap().unwrap()
    }

    #[test]
    fn statuses_are_reported_as_a_shell_does() {
        assert_eq!(status_of("exit 3"), 3);
        assert_eq!(status_of("kill -TERM $$"), 128 + 15);
        assert_eq!(status_of("kill -INT $$"), 128 + 2);
        assert_eq!(status_of("kill -KILL $$"), 128 + 9);
    }

    #[test]
    fn clone_flags_follow_the_spec() {
        let args = crate::cli::RunArgs {
            command: vec!["true".into()],
            network: "none".into(),
            ..Default::default()
        };
        let spec = crate::spec::build(
            &args,
            &"a".repeat(64),
            std::path::Path::new("/s"),
            None,
            &|_| None,
        )
        .unwrap();
        assert_eq!(
            clone_flags(&spec).unwrap(),
            CloneFlags::CLONE_NEWPID
                | CloneFlags::CLONE_NEWUTS
                | CloneFlags::CLONE_NEWIPC
                | CloneFlags::CLONE_NEWNS
                | CloneFlags::CLONE_NEWNET,
            "the cgroup namespace is made by the init, not at clone time"
        );
    }
}
