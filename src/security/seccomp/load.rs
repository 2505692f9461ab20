//! Installs a BPF program as the calling thread's seccomp filter: one seccomp(2) call.

use super::bpf::{Insn, MAX_INSNS};
use anyhow::{Result, bail};
use nix::errno::Errno;

const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;

/// Installs `program` with SECCOMP_FILTER_FLAG_* `flags`. The kernel takes it only from a
/// thread with no_new_privs set or CAP_SYS_ADMIN in its user namespace.
pub fn install(program: &[Insn], flags: u32) -> Result<()> {
    if program.is_empty() || program.len() > MAX_INSNS {
        bail!("a filter of {} instructions", program.len());
    }
    let fprog = libc::sock_fprog {
        len: program.len() as libc::c_ushort,
        filter: program.as_ptr().cast::<libc::sock_filter>().cast_mut(),
    };
    // SAFETY: Insn is #[repr(C)] with the fields of struct sock_filter, in the same order and
    // sizes; `fprog` points at `program`, which outlives the call, and the kernel only reads
    // (copies) it. The call changes nothing but this thread's seccomp state.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            libc::c_ulong::from(flags),
            &fprog as *const libc::sock_fprog,
        )
    };
    if ret != 0 {
        return Err(Errno::last().into());
    }
    Ok(())
}

// Insn must be laid out as struct sock_filter for the cast above.
const _: () = assert!(std::mem::size_of::<Insn>() == std::mem::size_of::<libc::sock_filter>());
const _: () = assert!(std::mem::align_of::<Insn>() == std::mem::align_of::<libc::sock_filter>());
