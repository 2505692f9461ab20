//! Seccomp: which system calls the container may make.
//!
//! By default a container gets Docker's default profile, resolved for its capabilities: EPERM
//! for what it denies (mount, unshare, keyctl, bpf, reboot, ...; clone with namespace flags
//! unless CAP_SYS_ADMIN is granted), ENOSYS for clone3 and for system calls it does not know.
//! `--security-opt seccomp=unconfined` loads no filter; `seccomp=FILE` takes a profile in
//! Docker's JSON format.
//!
//! The runner resolves the profile for the container's capabilities and describes the result
//! in the spec's `linux.seccomp` ([`for_spec`]); the init turns that into a [`Filter`] and
//! loads it. The filter for Docker's default capabilities is compiled to BPF when
//! mini-container is built (build.rs shares `profile`, `default_profile`, `syscalls`,
//! `tables`, `compile` and `bpf` through `#[path]`), so a default run loads prepared bytes with one
//! seccomp(2) call; other profiles are compiled when the container starts.
//!
//! Load order: the kernel installs a filter only for a process with no_new_privs set or
//! CAP_SYS_ADMIN. With no_new_privs (or CAP_SYS_ADMIN kept), the filter is loaded last, just
//! before exec, so it constrains only the command. Without them, it must be loaded while the
//! init still has CAP_SYS_ADMIN, before it drops capabilities or switches user; the steps after
//! it (setgroups, setresuid, capset, chdir, execve) then run under the filter, which Docker's
//! profile allows. See `init::seccomp_position`.

mod bpf;
mod compile;
mod default_profile;
mod docker_json;
mod load;
mod oci;
mod profile;
mod syscalls;
mod tables;

#[cfg(test)]
mod tests;

use anyhow::{Context, Result, bail};
use bpf::Insn;
use oci_spec::runtime::LinuxSeccomp;
use profile::{KernelVersion, Profile, Resolved, Target};
use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;
use syscalls::Arch;

pub use default_profile::DEFAULT_CAPABILITIES;

// DEFAULT_PROGRAM: Docker's default profile for DEFAULT_CAPABILITIES, compiled by build.rs.
include!(concat!(env!("OUT_DIR"), "/seccomp_default.rs"));

/// What `--security-opt seccomp=...` asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Choice {
    /// Docker's default profile.
    #[default]
    Default,
    /// No filter.
    Unconfined,
    /// A profile in Docker's JSON format.
    Profile(PathBuf),
}

impl Choice {
    /// The value of `seccomp=VALUE`: `unconfined` or a file.
    pub fn parse(value: &str) -> Result<Choice> {
        match value {
            "" => bail!("invalid --security-opt seccomp=: give a profile file or unconfined"),
            "unconfined" => Ok(Choice::Unconfined),
            path => Ok(Choice::Profile(PathBuf::from(path))),
        }
    }
}

/// The spec's `linux.seccomp` for a container with `capabilities` (names such as
/// "CAP_SYS_ADMIN"): the chosen profile, resolved for them. None when unconfined.
pub fn for_spec(choice: &Choice, capabilities: &[&str]) -> Result<Option<LinuxSeccomp>> {
    let profile: Profile = match choice {
        Choice::Unconfined => return Ok(None),
        Choice::Default => default_profile::docker_default(),
        Choice::Profile(path) => docker_json::read(path, native_arch()?)?,
    };
    let arch = native_arch()?;
    let resolved = profile.resolve(&Target {
        capabilities,
        arch: arch.go_name,
        scmp_arch: arch.native.scmp_name,
        kernel: running_kernel()?,
    });
    Ok(Some(
        oci::to_oci(&resolved, arch).context("describing the seccomp profile")?,
    ))
}

/// A BPF program ready to be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    program: Cow<'static, [Insn]>,
    flags: u32,
}

impl Filter {
    /// The filter the spec describes: the precompiled program when it is Docker's default
    /// profile for Docker's default capabilities, otherwise compiled now.
    pub fn from_spec(seccomp: &LinuxSeccomp) -> Result<Filter> {
        let arch = native_arch()?;
        if oci::describes(seccomp, &default_resolved(arch), arch) {
            return Ok(Filter {
                program: Cow::Borrowed(&DEFAULT_PROGRAM),
                flags: 0,
            });
        }
        let resolved = oci::from_oci(seccomp, arch).context("reading the seccomp profile")?;
        let program = compile::compile(&resolved, arch)
            .map_err(anyhow::Error::msg)
            .context("compiling the seccomp profile")?;
        if !program.unknown_names.is_empty() {
            let names = &program.unknown_names;
            log::debug!(
                "seccomp: no such system calls on {}: {names:?}",
                arch.native.scmp_name
            );
        }
        Ok(Filter {
            program: Cow::Owned(program.insns),
            flags: resolved.flags,
        })
    }

    /// Installs the filter on the calling process (see the module's note on load order).
    pub fn load(&self) -> Result<()> {
        load::install(&self.program, self.flags)
            .context("loading the seccomp filter (it needs no_new_privs or CAP_SYS_ADMIN)")
    }

    /// Whether this is the program compiled at build time.
    pub fn is_precompiled(&self) -> bool {
        matches!(self.program, Cow::Borrowed(_))
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.is_precompiled() {
            true => write!(f, "the precompiled default profile"),
            false => write!(f, "{} instructions compiled now", self.program.len()),
        }
    }
}

/// Docker's default profile resolved for Docker's default capabilities: what build.rs
/// compiled into DEFAULT_PROGRAM.
fn default_resolved(arch: &Arch) -> Resolved {
    default_profile::docker_default().resolve(&Target {
        capabilities: &DEFAULT_CAPABILITIES,
        arch: arch.go_name,
        scmp_arch: arch.native.scmp_name,
        kernel: default_profile::MIN_KERNEL,
    })
}

fn native_arch() -> Result<&'static Arch> {
    Arch::for_target(std::env::consts::ARCH).with_context(|| {
        format!(
            "seccomp filters are not supported on {} (use --security-opt seccomp=unconfined)",
            std::env::consts::ARCH
        )
    })
}

/// The running kernel's major.minor, for `minKernel` in profiles.
fn running_kernel() -> Result<KernelVersion> {
    // SAFETY: utsname is plain bytes, so all-zero is a valid value; uname only fills it.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `uts` is a valid, writable utsname for the duration of the call.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return Err(nix::errno::Errno::last()).context("reading the kernel version");
    }
    let release: Vec<u8> = uts
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    let release = String::from_utf8_lossy(&release);
    KernelVersion::parse(&release)
        .with_context(|| format!("reading the kernel version: unexpected release {release:?}"))
}
