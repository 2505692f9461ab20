//! What keeps a process we start inside the container from reaching back to its caller while
//! it is still ours: it is not dumpable until it execs the command (no ptrace, no
//! /proc/PID/fd from a container process), and the working directory it changed to is
//! checked to lie inside the container's root (runc's fix for CVE-2024-21626: a directory
//! fd of the host's, reached through /proc/self/fd/N, must not become the command's cwd).
//! The other two parts are made before the re-exec, in `spawn`: a session of its own (no
//! controlling terminal shared with the caller) and no inherited fd above the sync socket.

use anyhow::{Result, bail};
use std::path::Path;

/// PR_SET_DUMPABLE. The kernel makes the process dumpable again when it execs a program
/// that its credentials may read, so the command itself is dumpable as usual.
pub fn set_dumpable(dumpable: bool) {
    log::debug!("setup: dumpable {dumpable}");
    // SAFETY: PR_SET_DUMPABLE takes an integer and changes only this process's flag.
    unsafe {
        libc::prctl(
            libc::PR_SET_DUMPABLE,
            libc::c_ulong::from(dumpable),
            0,
            0,
            0,
        )
    };
}

/// Fails unless the current working directory, which was just set to `dir`, is reachable
/// from this process's root. The kernel's getcwd(2) prefixes a directory outside the root
/// with "(unreachable)" (glibc then says ENOENT); runc checks the same since 1.1.12.
pub fn verify_cwd(dir: &Path) -> Result<()> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    // SAFETY: the raw getcwd writes at most buf.len() bytes into the buffer we own.
    let len = unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) };
    let reachable = len > 0 && buf[0] == b'/';
    if !reachable {
        bail!(
            "changing to working directory {}: it is outside the container's root \
             (an inherited descriptor of the host's?)",
            dir.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_inside_the_root_is_accepted() {
        assert!(verify_cwd(Path::new(".")).is_ok());
    }
}
