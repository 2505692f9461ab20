//! Starting the container's init: clone3 into new namespaces (clone where clone3 is
//! missing), then re-exec this binary as `mini-container child` from a copy of it that
//! cannot be written (a read-only mount, or a sealed memfd), never from the writable one.

use crate::sync::CHILD_SYNC_FD;
use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::Pid;
use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::MetadataExt;

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

/// How the child re-execs this binary: from a read-only mount of it, else from a sealed
/// copy, else not at all. The test switches (debug builds only) skip a way, or all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExeProtection {
    /// A detached read-only mount (test switch `exe-protection-mount` skips it).
    pub mount: bool,
    /// A sealed memfd copy (test switch `exe-protection-copy` skips it).
    pub copy: bool,
    /// Test switch `exe-protection`: the writable /proc/self/exe, unprotected.
    pub off: bool,
}

impl ExeProtection {
    /// The protection the spec's test switches leave (all of it in release builds).
    pub fn for_spec(spec: &oci_spec::runtime::Spec) -> ExeProtection {
        use crate::spec::test_switch::disabled;
        ExeProtection {
            mount: !disabled(spec, "exe-protection-mount"),
            copy: !disabled(spec, "exe-protection-copy"),
            off: disabled(spec, "exe-protection"),
        }
    }
}

/// What the child needs to protect the binary, prepared before the clone.
struct Prepared {
    protection: ExeProtection,
    /// The binary's path, for the read-only mount (made in the child's own mount namespace,
    /// where /proc/self/exe names a mount of the parent's); `None` without a mount namespace
    /// or when the binary is gone from its path (replaced while running).
    path: Option<CString>,
    /// Device and inode of /proc/self/exe: the path must still lead to that file.
    identity: (u64, u64),
    /// What the child becomes to the caller's session and terminal.
    session: Session,
    /// Close every fd above the sync socket (bounded by this where close_range is missing).
    max_fd: Option<i32>,
}

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
    protection: ExeProtection,
) -> Result<Pid> {
    let wait_for_maps = flags.contains(CloneFlags::CLONE_NEWUSER);
    // Prepared before the clone.
    let identity = std::fs::metadata("/proc/self/exe")
        .map(|m| (m.dev(), m.ino()))
        .context("reading /proc/self/exe")?;
    let prepared = Prepared {
        protection,
        path: flags
            .contains(CloneFlags::CLONE_NEWNS)
            .then(own_binary)
            .flatten(),
        identity,
        session,
        // The fallback's bound where close_range(2) is missing (before Linux 5.9).
        max_fd: close_fds.then(open_files_limit),
    };
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
        0 => exec_init(sync_fd, &prepared, wait_for_maps),
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

/// This binary's path; `None` if it is gone (replaced while running).
fn own_binary() -> Option<CString> {
    let path = std::fs::read_link("/proc/self/exe").ok()?;
    path.exists().then_some(())?;
    CString::new(path.into_os_string().into_vec()).ok()
}

/// In the freshly cloned child: arrange to die with the parent, start a session (or a
/// process group) of its own, put the sync socket on fd 3, close every fd above it when
/// `max_fd` is given, and exec `mini-container child`. Returns only by exiting.
///
/// The exec is made from a copy of this binary that cannot be written (CVE-2019-5736: a
/// container process that gets hold of /proc/PID/exe of a mini-container process could
/// otherwise overwrite the host's binary): a detached read-only mount of it (open_tree,
/// mount_setattr, execveat; three calls, nothing attached anywhere, and possible in a
/// rootless user namespace too, since it only adds the read-only flag), or where that
/// cannot be made (Linux before 5.12, no mount namespace of its own) a sealed memfd copy of
/// the whole binary, as runc makes when its overlay mount is not possible. If neither can
/// be made the start fails: the writable /proc/self/exe is never exec'd (but with the
/// debug-only test switch).
fn exec_init(sync_fd: i32, prepared: &Prepared, wait_for_maps: bool) -> ! {
    let argv = [INIT_ARGV0.as_ptr(), INIT_ARGV1.as_ptr(), std::ptr::null()];
    let session = prepared.session;
    // SAFETY: between fork and exec only async-signal-safe calls are made (prctl, setsid,
    // setpgid, read, setgroups, setresgid, setresuid, fcntl, dup2, close_range, close,
    // open_tree, fstat, mount_setattr, memfd_create, open, sendfile, execveat, _exit), on
    // values prepared before the clone; nothing allocates or locks but the report of a
    // failure, and this process is a copy of a single-threaded one, whose allocator no other
    // thread can hold.
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
        if let Some(max_fd) = prepared.max_fd {
            let first = CHILD_SYNC_FD as libc::c_uint + 1;
            if libc::syscall(libc::SYS_close_range, first, libc::c_uint::MAX, 0) != 0 {
                for fd in CHILD_SYNC_FD + 1..max_fd {
                    libc::close(fd);
                }
            }
        }
        let protection = prepared.protection;
        if protection.off {
            libc::execv(INIT_EXE.as_ptr(), argv.as_ptr());
        }
        // EPERM: a way the test switch skipped.
        let mount_errno = match &prepared.path {
            _ if !protection.mount => Errno::EPERM,
            None => Errno::ENOENT,
            Some(path) => exec_read_only_mount(path, prepared.identity, &argv),
        };
        let copy_errno = if protection.copy {
            exec_sealed_copy(&argv)
        } else {
            Errno::EPERM
        };
        let what = format!(
            "starting the container: cannot protect this binary from being overwritten \
             (CVE-2019-5736): no read-only mount of it ({}) and no sealed copy ({})",
            mount_errno.desc(),
            copy_errno.desc()
        );
        crate::sync::report_setup_failure(CHILD_SYNC_FD, copy_errno as i32, &what);
        libc::_exit(crate::errors::EXIT_SETUP_FAILED);
    }
}

/// open_tree(2)'s flag for a detached copy of the mount (linux/mount.h).
const OPEN_TREE_CLONE: libc::c_uint = 1;
/// mount_setattr(2)'s read-only attribute.
const MOUNT_ATTR_RDONLY: u64 = 0x1;
/// memfd_create(2)'s flag for an executable memfd (Linux 6.3; refused as EINVAL before).
const MFD_EXEC: libc::c_uint = 0x10;

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

unsafe extern "C" {
    static environ: *const *const libc::c_char;
}

/// Execs `path` from a detached read-only mount of it, if it still is the file the parent
/// runs (`identity`); returns why not.
///
/// # Safety
/// Only async-signal-safe calls; `argv` is a null-terminated array of C strings.
unsafe fn exec_read_only_mount(
    path: &CStr,
    identity: (u64, u64),
    argv: &[*const libc::c_char; 3],
) -> Errno {
    // SAFETY: raw syscalls on a C string, a stack buffer and fds owned by this process.
    unsafe {
        let tree = libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            path.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        );
        if tree < 0 {
            return Errno::last();
        }
        let tree = tree as libc::c_int;
        let mut stat: libc::stat = std::mem::zeroed();
        if libc::fstat(tree, &mut stat) != 0 {
            return Errno::last();
        }
        if (stat.st_dev, stat.st_ino) != identity {
            return Errno::ESTALE; // the path leads to another binary now
        }
        let attr = MountAttr {
            attr_set: MOUNT_ATTR_RDONLY,
            attr_clr: 0,
            propagation: 0,
            userns_fd: 0,
        };
        if libc::syscall(
            libc::SYS_mount_setattr,
            tree,
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            size_of::<MountAttr>(),
        ) != 0
        {
            return Errno::last();
        }
        libc::syscall(
            libc::SYS_execveat,
            tree,
            c"".as_ptr(),
            argv.as_ptr(),
            environ,
            libc::AT_EMPTY_PATH,
        );
        Errno::last()
    }
}

/// Execs a sealed memfd copy of /proc/self/exe (no write, grow or shrink, seals sealed);
/// returns why not.
///
/// # Safety
/// Only async-signal-safe calls; `argv` is a null-terminated array of C strings.
unsafe fn exec_sealed_copy(argv: &[*const libc::c_char; 3]) -> Errno {
    // SAFETY: raw syscalls on C strings and fds owned by this process.
    unsafe {
        let source = libc::open(INIT_EXE.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if source < 0 {
            return Errno::last();
        }
        let name = c"mini-container";
        let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
        let mut copy = libc::memfd_create(name.as_ptr(), flags | MFD_EXEC);
        if copy < 0 && Errno::last() == Errno::EINVAL {
            copy = libc::memfd_create(name.as_ptr(), flags);
        }
        if copy < 0 {
            return Errno::last();
        }
        loop {
            match libc::sendfile(copy, source, std::ptr::null_mut(), 1 << 30) {
                0 => break,
                n if n > 0 => continue,
                _ if Errno::last() == Errno::EINTR => continue,
                _ => return Errno::last(),
            }
        }
        let seals =
            libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
        if libc::fcntl(copy, libc::F_ADD_SEALS, seals) != 0 {
            return Errno::last();
        }
        libc::syscall(
            libc::SYS_execveat,
            copy,
            c"".as_ptr(),
            argv.as_ptr(),
            environ,
            libc::AT_EMPTY_PATH,
        );
        Errno::last()
    }
}
