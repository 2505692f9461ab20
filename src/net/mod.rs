//! Container networking. `--network host` shares the host's namespace and needs nothing
//! here; `--network none` gets a new namespace in which only the loopback is brought up.

use anyhow::{Context, Result};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
use std::os::fd::AsRawFd;

/// Brings `lo` up in the current network namespace (`ip link set lo up`).
pub fn bring_loopback_up() -> Result<()> {
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .context("bringing up lo: creating a socket")?;
    // SAFETY: ifreq is plain old data, so all-zero is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS and SIOCSIFFLAGS read and write a valid, live ifreq; the union
    // field used is the one these requests define (ifru_flags).
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request) < 0 {
            return Err(std::io::Error::last_os_error()).context("bringing up lo: SIOCGIFFLAGS");
        }
        request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &request) < 0 {
            return Err(std::io::Error::last_os_error()).context("bringing up lo: SIOCSIFFLAGS");
        }
    }
    Ok(())
}
