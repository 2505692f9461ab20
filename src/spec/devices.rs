//! The container's device nodes (`linux.devices`) and device rules
//! (`linux.resources.devices`), as Docker gives them: moby's `DefaultLinuxSpec` rules, then
//! those of `--device` and `--device-cgroup-rule`, then runc's `AllowedDevices`, which runc
//! appends to every container's (so Docker's containers get them too). `--privileged`: every
//! device node of the host's /dev and no rules.
//!
//! One difference, for `--rootfs` on a host directory: a node made there stays on the host's
//! disk, where any host user may open it if its mode lets them (the host's processes are
//! not under the container's rules). There the rules grant mknod only for the nodes every
//! container has anyway (null, zero, full, random, urandom, tty), not Docker's `c *:* m` and
//! `b *:* m`: the container cannot make a node of another device at all.

use crate::cgroups::devices::rules::{parse_access, rule};
use anyhow::{Context, Result, bail};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use LinuxDeviceType::{A, B, C};

/// The rules of a container with a root of its own, around `extra` (those of `--device`
/// and `--device-cgroup-rule`). `host_rootfs`: the root is a host directory (`--rootfs`).
pub fn rules(host_rootfs: bool, extra: Vec<LinuxDeviceCgroup>) -> Vec<LinuxDeviceCgroup> {
    // Where Docker grants mknod for nodes a host user should not find in a host directory.
    let rwm = if host_rootfs { "rw" } else { "rwm" };
    // moby's DefaultLinuxSpec (daemon/pkg/oci/defaults.go), in its order.
    let mut rules = vec![
        rule(false, A, None, None, "rwm"),
        rule(true, C, Some(1), Some(5), "rwm"),
        rule(true, C, Some(1), Some(3), "rwm"),
        rule(true, C, Some(1), Some(9), "rwm"),
        rule(true, C, Some(1), Some(8), "rwm"),
        rule(true, C, Some(5), Some(0), "rwm"),
        rule(true, C, Some(5), Some(1), rwm),
        rule(false, C, Some(10), Some(229), "rwm"),
    ];
    rules.extend(extra);
    // runc's AllowedDevices (libcontainer/specconv/spec_linux.go), appended by runc.
    if !host_rootfs {
        rules.push(rule(true, C, None, None, "m"));
        rules.push(rule(true, B, None, None, "m"));
    }
    rules.extend([
        rule(true, C, Some(1), Some(3), "rwm"),
        rule(true, C, Some(1), Some(8), "rwm"),
        rule(true, C, Some(1), Some(7), "rwm"),
        rule(true, C, Some(5), Some(0), "rwm"),
        rule(true, C, Some(1), Some(5), "rwm"),
        rule(true, C, Some(1), Some(9), "rwm"),
        rule(true, C, Some(136), None, rwm),
        rule(true, C, Some(5), Some(2), rwm),
        rule(true, C, Some(10), Some(200), rwm),
    ]);
    rules
}

/// Docker's rules with no flag.
#[cfg(test)]
pub fn docker_rules(host_rootfs: bool) -> Vec<LinuxDeviceCgroup> {
    rules(host_rootfs, Vec::new())
}

/// `--privileged`: everything, as Docker's `a rwm`.
pub fn privileged_rules() -> Vec<LinuxDeviceCgroup> {
    vec![rule(true, A, None, None, "rwm")]
}

/// `--device-cgroup-rule 'c 10:237 rwm'`: Docker's grammar, `[abc] MAJ|*:MIN|* [rwm]{1,3}`.
pub fn parse_cgroup_rule(value: &str) -> Result<LinuxDeviceCgroup> {
    let what = || {
        format!(
            "invalid --device-cgroup-rule {value:?}: use TYPE MAJOR:MINOR ACCESS, e.g. 'c 10:237 rwm'"
        )
    };
    let fields: Vec<&str> = value.split(' ').collect();
    let [typ, numbers, access] = fields.as_slice() else {
        bail!(what());
    };
    let typ = match *typ {
        "a" => A,
        "b" => B,
        "c" => C,
        _ => bail!(what()),
    };
    let (major, minor) = numbers.split_once(':').with_context(what)?;
    let number = |n: &str| -> Result<Option<i64>> {
        if n == "*" {
            return Ok(None);
        }
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            bail!(what());
        }
        n.parse::<u32>()
            .map(|n| Some(i64::from(n)))
            .with_context(what)
    };
    let (major, minor) = (number(major)?, number(minor)?);
    parse_access(access).with_context(what)?;
    Ok(rule(true, typ, major, minor, access))
}

/// `--device HOST[:CONTAINER][:PERMS]` (Docker's parseDevice): the nodes to make (a
/// directory of the host gives every node below it) and the rules that allow them.
pub fn parse_device(value: &str) -> Result<(Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>)> {
    let what = || format!("invalid --device {value:?}");
    let parts: Vec<&str> = value.split(':').collect();
    let (host, container, access) = match parts.as_slice() {
        [host] => (*host, *host, "rwm"),
        [host, second] if parse_access(second).is_some() => (*host, *host, *second),
        [host, container] => (*host, *container, "rwm"),
        [host, container, access] => {
            if parse_access(access).is_none() {
                bail!(
                    "{}: bad permissions {access:?} (use letters of rwm)",
                    what()
                );
            }
            (*host, *container, *access)
        }
        _ => bail!("{}: use HOST[:CONTAINER][:PERMS]", what()),
    };
    if !host.starts_with('/') || !container.starts_with('/') {
        bail!("{}: the paths must be absolute", what());
    }
    // A symlink (/dev/disk/by-id/...) names the node it leads to.
    let resolved = std::fs::canonicalize(host).with_context(|| format!("{}: {host}", what()))?;
    let devices = if resolved.is_dir() {
        nodes_below(&resolved, Path::new(container), false)?
    } else {
        let device = node(&resolved, Path::new(container))?
            .with_context(|| format!("{}: {host} is not a device node", what()))?;
        vec![device]
    };
    if devices.is_empty() {
        bail!("{}: no device nodes in {host}", what());
    }
    let rules = devices
        .iter()
        .map(|d| {
            let typ = if d.typ() == B { B } else { C };
            rule(true, typ, Some(d.major()), Some(d.minor()), access)
        })
        .collect();
    Ok((devices, rules))
}

/// The host's device nodes, for `--privileged` (containerd's HostDevices): every block and
/// character device below /dev but in pts, shm, fd, mqueue (and LXC's and udev's private
/// directories), and console and ptmx, which the container has of its own.
pub fn host_devices() -> Result<Vec<LinuxDevice>> {
    nodes_below(Path::new("/dev"), Path::new("/dev"), true)
}

fn nodes_below(dir: &Path, container: &Path, host_dev: bool) -> Result<Vec<LinuxDevice>> {
    let mut found = Vec::new();
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("reading the devices in {}", dir.display()))?;
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let skipped_dirs = ["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];
        if kind.is_dir() {
            if host_dev && skipped_dirs.iter().any(|d| name == *d) {
                continue;
            }
            found.extend(nodes_below(
                &entry.path(),
                &container.join(&name),
                host_dev,
            )?);
        } else if host_dev && (name == "console" || name == "ptmx") {
            continue;
        } else if let Some(device) = node(&entry.path(), &container.join(&name))? {
            found.push(device);
        }
    }
    Ok(found)
}

/// The node at `path` (not following a symlink), to be made at `container`; `None` for
/// anything but a block or character device.
fn node(path: &Path, container: &Path) -> Result<Option<LinuxDevice>> {
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
    };
    let typ = match metadata.file_type() {
        t if t.is_block_device() => B,
        t if t.is_char_device() => C,
        _ => return Ok(None),
    };
    let rdev = metadata.rdev();
    let mut device = LinuxDevice::default();
    device.set_path(PathBuf::from(container));
    device.set_typ(typ);
    device.set_major(i64::from(nix::sys::stat::major(rdev) as u32));
    device.set_minor(i64::from(nix::sys::stat::minor(rdev) as u32));
    device.set_file_mode(Some(metadata.mode() & 0o7777));
    device.set_uid(Some(metadata.uid()));
    device.set_gid(Some(metadata.gid()));
    Ok(Some(device))
}

/// Adds `more` to `devices`, each replacing one of the same path.
pub fn merge(devices: &mut Vec<LinuxDevice>, more: Vec<LinuxDevice>) {
    for device in more {
        devices.retain(|d| d.path() != device.path());
        devices.push(device);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::devices::rules::{Filter, Kind, MKNOD, READ, WRITE};

    #[test]
    fn dockers_rules_allow_its_list_and_mknod() {
        let filter = Filter::new(&docker_rules(false)).unwrap();
        assert!(!filter.default_allow);
        let lines: Vec<String> = filter.exceptions.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            lines,
            [
                "b *:* m",
                "c *:* m",
                "c 1:3 rwm",
                "c 1:5 rwm",
                "c 1:7 rwm",
                "c 1:8 rwm",
                "c 1:9 rwm",
                "c 5:0 rwm",
                "c 5:1 rwm",
                "c 5:2 rwm",
                "c 10:200 rwm",
                "c 136:* rwm",
            ]
        );
        let host = Filter::new(&docker_rules(true)).unwrap();
        assert!(!host.allows(Kind::Char, 10, 232, MKNOD));
        assert!(!host.allows(Kind::Char, 5, 1, MKNOD));
        assert!(host.allows(Kind::Char, 5, 1, READ | WRITE));
        assert!(host.allows(Kind::Char, 1, 3, MKNOD));
        assert!(Filter::new(&privileged_rules()).unwrap().allows_all());
    }

    #[test]
    fn cgroup_rules_follow_dockers_grammar() {
        let rule = parse_cgroup_rule("c 10:237 rwm").unwrap();
        assert_eq!(rule.to_string(), "c 10:237 rwm");
        assert_eq!(parse_cgroup_rule("b *:* m").unwrap().to_string(), "b *:* m");
        for bad in [
            "c 10:237", "x 1:2 r", "c 1:2 rx", "c 1:2  r", "c -1:2 r", "c 1 r", "c a:1 r",
        ] {
            assert!(parse_cgroup_rule(bad).is_err(), "{bad}");
        }
        // A --device-cgroup-rule widens Docker's list where the user puts it.
        let filter = Filter::new(&rules(
            false,
            vec![parse_cgroup_rule("c 10:237 rw").unwrap()],
        ))
        .unwrap();
        assert!(filter.allows(Kind::Char, 10, 237, READ | WRITE));
        // --device /dev/fuse overrides moby's deny, which comes before it.
        let filter = Filter::new(&rules(
            false,
            vec![parse_cgroup_rule("c 10:229 rwm").unwrap()],
        ))
        .unwrap();
        assert!(filter.allows(Kind::Char, 10, 229, READ | WRITE));
    }

    #[test]
    fn devices_are_nodes_of_the_host() {
        let (devices, rules) = parse_device("/dev/null:/dev/mine:r").unwrap();
        assert_eq!(devices.len(), 1);
        assert_eq!(devices[0].path(), Path::new("/dev/mine"));
        assert_eq!((devices[0].major(), devices[0].minor()), (1, 3));
        assert_eq!(rules[0].to_string(), "c 1:3 r");
        let (devices, rules) = parse_device("/dev/null:rw").unwrap();
        assert_eq!(devices[0].path(), Path::new("/dev/null"));
        assert_eq!(rules[0].to_string(), "c 1:3 rw");
        for bad in [
            "/etc/hostname",
            "/nosuch",
            "dev/null",
            "/dev/null:/x:rx",
            "/dev/null:/a:r:b",
            "/dev/null:x",
        ] {
            assert!(parse_device(bad).is_err(), "{bad}");
        }
        let mut all = crate::spec::mounts::default_devices();
        merge(&mut all, devices);
        assert_eq!(all.len(), 6, "the host's /dev/null replaces the default");
    }

    #[test]
    fn privileged_gets_the_hosts_nodes() {
        let devices = host_devices().unwrap();
        let paths: Vec<&Path> = devices.iter().map(|d| d.path().as_path()).collect();
        assert!(paths.contains(&Path::new("/dev/null")));
        assert!(!paths.contains(&Path::new("/dev/console")));
        assert!(!paths.contains(&Path::new("/dev/ptmx")));
        assert!(!paths.iter().any(|p| p.starts_with("/dev/pts")));
        let _ = WRITE;
    }
}
