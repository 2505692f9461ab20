//! The container's view of its own cgroup at `/sys/fs/cgroup` (the spec's `cgroup` mount,
//! as runc reads it), read-only unless `--privileged`. The init is in a cgroup namespace of
//! its own by then, so a cgroup file system mounted here shows the container's cgroup as its
//! root: nothing of the host's tree above it is visible.
//!
//! - cgroup v2: one cgroup2 mount.
//! - cgroup v1 (and hybrid): a tmpfs with one cgroup mount per hierarchy the host has, named
//!   like the host's (`memory`, `cpu,cpuacct` with `cpu` and `cpuacct` symlinks, `systemd`
//!   for `name=systemd`), plus `unified` when the host mounts cgroup2 there. The tmpfs is made
//!   detached, filled and made read-only before it is attached, so it is never writable where
//!   the container could see it; each cgroup mount is read-only from the start (a new mount,
//!   not a bind, honours MS_RDONLY).
//!
//! The layout comes from the host's mount table ([`View::from_mountinfo`]) and becomes a list
//! of operations ([`View::operations`]) that unit tests check without root.

use crate::mount_api::{self, Attributes};
use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{MsFlags, mount};
use nix::sys::stat::Mode;
use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Where the host's cgroup file systems are.
const HOST_ROOT: &str = "/sys/fs/cgroup";

/// Mount options of a v1 hierarchy that do not name it (they need not be repeated, and
/// `release_agent` may not be set from a cgroup namespace).
const GENERIC_OPTIONS: [&str; 7] = [
    "rw",
    "ro",
    "noprefix",
    "clone_children",
    "xattr",
    "cpuset_v2_mode",
    "favordynmods",
];

/// How the host's cgroups are mounted under /sys/fs/cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    /// cgroup2 at /sys/fs/cgroup.
    Unified,
    /// v1 hierarchies (and the hybrid layout's cgroup2 at `unified`).
    Hierarchies(Vec<Hierarchy>),
}

/// One mount under /sys/fs/cgroup on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// The directory name, as on the host (`cpu,cpuacct`, `systemd`, `unified`).
    pub name: String,
    /// `cgroup` or `cgroup2`.
    pub fstype: &'static str,
    /// What names the hierarchy when mounting it again: `cpu,cpuacct`, `none,name=systemd`.
    pub options: String,
}

/// One thing done to build the view, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// A detached tmpfs (nosuid, nodev, noexec, mode 755) to hold the hierarchies.
    NewTmpfs,
    /// A directory in the tmpfs.
    Mkdir(String),
    /// A symlink in the tmpfs: `name -> target`.
    Symlink { name: String, target: String },
    /// The tmpfs made read-only, while still detached.
    TmpfsReadOnly,
    /// The tmpfs attached at /sys/fs/cgroup.
    AttachTmpfs,
    /// A cgroup file system mounted at `dir` in the tmpfs, or at /sys/fs/cgroup itself.
    Mount {
        dir: Option<String>,
        fstype: &'static str,
        options: String,
        read_only: bool,
    },
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operation::NewTmpfs => write!(f, "tmpfs"),
            Operation::Mkdir(name) => write!(f, "mkdir {name}"),
            Operation::Symlink { name, target } => write!(f, "ln -s {target} {name}"),
            Operation::TmpfsReadOnly => write!(f, "tmpfs ro"),
            Operation::AttachTmpfs => write!(f, "attach tmpfs"),
            Operation::Mount {
                dir,
                fstype,
                options,
                read_only,
            } => {
                let mode = if *read_only { "ro" } else { "rw" };
                let options = if options.is_empty() {
                    mode.to_string()
                } else {
                    format!("{mode},{options}")
                };
                let at = dir.as_deref().unwrap_or(".");
                write!(f, "mount -t {fstype} -o {options} {at}")
            }
        }
    }
}

impl View {
    /// The host's layout, from a `/proc/self/mountinfo` text: the cgroup and cgroup2 mounts
    /// at /sys/fs/cgroup or directly below it (later mounts on the same point win).
    pub fn from_mountinfo(mountinfo: &str) -> View {
        let mut hierarchies: Vec<Hierarchy> = Vec::new();
        let mut unified_at_top = false;
        for line in mountinfo.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let Some(dash) = fields.iter().position(|f| *f == "-") else {
                continue;
            };
            let (Some(point), Some(fstype), Some(super_options)) =
                (fields.get(4), fields.get(dash + 1), fields.get(dash + 3))
            else {
                continue;
            };
            let fstype = match *fstype {
                "cgroup" => "cgroup",
                "cgroup2" => "cgroup2",
                _ => {
                    if *point == HOST_ROOT {
                        // Something else (the v1 tmpfs) covers an earlier cgroup2 mount.
                        unified_at_top = false;
                    }
                    continue;
                }
            };
            if *point == HOST_ROOT {
                unified_at_top = fstype == "cgroup2";
                continue;
            }
            let Some(name) = point.strip_prefix("/sys/fs/cgroup/") else {
                continue;
            };
            if name.is_empty() || name.contains('/') {
                continue;
            }
            let options = match fstype {
                "cgroup" => hierarchy_options(super_options),
                _ => String::new(),
            };
            hierarchies.retain(|h| h.name != name);
            hierarchies.push(Hierarchy {
                name: name.to_string(),
                fstype,
                options,
            });
        }
        if unified_at_top {
            View::Unified
        } else {
            View::Hierarchies(hierarchies)
        }
    }

    /// Only the hierarchies in which the container has a cgroup of its own: `joined` lists
    /// the files its init wrote itself to (`.../memory/mini-container-ID/tasks`). Elsewhere
    /// its cgroup namespace's root is the runner's cgroup, with the host's tree below it,
    /// which a container must not see. (On v1 a run uses only the hierarchies it needs; a
    /// rootless run may have no cgroup at all: then the view is an empty tmpfs.)
    pub fn joined(self, joined: &[PathBuf]) -> View {
        let inside = |point: &Path| joined.iter().any(|file| file.starts_with(point));
        match self {
            View::Unified if inside(Path::new(HOST_ROOT)) => View::Unified,
            View::Unified => View::Hierarchies(Vec::new()),
            View::Hierarchies(mut hierarchies) => {
                hierarchies.retain(|h| inside(&Path::new(HOST_ROOT).join(&h.name)));
                View::Hierarchies(hierarchies)
            }
        }
    }

    /// What builds the view, read-only or not.
    pub fn operations(&self, read_only: bool) -> Vec<Operation> {
        let hierarchies = match self {
            View::Unified => {
                return vec![Operation::Mount {
                    dir: None,
                    fstype: "cgroup2",
                    options: String::new(),
                    read_only,
                }];
            }
            View::Hierarchies(hierarchies) => hierarchies,
        };
        let mut operations = vec![Operation::NewTmpfs];
        operations.extend(hierarchies.iter().map(|h| Operation::Mkdir(h.name.clone())));
        for hierarchy in hierarchies.iter().filter(|h| h.name.contains(',')) {
            for part in hierarchy.name.split(',') {
                if !hierarchies.iter().any(|h| h.name == part) {
                    operations.push(Operation::Symlink {
                        name: part.to_string(),
                        target: hierarchy.name.clone(),
                    });
                }
            }
        }
        if read_only {
            operations.push(Operation::TmpfsReadOnly);
        }
        operations.push(Operation::AttachTmpfs);
        operations.extend(hierarchies.iter().map(|h| Operation::Mount {
            dir: Some(h.name.clone()),
            fstype: h.fstype,
            options: h.options.clone(),
            read_only,
        }));
        operations
    }
}

/// The options that name a v1 hierarchy: its controllers and `name=`, with `none` when it
/// has no controller.
fn hierarchy_options(super_options: &str) -> String {
    let naming: Vec<&str> = super_options
        .split(',')
        .filter(|o| !GENERIC_OPTIONS.contains(o) && !o.starts_with("release_agent="))
        .collect();
    if naming.iter().all(|o| o.starts_with("name=")) {
        std::iter::once("none")
            .chain(naming)
            .collect::<Vec<_>>()
            .join(",")
    } else {
        naming.join(",")
    }
}

/// Builds the view on `point`, an O_PATH fd of the container's /sys/fs/cgroup, from the
/// host's mount table and the cgroup files the init `joined`. Kernels without the fd mount
/// API (before 5.12) leave /sys/fs/cgroup as it is, with a warning.
pub fn mount_view(point: &OwnedFd, read_only: bool, joined: &[PathBuf]) -> Result<()> {
    let mountinfo =
        std::fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    let view = View::from_mountinfo(&mountinfo).joined(joined);
    log::debug!("cgroup view: {view:?}");
    match run(&view.operations(read_only), point) {
        Err(err) if crate::errors::errno_of(&err) == Some(Errno::ENOSYS) => {
            log::warn!(
                "this kernel has no fsopen/mount_setattr: /sys/fs/cgroup stays empty ({err:#})"
            );
            Ok(())
        }
        other => other,
    }
}

fn run(operations: &[Operation], point: &OwnedFd) -> Result<()> {
    let mut tmpfs: Option<OwnedFd> = None;
    let tmpfs_of = |tmpfs: &Option<OwnedFd>| -> Result<OwnedFd> {
        Ok(tmpfs
            .as_ref()
            .context("no tmpfs for /sys/fs/cgroup")?
            .try_clone()?)
    };
    for operation in operations {
        log::debug!("cgroup view: {operation}");
        let what = || format!("/sys/fs/cgroup: {operation}");
        match operation {
            Operation::NewTmpfs => {
                let attributes = Attributes {
                    read_only: false,
                    nosuid: true,
                    nodev: true,
                    noexec: true,
                };
                tmpfs = Some(
                    mount_api::new_mount("tmpfs", &[("mode", "755")], attributes)
                        .with_context(what)?,
                );
            }
            Operation::Mkdir(name) => nix::sys::stat::mkdirat(
                &tmpfs_of(&tmpfs)?,
                name.as_str(),
                Mode::from_bits_truncate(0o755),
            )
            .with_context(what)?,
            Operation::Symlink { name, target } => {
                nix::unistd::symlinkat(target.as_str(), &tmpfs_of(&tmpfs)?, name.as_str())
                    .with_context(what)?
            }
            Operation::TmpfsReadOnly => {
                mount_api::set_attributes(&tmpfs_of(&tmpfs)?, Attributes::READ_ONLY, false)
                    .with_context(what)?
            }
            Operation::AttachTmpfs => {
                mount_api::attach(&tmpfs_of(&tmpfs)?, point.as_fd()).with_context(what)?
            }
            Operation::Mount {
                dir,
                fstype,
                options,
                read_only,
            } => {
                // A directory of the tmpfs made above, which nothing else can reach.
                let target = match dir {
                    Some(dir) => nix::fcntl::openat(
                        &tmpfs_of(&tmpfs)?,
                        dir.as_str(),
                        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                    .with_context(what)?,
                    None => point.try_clone()?,
                };
                let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
                if *read_only {
                    flags |= MsFlags::MS_RDONLY;
                }
                let data = (!options.is_empty()).then_some(options.as_str());
                mount(
                    Some(*fstype),
                    &crate::rootfs::proc_fd_path(&target),
                    Some(*fstype),
                    flags,
                    data,
                )
                .with_context(what)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This development VM's table (hybrid), with a mount of the same name twice.
    const HYBRID: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
23 22 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,release_agent=/x,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
42 22 0:39 / /tmp/rootfs/sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
43 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
";

    const PURE_V2: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
23 22 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    fn names(operations: &[Operation]) -> Vec<String> {
        operations.iter().map(Operation::to_string).collect()
    }

    #[test]
    fn v1_hierarchies_are_named_as_on_the_host() {
        let view = View::from_mountinfo(HYBRID);
        assert_eq!(
            names(&view.operations(true)),
            [
                "tmpfs",
                "mkdir cpu,cpuacct",
                "mkdir pids",
                "mkdir systemd",
                "mkdir unified",
                "mkdir memory",
                "ln -s cpu,cpuacct cpu",
                "ln -s cpu,cpuacct cpuacct",
                "tmpfs ro",
                "attach tmpfs",
                "mount -t cgroup -o ro,cpu,cpuacct cpu,cpuacct",
                "mount -t cgroup -o ro,pids pids",
                "mount -t cgroup -o ro,none,name=systemd systemd",
                "mount -t cgroup2 -o ro unified",
                "mount -t cgroup -o ro,memory memory",
            ]
        );
    }

    #[test]
    fn privileged_gets_a_writable_view() {
        let operations = View::from_mountinfo(HYBRID).operations(false);
        assert!(!operations.contains(&Operation::TmpfsReadOnly));
        assert!(
            names(&operations)
                .iter()
                .all(|op| !op.starts_with("mount") || op.contains(" -o rw"))
        );
    }

    #[test]
    fn v2_is_one_cgroup2_mount_of_the_namespace_root() {
        let view = View::from_mountinfo(PURE_V2);
        assert_eq!(view, View::Unified);
        assert_eq!(names(&view.operations(true)), ["mount -t cgroup2 -o ro ."]);
        assert_eq!(names(&view.operations(false)), ["mount -t cgroup2 -o rw ."]);
    }

    #[test]
    fn only_the_hierarchies_with_a_cgroup_of_the_containers_own_are_shown() {
        let id = "mini-container-0123";
        let joined = [
            PathBuf::from(format!("/sys/fs/cgroup/memory/{id}/tasks")),
            PathBuf::from(format!("/sys/fs/cgroup/cpu,cpuacct/user.slice/{id}/tasks")),
        ];
        let view = View::from_mountinfo(HYBRID).joined(&joined);
        assert_eq!(
            names(&view.operations(true)),
            [
                "tmpfs",
                "mkdir cpu,cpuacct",
                "mkdir memory",
                "ln -s cpu,cpuacct cpu",
                "ln -s cpu,cpuacct cpuacct",
                "tmpfs ro",
                "attach tmpfs",
                "mount -t cgroup -o ro,cpu,cpuacct cpu,cpuacct",
                "mount -t cgroup -o ro,memory memory",
            ]
        );
        // No cgroup of its own (rootless without delegation): an empty read-only tmpfs.
        for layout in [HYBRID, PURE_V2] {
            assert_eq!(
                names(&View::from_mountinfo(layout).joined(&[]).operations(true)),
                ["tmpfs", "tmpfs ro", "attach tmpfs"]
            );
        }
        let joined = [PathBuf::from(format!(
            "/sys/fs/cgroup/user.slice/{id}/cgroup.procs"
        ))];
        assert_eq!(View::from_mountinfo(PURE_V2).joined(&joined), View::Unified);
    }

    #[test]
    fn a_tmpfs_over_an_earlier_cgroup2_means_v1() {
        let text = format!(
            "{PURE_V2}50 23 0:40 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n\
             51 50 0:41 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n"
        );
        let view = View::from_mountinfo(&text);
        assert_eq!(
            view,
            View::Hierarchies(vec![Hierarchy {
                name: "pids".into(),
                fstype: "cgroup",
                options: "pids".into()
            }])
        );
    }
}
