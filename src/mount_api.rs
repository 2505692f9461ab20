//! The kernel's file-descriptor mount API (Linux 5.12+): `open_tree` copies a mount tree
//! into a detached mount held by an fd, `mount_setattr` makes it read-only (recursively when
//! the copy is recursive) while it is still detached, and `move_mount` attaches it onto an fd
//! of its mount point. A read-only bind made this way is read-only from the moment it
//! appears, and nothing looks its path up again: a process that swaps the mount point for a
//! symlink meanwhile cannot redirect the read-only step to another mount (the race of the
//! old bind-then-remount-by-path way). Kernels without these calls answer ENOSYS; the
//! callers then fall back to the old way and say so.

use nix::errno::Errno;
use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

/// The mount attributes that [`set_attributes`] sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Attributes {
    pub read_only: bool,
    pub nosuid: bool,
    pub nodev: bool,
    pub noexec: bool,
}

impl Attributes {
    pub const READ_ONLY: Attributes = Attributes {
        read_only: true,
        nosuid: false,
        nodev: false,
        noexec: false,
    };

    fn bits(self) -> u64 {
        let mut bits = 0;
        for (on, bit) in [
            (self.read_only, libc::MOUNT_ATTR_RDONLY),
            (self.nosuid, libc::MOUNT_ATTR_NOSUID),
            (self.nodev, libc::MOUNT_ATTR_NODEV),
            (self.noexec, libc::MOUNT_ATTR_NOEXEC),
        ] {
            if on {
                bits |= bit;
            }
        }
        bits
    }
}

fn c_path(path: &Path) -> nix::Result<CString> {
    CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)
}

/// `open_tree(OPEN_TREE_CLONE)`: a detached copy of the mount at `source` (and of every
/// mount below it when `recursive`), as a bind mount would make.
pub fn clone_tree(source: &Path, recursive: bool) -> nix::Result<OwnedFd> {
    let path = c_path(source)?;
    let mut flags = libc::OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: open_tree reads a valid NUL-terminated path and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    let fd = Errno::result(fd)? as i32;
    // SAFETY: open_tree returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `mount_setattr` on the tree behind `tree`: sets `attributes` on its top mount, or on every
/// mount of it when `recursive`.
pub fn set_attributes(tree: &OwnedFd, attributes: Attributes, recursive: bool) -> nix::Result<()> {
    let attr = libc::mount_attr {
        attr_set: attributes.bits(),
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: mount_setattr reads `attr` (valid for the call, its size given) and an empty
    // path; it changes only the mounts behind the live fd `tree`.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const libc::mount_attr,
            size_of::<libc::mount_attr>(),
        )
    };
    Errno::result(ret).map(drop)
}

/// `move_mount`: attaches the detached tree behind `tree` onto what `target` refers to (an
/// O_PATH fd of the mount point, opened before), never looking a path up.
pub fn attach(tree: &OwnedFd, target: BorrowedFd<'_>) -> nix::Result<()> {
    // SAFETY: move_mount reads two empty NUL-terminated paths; both fds are live.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    Errno::result(ret).map(drop)
}

/// A bind of `source` onto `target` with `attributes` set before it is attached: the three
/// calls above in a row. ENOSYS means the kernel has no such calls (before 5.12).
pub fn bind(
    source: &Path,
    target: BorrowedFd<'_>,
    recursive: bool,
    attributes: Attributes,
) -> nix::Result<()> {
    let tree = clone_tree(source, recursive)?;
    set_attributes(&tree, attributes, recursive)?;
    attach(&tree, target)
}

// From <linux/mount.h>; the libc crate does not have them.
const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;

/// A new file system of type `fstype`, detached (`fsopen` + `fsconfig` + `fsmount`): its fd
/// is the root directory of a mount that no path reaches until [`attach`] puts it somewhere.
pub fn new_mount(
    fstype: &str,
    options: &[(&str, &str)],
    attributes: Attributes,
) -> nix::Result<OwnedFd> {
    let fstype = CString::new(fstype).map_err(|_| Errno::EINVAL)?;
    // SAFETY: fsopen reads a valid NUL-terminated name and returns a new fd or -1.
    let fs = unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) };
    let fs = Errno::result(fs)? as i32;
    // SAFETY: fsopen returned a new fd that nothing else owns.
    let fs = unsafe { OwnedFd::from_raw_fd(fs) };
    for (key, value) in options {
        let key = CString::new(*key).map_err(|_| Errno::EINVAL)?;
        let value = CString::new(*value).map_err(|_| Errno::EINVAL)?;
        // SAFETY: fsconfig reads two valid NUL-terminated strings; `fs` is a live fd.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                FSCONFIG_SET_STRING,
                key.as_ptr(),
                value.as_ptr(),
                0,
            )
        };
        Errno::result(ret)?;
    }
    // SAFETY: fsconfig with CMD_CREATE takes no pointers; `fs` is a live fd.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    Errno::result(ret)?;
    // SAFETY: fsmount takes no pointers and returns a new fd or -1.
    let mount = unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fs.as_raw_fd(),
            FSMOUNT_CLOEXEC,
            attributes.bits() as libc::c_uint,
        )
    };
    let mount = Errno::result(mount)? as i32;
    // SAFETY: fsmount returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(mount) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_bits() {
        assert_eq!(Attributes::default().bits(), 0);
        assert_eq!(Attributes::READ_ONLY.bits(), libc::MOUNT_ATTR_RDONLY);
        let all = Attributes {
            read_only: true,
            nosuid: true,
            nodev: true,
            noexec: true,
        };
        assert_eq!(
            all.bits(),
            libc::MOUNT_ATTR_RDONLY
                | libc::MOUNT_ATTR_NOSUID
                | libc::MOUNT_ATTR_NODEV
                | libc::MOUNT_ATTR_NOEXEC
        );
    }
}
