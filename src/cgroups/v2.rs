//! cgroup v2: one unified hierarchy. The container gets one directory below the runner's own
//! cgroup; the controllers its limits need are enabled in `cgroup.subtree_control` from the
//! root down to its parent, where they are not already.

use super::{Accounting, Layout, Plan, PlannedDir, Setting, Usage, files};
use anyhow::{Context, Result, bail};
use oci_spec::runtime::LinuxResources;
use std::path::Path;
use std::time::Duration;

/// How long the freezer gets (kernels before 5.14, without cgroup.kill).
const FREEZE_TIMEOUT: Duration = Duration::from_secs(1);

pub(super) fn plan(
    root: &Path,
    own_cgroups: &str,
    cgroups_path: &Path,
    resources: Option<&LinuxResources>,
    accounting: Accounting,
) -> Result<Plan> {
    let own = own_cgroups
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .context("reading /proc/self/cgroup: the runner has no cgroup v2 entry")?;
    let path = match cgroups_path.strip_prefix("/") {
        Ok(from_root) => root.join(from_root),
        Err(_) => root.join(own.trim_start_matches('/')).join(cgroups_path),
    };
    let parent = path.parent().unwrap_or(root);
    if !parent.is_dir() {
        bail!(
            "creating the container's cgroup: its parent {} does not exist (--cgroup-parent must name an existing cgroup)",
            parent.display()
        );
    }

    let available = read_list(&root.join("cgroup.controllers"));
    let mut controllers = Vec::new();
    for need in super::needs(resources, accounting) {
        if available.iter().any(|c| c == need.controller) {
            controllers.push(need.controller.to_string());
        } else {
            super::missing(need, "not in the cgroup v2 root's cgroup.controllers")?;
        }
    }

    // Each level passes the controllers down to the next, from the root to the parent.
    let mut setup = Vec::new();
    let mut level = root.to_path_buf();
    let below_root = parent.strip_prefix(root).unwrap_or(Path::new(""));
    for name in std::iter::once(None).chain(below_root.iter().map(Some)) {
        if let Some(name) = name {
            level.push(name);
        }
        let file = level.join("cgroup.subtree_control");
        let enabled = read_list(&file);
        let missing: Vec<String> = controllers
            .iter()
            .filter(|c| !enabled.contains(c))
            .map(|c| format!("+{c}"))
            .collect();
        if !missing.is_empty() {
            setup.push((file, missing.join(" ")));
        }
    }

    Ok(Plan {
        layout: Layout::V2,
        setup,
        dirs: vec![PlannedDir {
            path,
            controllers,
            settings: settings(resources),
        }],
        bpf_devices: None,
    })
}

fn read_list(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// The files the limits set, in the order they are written.
fn settings(resources: Option<&LinuxResources>) -> Vec<Setting> {
    let Some(resources) = resources else {
        return Vec::new();
    };
    let mut settings = Vec::new();
    if let Some(memory) = resources.memory()
        && let Some(limit) = memory.limit()
    {
        settings.push(Setting::new("memory.max", limit));
        // The spec counts memory plus swap, v2 swap alone. Without swap accounting the file
        // is missing: only Docker's default may then be skipped.
        match memory.swap() {
            None | Some(-1) => {}
            Some(swap) => settings.push(Setting {
                optional: swap == limit.saturating_mul(2),
                ..Setting::new("memory.swap.max", swap.saturating_sub(limit).max(0))
            }),
        }
    }
    if let Some(cpu) = resources.cpu() {
        if let Some(quota) = cpu.quota() {
            let period = cpu.period().unwrap_or(crate::spec::resources::CPU_PERIOD);
            settings.push(Setting::new("cpu.max", format!("{quota} {period}")));
        }
        if let Some(shares) = cpu.shares() {
            settings.push(Setting::new("cpu.weight", shares_to_weight(shares)));
        }
        if let Some(cpus) = cpu.cpus() {
            settings.push(Setting::new("cpuset.cpus", cpus));
        }
        if let Some(mems) = cpu.mems() {
            settings.push(Setting::new("cpuset.mems", mems));
        }
    }
    if let Some(pids) = resources.pids().filter(|p| p.limit() > 0) {
        settings.push(Setting::new("pids.max", pids.limit()));
    }
    settings
}

/// v1's cpu.shares (2 to 262144, default 1024) as v2's cpu.weight (1 to 10000, default
/// 100), by the OCI runtimes' formula.
fn shares_to_weight(shares: u64) -> u64 {
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

/// The OOM killer's own count, in memory.events.
pub(super) fn oom_killed(dir: &Path) -> bool {
    let events = std::fs::read_to_string(dir.join("memory.events")).unwrap_or_default();
    files::keyed_number(&events, "oom_kill").is_some_and(|kills| kills > 0)
}

/// `--stats` from cpu.stat (always there), memory.peak (5.19+) and pids.peak (6.1+).
pub(super) fn usage(dir: &Path) -> Usage {
    let stat = std::fs::read_to_string(dir.join("cpu.stat")).unwrap_or_default();
    let micros = |key| files::keyed_number(&stat, key).map(Duration::from_micros);
    let cpu = micros("user_usec").zip(micros("system_usec"));
    Usage {
        wall: Duration::ZERO,
        cpu,
        memory_peak: files::read_number(&dir.join("memory.peak")),
        pids_peak: files::read_number(&dir.join("pids.peak")),
    }
}

/// Kills every process in the cgroup and below: cgroup.kill (5.14+), else freeze, SIGKILL
/// each pid, thaw.
pub(super) fn kill(dir: &Path) {
    match files::write(&dir.join("cgroup.kill"), "1") {
        Ok(()) => return,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound && dir.is_dir() => {}
        Err(err) => {
            log::warn!("killing cgroup {}: {err}", dir.display());
            return;
        }
    }
    let frozen = files::write(&dir.join("cgroup.freeze"), "1").is_ok()
        && files::wait_for(FREEZE_TIMEOUT, || {
            let events = std::fs::read_to_string(dir.join("cgroup.events")).unwrap_or_default();
            files::keyed_number(&events, "frozen") == Some(1)
        });
    if !frozen {
        log::warn!("freezing {} failed: killing without it", dir.display());
    }
    files::kill_pids(&files::pids_in_tree(dir));
    let _ = files::write(&dir.join("cgroup.freeze"), "0");
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cli::RunArgs;
    use std::fs;
    use std::path::PathBuf;

    /// A directory shaped like a cgroup2 mount: the root offers `controllers` and enables
    /// `enabled`; the runner sits in `/user/session`, where nothing is enabled.
    struct FakeCgroupfs {
        root: PathBuf,
    }

    impl FakeCgroupfs {
        fn new(tag: &str, controllers: &str, enabled: &str) -> FakeCgroupfs {
            let root =
                std::env::temp_dir().join(format!("mc-cgroup2-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&root);
            fs::create_dir_all(root.join("user/session")).unwrap();
            fs::write(root.join("cgroup.controllers"), controllers).unwrap();
            fs::write(root.join("cgroup.subtree_control"), enabled).unwrap();
            for dir in ["user", "user/session"] {
                fs::write(root.join(dir).join("cgroup.subtree_control"), "").unwrap();
            }
            FakeCgroupfs { root }
        }

        /// mkdir(2) as cgroupfs does it: the new directory comes with its files.
        fn mkdir(path: &Path) -> std::io::Result<()> {
            fs::create_dir(path)?;
            for (file, value) in [
                ("cgroup.procs", ""),
                ("memory.max", "max\n"),
                ("memory.swap.max", "max\n"),
                ("cpu.max", "max 100000\n"),
                ("cpu.weight", "100\n"),
                ("cpuset.cpus", "\n"),
                ("pids.max", "max\n"),
            ] {
                fs::write(path.join(file), value)?;
            }
            Ok(())
        }
    }

    impl Drop for FakeCgroupfs {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.root);
        }
    }

    fn resources(args: RunArgs) -> LinuxResources {
        crate::spec::resources::from_args(&args, "x")
            .unwrap()
            .resources
            .unwrap()
    }

    const OWN: &str = "0::/user/session\n";
    const LEAF: &str = "mini-container-x";

    #[test]
    fn limits_are_written_and_controllers_enabled_down_the_path() {
        let fake = FakeCgroupfs::new("limits", "cpuset cpu io memory pids", "memory");
        let limits = resources(RunArgs {
            memory: Some("32m".into()),
            cpus: Some("0.5".into()),
            cpu_shares: Some("1024".into()),
            cpuset_cpus: Some("0".into()),
            pids_limit: Some("20".into()),
            ..RunArgs::default()
        });
        let plan = plan(
            &fake.root,
            OWN,
            Path::new(LEAF),
            Some(&limits),
            Accounting::default(),
        )
        .unwrap();
        let leaf = fake.root.join("user/session").join(LEAF);
        assert_eq!(plan.paths(), std::slice::from_ref(&leaf));
        let cgroup = plan.create_with(&FakeCgroupfs::mkdir).unwrap();
        let read = |path: PathBuf| fs::read_to_string(path).unwrap();
        // The root had memory already; each level below gets all four.
        assert_eq!(
            read(fake.root.join("cgroup.subtree_control")),
            "+cpu +cpuset +pids"
        );
        for level in ["user", "user/session"] {
            assert_eq!(
                read(fake.root.join(level).join("cgroup.subtree_control")),
                "+memory +cpu +cpuset +pids"
            );
        }
        assert_eq!(read(leaf.join("memory.max")), "33554432");
        assert_eq!(read(leaf.join("memory.swap.max")), "33554432");
        assert_eq!(read(leaf.join("cpu.max")), "50000 100000");
        assert_eq!(read(leaf.join("cpu.weight")), "39");
        assert_eq!(read(leaf.join("cpuset.cpus")), "0");
        assert_eq!(read(leaf.join("pids.max")), "20");
        cgroup
            .add_process(nix::unistd::Pid::from_raw(4242))
            .unwrap();
        assert_eq!(read(leaf.join("cgroup.procs")), "4242");
        // cgroupfs would remove the directory with its files; a real one is tested below.
        std::mem::forget(cgroup);
    }

    #[test]
    fn a_missing_controller_fails_only_the_flag_that_needs_it() {
        let fake = FakeCgroupfs::new("missing", "cpu memory", "");
        let limits = resources(RunArgs {
            pids_limit: Some("20".into()),
            ..RunArgs::default()
        });
        let err = plan(
            &fake.root,
            OWN,
            Path::new(LEAF),
            Some(&limits),
            Accounting::default(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "--pids-limit: the pids cgroup controller is not available (not in the cgroup v2 root's cgroup.controllers)"
        );
        // --stats counts pids as well: a flag too.
        let err = plan(
            &fake.root,
            OWN,
            Path::new(LEAF),
            None,
            Accounting { stats: true },
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("--stats: the pids cgroup controller")
        );
        // Without flags, nothing is needed.
        let plain = plan(
            &fake.root,
            OWN,
            Path::new(LEAF),
            None,
            Accounting::default(),
        )
        .unwrap();
        assert!(plain.dirs[0].controllers.is_empty());
    }

    #[test]
    fn no_limits_enable_nothing_and_parents_must_exist() {
        let fake = FakeCgroupfs::new("plain", "cpu memory pids", "");
        let plain = plan(
            &fake.root,
            OWN,
            Path::new(LEAF),
            None,
            Accounting::default(),
        )
        .unwrap();
        assert!(plain.setup.is_empty());
        assert!(plain.dirs[0].controllers.is_empty());
        let absolute = plan(
            &fake.root,
            OWN,
            Path::new("/user/mini-container-x"),
            None,
            Accounting::default(),
        )
        .unwrap();
        assert_eq!(absolute.paths(), [fake.root.join("user").join(LEAF)]);
        let err = plan(
            &fake.root,
            OWN,
            Path::new("/nosuch/mini-container-x"),
            None,
            Accounting::default(),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("--cgroup-parent must name an existing cgroup")
        );
    }

    #[test]
    fn swap_is_memory_plus_swap_less_memory() {
        let with = |swap: &str| {
            settings(Some(&resources(RunArgs {
                memory: Some("32m".into()),
                memory_swap: Some(swap.into()),
                ..RunArgs::default()
            })))
        };
        assert_eq!(with("32m")[1].value, "0");
        assert!(!with("48m")[1].optional);
        assert_eq!(with("48m")[1].value, (16 << 20).to_string());
        assert_eq!(
            with("-1").len(),
            1,
            "a new cgroup's swap is unlimited already"
        );
    }

    #[test]
    fn shares_map_to_weights() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
    }

    #[test]
    fn counters_are_read_from_their_files() {
        let fake = FakeCgroupfs::new("counters", "", "");
        let dir = fake.root.join("user/session");
        assert!(!oom_killed(&dir));
        fs::write(
            dir.join("memory.events"),
            "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n",
        )
        .unwrap();
        assert!(oom_killed(&dir));
        fs::write(
            dir.join("cpu.stat"),
            "usage_usec 512400\nuser_usec 410400\nsystem_usec 102000\n",
        )
        .unwrap();
        fs::write(dir.join("memory.peak"), "55050240\n").unwrap();
        let usage = usage(&dir);
        assert_eq!(
            usage.cpu,
            Some((
                Duration::from_micros(410_400),
                Duration::from_micros(102_000)
            ))
        );
        assert_eq!(usage.memory_peak, Some(55_050_240));
        assert_eq!(usage.pids_peak, None, "pids.peak is missing before 6.1");
    }

    /// This host's cgroup2 mount, for the tests that need a real one: the whole of
    /// /sys/fs/cgroup, or the hybrid layout's /sys/fs/cgroup/unified.
    pub(crate) fn cgroup2_mount() -> &'static Path {
        ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
            .into_iter()
            .map(Path::new)
            .find(|path| {
                nix::sys::statfs::statfs(*path)
                    .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
            })
            .expect("this test needs a cgroup2 mount at /sys/fs/cgroup or /sys/fs/cgroup/unified")
    }

    /// The real thing, on this host's cgroup2 mount (the whole of /sys/fs/cgroup, or the
    /// hybrid layout's /sys/fs/cgroup/unified): a process moved into a new cgroup is killed
    /// through cgroup.kill and the cgroup removed. Needs root.
    #[test]
    fn a_real_cgroup2_is_created_killed_and_removed() {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test creates a real cgroup and needs root: run it with sudo"
        );
        let mount = tests::cgroup2_mount();
        let own = fs::read_to_string("/proc/self/cgroup").unwrap();
        let name = format!("mini-container-unit-test-{}", std::process::id());
        let plan = plan(mount, &own, Path::new(&name), None, Accounting::default()).unwrap();
        let dir = plan.paths()[0].clone();
        let cgroup = plan.create().unwrap();
        let mut sleeper = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let pid = nix::unistd::Pid::from_raw(sleeper.id() as i32);
        cgroup.add_process(pid).unwrap();
        assert_eq!(files::pids(&dir), [pid.as_raw()]);
        cgroup.remove().unwrap();
        assert!(!dir.exists(), "{} is left", dir.display());
        let status = sleeper.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
    }
}
