//! A root filesystem of the container's own: paths inside it are resolved with
//! `openat2(RESOLVE_IN_ROOT)`, so a symlink in a hostile rootfs can never lead a mount or a
//! created mount point out to the host; device nodes; `pivot_root`; and Docker's masked and
//! read-only paths, applied once the container's /proc and /sys are mounted (after the
//! pivot when there is a root filesystem, in every run).

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{FchmodatFlags, Mode, SFlag, fchmodat, makedev, mknodat};
use nix::sys::statvfs::{FsFlags, statvfs};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

/// What a missing mount point should be created as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountPointKind {
    Directory,
    File,
}

/// The container's root directory, bound onto itself so that it is a mount point, and held
/// open for resolving paths inside it.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
}

impl Root {
    /// `mount --rbind DIR DIR` and open it.
    pub fn bind(dir: &Path) -> Result<Root> {
        mount(
            Some(dir),
            dir,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .with_context(|| format!("binding the root filesystem {}", dir.display()))?;
        let fd = nix::fcntl::open(
            dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("opening the root filesystem {}", dir.display()))?;
        Ok(Root { fd })
    }

    /// Opens `path` (absolute, as the container sees it) inside the root, following symlinks
    /// as if the root were `/`.
    pub fn open(&self, path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        openat2(&self.fd, relative(path), how)
    }

    /// An O_PATH fd on `path` inside the root, creating it (and its parents) when missing.
    pub fn mount_point(&self, path: &Path, kind: MountPointKind) -> Result<OwnedFd> {
        let what = || format!("creating mount point {}", path.display());
        match self.open(path, OFlag::O_PATH) {
            Ok(fd) => return Ok(fd),
            Err(Errno::ENOENT) => {}
            Err(err) => return Err(err).with_context(what),
        }
        let mut prefix = PathBuf::from("/");
        let components: Vec<Component> = relative(path).components().collect();
        for (index, component) in components.iter().enumerate() {
            let parent = self
                .open(&prefix, OFlag::O_PATH | OFlag::O_DIRECTORY)
                .with_context(what)?;
            prefix.push(component);
            match self.open(&prefix, OFlag::O_PATH) {
                Ok(_) => continue,
                Err(Errno::ENOENT) => {}
                Err(err) => return Err(err).with_context(what),
            }
            // One name relative to a resolved parent: mkdirat and openat do not follow a
            // symlink in the last component.
            let last = index + 1 == components.len();
            let result = if last && kind == MountPointKind::File {
                nix::fcntl::openat(
                    &parent,
                    component.as_os_str(),
                    OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o644),
                )
                .map(drop)
            } else {
                nix::sys::stat::mkdirat(
                    &parent,
                    component.as_os_str(),
                    Mode::from_bits_truncate(0o755),
                )
            };
            match result {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(err) => return Err(err).with_context(what),
            }
        }
        self.open(path, OFlag::O_PATH).with_context(what)
    }

    /// Creates the spec's device nodes under the container's /dev, or binds the host's
    /// where mknod is not allowed.
    pub fn create_devices(&self, devices: &[LinuxDevice]) -> Result<()> {
        for device in devices {
            self.create_device(device)
                .with_context(|| format!("creating device {}", device.path().display()))?;
        }
        Ok(())
    }

    fn create_device(&self, device: &LinuxDevice) -> Result<()> {
        let path = device.path();
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            bail!("invalid device path");
        };
        let kind = match device.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            other => bail!("unsupported device type {other:?}"),
        };
        // An O_PATH fd serves as the directory of the *at calls.
        let dir = self.mount_point(parent, MountPointKind::Directory)?;
        let mode = Mode::from_bits_truncate(device.file_mode().unwrap_or(0o666));
        let dev = makedev(device.major() as u64, device.minor() as u64);
        match mknodat(&dir, name, kind, mode, dev) {
            // mknod applies the umask: set the mode the spec asks for. The node is in the
            // fresh /dev tmpfs, which nothing else can reach yet.
            Ok(()) => {
                fchmodat(&dir, name, mode, FchmodatFlags::FollowSymlink)?;
                // The owner the spec gives (the host's, for --device and --privileged).
                let owner = (device.uid(), device.gid());
                if owner != (None, None) && owner != (Some(0), Some(0)) {
                    nix::unistd::fchownat(
                        &dir,
                        name,
                        device.uid().map(nix::unistd::Uid::from_raw),
                        device.gid().map(nix::unistd::Gid::from_raw),
                        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                    )?;
                }
                Ok(())
            }
            Err(Errno::EPERM) => {
                let target = self.mount_point(path, MountPointKind::File)?;
                mount(
                    Some(path),
                    proc_fd_path(&target).as_path(),
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )?;
                Ok(())
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Docker's symlinks in /dev: fd, stdin, stdout, stderr, core and ptmx.
    pub fn create_dev_symlinks(&self) -> Result<()> {
        let dev = self
            .open(Path::new("/dev"), OFlag::O_DIRECTORY | OFlag::O_RDONLY)
            .context("opening /dev")?;
        for (name, target) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
            ("core", "/proc/kcore"),
            ("ptmx", "pts/ptmx"),
        ] {
            match nix::unistd::symlinkat(target, &dev, name) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(err) => return Err(err).with_context(|| format!("creating /dev/{name}")),
            }
        }
        Ok(())
    }

    /// `pivot_root` into the root and detach the old one, leaving no path back to the host:
    /// pivot_root(".", ".") stacks the old root on the new one, and the detach removes it, so
    /// no old-root directory is ever made.
    pub fn pivot(self) -> Result<()> {
        nix::unistd::fchdir(self.fd.as_fd()).context("entering the root filesystem")?;
        nix::unistd::pivot_root(".", ".").context("pivot_root")?;
        umount2(".", MntFlags::MNT_DETACH).context("detaching the old root")?;
        nix::unistd::chdir("/").context("changing to /")?;
        Ok(())
    }
}

impl Root {
    /// Test only (switch "pivot-root"): chroot into the root, leaving the host's tree behind
    /// it, reachable with the classic chroot escape; the escape battery shows it.
    pub fn chroot_instead(self) -> Result<()> {
        nix::unistd::fchdir(self.fd.as_fd()).context("entering the root filesystem")?;
        nix::unistd::chroot(".").context("chroot")?;
        nix::unistd::chdir("/").context("changing to /")?;
        Ok(())
    }
}

/// `/proc/self/fd/N`: mount(2) follows it to what the fd refers to.
pub fn proc_fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn relative(path: &Path) -> &Path {
    let relative = path.strip_prefix("/").unwrap_or(path);
    if relative.as_os_str().is_empty() {
        Path::new(".")
    } else {
        relative
    }
}

/// Hides `path`: an empty read-only tmpfs over a directory, /dev/null over a file. Paths
/// this kernel does not have are skipped.
pub fn mask(path: &Path) -> Result<()> {
    let what = || format!("masking {}", path.display());
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err).with_context(what),
    };
    if metadata.is_dir() {
        mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some("size=0,mode=555"),
        )
        .with_context(what)
    } else {
        mount(
            Some("/dev/null"),
            path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .with_context(what)
    }
}

/// Makes `path` read-only: a recursive bind of it, made read-only all the way down before it
/// is attached over `path` ([`crate::mount_api`]). With `by_fd` false (the test switch
/// `ro-by-fd`), or on a kernel without that API, the old way: bound onto itself, then that
/// bind remounted read-only by path (which changes the top mount only).
pub fn make_read_only(path: &Path, by_fd: bool) -> Result<()> {
    let what = || format!("making {} read-only", path.display());
    if by_fd {
        let target = match nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()) {
            Ok(target) => target,
            Err(Errno::ENOENT) => return Ok(()),
            Err(err) => return Err(err).with_context(what),
        };
        match crate::mount_api::bind(
            path,
            target.as_fd(),
            true,
            crate::mount_api::Attributes::READ_ONLY,
        ) {
            Err(Errno::ENOSYS) => log::warn!(
                "this kernel has no open_tree/mount_setattr (Linux 5.12): making {} read-only by path",
                path.display()
            ),
            result => return result.with_context(what),
        }
    }
    match mount(
        Some(path),
        path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    ) {
        Ok(()) => {}
        Err(Errno::ENOENT) => return Ok(()),
        Err(err) => return Err(err).with_context(what),
    }
    remount_read_only(path).with_context(what)
}

/// Remounts the mount at `path` read-only, keeping its nosuid/nodev/noexec flags (which a
/// remount must repeat).
pub fn remount_read_only(path: &Path) -> Result<()> {
    let current =
        statvfs(path).with_context(|| format!("reading the flags of {}", path.display()))?;
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    for (fs_flag, ms_flag) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if current.flags().contains(fs_flag) {
            flags |= ms_flag;
        }
    }
    mount(None::<&str>, path, None::<&str>, flags, None::<&str>)
        .with_context(|| format!("remounting {} read-only", path.display()))
}

/// A detached copy of the mount tree at `dir`, id-mapped through the user namespace at
/// `userns` (a /proc/PID/ns/user path): files the host's root owns appear owned by the
/// container's root. Made by the parent, which holds CAP_SYS_ADMIN where the filesystem was
/// mounted; the child attaches it with [`Root::attach`].
pub fn idmapped_tree(dir: &Path, userns: &Path) -> Result<OwnedFd> {
    let what = || format!("id-mapping the root filesystem {}", dir.display());
    let userns = nix::fcntl::open(userns, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .with_context(what)?;
    let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).with_context(what)?;
    let flags = libc::OPEN_TREE_CLONE
        | libc::O_CLOEXEC as libc::c_uint
        | libc::AT_RECURSIVE as libc::c_uint;
    // SAFETY: open_tree reads a valid NUL-terminated path and returns a new fd or -1.
    let tree = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    let tree = Errno::result(tree).with_context(what)? as i32;
    // SAFETY: open_tree returned a new fd that nothing else owns.
    let tree = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(tree) };
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    // SAFETY: mount_setattr reads `attr` (valid for the call, its size given) and changes
    // only the detached tree behind `tree`.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            (libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) as libc::c_uint,
            &attr as *const libc::mount_attr,
            size_of::<libc::mount_attr>(),
        )
    };
    Errno::result(ret).with_context(what)?;
    Ok(tree)
}

impl Root {
    /// Attaches an id-mapped tree from [`idmapped_tree`] over `dir` and opens it.
    pub fn attach(tree: OwnedFd, dir: &Path) -> Result<Root> {
        let what = || {
            format!(
                "attaching the id-mapped root filesystem on {}",
                dir.display()
            )
        };
        let target =
            std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).with_context(what)?;
        // SAFETY: move_mount reads two valid NUL-terminated paths; `tree` is a live fd.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_move_mount,
                tree.as_raw_fd(),
                c"".as_ptr(),
                libc::AT_FDCWD,
                target.as_ptr(),
                libc::MOVE_MOUNT_F_EMPTY_PATH,
            )
        };
        Errno::result(ret).with_context(what)?;
        let fd = nix::fcntl::open(
            dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_context(what)?;
        Ok(Root { fd })
    }
}
