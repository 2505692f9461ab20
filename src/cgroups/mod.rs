//! A container's own cgroup, limits or not, so that its processes can always be counted and
//! killed. The parent plans it from the spec (`linux.cgroupsPath`, `linux.resources`),
//! creates it, has the child join it before it reads its spec, reads its counters when the
//! container ends (the OOM killer, `--stats`), then kills whatever is left in it and removes
//! it, on every path. cgroup v2 and v1 (or hybrid) are told apart at run time; on v1 only the
//! hierarchies a run needs are used.
//!
//! Why the child joins instead of being moved: moving another process (writing its pid to
//! `cgroup.procs`) takes the kernel's global threadgroup lock for writing, which waits for an
//! RCU grace period: 7 to 15 ms on the development VM, three times a whole container start.
//! A thread moving itself on v1 (`0` to `tasks`) skips that lock: 0.2 ms. The child is
//! single-threaded, so moving its thread moves the process. (On v2, `0` to `cgroup.procs`
//! still takes the lock; clone3's CLONE_INTO_CGROUP would avoid it, and is not used yet.)

pub mod devices;
mod files;
mod v1;
mod v2;

use crate::spec::units::format_bytes;
use anyhow::{Context, Result, bail};
use oci_spec::runtime::{LinuxNamespaceType, LinuxResources, Spec};
use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

/// Where the cgroup file systems are mounted.
pub const ROOT: &str = "/sys/fs/cgroup";
/// How long removal waits for killed processes to leave a cgroup.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(5);
/// While processes remain, they are killed again this often (new ones may have forked).
const KILL_INTERVAL: Duration = Duration::from_millis(100);
/// The name of every container's cgroup: `mini-container-<id>`.
const NAME_PREFIX: &str = "mini-container-";

/// How the host's cgroups are mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// A hierarchy per controller (or group of them) at `/sys/fs/cgroup/<controller>`; also
    /// the hybrid layout, whose cgroup2 tree at `/sys/fs/cgroup/unified` has none of them.
    V1,
    /// The unified hierarchy at `/sys/fs/cgroup`.
    V2,
}

impl Layout {
    pub fn detect() -> Layout {
        match nix::sys::statfs::statfs(ROOT) {
            Ok(fs) if fs.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC => Layout::V2,
            _ => Layout::V1,
        }
    }
}

/// What `run` reads from the cgroup besides the OOM killer's count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Accounting {
    /// `--stats`: CPU time, peak memory, peak pids.
    pub stats: bool,
}

/// A controller the container's cgroup uses, and the flag that asked for it; `None` when it
/// is only used if the host has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Need {
    controller: &'static str,
    flag: Option<&'static str>,
}

/// The controllers the limits and `--stats` need, on either layout.
fn needs(resources: Option<&LinuxResources>, accounting: Accounting) -> Vec<Need> {
    let stats = accounting.stats.then_some("--stats");
    let memory = resources.and_then(|r| r.memory().as_ref());
    let cpu = resources.and_then(|r| r.cpu().as_ref());
    let pids = resources.and_then(|r| r.pids().as_ref());
    let mut needs = Vec::new();
    let mut need = |controller, flag: Option<&'static str>| {
        needs.push(Need { controller, flag });
    };
    if memory.is_some_and(|m| m.limit().is_some()) {
        need("memory", Some("--memory"));
    } else if stats.is_some() {
        need("memory", stats);
    }
    if let Some(cpu) = cpu {
        if cpu.quota().is_some() {
            need("cpu", Some("--cpus"));
        } else if cpu.shares().is_some() {
            need("cpu", Some("--cpu-shares"));
        }
        if cpu.cpus().is_some() {
            need("cpuset", Some("--cpuset-cpus"));
        }
    }
    if pids.is_some_and(|p| p.limit() > 0) {
        need("pids", Some("--pids-limit"));
    } else if stats.is_some() {
        need("pids", stats);
    }
    needs
}

/// A controller the host lacks: an error if a flag asked for it, else a debug line.
fn missing(need: Need, reason: &str) -> Result<()> {
    match need.flag {
        Some(flag) => bail!(
            "{flag}: the {} cgroup controller is not available ({reason})",
            need.controller
        ),
        None => {
            log::debug!(
                "cgroup controller {} not available ({reason}): not used",
                need.controller
            );
            Ok(())
        }
    }
}

/// A container's cgroup before it exists: its directories (one per hierarchy on v1, one on
/// v2) and what is written where. Computing it reads the host's cgroups and creates nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    layout: Layout,
    /// Writes to existing cgroups first: v2 enabling controllers in `cgroup.subtree_control`.
    setup: Vec<(PathBuf, String)>,
    dirs: Vec<PlannedDir>,
    /// v2: the device rules, compiled into a BPF program attached to the new directory (on
    /// v1 they are settings of the devices directory).
    bpf_devices: Option<Devices>,
}

/// The device rules a container's cgroup applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Devices {
    filter: devices::Filter,
    /// Whether a run must fail when they cannot be applied: always, but in a user
    /// namespace, where the kernel refuses mknod of devices anyway (and a rootless runner
    /// may not load BPF programs).
    required: bool,
}

impl Devices {
    /// The error (or, when not required, the warning) for rules that cannot be applied.
    fn unavailable(&self, reason: &str) -> Result<()> {
        if self.required {
            bail!(
                "applying the device rules: {reason}; without them the container could open every device of the host (only --privileged runs without device rules)"
            );
        }
        log::debug!("device rules not applied ({reason}): the container is in a user namespace");
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct PlannedDir {
    path: PathBuf,
    /// The controllers the directory is used for.
    controllers: Vec<String>,
    /// The limits, written in order once the directory exists.
    settings: Vec<Setting>,
}

/// A value for one file of the new cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Setting {
    file: &'static str,
    value: String,
    /// Skipped (with a debug line) where the kernel lacks the file: Docker's default swap
    /// limit on a host without swap accounting.
    optional: bool,
}

impl Setting {
    fn new(file: &'static str, value: impl ToString) -> Setting {
        Setting {
            file,
            value: value.to_string(),
            optional: false,
        }
    }
}

impl Plan {
    /// The cgroup the spec describes, on this host.
    pub fn new(spec: &Spec, accounting: Accounting) -> Result<Plan> {
        let linux = spec.linux().as_ref();
        let cgroups_path = linux
            .and_then(|linux| linux.cgroups_path().as_ref())
            .context("reading the container spec: it has no linux.cgroupsPath")?;
        check_cgroups_path(cgroups_path)?;
        let resources = linux.and_then(|linux| linux.resources().as_ref());
        let user_namespace = linux
            .and_then(|linux| linux.namespaces().as_ref())
            .is_some_and(|ns| ns.iter().any(|ns| ns.typ() == LinuxNamespaceType::User));
        let devices = devices::filter_of(resources)?
            .filter(|_| !crate::spec::test_switch::disabled(spec, "devices"));
        let devices = devices.map(|filter| Devices {
            filter,
            required: !user_namespace,
        });
        let own = std::fs::read_to_string("/proc/self/cgroup")
            .context("reading the runner's cgroup from /proc/self/cgroup")?;
        let root = Path::new(ROOT);
        match Layout::detect() {
            Layout::V1 => v1::plan(root, &own, cgroups_path, resources, accounting, devices),
            Layout::V2 => {
                let mut plan = v2::plan(root, &own, cgroups_path, resources, accounting)?;
                plan.bpf_devices = devices;
                Ok(plan)
            }
        }
    }

    /// True if this process may create every directory of the plan: always for root; for a
    /// rootless run only inside a cgroup delegated to its user.
    pub fn is_permitted(&self) -> bool {
        self.dirs.iter().all(|dir| {
            dir.path.parent().is_some_and(|parent| {
                nix::unistd::access(parent, nix::unistd::AccessFlags::W_OK).is_ok()
            })
        }) && self
            .setup
            .iter()
            .all(|(path, _)| nix::unistd::access(path, nix::unistd::AccessFlags::W_OK).is_ok())
    }

    /// True if any directory gets a limit written to it (device rules are not limits).
    pub fn has_limits(&self) -> bool {
        self.dirs.iter().any(|dir| {
            dir.settings
                .iter()
                .any(|setting| !setting.file.starts_with("devices."))
        })
    }

    /// The directories the cgroup will have, to be recorded before they exist.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|dir| dir.path.clone()).collect()
    }

    /// Creates the directories and writes the limits. On failure, what was created is
    /// removed.
    pub fn create(self) -> Result<Cgroup> {
        self.create_with(&|path| std::fs::create_dir(path))
    }

    /// `create`, with the mkdir(2) to use: tests on a temporary directory fill the new
    /// directory with the files the kernel would.
    fn create_with(self, mkdir: &dyn Fn(&Path) -> io::Result<()>) -> Result<Cgroup> {
        for (path, value) in &self.setup {
            log::debug!("writing {value:?} to {}", path.display());
            files::write(path, value).map_err(|err| enable_error(path, value, err))?;
        }
        let mut cgroup = Cgroup {
            layout: self.layout,
            dirs: Vec::new(),
            removed: false,
        };
        for dir in self.dirs {
            log::debug!("creating cgroup {}", dir.path.display());
            mkdir(&dir.path).with_context(|| format!("creating cgroup {}", dir.path.display()))?;
            cgroup.dirs.push(Dir {
                path: dir.path,
                controllers: dir.controllers,
            });
            let path = &cgroup.dirs[cgroup.dirs.len() - 1].path;
            for setting in &dir.settings {
                apply(path, setting)?;
            }
            if let Some(devices) = &self.bpf_devices
                && let Err(err) = devices::bpf::apply(&devices.filter, path)
            {
                devices.unavailable(&crate::errors::describe(&err))?;
            }
        }
        Ok(cgroup)
    }
}

fn apply(dir: &Path, setting: &Setting) -> Result<()> {
    let Setting {
        file,
        value,
        optional,
    } = setting;
    log::debug!("setting {file} to {value} in {}", dir.display());
    match files::write(&dir.join(file), value) {
        Err(err) if *optional && err.kind() == io::ErrorKind::NotFound => {
            log::debug!("{file} does not exist here: not set");
            Ok(())
        }
        result => result.with_context(|| format!("setting {file} to {value} in {}", dir.display())),
    }
}

/// cgroup v2 refuses controllers to the children of a cgroup that has processes of its own.
fn enable_error(path: &Path, value: &str, err: io::Error) -> anyhow::Error {
    let what = format!(
        "enabling cgroup controllers {value:?} in {}",
        path.display()
    );
    if err.raw_os_error() == Some(libc::EBUSY) {
        anyhow::anyhow!(
            "{what}: the cgroup has processes of its own, which cgroup v2 forbids there (try --cgroup-parent)"
        )
    } else {
        anyhow::Error::new(err).context(what)
    }
}

/// A cgroupsPath is a path of plain names, absolute or relative: nothing may climb out.
fn check_cgroups_path(path: &Path) -> Result<()> {
    let plain = path
        .components()
        .enumerate()
        .all(|(i, c)| matches!(c, Component::Normal(_)) || (i == 0 && c == Component::RootDir));
    if !plain || path.file_name().is_none() {
        bail!(
            "invalid cgroupsPath {}: use plain cgroup names separated by '/'",
            path.display()
        );
    }
    Ok(())
}

/// The files a process writes `0` to, to join a running container's cgroup directories
/// (`exec`): as [`Cgroup::join_files`].
pub fn join_files_of(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let file = join_file(Layout::detect());
    dirs.iter().map(|dir| dir.join(file)).collect()
}

fn join_file(layout: Layout) -> &'static str {
    match layout {
        Layout::V1 => "tasks",
        Layout::V2 => "cgroup.procs",
    }
}

/// A container's cgroup: killed and removed when dropped, unless [`Cgroup::remove`] did it.
#[derive(Debug)]
pub struct Cgroup {
    layout: Layout,
    dirs: Vec<Dir>,
    removed: bool,
}

#[derive(Debug)]
struct Dir {
    path: PathBuf,
    controllers: Vec<String>,
}

impl Cgroup {
    /// The directory used for `controller`.
    fn dir_with(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|dir| dir.controllers.iter().any(|c| c == controller))
            .map(|dir| dir.path.as_path())
    }

    /// The files the container's init writes `0` to, to join the cgroup itself: `tasks` on
    /// v1 (the calling thread, without the kernel's global lock), `cgroup.procs` on v2.
    pub fn join_files(&self) -> Vec<PathBuf> {
        let file = join_file(self.layout);
        self.dirs.iter().map(|dir| dir.path.join(file)).collect()
    }

    /// Moves another process into the cgroup: the slow way (see the module's doc), for an
    /// init in a user namespace, which may not write the host's cgroup files itself.
    pub fn add_process(&self, pid: nix::unistd::Pid) -> Result<()> {
        for dir in &self.dirs {
            files::write(&dir.path.join("cgroup.procs"), &pid.to_string()).with_context(|| {
                format!("moving the container into cgroup {}", dir.path.display())
            })?;
        }
        Ok(())
    }

    /// Whether the kernel's OOM killer killed a process of this cgroup, by its own count.
    /// Known only with the memory controller (`-m` or `--stats`).
    pub fn oom_killed(&self) -> bool {
        let Some(dir) = self.dir_with("memory") else {
            return false;
        };
        match self.layout {
            Layout::V1 => v1::oom_killed(dir),
            Layout::V2 => v2::oom_killed(dir),
        }
    }

    /// What the container used, from the cgroup's counters; `wall` is measured by the caller.
    pub fn usage(&self, wall: Duration) -> Usage {
        let mut usage = match self.layout {
            Layout::V1 => v1::usage(
                self.dir_with("cpuacct"),
                self.dir_with("memory"),
                self.dir_with("pids"),
            ),
            Layout::V2 => self
                .dirs
                .first()
                .map(|d| v2::usage(&d.path))
                .unwrap_or_default(),
        };
        usage.wall = wall;
        usage
    }

    /// Kills whatever is left in the cgroup and removes its directories.
    pub fn remove(mut self) -> Result<()> {
        self.removed = true;
        remove_dirs(self.layout, &self.paths())
    }

    fn paths(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|dir| dir.path.clone()).collect()
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        if let Err(err) = remove_dirs(self.layout, &self.paths()) {
            eprintln!("mini-container: warning: {}", crate::errors::describe(&err));
        }
    }
}

/// In the container's init, before it reads its spec: joins the cgroup the parent made, by
/// writing `0` (itself) to each of `files` ([`Cgroup::join_files`]). The init is
/// single-threaded, so on v1 moving its thread moves it whole.
pub fn join(files: &[PathBuf]) -> Result<()> {
    for file in files {
        files::write(file, "0").with_context(|| {
            let dir = file.parent().unwrap_or(file);
            format!("joining cgroup {}", dir.display())
        })?;
    }
    Ok(())
}

/// Removes the cgroups a runner that was killed left, as recorded in its state. Only
/// directories named for container `id` below /sys/fs/cgroup are touched.
pub fn remove_stale(id: &str, dirs: &[PathBuf]) -> Result<()> {
    let name = format!("{NAME_PREFIX}{id}");
    for dir in dirs {
        let ours = dir.starts_with(ROOT)
            && dir.file_name().is_some_and(|n| n == name.as_str())
            && dir
                .components()
                .all(|c| matches!(c, Component::Normal(_) | Component::RootDir));
        if !ours {
            bail!(
                "refusing to remove {}: not the cgroup of container {id}",
                dir.display()
            );
        }
    }
    remove_dirs(Layout::detect(), dirs)
}

/// Removes each cgroup directory. The fast path is one rmdir each: the container's init has
/// been reaped, and its PID namespace with it. Processes left (moved in from outside, or a
/// runner killed mid-way) are killed first.
fn remove_dirs(layout: Layout, dirs: &[PathBuf]) -> Result<()> {
    let deadline = Instant::now() + REMOVE_TIMEOUT;
    let mut last_kill: Option<Instant> = None;
    for dir in dirs {
        loop {
            let err = match files::remove_tree(dir) {
                Ok(()) => break,
                Err(err) => err,
            };
            if err.raw_os_error() != Some(libc::EBUSY) || Instant::now() >= deadline {
                return Err(err).with_context(|| format!("removing cgroup {}", dir.display()));
            }
            if last_kill.is_none_or(|at| at.elapsed() >= KILL_INTERVAL) {
                log::debug!("killing the processes left in cgroup {}", dir.display());
                match layout {
                    Layout::V1 => v1::kill(dirs),
                    Layout::V2 => dirs.iter().for_each(|dir| v2::kill(dir)),
                }
                last_kill = Some(Instant::now());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    Ok(())
}

/// What a container used, for `--stats`; a figure the host does not count is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    pub wall: Duration,
    /// CPU time in user and in system mode.
    pub cpu: Option<(Duration, Duration)>,
    pub memory_peak: Option<u64>,
    pub pids_peak: Option<u64>,
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = |d: Duration| format!("{:.3}s", d.as_secs_f64());
        write!(f, "wall {}", secs(self.wall))?;
        match self.cpu {
            Some((user, system)) => write!(
                f,
                ", cpu {} (user {}, system {})",
                secs(user + system),
                secs(user),
                secs(system)
            )?,
            None => write!(f, ", cpu n/a")?,
        }
        match self.memory_peak {
            Some(bytes) => write!(f, ", peak memory {} ({bytes} bytes)", format_bytes(bytes))?,
            None => write!(f, ", peak memory n/a")?,
        }
        match self.pids_peak {
            Some(pids) => write!(f, ", peak pids {pids}"),
            None => write!(f, ", peak pids n/a"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_one_line_with_exact_figures() {
        let usage = Usage {
            wall: Duration::from_millis(1234),
            cpu: Some((
                Duration::from_micros(410_400),
                Duration::from_micros(102_000),
            )),
            memory_peak: Some(55_050_240),
            pids_peak: Some(3),
        };
        assert_eq!(
            usage.to_string(),
            "wall 1.234s, cpu 0.512s (user 0.410s, system 0.102s), peak memory 52.5MiB (55050240 bytes), peak pids 3"
        );
        let unknown = Usage {
            wall: Duration::from_millis(5),
            ..Usage::default()
        };
        assert_eq!(
            unknown.to_string(),
            "wall 0.005s, cpu n/a, peak memory n/a, peak pids n/a"
        );
    }

    #[test]
    fn cgroups_paths_cannot_climb_out() {
        for good in [
            "mini-container-x",
            "/a/mini-container-x",
            "a/b/mini-container-x",
        ] {
            check_cgroups_path(Path::new(good)).unwrap();
        }
        for bad in ["", "/", "../x", "a/../x", "./x", "a/.."] {
            assert!(check_cgroups_path(Path::new(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn stale_removal_touches_only_the_containers_own_cgroups() {
        let id = "ab".repeat(32);
        for bad in [
            format!("/tmp/{NAME_PREFIX}{id}"),
            format!("{ROOT}/memory/{NAME_PREFIX}other"),
            format!("{ROOT}/memory"),
            format!("{ROOT}/memory/../../../tmp/{NAME_PREFIX}{id}"),
        ] {
            let err = remove_stale(&id, &[PathBuf::from(&bad)]).unwrap_err();
            assert!(err.to_string().starts_with("refusing to remove"), "{bad}");
        }
        // Gone already is fine.
        remove_stale(
            &id,
            &[PathBuf::from(format!("{ROOT}/memory/{NAME_PREFIX}{id}"))],
        )
        .unwrap();
    }

    #[test]
    fn controllers_follow_the_flags() {
        let names = |needs: Vec<Need>| -> Vec<(&str, Option<&str>)> {
            needs.iter().map(|n| (n.controller, n.flag)).collect()
        };
        assert!(needs(None, Accounting::default()).is_empty());
        assert_eq!(
            names(needs(None, Accounting { stats: true })),
            [("memory", Some("--stats")), ("pids", Some("--stats"))]
        );
        let args = crate::cli::RunArgs {
            memory: Some("64m".into()),
            cpus: Some("0.5".into()),
            cpuset_cpus: Some("0".into()),
            pids_limit: Some("20".into()),
            ..Default::default()
        };
        let limits = crate::spec::resources::from_args(&args, "x").unwrap();
        assert_eq!(
            names(needs(limits.resources.as_ref(), Accounting::default())),
            [
                ("memory", Some("--memory")),
                ("cpu", Some("--cpus")),
                ("cpuset", Some("--cpuset-cpus")),
                ("pids", Some("--pids-limit"))
            ]
        );
    }
}
