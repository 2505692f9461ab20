//! The parent's side of starting a container: clone a child into new namespaces, have it
//! re-exec `/proc/self/exe child`, drive the sync protocol, then forward signals to the
//! container's init and wait for it.
//!
//! `create` leaves the child set up and blocked just before exec; `start` releases it; `wait`
//! returns its exit status. `run` is the three in a row, after `block_signals`.

use crate::cgroups::Cgroup;
use crate::errors::{CommandFailed, exec_failure_status};
use crate::sync::{CHILD_SYNC_FD, Message, SyncSocket};
use crate::tty::Foreground;
use anyhow::{Context, Result, anyhow, bail};
use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::ffi::CStr;

/// Signals sent to `run` that are passed on to the container's init. Job-control signals
/// stay with the runner, and faults are never caught.
const FORWARDED_SIGNALS: [Signal; 8] = [
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
}

/// A container whose command is running.
#[derive(Debug)]
pub struct Running {
    child: Child,
    signals: SignalFd,
    // Dropped after the child is reaped: the terminal comes back once the container is gone.
    _foreground: Option<Foreground>,
}

/// Blocks the forwarded signals and SIGCHLD, and returns the signalfd they are read from once
/// the command runs. Called before anything that needs cleaning up exists (the cgroup, the
/// child), so that no signal can kill the runner midway: they are all forwarded or handled.
/// The child unblocks them before exec.
pub fn block_signals() -> Result<SignalFd> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    for signal in FORWARDED_SIGNALS {
        mask.add(signal);
    }
    mask.thread_block().context("blocking signals")?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC).context("creating a signalfd")
}

/// Starts the container's init in new namespaces, has it join its cgroup, sends it the spec
/// and waits until it has done its setup. Setup failures come back as the init
/// reported them. `signals` comes from [`block_signals`].
pub fn create(
    spec: &Spec,
    spec_json: &[u8],
    signals: SignalFd,
    cgroup: &Cgroup,
) -> Result<Created> {
    let flags = clone_flags(spec)?;
    let (sync, child_end) = SyncSocket::pair()?;
    log::debug!("cloning the container's init with {flags:?}");
    let pid = spawn_init(flags, child_end.as_raw_fd())?;
    let mut child = Child { pid, reaped: false };
    drop(child_end);
    // The init's own process group, set on both sides of the clone so neither races: its
    // group ids are then valid inside its PID namespace. EACCES: it already exec'd.
    let _ = nix::unistd::setpgid(pid, pid);
    log::debug!("container init is pid {pid} on the host");

    // The init joins its cgroup first, before it reads the spec, so before it can act on
    // anything, let alone run the user's code (joining is much cheaper than being moved: see
    // `cgroups`). The spec follows without waiting for an answer, which would cost a round
    // trip (0.2 ms): a failed join is reported instead of Ready, and the spec is then never
    // read. A child that is gone closes its end: sending fails or the reply is end of file.
    log::debug!("having the container's init join its cgroup");
    let sent = sync
        .send_message(&Message::JoinCgroup(cgroup.join_files()))
        .and_then(|()| sync.send_spec(spec_json));
    match sync.recv_message()? {
        Some(Message::Ready) => {
            sent?;
            Ok(Created {
                child,
                sync,
                signals,
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
        let foreground = Foreground::hand_to(self.child.pid);
        self.sync.send_message(&Message::Go)?;
        match self.sync.recv_message()? {
            // The init's end closed on exec: the command runs.
            None => Ok(Running {
                child: self.child,
                signals: self.signals,
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
        loop {
            let info = match self.signals.read_signal() {
                Ok(Some(info)) => info,
                Ok(None) | Err(Errno::EINTR) => continue,
                Err(err) => return Err(err).context("reading signals"),
            };
            let signo = info.ssi_signo as i32;
            if signo == libc::SIGCHLD {
                if let Some(status) = self.child.reap(Some(WaitPidFlag::WNOHANG))? {
                    return Ok(status);
                }
                continue;
            }
            let Ok(signal) = Signal::try_from(signo) else {
                continue;
            };
            log::debug!("forwarding {signal} to the container's init");
            match kill(self.child.pid, signal) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(err) => log::warn!("forwarding {signal}: {err}"),
            }
        }
    }
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
            bail!(
                "joining an existing {} namespace is not supported",
                namespace.typ()
            );
        }
        flags |= match namespace.typ() {
            LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
            LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
            LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
            LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
            LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
            LinuxNamespaceType::Cgroup => CloneFlags::empty(),
            other => bail!("{other} namespaces are not supported yet"),
        };
    }
    Ok(flags)
}

/// `struct clone_args` of clone3(2), as the kernel defines it (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const INIT_EXE: &CStr = c"/proc/self/exe";
const INIT_ARGV0: &CStr = c"mini-container";
const INIT_ARGV1: &CStr = c"child";

/// Forks a child into the namespaces in `flags` (clone3, or clone where clone3 is missing);
/// the child re-execs this binary as `mini-container child` with its end of the sync socket
/// on fd 3, and dies with the parent (PR_SET_PDEATHSIG).
fn spawn_init(flags: CloneFlags, sync_fd: i32) -> Result<Pid> {
    let args = CloneArgs {
        flags: flags.bits() as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    // SAFETY: clone3 with neither CLONE_VM nor a stack is fork(2) with namespace flags: the
    // child runs on its own copy of this single-threaded process. `args` outlives the call.
    let mut ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            size_of::<CloneArgs>(),
        )
    };
    if ret == -1 && Errno::last() == Errno::ENOSYS {
        // SAFETY: the same fork-like clone through the older clone(2): a null stack means
        // the child continues on its copy of the parent's stack.
        ret = unsafe {
            libc::syscall(
                libc::SYS_clone,
                flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        };
    }
    match Errno::result(ret).context("creating the container's namespaces (clone3)")? {
        0 => exec_init(sync_fd),
        pid => Ok(Pid::from_raw(pid as i32)),
    }
}

/// In the freshly cloned child: arrange to die with the parent, lead a process group of its
/// own, put the sync socket on fd 3 and exec `/proc/self/exe child`. Returns only by exiting.
fn exec_init(sync_fd: i32) -> ! {
    let argv = [INIT_ARGV0.as_ptr(), INIT_ARGV1.as_ptr(), std::ptr::null()];
    // SAFETY: between fork and exec only async-signal-safe calls are made (prctl, setpgid,
    // fcntl, dup2, execv, write, _exit), on values prepared before the clone; nothing
    // allocates or locks.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        libc::setpgid(0, 0);
        if sync_fd == CHILD_SYNC_FD {
            libc::fcntl(sync_fd, libc::F_SETFD, 0);
        } else {
            libc::dup2(sync_fd, CHILD_SYNC_FD);
        }
        libc::execv(INIT_EXE.as_ptr(), argv.as_ptr());
        let message = b"mini-container: starting the container: cannot exec /proc/self/exe\n";
        libc::write(2, message.as_ptr().cast(), message.len());
        libc::_exit(crate::errors::EXIT_SETUP_FAILED);
    }
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
        let spec = crate::spec::build(&args, &"a".repeat(64), &|_| None).unwrap();
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
