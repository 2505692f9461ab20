//! Mounts inside the container's mount namespace. The first step is always to make every
//! mount private, so that nothing mounted inside can propagate to the host (whose `/` is
//! shared on systemd machines); then the spec's mounts, in order.

use anyhow::{Context, Result};
use nix::mount::{MsFlags, mount};
use oci_spec::runtime::Mount;
use std::fmt;
use std::path::PathBuf;

/// `mount --make-rprivate /`.
pub fn make_mounts_private() -> Result<()> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("making mounts private (mount --make-rprivate /)")
}

/// One mount(2) call, decoded from a spec mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountStep {
    pub source: String,
    pub target: PathBuf,
    pub fstype: Option<String>,
    pub flags: MsFlags,
    /// Options the filesystem itself takes (`size=64m`, `mode=755`), comma-separated.
    pub data: String,
}

impl MountStep {
    pub fn from_spec(spec: &Mount) -> MountStep {
        let fstype = spec.typ().clone();
        let source = spec
            .source()
            .as_ref()
            .map(|s| s.to_string_lossy().into_owned())
            .or_else(|| fstype.clone())
            .unwrap_or_else(|| "none".to_string());
        let (flags, data) = parse_options(spec.options().as_deref().unwrap_or_default());
        MountStep {
            source,
            target: spec.destination().clone(),
            fstype,
            flags,
            data,
        }
    }

    pub fn apply(&self) -> Result<()> {
        mount(
            Some(self.source.as_str()),
            &self.target,
            self.fstype.as_deref(),
            self.flags,
            (!self.data.is_empty()).then_some(self.data.as_str()),
        )
        .with_context(|| format!("mounting {self}"))
    }
}

impl fmt::Display for MountStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {}", self.source, self.target.display())
    }
}

/// Splits mount options into mount(2) flags and the filesystem's own data string.
pub fn parse_options(options: &[String]) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for option in options {
        let (set, clear) = match option.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            _ => {
                data.push(option.as_str());
                continue;
            }
        };
        flags = (flags | set) & !clear;
    }
    (flags, data.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_into_flags_and_data() {
        let options = ["nosuid", "noexec", "size=64m", "ro", "rw", "mode=755"].map(String::from);
        let (flags, data) = parse_options(&options);
        assert_eq!(flags, MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC);
        assert_eq!(data, "size=64m,mode=755");
    }

    #[test]
    fn proc_mount_from_spec() {
        let mut spec = Mount::default();
        spec.set_destination("/proc".into());
        spec.set_typ(Some("proc".into()));
        spec.set_source(Some("proc".into()));
        spec.set_options(Some(
            ["nosuid", "noexec", "nodev"].map(String::from).to_vec(),
        ));
        let step = MountStep::from_spec(&spec);
        assert_eq!(step.to_string(), "proc on /proc");
        assert_eq!(
            step.flags,
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV
        );
        assert_eq!(step.fstype.as_deref(), Some("proc"));
        assert!(step.data.is_empty());
    }
}
