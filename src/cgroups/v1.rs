//! cgroup v1, and the hybrid layout: a hierarchy per controller (or group of controllers)
//! mounted at `/sys/fs/cgroup/<name>`. The container gets a directory in each hierarchy it
//! needs, below the runner's own cgroup in that hierarchy: always the freezer (to kill it),
//! the devices hierarchy whenever the spec has device rules (it must be there: see
//! [`Devices`]), and memory, cpu, cpuset, pids, cpuacct only for the flags that use them.

use super::{Accounting, Devices, Layout, Need, Plan, PlannedDir, Setting, Usage, files};
use anyhow::{Context, Result, bail};
use oci_spec::runtime::LinuxResources;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long the freezer gets to stop every process before they are killed anyway.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(1);

/// A mounted hierarchy and the runner's cgroup in it.
#[derive(Debug)]
struct Hierarchy {
    controllers: Vec<String>,
    mount: PathBuf,
    /// As /proc/self/cgroup gives it: absolute within the hierarchy.
    own: PathBuf,
}

impl Hierarchy {
    /// Where `cgroups_path` is in this hierarchy: from its root when absolute, else below
    /// the runner's own cgroup.
    fn cgroup_path(&self, cgroups_path: &Path) -> PathBuf {
        match cgroups_path.strip_prefix("/") {
            Ok(from_root) => self.mount.join(from_root),
            Err(_) => self
                .mount
                .join(self.own.strip_prefix("/").unwrap_or(&self.own))
                .join(cgroups_path),
        }
    }
}

/// The hierarchy holding `controller`, from the runner's `/proc/self/cgroup` lines
/// (`id:controllers:path`), if it is mounted where it should be.
fn find_hierarchy(root: &Path, own_cgroups: &str, controller: &str) -> Option<Hierarchy> {
    own_cgroups.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let (_, list, own) = (fields.next()?, fields.next()?, fields.next()?);
        if !list.split(',').any(|c| c == controller) {
            return None;
        }
        // Co-mounted controllers: `cpu,cpuacct`, usually with a `cpu` link to it.
        let mount = [list, controller]
            .into_iter()
            .map(|name| root.join(name))
            .find(|mount| is_v1_mount(mount))?;
        Some(Hierarchy {
            controllers: list.split(',').map(String::from).collect(),
            mount,
            own: PathBuf::from(own),
        })
    })
}

fn is_v1_mount(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::CGROUP_SUPER_MAGIC)
}

pub(super) fn plan(
    root: &Path,
    own_cgroups: &str,
    cgroups_path: &Path,
    resources: Option<&LinuxResources>,
    accounting: Accounting,
    devices: Option<Devices>,
) -> Result<Plan> {
    let mut needs = vec![Need {
        controller: "freezer",
        flag: None,
    }];
    if devices.is_some() {
        needs.push(Need {
            controller: "devices",
            flag: None,
        });
    }
    needs.extend(super::needs(resources, accounting));
    if accounting.stats {
        needs.push(Need {
            controller: "cpuacct",
            flag: Some("--stats"),
        });
    }
    let mut dirs: Vec<PlannedDir> = Vec::new();
    for need in needs {
        if dirs
            .iter()
            .any(|dir| dir.controllers.iter().any(|c| c == need.controller))
        {
            continue; // co-mounted with one already planned
        }
        let Some(hierarchy) = find_hierarchy(root, own_cgroups, need.controller) else {
            let reason = format!(
                "no hierarchy mounted at {}",
                root.join(need.controller).display()
            );
            match &devices {
                Some(devices) if need.controller == "devices" => devices.unavailable(&format!(
                    "the devices cgroup controller is not available ({reason})"
                ))?,
                _ => super::missing(need, &reason)?,
            }
            continue;
        };
        let path = hierarchy.cgroup_path(cgroups_path);
        let parent = path.parent().unwrap_or(root);
        if !parent.is_dir() {
            bail!(
                "creating the container's cgroup: its parent {} does not exist (--cgroup-parent must name an existing cgroup)",
                parent.display()
            );
        }
        let mut settings = Vec::new();
        for controller in &hierarchy.controllers {
            settings.extend(settings_for(controller, resources, parent)?);
            if let Some(devices) = devices.as_ref().filter(|_| controller == "devices") {
                settings.extend(super::devices::v1::settings(&devices.filter));
            }
        }
        dirs.push(PlannedDir {
            path,
            controllers: hierarchy.controllers,
            settings,
        });
    }
    Ok(Plan {
        layout: Layout::V1,
        setup: Vec::new(),
        dirs,
        bpf_devices: None,
    })
}

/// The files `controller` sets from the limits, in the order they must be written.
fn settings_for(
    controller: &str,
    resources: Option<&LinuxResources>,
    parent: &Path,
) -> Result<Vec<Setting>> {
    let Some(resources) = resources else {
        return Ok(Vec::new());
    };
    let mut settings = Vec::new();
    match controller {
        "memory" => {
            let Some(memory) = resources.memory() else {
                return Ok(settings);
            };
            if let Some(limit) = memory.limit() {
                settings.push(Setting::new("memory.limit_in_bytes", limit));
                // Memory plus swap; a new cgroup's is unlimited already. Without swap
                // accounting the file is missing: only Docker's default may then be skipped.
                match memory.swap() {
                    None | Some(-1) => {}
                    Some(swap) => settings.push(Setting {
                        optional: swap == limit.saturating_mul(2),
                        ..Setting::new("memory.memsw.limit_in_bytes", swap)
                    }),
                }
            }
        }
        "cpu" => {
            let Some(cpu) = resources.cpu() else {
                return Ok(settings);
            };
            if let Some(quota) = cpu.quota() {
                if let Some(period) = cpu.period() {
                    settings.push(Setting::new("cpu.cfs_period_us", period));
                }
                settings.push(Setting::new("cpu.cfs_quota_us", quota));
            }
            if let Some(shares) = cpu.shares() {
                settings.push(Setting::new("cpu.shares", shares));
            }
        }
        "cpuset" => {
            let Some(cpu) = resources.cpu() else {
                return Ok(settings);
            };
            if let Some(cpus) = cpu.cpus() {
                settings.push(Setting::new("cpuset.cpus", cpus));
                // A new cpuset has no memory nodes, and takes no process without them.
                let mems = match cpu.mems() {
                    Some(mems) => mems.clone(),
                    None => parent_value(parent, "cpuset.mems")?,
                };
                settings.push(Setting::new("cpuset.mems", mems));
            }
        }
        "pids" => {
            if let Some(pids) = resources.pids().filter(|p| p.limit() > 0) {
                settings.push(Setting::new("pids.max", pids.limit()));
            }
        }
        _ => {}
    }
    Ok(settings)
}

fn parent_value(parent: &Path, file: &str) -> Result<String> {
    let path = parent.join(file);
    let value =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let value = value.trim();
    if value.is_empty() {
        bail!("{} is empty: give the parent cgroup some", path.display());
    }
    Ok(value.to_string())
}

/// The OOM killer's own count (`oom_kill` in memory.oom_control, Linux 4.13+); on older
/// kernels, whether the limit was ever hit.
pub(super) fn oom_killed(memory: &Path) -> bool {
    let control = std::fs::read_to_string(memory.join("memory.oom_control")).unwrap_or_default();
    match files::keyed_number(&control, "oom_kill") {
        Some(kills) => kills > 0,
        None => files::read_number(&memory.join("memory.failcnt")).is_some_and(|n| n > 0),
    }
}

/// `--stats` from cpuacct, memory and pids.
pub(super) fn usage(cpuacct: Option<&Path>, memory: Option<&Path>, pids: Option<&Path>) -> Usage {
    let cpu = cpuacct.and_then(|dir| {
        let total = files::read_number(&dir.join("cpuacct.usage"))?;
        let user = files::read_number(&dir.join("cpuacct.usage_user")).unwrap_or(0);
        let system = files::read_number(&dir.join("cpuacct.usage_sys")).unwrap_or(0);
        let (user, system) = split_cpu(total, user, system);
        Some((Duration::from_nanos(user), Duration::from_nanos(system)))
    });
    Usage {
        wall: Duration::ZERO,
        cpu,
        memory_peak: memory
            .and_then(|dir| files::read_number(&dir.join("memory.max_usage_in_bytes"))),
        pids_peak: pids.and_then(|dir| files::read_number(&dir.join("pids.peak"))),
    }
}

/// cpuacct's total (`cpuacct.usage`) is exact to the nanosecond, its user/system split is
/// counted in scheduler ticks: split the exact total in the ticks' proportion, as the kernel
/// does for getrusage(2) and cgroup v2's cpu.stat.
fn split_cpu(total: u64, user_ticks: u64, system_ticks: u64) -> (u64, u64) {
    match (user_ticks, system_ticks) {
        (_, 0) => (total, 0),
        (0, _) => (0, total),
        (user, system) => {
            let system = (u128::from(total) * u128::from(system)
                / (u128::from(user) + u128::from(system))) as u64;
            (total - system, system)
        }
    }
}

/// Kills every process in the container's cgroups: freeze (so nothing forks meanwhile),
/// SIGKILL each pid, thaw so that the signals are delivered.
pub(super) fn kill(dirs: &[PathBuf]) {
    let freezer = dirs.iter().find(|dir| dir.join("freezer.state").exists());
    if let Some(dir) = freezer {
        let state = dir.join("freezer.state");
        let frozen = files::write(&state, "FROZEN").is_ok()
            && files::wait_for(FREEZE_TIMEOUT, || {
                std::fs::read_to_string(&state).is_ok_and(|s| s.trim() == "FROZEN")
            });
        if !frozen {
            log::warn!("freezing {} failed: killing without it", dir.display());
        }
    }
    let mut pids: Vec<i32> = dirs
        .iter()
        .flat_map(|dir| files::pids_in_tree(dir))
        .collect();
    pids.sort_unstable();
    pids.dedup();
    files::kill_pids(&pids);
    if let Some(dir) = freezer {
        let _ = files::write(&dir.join("freezer.state"), "THAWED");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::RunArgs;

    fn resources(args: RunArgs) -> LinuxResources {
        crate::spec::resources::from_args(&args, "x")
            .unwrap()
            .resources
            .unwrap()
    }

    fn files_of(settings: Vec<Setting>) -> Vec<(String, String, bool)> {
        settings
            .into_iter()
            .map(|s| (s.file.to_string(), s.value, s.optional))
            .collect()
    }

    #[test]
    fn memory_limits_come_before_memory_plus_swap() {
        let limits = resources(RunArgs {
            memory: Some("32m".into()),
            ..RunArgs::default()
        });
        let settings = settings_for("memory", Some(&limits), Path::new("/")).unwrap();
        assert_eq!(
            files_of(settings),
            [
                ("memory.limit_in_bytes".into(), "33554432".into(), false),
                (
                    "memory.memsw.limit_in_bytes".into(),
                    "67108864".into(),
                    true
                ),
            ]
        );
        let limits = resources(RunArgs {
            memory: Some("32m".into()),
            memory_swap: Some("48m".into()),
            ..RunArgs::default()
        });
        let settings = settings_for("memory", Some(&limits), Path::new("/")).unwrap();
        assert_eq!(
            files_of(settings)[1],
            (
                "memory.memsw.limit_in_bytes".into(),
                "50331648".into(),
                false
            ),
            "an explicit --memory-swap is required"
        );
        let limits = resources(RunArgs {
            memory: Some("32m".into()),
            memory_swap: Some("-1".into()),
            ..RunArgs::default()
        });
        assert_eq!(
            settings_for("memory", Some(&limits), Path::new("/"))
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn cpu_quota_is_written_after_its_period() {
        let limits = resources(RunArgs {
            cpus: Some("0.5".into()),
            cpu_shares: Some("512".into()),
            ..RunArgs::default()
        });
        assert_eq!(
            files_of(settings_for("cpu", Some(&limits), Path::new("/")).unwrap()),
            [
                ("cpu.cfs_period_us".into(), "100000".into(), false),
                ("cpu.cfs_quota_us".into(), "50000".into(), false),
                ("cpu.shares".into(), "512".into(), false),
            ]
        );
        assert!(
            settings_for("cpuacct", Some(&limits), Path::new("/"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn cpu_time_is_the_exact_total_split_by_ticks() {
        assert_eq!(split_cpu(358_747_171, 340, 16), (342_623_703, 16_123_468));
        assert_eq!(split_cpu(1_000, 0, 0), (1_000, 0));
        assert_eq!(split_cpu(1_000, 0, 5), (0, 1_000));
        let (user, system) = split_cpu(u64::MAX, u64::MAX, u64::MAX);
        assert_eq!(user + system, u64::MAX);
    }

    #[test]
    fn a_missing_hierarchy_fails_only_the_flag_that_needs_it() {
        // A directory with nothing mounted in it: no hierarchy at all.
        let root = std::env::temp_dir();
        let own = "6:freezer:/\n4:memory:/\n";
        let plain = plan(
            &root,
            own,
            Path::new("mini-container-x"),
            None,
            Accounting::default(),
            None,
        )
        .unwrap();
        assert!(plain.paths().is_empty(), "no freezer: run without a cgroup");
        let limits = resources(RunArgs {
            memory: Some("64m".into()),
            ..RunArgs::default()
        });
        let err = plan(
            &root,
            own,
            Path::new("mini-container-x"),
            Some(&limits),
            Accounting::default(),
            None,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "--memory: the memory cgroup controller is not available (no hierarchy mounted at {})",
                root.join("memory").display()
            )
        );
    }

    #[test]
    fn device_rules_fail_closed_without_the_devices_hierarchy() {
        let root = std::env::temp_dir();
        let own = "6:freezer:/\n5:devices:/\n";
        let filter = crate::cgroups::devices::filter_of(Some(&docker_resources()))
            .unwrap()
            .unwrap();
        let devices = |required| Devices {
            filter: filter.clone(),
            required,
        };
        let err = plan(
            &root,
            own,
            Path::new("mini-container-x"),
            None,
            Accounting::default(),
            Some(devices(true)),
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "applying the device rules: the devices cgroup controller is not available (no hierarchy mounted at {})",
                root.join("devices").display()
            )),
            "{err}"
        );
        // In a user namespace they are not required.
        plan(
            &root,
            own,
            Path::new("mini-container-x"),
            None,
            Accounting::default(),
            Some(devices(false)),
        )
        .unwrap();
    }

    fn docker_resources() -> LinuxResources {
        let mut resources = LinuxResources::default();
        resources.set_devices(Some(crate::spec::devices::docker_rules(false)));
        resources
    }

    /// On this host's devices hierarchy (root only): the container's directory is planned
    /// there, with deny-all first.
    #[test]
    fn device_rules_go_to_the_devices_hierarchy() {
        let root = Path::new(super::super::ROOT);
        if !is_v1_mount(&root.join("devices")) {
            // A pure cgroup v2 host (the guest of tests/vm): bpf.rs covers it.
            return;
        }
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let filter = crate::cgroups::devices::filter_of(Some(&docker_resources()))
            .unwrap()
            .unwrap();
        let plan = plan(
            root,
            &own,
            Path::new("mini-container-x"),
            None,
            Accounting::default(),
            Some(Devices {
                filter,
                required: true,
            }),
        )
        .unwrap();
        let dir = plan
            .dirs
            .iter()
            .find(|dir| dir.controllers.iter().any(|c| c == "devices"))
            .expect("a directory in the devices hierarchy");
        assert_eq!(dir.settings[0].file, "devices.deny");
        assert_eq!(dir.settings[0].value, "a");
        assert!(dir.settings[1..].iter().all(|s| s.file == "devices.allow"));
        assert!(!plan.has_limits(), "device rules are not limits");
    }

    #[test]
    fn hierarchies_come_from_proc_self_cgroup() {
        let own = "4:memory:/process_api/abc\n2:cpu,cpuacct:/\n0::/\n";
        // The test host's own mounts decide whether a hierarchy is found; the parsing of
        // the path below the runner's cgroup does not.
        let hierarchy = Hierarchy {
            controllers: vec!["memory".into()],
            mount: PathBuf::from("/sys/fs/cgroup/memory"),
            own: PathBuf::from("/process_api/abc"),
        };
        assert_eq!(
            hierarchy.cgroup_path(Path::new("mini-container-x")),
            Path::new("/sys/fs/cgroup/memory/process_api/abc/mini-container-x")
        );
        assert_eq!(
            hierarchy.cgroup_path(Path::new("/batch/mini-container-x")),
            Path::new("/sys/fs/cgroup/memory/batch/mini-container-x")
        );
        let tmp = std::env::temp_dir();
        assert!(
            find_hierarchy(&tmp, own, "memory").is_none(),
            "a directory that is not a cgroup mount is not a hierarchy"
        );
        assert!(find_hierarchy(Path::new(super::super::ROOT), own, "nosuch").is_none());
    }
}
