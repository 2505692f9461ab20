//! The container's mounts as spec values: Docker's defaults for a root filesystem (/proc,
//! /dev, /sys, the /etc files), `-v` volumes and `--tmpfs` mounts, masked and read-only paths,
//! and the default device nodes.

use anyhow::{Context, Result, bail};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount};
use std::path::{Path, PathBuf};

/// /proc and /sys paths hidden from the container, as in Docker's default spec.
const MASKED_PATHS: [&str; 12] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
];

/// /proc paths the container may read but not write.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The files under /etc that the runner writes into the container's state directory and
/// bind-mounts, so that the root filesystem is not edited for them.
pub const ETC_FILES: [&str; 3] = ["resolv.conf", "hostname", "hosts"];

pub fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut mount = Mount::default();
    mount.set_destination(PathBuf::from(destination));
    mount.set_typ(Some(typ.to_string()));
    mount.set_source(Some(PathBuf::from(source)));
    mount.set_options(Some(options.iter().map(|o| o.to_string()).collect()));
    mount
}

pub fn proc_mount() -> Mount {
    mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])
}

/// Docker's mounts for a container with its own root filesystem, in order.
pub fn rootfs_mounts(state_dir: &Path, privileged: bool) -> Vec<Mount> {
    let mut mounts = vec![
        proc_mount(),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
    ];
    mounts.extend(sys_mounts(privileged));
    for file in ETC_FILES {
        let source = state_dir.join(file);
        mounts.push(mount(
            &format!("/etc/{file}"),
            "bind",
            &source.to_string_lossy(),
            &["rbind", "rprivate"],
        ));
    }
    mounts
}

/// A fresh sysfs at /sys and the container's own cgroup at /sys/fs/cgroup, read-only unless
/// `privileged`, as Docker mounts them: in every container, with or without a root
/// filesystem of its own.
pub fn sys_mounts(privileged: bool) -> Vec<Mount> {
    let mode = if privileged { "rw" } else { "ro" };
    vec![
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", mode],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", mode],
        ),
    ]
}

/// Removes `option` from the mount at `destination`.
pub fn drop_option(mounts: &mut [Mount], destination: &str, option: &str) {
    for mount in mounts
        .iter_mut()
        .filter(|m| m.destination() == Path::new(destination))
    {
        if let Some(options) = mount.options_mut() {
            options.retain(|o| o != option);
        }
    }
}

/// Docker's masked paths, with each CPU's thermal_throttle directory that exists here.
pub fn masked_paths() -> Vec<String> {
    let mut paths: Vec<String> = MASKED_PATHS.iter().map(|p| p.to_string()).collect();
    if let Ok(cpus) = std::fs::read_dir("/sys/devices/system/cpu") {
        let mut throttles: Vec<String> = cpus
            .flatten()
            .map(|cpu| cpu.path().join("thermal_throttle"))
            .filter(|path| path.exists())
            .map(|path| path.to_string_lossy().into_owned())
            .collect();
        throttles.sort();
        paths.extend(throttles);
    }
    paths
}

/// The device nodes every container gets: null, zero, full, random, urandom, tty.
pub fn default_devices() -> Vec<LinuxDevice> {
    [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
    .into_iter()
    .map(|(path, major, minor)| {
        let mut device = LinuxDevice::default();
        device.set_path(PathBuf::from(path));
        device.set_typ(LinuxDeviceType::C);
        device.set_major(major);
        device.set_minor(minor);
        device.set_file_mode(Some(0o666));
        device.set_uid(Some(0));
        device.set_gid(Some(0));
        device
    })
    .collect()
}

/// `-v SRC:DST[:ro|rw]`: a bind mount of an existing host path. A relative SRC is taken from
/// the current directory; names without a slash would be Docker's named volumes, which do
/// not exist here.
pub fn parse_volume(value: &str) -> Result<Mount> {
    let what = || format!("invalid volume {value:?}");
    let parts: Vec<&str> = value.split(':').collect();
    let (source, destination, options) = match parts.as_slice() {
        [source, destination] => (*source, *destination, ""),
        [source, destination, options] => (*source, *destination, *options),
        _ => bail!("{}: use SRC:DST[:ro|rw]", what()),
    };
    if source.is_empty() || destination.is_empty() {
        bail!("{}: use SRC:DST[:ro|rw]", what());
    }
    if !source.starts_with('/') && !source.starts_with('.') {
        bail!(
            "{}: named volumes are not supported; give a host path",
            what()
        );
    }
    let source =
        std::fs::canonicalize(source).with_context(|| format!("{}: source {source}", what()))?;
    let destination = absolute_destination(destination).with_context(what)?;
    let mut mount_options = vec!["rbind", "rprivate"];
    for option in options.split(',').filter(|o| !o.is_empty()) {
        match option {
            "ro" | "rw" => mount_options.push(option),
            other => bail!("{}: unknown option {other:?} (use ro or rw)", what()),
        }
    }
    Ok(mount(
        &destination,
        "bind",
        &source.to_string_lossy(),
        &mount_options,
    ))
}

/// `--tmpfs DST[:OPTIONS]`: a tmpfs, nosuid, nodev and noexec unless the options say
/// otherwise, as in Docker.
pub fn parse_tmpfs(value: &str) -> Result<Mount> {
    let what = || format!("invalid --tmpfs {value:?}");
    let (destination, options) = value.split_once(':').unwrap_or((value, ""));
    let destination = absolute_destination(destination).with_context(what)?;
    let mut mount_options = vec!["nosuid", "nodev", "noexec"];
    for option in options.split(',').filter(|o| !o.is_empty()) {
        let key = option.split('=').next().unwrap_or_default();
        let known_flag = [
            "ro", "rw", "exec", "noexec", "suid", "nosuid", "dev", "nodev", "noatime",
        ]
        .contains(&option);
        let known_key = ["size", "mode", "uid", "gid", "nr_inodes", "nr_blocks"].contains(&key)
            && option.contains('=');
        if !known_flag && !known_key {
            bail!("{}: unknown option {option:?}", what());
        }
        mount_options.push(option);
    }
    Ok(mount(&destination, "tmpfs", "tmpfs", &mount_options))
}

fn absolute_destination(destination: &str) -> Result<String> {
    if !destination.starts_with('/') {
        bail!("destination {destination:?} must be an absolute path");
    }
    if Path::new(destination).components().count() == 1 {
        bail!("destination cannot be /");
    }
    Ok(destination.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(mount: &Mount) -> Vec<String> {
        mount.options().clone().unwrap()
    }

    #[test]
    fn volumes() {
        let volume = parse_volume("/tmp:/data:ro").unwrap();
        assert_eq!(volume.destination(), Path::new("/data"));
        assert_eq!(volume.source().as_deref(), Some(Path::new("/tmp")));
        assert_eq!(options(&volume), ["rbind", "rprivate", "ro"]);
        assert_eq!(
            options(&parse_volume("/tmp:/data").unwrap()),
            ["rbind", "rprivate"]
        );
        for bad in [
            "/tmp",
            "/tmp:",
            ":/data",
            "/tmp:data",
            "/tmp:/",
            "/tmp:/data:rx",
            "/tmp:/a:ro:x",
            "myvolume:/data",
            "/nonexistent/source:/data",
        ] {
            assert!(parse_volume(bad).is_err(), "{bad:?}");
        }
        let err = parse_volume("/nonexistent/source:/data").unwrap_err();
        assert_eq!(
            crate::errors::describe(&err),
            "invalid volume \"/nonexistent/source:/data\": source /nonexistent/source: No such file or directory"
        );
    }

    #[test]
    fn tmpfs_mounts() {
        let tmpfs = parse_tmpfs("/run:size=1m,mode=1777").unwrap();
        assert_eq!(
            options(&tmpfs),
            ["nosuid", "nodev", "noexec", "size=1m", "mode=1777"]
        );
        assert_eq!(
            parse_tmpfs("/tmp").unwrap().destination(),
            Path::new("/tmp")
        );
        for bad in ["tmp", "/", "/tmp:bogus", "/tmp:size"] {
            assert!(parse_tmpfs(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn masked_paths_include_dockers() {
        let paths = masked_paths();
        assert!(paths.contains(&"/proc/kcore".to_string()));
        assert!(paths.contains(&"/sys/firmware".to_string()));
    }
}
