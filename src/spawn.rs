//! Starting the container's init: clone3 into new namespaces (clone where clone3 is
//! missing), then re-exec this binary as `mini-container child` from a read-only view of it.

use crate::sync::CHILD_SYNC_FD;
use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::Pid;
use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStringExt;

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
/// With a new user namespace the child waits, before its exec, for the parent's word that
/// its id maps are written.
/// `session` says what the child becomes to the caller's terminal; with `close_fds` it closes
/// every descriptor but stdio and the sync socket before its exec, so that nothing the caller
/// left open reaches the container's init (`child` then runs with fds 0 to 3 only).
pub fn spawn_init(
    flags: CloneFlags,
    sync_fd: i32,
    session: Session,
    close_fds: bool,
) -> Result<Pid> {
    let wait_for_maps = flags.contains(CloneFlags::CLONE_NEWUSER);
    // The fallback's bound where close_range(2) is missing (before Linux 5.9).
    let max_fd = close_fds.then(open_files_limit);
    // Prepared before the clone: the child may not allocate.
    let sealed = flags
        .contains(CloneFlags::CLONE_NEWNS)
        .then(own_binary)
        .flatten();
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
        0 => exec_init(sync_fd, sealed.as_deref(), wait_for_maps, session, max_fd),
        pid => Ok(Pid::from_raw(pid as i32)),
    }
}

/// What the container's init becomes to the caller's session and terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Session {
    /// A session of its own (setsid, as bubblewrap's --new-session): no controlling
    /// terminal, so TIOCSTI and TIOCLINUX on the caller's terminal fail with EPERM and
    /// /dev/tty with ENXIO. Without `-t`.
    New,
    /// Only a process group of its own, in the caller's session (the runner hands it the
    /// terminal's foreground): what the `new-session` test switch leaves.
    Group,
    /// `-t`: the init makes a session itself, with its new pty as controlling terminal.
    Terminal,
}

/// The soft RLIMIT_NOFILE: no fd is above it.
fn open_files_limit() -> i32 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| soft.min(i32::MAX as u64) as i32)
}

/// This binary's path, for the read-only bind the child execs from; `None` if it is gone
/// (replaced while running), in which case the child execs /proc/self/exe.
fn own_binary() -> Option<CString> {
    let path = std::fs::read_link("/proc/self/exe").ok()?;
    path.exists().then_some(())?;
    CString::new(path.into_os_string().into_vec()).ok()
}

/// In the freshly cloned child: arrange to die with the parent, start a session (or a
/// process group) of its own, put the sync socket on fd 3, close every fd above it when
/// `max_fd` is given, and exec `mini-container child`. Returns only by exiting.
///
/// With a mount namespace of its own, the child first makes its mounts private and binds
/// this binary read-only onto itself, then execs it from there: a container process that
/// gets hold of /proc/PID/exe of a mini-container process (CVE-2019-5736) finds a read-only
/// mount and cannot overwrite the host's binary. It costs three mount calls, where a sealed
/// memfd copy would cost a copy of the whole binary on every start.
fn exec_init(
    sync_fd: i32,
    sealed: Option<&CStr>,
    wait_for_maps: bool,
    session: Session,
    max_fd: Option<i32>,
) -> ! {
    let argv = [INIT_ARGV0.as_ptr(), INIT_ARGV1.as_ptr(), std::ptr::null()];
    let none = std::ptr::null::<libc::c_char>();
    // SAFETY: between fork and exec only async-signal-safe calls are made (prctl, setsid,
    // setpgid, read, setgroups, setresgid, setresuid, fcntl, dup2, close_range, close, mount,
    // execv, write, _exit), on values prepared before the clone; nothing allocates or locks.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        match session {
            // A fresh child leads no group, so setsid cannot fail; if it did, the init would
            // share the caller's terminal: refuse to go on.
            Session::New if libc::setsid() < 0 => libc::_exit(crate::errors::EXIT_SETUP_FAILED),
            Session::Group => {
                libc::setpgid(0, 0);
            }
            _ => {}
        }
        if wait_for_maps {
            let mut mapped = [0u8; 1];
            if libc::read(sync_fd, mapped.as_mut_ptr().cast(), 1) != 1 {
                libc::_exit(crate::errors::EXIT_SETUP_FAILED);
            }
            // Become root of the new user namespace before the exec, which would otherwise
            // drop every capability of an id that is not root there (as root's own id is
            // not, under --userns auto). Raw syscalls: glibc's wrappers signal other threads.
            libc::syscall(libc::SYS_setgroups, 0usize, std::ptr::null::<libc::gid_t>());
            if libc::syscall(libc::SYS_setresgid, 0, 0, 0) != 0
                || libc::syscall(libc::SYS_setresuid, 0, 0, 0) != 0
            {
                libc::_exit(crate::errors::EXIT_SETUP_FAILED);
            }
            // Changing credentials cleared the death signal.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        }
        if sync_fd == CHILD_SYNC_FD {
            libc::fcntl(sync_fd, libc::F_SETFD, 0);
        } else {
            libc::dup2(sync_fd, CHILD_SYNC_FD);
        }
        if let Some(max_fd) = max_fd {
            let first = CHILD_SYNC_FD as libc::c_uint + 1;
            if libc::syscall(libc::SYS_close_range, first, libc::c_uint::MAX, 0) != 0 {
                for fd in CHILD_SYNC_FD + 1..max_fd {
                    libc::close(fd);
                }
            }
        }
        if let Some(exe) = sealed {
            let exe = exe.as_ptr();
            let private = libc::MS_REC | libc::MS_PRIVATE;
            let read_only = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY;
            if libc::mount(none, c"/".as_ptr(), none, private, std::ptr::null()) == 0
                && libc::mount(exe, exe, none, libc::MS_BIND, std::ptr::null()) == 0
                && libc::mount(none, exe, none, read_only, std::ptr::null()) == 0
            {
                libc::execv(exe, argv.as_ptr());
            }
        }
        libc::execv(INIT_EXE.as_ptr(), argv.as_ptr());
        let message = b"mini-container: starting the container: cannot exec /proc/self/exe\n";
        libc::write(2, message.as_ptr().cast(), message.len());
        libc::_exit(crate::errors::EXIT_SETUP_FAILED);
    }
}
