//! Mounts inside the container's mount namespace. The first step is always to make every
//! mount private, so that nothing mounted inside can propagate to the host (whose `/` is
//! shared on systemd machines); then the spec's mounts, in order. With a root filesystem,
//! mount points are resolved (and created) inside it; without one they must exist. Each
//! mount goes onto an fd of its mount point, opened once; a read-only bind is made
//! read-only before it is attached (see [`mount_api`]), and the `cgroup` mount becomes the
//! container's view of its cgroup (see [`crate::cgroupfs`]).

use crate::errors::errno_of;
use crate::mount_api::{self, Attributes};
use crate::rootfs::{self, MountPointKind, Root};
use crate::spec::mounts::ETC_FILES;
use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{MsFlags, mount};
use oci_spec::runtime::Mount;
use std::fmt;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

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
    /// A read-only bind is made read-only on the mount itself, before it is attached
    /// ([`mount_api`]); false only under the test switch `ro-by-fd`, which brings back the
    /// old bind-then-remount-by-path way and its race.
    pub ro_by_fd: bool,
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
        let (mut flags, data) = parse_options(spec.options().as_deref().unwrap_or_default());
        if fstype.as_deref() == Some("bind") {
            flags |= MsFlags::MS_BIND;
        }
        MountStep {
            source,
            target: spec.destination().clone(),
            fstype,
            flags,
            data,
            ro_by_fd: true,
        }
    }

    fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }

    fn is_read_only(&self) -> bool {
        self.flags.contains(MsFlags::MS_RDONLY)
    }

    /// The attributes a mount made with the fd API gets: read-only and the flags the spec
    /// lists (a bind made with mount(2) ignores them all).
    fn bind_attributes(&self) -> Attributes {
        Attributes {
            read_only: self.is_read_only(),
            nosuid: self.flags.contains(MsFlags::MS_NOSUID),
            nodev: self.flags.contains(MsFlags::MS_NODEV),
            noexec: self.flags.contains(MsFlags::MS_NOEXEC),
        }
    }

    /// The runner's own /etc files (resolv.conf, hostname, hosts): skipped when the root
    /// filesystem has no such file and the container may not create one (a rootless run on
    /// a root filesystem its user cannot write), as bwrap does.
    fn is_optional(&self) -> bool {
        self.is_bind()
            && ETC_FILES
                .iter()
                .any(|file| self.target == Path::new("/etc").join(file))
    }

    /// Mounts it: inside `root` when there is one, else on the path as it stands.
    /// `cgroups`: the cgroup files the init joined, for the cgroup view.
    pub fn apply(&self, root: Option<&Root>, cgroups: &[PathBuf]) -> Result<()> {
        self.apply_inner(root, cgroups)
            .with_context(|| format!("mounting {self}"))
    }

    fn apply_inner(&self, root: Option<&Root>, cgroups: &[PathBuf]) -> Result<()> {
        let kind = if self.is_bind() && !Path::new(&self.source).is_dir() {
            MountPointKind::File
        } else {
            MountPointKind::Directory
        };
        let point = match root {
            Some(root) => match root.mount_point(&self.target, kind) {
                Ok(point) => point,
                Err(err)
                    if self.is_optional()
                        && matches!(
                            errno_of(&err),
                            Some(Errno::EACCES | Errno::EPERM | Errno::EROFS)
                        ) =>
                {
                    log::debug!("skipping {self}: {}", crate::errors::describe(&err));
                    return Ok(());
                }
                Err(err) => return Err(err),
            },
            // The mount point as it stands (the message says which mount it was for).
            None => nix::fcntl::open(
                &self.target,
                OFlag::O_PATH | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )?,
        };
        if self.fstype.as_deref() == Some("cgroup") {
            return crate::cgroupfs::mount_view(&point, self.is_read_only(), cgroups);
        }
        if self.is_bind() && self.is_read_only() && self.ro_by_fd {
            let recursive = self.flags.contains(MsFlags::MS_REC);
            match mount_api::bind(
                Path::new(&self.source),
                point.as_fd(),
                recursive,
                self.bind_attributes(),
            ) {
                Err(Errno::ENOSYS) => warn_no_fd_api(self),
                result => return Ok(result?),
            }
        }
        let target = rootfs::proc_fd_path(&point);
        // A bind ignores MS_RDONLY: it is made read-only by a remount afterwards.
        let flags = if self.is_bind() {
            self.flags & !MsFlags::MS_RDONLY
        } else {
            self.flags
        };
        let data = (!self.data.is_empty()).then_some(self.data.as_str());
        let fstype = if self.is_bind() {
            None
        } else {
            self.fstype.as_deref()
        };
        match mount(Some(self.source.as_str()), &target, fstype, flags, data) {
            Ok(()) => {}
            // A new sysfs needs a network namespace of our own; share the host's, read-only
            // all the way down (its cgroup hierarchies too).
            Err(Errno::EPERM) if self.fstype.as_deref() == Some("sysfs") => {
                let attributes = Attributes {
                    read_only: self.is_read_only(),
                    nosuid: true,
                    nodev: true,
                    noexec: true,
                };
                if self.ro_by_fd {
                    match mount_api::bind(Path::new("/sys"), point.as_fd(), true, attributes) {
                        Err(Errno::ENOSYS) => warn_no_fd_api(self),
                        result => return Ok(result?),
                    }
                }
                mount(
                    Some("/sys"),
                    &target,
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )?;
                return self.remount_read_only(root);
            }
            // The host's sysfs is mounted here already (a run without a root filesystem of
            // its own, in the host's network namespace): mount(2) refuses the same file
            // system twice on one mount point; a detached one can be moved over it.
            Err(Errno::EBUSY) if self.fstype.as_deref() == Some("sysfs") => {
                match mount_api::new_mount("sysfs", &[], self.bind_attributes()) {
                    Ok(sysfs) => mount_api::attach(&sysfs, point.as_fd())?,
                    Err(Errno::ENOSYS) => {
                        warn_no_fd_api(self);
                        mount(
                            Some("/sys"),
                            &target,
                            None::<&str>,
                            MsFlags::MS_BIND | MsFlags::MS_REC,
                            None::<&str>,
                        )?;
                        if self.is_read_only() {
                            self.remount_read_only(root)?;
                        }
                    }
                    Err(err) => return Err(err.into()),
                }
            }
            Err(err) => return Err(err.into()),
        }
        if self.is_bind() && self.is_read_only() {
            self.remount_read_only(root)?;
        }
        Ok(())
    }

    /// The old way, for kernels without the fd API: remounts the new mount read-only,
    /// reached by resolving the path again (an fd opened before the mount refers to what is
    /// underneath it). A process that swaps the path for a symlink meanwhile makes another
    /// mount read-only instead.
    fn remount_read_only(&self, root: Option<&Root>) -> Result<()> {
        match root {
            Some(root) => {
                let mounted = root.open(&self.target, OFlag::O_PATH)?;
                rootfs::remount_read_only(&rootfs::proc_fd_path(&mounted))
            }
            None => rootfs::remount_read_only(&self.target),
        }
    }
}

fn warn_no_fd_api(step: &MountStep) {
    log::warn!(
        "this kernel has no open_tree/mount_setattr (Linux 5.12): {step} is made read-only \
         by path, which a process in the same root filesystem can race"
    );
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
            // Every mount in the container's namespace is private already.
            "private" | "rprivate" => continue,
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
