//! The container's side: `mini-container child`, re-exec'd by `run` as PID 1 of the new
//! namespaces. It joins the cgroup the runner made, receives the spec over the sync socket,
//! turns it into an ordered plan of setup steps, runs them, reports Ready, waits for Go and
//! execs the command. Any failure goes back to the parent with its errno; the parent prints
//! it.

use crate::errors::{EXIT_SETUP_FAILED, describe, errno_of, exec_failure_status};
use crate::exec::Command;
use crate::mounts::{self, MountStep};
use crate::rlimits::Rlimit;
use crate::rootfs::{self, Root};
use crate::security::{caps, seccomp};
use crate::spec::test_switch;
use crate::sync::{Message, SyncSocket};
use crate::{net, user};
use anyhow::{Context, Result, bail};
use nix::sched::{CloneFlags, unshare};
use oci_spec::runtime::{LinuxCapabilities, LinuxDevice, LinuxNamespaceType, Process, Spec};
use std::fmt;
use std::path::{Path, PathBuf};

/// One setup step, run in the order the plan lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A new cgroup namespace, made after the parent placed us in our cgroup.
    EnterCgroupNamespace,
    /// `exec`: join a running container's namespaces through the pidfd of its init that the
    /// runner passed (all at once), or by path where the kernel cannot (before 5.8: user
    /// first, mount last, checked against the pidfd); the pid namespace takes effect for
    /// children, so the command runs in a child.
    JoinNamespaces(Vec<(LinuxNamespaceType, PathBuf)>),
    /// `mount --make-rprivate /`: before any mount, so nothing reaches the host.
    MakeMountsPrivate,
    /// Bind the root filesystem onto itself; later mounts are made inside it.
    BindRootfs(PathBuf),
    /// Attach the id-mapped copy of the root filesystem that the runner passed over it.
    AttachIdmappedRootfs(PathBuf),
    Mount(MountStep),
    CreateDevices(Vec<LinuxDevice>),
    CreateDevSymlinks,
    /// pivot_root into the root filesystem; from here on `/` is the container's.
    PivotRoot,
    /// Test only (switch "pivot-root"): chroot into the root filesystem instead of pivoting.
    ChrootInstead,
    Mask(PathBuf),
    /// A read-only bind of the path over itself; `by_fd`: see [`MountStep::ro_by_fd`].
    MakeReadOnly {
        path: PathBuf,
        by_fd: bool,
    },
    RemountRootReadOnly,
    SetHostname(String),
    BringLoopbackUp,
    /// `mkdir -p` the working directory, as Docker does (only in a root filesystem).
    CreateWorkdir(PathBuf),
    /// `-t`: a new pty from the container's /dev/ptmx as controlling terminal and stdio.
    OpenTerminal {
        rows: u16,
        columns: u16,
    },
    /// Drop what the container does not get from the bounding set (while still root).
    LimitBoundingSet(LinuxCapabilities),
    /// Resolve `-u` in the container's /etc files and switch to it.
    SetUser(String),
    SetCapabilities(LinuxCapabilities),
    SetNoNewPrivileges,
    /// One of `process.rlimits`; the limits not listed are left as they are.
    SetRlimit(Rlimit),
    ChangeDirectory(PathBuf),
    /// Install the seccomp filter: see [`seccomp_position`] for where it goes.
    LoadSeccomp(seccomp::Filter),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::EnterCgroupNamespace => write!(f, "entering a new cgroup namespace"),
            Step::JoinNamespaces(list) => {
                let kinds: Vec<String> = list.iter().map(|(typ, _)| typ.to_string()).collect();
                write!(f, "joining the {} namespaces", kinds.join(", "))
            }
            Step::MakeMountsPrivate => write!(f, "making mounts private"),
            Step::BindRootfs(dir) => write!(f, "binding the root filesystem {}", dir.display()),
            Step::AttachIdmappedRootfs(dir) => {
                write!(
                    f,
                    "attaching the id-mapped root filesystem {}",
                    dir.display()
                )
            }
            Step::Mount(mount) => write!(f, "mounting {mount}"),
            Step::CreateDevices(devices) => write!(f, "creating {} device nodes", devices.len()),
            Step::CreateDevSymlinks => write!(f, "creating /dev symlinks"),
            Step::PivotRoot => write!(f, "pivoting into the root filesystem"),
            Step::ChrootInstead => write!(f, "chroot into the root filesystem (test switch)"),
            Step::Mask(path) => write!(f, "masking {}", path.display()),
            Step::MakeReadOnly { path, .. } => write!(f, "making {} read-only", path.display()),
            Step::RemountRootReadOnly => write!(f, "making the root filesystem read-only"),
            Step::SetHostname(name) => write!(f, "setting hostname {name:?}"),
            Step::BringLoopbackUp => write!(f, "bringing up lo"),
            Step::CreateWorkdir(dir) => write!(f, "creating working directory {}", dir.display()),
            Step::OpenTerminal { .. } => write!(f, "opening a terminal"),
            Step::LimitBoundingSet(_) => write!(f, "limiting the capability bounding set"),
            Step::SetUser(name) => write!(f, "switching to user {name:?}"),
            Step::SetCapabilities(_) => write!(f, "setting capabilities"),
            Step::SetNoNewPrivileges => write!(f, "setting no_new_privs"),
            Step::SetRlimit(rlimit) => write!(f, "setting ulimit {rlimit}"),
            Step::ChangeDirectory(dir) => write!(f, "changing to {}", dir.display()),
            Step::LoadSeccomp(filter) => write!(f, "loading the seccomp filter ({filter})"),
        }
    }
}

/// What the steps carry from one to the next.
#[derive(Debug, Default)]
struct SetupState {
    /// The root filesystem until the pivot.
    root: Option<Root>,
    /// HOME of the user switched to.
    home: Option<String>,
    /// The id-mapped root filesystem the runner passed, until it is attached.
    rootfs_tree: Option<std::os::fd::OwnedFd>,
    /// With `-t`: the pty's master side, for the runner.
    terminal: Option<std::os::fd::OwnedFd>,
    /// The `cwd-check` test switch: the working directory is not verified after chdir.
    trust_cwd: bool,
    /// The cgroup files the init joined (its own cgroups), for the /sys/fs/cgroup view.
    cgroup_files: Vec<PathBuf>,
    /// `exec`: a pidfd of the container's init, which the runner checked.
    init_pidfd: Option<std::os::fd::OwnedFd>,
}

impl Step {
    fn run(&self, context: &mut SetupState) -> Result<()> {
        match self {
            Step::EnterCgroupNamespace => {
                unshare(CloneFlags::CLONE_NEWCGROUP).context("creating a cgroup namespace")
            }
            Step::JoinNamespaces(list) => join_namespaces(list, context.init_pidfd.as_ref()),
            Step::MakeMountsPrivate => mounts::make_mounts_private(),
            Step::BindRootfs(dir) => {
                context.root = Some(Root::bind(dir)?);
                Ok(())
            }
            Step::AttachIdmappedRootfs(dir) => {
                let tree = context
                    .rootfs_tree
                    .take()
                    .context("no id-mapped root filesystem")?;
                context.root = Some(Root::attach(tree, dir)?);
                Ok(())
            }
            Step::Mount(mount) => mount.apply(context.root.as_ref(), &context.cgroup_files),
            Step::CreateDevices(devices) => root_of(context)?.create_devices(devices),
            Step::CreateDevSymlinks => root_of(context)?.create_dev_symlinks(),
            Step::PivotRoot => context
                .root
                .take()
                .context("pivot_root: no root filesystem")?
                .pivot(),
            Step::ChrootInstead => context
                .root
                .take()
                .context("chroot: no root filesystem")?
                .chroot_instead(),
            Step::Mask(path) => rootfs::mask(path),
            Step::MakeReadOnly { path, by_fd } => rootfs::make_read_only(path, *by_fd),
            Step::RemountRootReadOnly => rootfs::remount_read_only(Path::new("/")),
            Step::SetHostname(name) => {
                nix::unistd::sethostname(name).with_context(|| format!("setting hostname {name:?}"))
            }
            Step::BringLoopbackUp => net::bring_loopback_up(),
            Step::CreateWorkdir(dir) => std::fs::create_dir_all(dir)
                .with_context(|| format!("creating working directory {}", dir.display())),
            Step::OpenTerminal { rows, columns } => {
                context.terminal = Some(crate::tty::open_container_terminal(*rows, *columns)?);
                Ok(())
            }
            Step::LimitBoundingSet(capabilities) => caps::limit_bounding_set(capabilities),
            Step::SetCapabilities(capabilities) => caps::apply(capabilities),
            Step::SetNoNewPrivileges => {
                nix::sys::prctl::set_no_new_privs().context("setting no_new_privs")
            }
            Step::SetUser(name) => {
                let resolved = user::resolve_in_container(name)?;
                user::switch_to(&resolved)?;
                context.home = Some(resolved.home);
                Ok(())
            }
            Step::SetRlimit(rlimit) => rlimit.apply(),
            Step::ChangeDirectory(dir) => {
                nix::unistd::chdir(dir)
                    .with_context(|| format!("changing to working directory {}", dir.display()))?;
                if context.trust_cwd {
                    return Ok(());
                }
                crate::session::verify_cwd(dir)
            }
            Step::LoadSeccomp(filter) => filter.load(),
        }
    }

    /// Whether the init may lose CAP_SYS_ADMIN in this step (a user other than root drops
    /// every capability).
    fn gives_up_privileges(&self) -> bool {
        matches!(self, Step::SetUser(_) | Step::SetCapabilities(_))
    }
}

/// Where the seccomp filter is loaded. The kernel installs one only for a process with
/// no_new_privs set or CAP_SYS_ADMIN: with no_new_privs it goes last, just before exec, so
/// that it constrains nothing but the command; otherwise it goes before the first step that
/// gives up privileges, while the init still has CAP_SYS_ADMIN, and those steps (setgroups,
/// setresuid, ...) then run under the filter, as with runc.
fn seccomp_position(steps: &[Step], process: &Process) -> usize {
    if process.no_new_privileges() == Some(true) {
        return steps.len();
    }
    steps
        .iter()
        .position(Step::gives_up_privileges)
        .unwrap_or(steps.len())
}

/// Joins every namespace in `list` through `pidfd` in one setns (Linux 5.8); where the
/// kernel does not take a pidfd there (EINVAL), opens the namespace files by path and then
/// checks that the pidfd's process still lives, so that the files were its own and not those
/// of a process that got its pid, and joins them one by one: the user namespace first (it
/// grants the rights for the others), the mount namespace last.
fn join_namespaces(
    list: &[(LinuxNamespaceType, PathBuf)],
    pidfd: Option<&std::os::fd::OwnedFd>,
) -> Result<()> {
    let ended = || anyhow::anyhow!("joining the container's namespaces: its init has ended");
    if let Some(pidfd) = pidfd {
        let flags = list.iter().fold(CloneFlags::empty(), |flags, (typ, _)| {
            flags | CloneFlags::from_bits_truncate(*typ as i32)
        });
        match nix::sched::setns(pidfd, flags) {
            Ok(()) => return Ok(()),
            Err(nix::errno::Errno::EINVAL) => {
                log::debug!("setns on a pidfd: EINVAL, joining by path");
            }
            Err(nix::errno::Errno::ESRCH) => return Err(ended()),
            Err(err) => return Err(err).context("joining the container's namespaces"),
        }
    }
    let mut opened = Vec::new();
    for (typ, path) in list {
        let fd = std::fs::File::open(path).with_context(|| {
            format!("opening the container's {typ} namespace {}", path.display())
        })?;
        opened.push((*typ, fd));
    }
    if let Some(pidfd) = pidfd
        && crate::pidfd::send_signal(pidfd, 0).is_err()
    {
        return Err(ended());
    }
    let rank = |typ: &LinuxNamespaceType| match typ {
        LinuxNamespaceType::User => 0,
        LinuxNamespaceType::Mount => 2,
        _ => 1,
    };
    opened.sort_by_key(|(typ, _)| rank(typ));
    for (typ, fd) in &opened {
        nix::sched::setns(fd, CloneFlags::from_bits_truncate(*typ as i32))
            .with_context(|| format!("joining the container's {typ} namespace"))?;
    }
    Ok(())
}

fn root_of(context: &SetupState) -> Result<&Root> {
    context.root.as_ref().context("no root filesystem")
}

/// What the init does, in order, and the command it then execs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub command: Command,
}

impl Plan {
    pub fn from_spec(spec: &Spec) -> Result<Plan> {
        let process = spec
            .process()
            .as_ref()
            .context("reading the container spec: it has no process")?;
        let namespaces: Vec<LinuxNamespaceType> = spec
            .linux()
            .as_ref()
            .and_then(|linux| linux.namespaces().as_ref())
            .map(|list| list.iter().map(|ns| ns.typ()).collect())
            .unwrap_or_default();
        let has = |typ| namespaces.contains(&typ);
        let joined: Vec<(LinuxNamespaceType, PathBuf)> = spec
            .linux()
            .as_ref()
            .and_then(|linux| linux.namespaces().as_ref())
            .map(|list| {
                list.iter()
                    .filter_map(|ns| Some((ns.typ(), ns.path().clone()?)))
                    .collect()
            })
            .unwrap_or_default();
        if !joined.is_empty() {
            // `exec`: the container is set up already; only the process is.
            let mut steps = vec![Step::JoinNamespaces(joined)];
            steps.extend(process_steps(process)?);
            return Plan::finish(steps, spec, process);
        }

        let mut steps = Vec::new();
        if has(LinuxNamespaceType::Cgroup) {
            steps.push(Step::EnterCgroupNamespace);
        }
        let spec_mounts = spec.mounts().as_deref().unwrap_or_default();
        if !spec_mounts.is_empty() && !has(LinuxNamespaceType::Mount) {
            bail!("the spec has mounts but no mount namespace: they would reach the host");
        }
        let root = spec.root().as_ref();
        if root.is_some() && !has(LinuxNamespaceType::Mount) {
            bail!("the spec has a root filesystem but no mount namespace");
        }
        if has(LinuxNamespaceType::Mount) {
            steps.push(Step::MakeMountsPrivate);
        }
        // A mount at "/" (the overlay of `run --image`) makes the root filesystem itself.
        let (root_mounts, spec_mounts): (Vec<_>, Vec<_>) = spec_mounts
            .iter()
            .partition(|m| m.destination() == Path::new("/"));
        if let Some(root) = root {
            for mount in root_mounts {
                let mut step = MountStep::from_spec(mount);
                step.target = root.path().clone();
                steps.push(Step::Mount(step));
            }
            steps.push(if crate::launch::idmaps_rootfs(spec) {
                Step::AttachIdmappedRootfs(root.path().clone())
            } else {
                Step::BindRootfs(root.path().clone())
            });
        }
        let ro_by_fd = !test_switch::disabled(spec, "ro-by-fd");
        for mount in spec_mounts {
            let mut step = MountStep::from_spec(mount);
            step.ro_by_fd = ro_by_fd;
            if step.fstype.as_deref() == Some("cgroup") {
                // The view shows the cgroup namespace's root: without one, the host's tree.
                if !has(LinuxNamespaceType::Cgroup) {
                    bail!(
                        "the spec mounts cgroups on {} but has no cgroup namespace",
                        step.target.display()
                    );
                }
                if test_switch::disabled(spec, "cgroupfs-ro") {
                    step.flags.remove(nix::mount::MsFlags::MS_RDONLY);
                }
            }
            steps.push(Step::Mount(step));
        }
        let linux = spec.linux().as_ref();
        if root.is_some() {
            let devices = linux.and_then(|l| l.devices().clone()).unwrap_or_default();
            steps.push(Step::CreateDevices(devices));
            steps.push(Step::CreateDevSymlinks);
            // Test switch "pivot-root": chroot instead, which leaves the host's tree behind
            // the root (the escape battery's chroot escape, shown succeeding without it).
            steps.push(if crate::spec::test_switch::disabled(spec, "pivot-root") {
                Step::ChrootInstead
            } else {
                Step::PivotRoot
            });
            steps.push(Step::CreateWorkdir(process.cwd().clone()));
        }
        // Docker's masked and read-only paths, in the container's fresh /proc and /sys (with
        // or without a root filesystem of its own).
        let protected = linux.is_some_and(|l| {
            l.masked_paths().as_ref().is_some_and(|p| !p.is_empty())
                || l.readonly_paths().as_ref().is_some_and(|p| !p.is_empty())
        });
        if protected && !has(LinuxNamespaceType::Mount) {
            bail!("the spec has masked or read-only paths but no mount namespace");
        }
        if !test_switch::disabled(spec, "masks") {
            let masked = linux
                .and_then(|l| l.masked_paths().clone())
                .unwrap_or_default();
            steps.extend(masked.into_iter().map(|p| Step::Mask(p.into())));
            let read_only = linux
                .and_then(|l| l.readonly_paths().clone())
                .unwrap_or_default();
            steps.extend(read_only.into_iter().map(|path| Step::MakeReadOnly {
                path: path.into(),
                by_fd: ro_by_fd,
            }));
        }
        if root.is_some_and(|root| root.readonly() == Some(true)) {
            steps.push(Step::RemountRootReadOnly);
        }
        if let Some(hostname) = spec.hostname() {
            if !has(LinuxNamespaceType::Uts) {
                bail!("the spec sets a hostname but has no UTS namespace");
            }
            steps.push(Step::SetHostname(hostname.clone()));
        }
        if has(LinuxNamespaceType::Network) {
            steps.push(Step::BringLoopbackUp);
        }
        steps.extend(process_steps(process)?);
        Plan::finish(steps, spec, process)
    }

    /// Adds the seccomp filter where it can still be loaded, and the command.
    fn finish(mut steps: Vec<Step>, spec: &Spec, process: &Process) -> Result<Plan> {
        let linux = spec.linux().as_ref();
        if let Some(profile) = linux.and_then(|l| l.seccomp().as_ref()) {
            let filter =
                seccomp::Filter::from_spec(profile).context("preparing the seccomp filter")?;
            let at = seccomp_position(&steps, process);
            steps.insert(at, Step::LoadSeccomp(filter));
        }
        Ok(Plan {
            steps,
            command: Command::from_process(process)?,
        })
    }
}

/// The steps that make the process what the spec says (for `run` and `exec` alike): limits,
/// terminal, user, capabilities, no_new_privs, working directory.
fn process_steps(process: &Process) -> Result<Vec<Step>> {
    let mut steps = Vec::new();
    // Raising a limit needs CAP_SYS_RESOURCE: before the capabilities are dropped.
    for rlimit in process.rlimits().as_deref().unwrap_or_default() {
        steps.push(Step::SetRlimit(Rlimit::from_spec(rlimit)?));
    }
    if process.terminal() == Some(true) {
        let size = process.console_size();
        steps.push(Step::OpenTerminal {
            rows: size.map_or(0, |s| s.height() as u16),
            columns: size.map_or(0, |s| s.width() as u16),
        });
    }
    if let Some(capabilities) = process.capabilities() {
        steps.push(Step::LimitBoundingSet(capabilities.clone()));
    }
    if let Some(name) = process.user().username() {
        steps.push(Step::SetUser(name.clone()));
    }
    if let Some(capabilities) = process.capabilities() {
        steps.push(Step::SetCapabilities(capabilities.clone()));
    }
    if process.no_new_privileges() == Some(true) {
        steps.push(Step::SetNoNewPrivileges);
    }
    steps.push(Step::ChangeDirectory(process.cwd().clone()));
    Ok(steps)
}

/// `mini-container child`: returns only if the command could not be exec'd.
pub fn main() -> i32 {
    // Not dumpable until the command's exec makes it so again (as runc's nsexec): a container
    // process may then neither ptrace this one nor open what /proc/PID/fd holds. The runner
    // closed every inherited descriptor above the sync socket before the re-exec.
    crate::session::set_dumpable(false);
    let sync = match SyncSocket::inherited() {
        Ok(sync) => sync,
        Err(err) => {
            eprintln!("mini-container: child: {}", describe(&err));
            return EXIT_SETUP_FAILED;
        }
    };
    let (command, with_init) = match set_up(&sync) {
        Ok(Some(ready)) => ready,
        Ok(None) => return EXIT_SETUP_FAILED, // the runner is gone
        Err(err) => {
            log::debug!("setup failed: {err:#}");
            let _ = sync.send_message(&Message::SetupFailed {
                errno: errno_of(&err).map_or(0, |errno| errno as i32),
                what: describe(&err),
            });
            return EXIT_SETUP_FAILED;
        }
    };
    match sync.recv_message() {
        Ok(Some(Message::Go)) => {}
        _ => return EXIT_SETUP_FAILED, // the runner is gone
    }
    log::debug!("executing {:?}", command.args);
    if with_init {
        return crate::reaper::run(&command, sync);
    }
    let failure = command.exec();
    let _ = sync.send_message(&Message::ExecFailed {
        errno: failure.errno as i32,
        what: failure.what,
    });
    exec_failure_status(failure.errno)
}

/// Joins the container's cgroup, receives the spec and runs the plan's steps; returns the
/// command and whether `--init` runs it, or `None` if the runner went away first.
fn set_up(sync: &SyncSocket) -> Result<Option<(Command, bool)>> {
    let files = match sync.recv_message()? {
        Some(Message::JoinCgroup(files)) => files,
        None => return Ok(None),
        Some(other) => bail!("the runner sent {other:?} instead of the container's cgroup"),
    };
    log::debug!("setup: joining the container's cgroup");
    crate::cgroups::join(&files)?;
    let Some(json) = sync.recv_spec()? else {
        return Ok(None);
    };
    let spec: Spec = serde_json::from_slice(&json).context("reading the container spec")?;
    if crate::spec::test_switch::disabled(&spec, "dumpable") {
        crate::session::set_dumpable(true);
    }
    let plan = Plan::from_spec(&spec)?;
    let mut context = SetupState {
        trust_cwd: crate::spec::test_switch::disabled(&spec, "cwd-check"),
        cgroup_files: files,
        ..SetupState::default()
    };
    if plan
        .steps
        .iter()
        .any(|step| matches!(step, Step::AttachIdmappedRootfs(_)))
    {
        context.rootfs_tree = Some(sync.recv_fd()?);
    }
    if matches!(plan.steps.first(), Some(Step::JoinNamespaces(_))) {
        context.init_pidfd = Some(sync.recv_fd().context("receiving the container's init")?);
    }
    for step in &plan.steps {
        log::debug!("setup: {step}");
        step.run(&mut context)?;
    }
    let mut command = plan.command;
    command.set_default_home(context.home.as_deref().unwrap_or("/root"));
    sync.send_message(&Message::Ready)?;
    if let Some(master) = context.terminal.take() {
        sync.send_fd(&master)?;
    }
    // A process that joined a pid namespace must fork to be in it: `exec` runs under init.
    let joined_pid = matches!(plan.steps.first(), Some(Step::JoinNamespaces(list))
        if list.iter().any(|(typ, _)| *typ == LinuxNamespaceType::Pid));
    Ok(Some((command, crate::spec::has_init(&spec) || joined_pid)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::RunArgs;

    fn plan_for(network: &str) -> Plan {
        let args = RunArgs {
            command: vec!["echo".into(), "A".into()],
            network: network.into(),
            workdir: Some("/tmp".into()),
            ..RunArgs::default()
        };
        let id = "f".repeat(64);
        let spec = crate::spec::build(&args, &id, Path::new("/state"), None, &|_| None).unwrap();
        Plan::from_spec(&spec).unwrap()
    }

    #[test]
    fn mounts_are_made_private_before_anything_is_mounted() {
        let plan = plan_for("host");
        let names: Vec<String> = plan
            .steps
            .iter()
            .filter(|step| !matches!(step, Step::Mask(_) | Step::MakeReadOnly { .. }))
            .map(Step::to_string)
            .collect();
        assert_eq!(
            names,
            [
                "entering a new cgroup namespace",
                "making mounts private",
                "mounting proc on /proc",
                "mounting sysfs on /sys",
                "mounting cgroup on /sys/fs/cgroup",
                "setting hostname \"ffffffffffff\"",
                "limiting the capability bounding set",
                "loading the seccomp filter (the precompiled default profile)",
                "setting capabilities",
                "changing to /tmp",
            ]
        );
        assert_eq!(plan.command.args[0].as_bytes(), b"echo");
    }

    #[test]
    fn ulimits_are_set_before_capabilities_drop_and_only_when_asked_for() {
        assert!(
            !plan_for("host")
                .steps
                .iter()
                .any(|step| matches!(step, Step::SetRlimit(_)))
        );
        let args = RunArgs {
            command: vec!["true".into()],
            network: "host".into(),
            ulimit: vec!["nofile=1024:2048".into(), "core=0".into()],
            ..RunArgs::default()
        };
        let spec = crate::spec::build(&args, &"f".repeat(64), Path::new("/state"), None, &|_| None)
            .unwrap();
        let names: Vec<String> = Plan::from_spec(&spec)
            .unwrap()
            .steps
            .iter()
            .map(Step::to_string)
            .collect();
        assert_eq!(
            names[names.len() - 6..],
            [
                "setting ulimit nofile=1024:2048",
                "setting ulimit core=0:0",
                "limiting the capability bounding set",
                "loading the seccomp filter (the precompiled default profile)",
                "setting capabilities",
                "changing to /",
            ]
        );
    }

    #[test]
    fn seccomp_is_loaded_while_the_init_may_still_load_it() {
        let args = |user: Option<&str>, security_opt: &[&str]| RunArgs {
            command: vec!["true".into()],
            network: "host".into(),
            user: user.map(String::from),
            security_opt: security_opt.iter().map(|s| s.to_string()).collect(),
            ..RunArgs::default()
        };
        let plan = |args: &RunArgs| {
            let spec = crate::spec::build(args, &"0".repeat(64), Path::new("/s"), None, &|_| None)
                .unwrap();
            Plan::from_spec(&spec).unwrap()
        };
        let is_seccomp = |step: &Step| matches!(step, Step::LoadSeccomp(_));
        // Without no_new_privs, while CAP_SYS_ADMIN is still effective: before the
        // capabilities are set (which drops it), as runc does.
        let steps = plan(&args(None, &[])).steps;
        let at = steps.iter().position(is_seccomp).unwrap();
        assert!(matches!(steps[at + 1], Step::SetCapabilities(_)));
        // Switching user drops CAP_SYS_ADMIN: before it, unless no_new_privs is set.
        let steps = plan(&args(Some("app"), &[])).steps;
        let at = steps.iter().position(is_seccomp).unwrap();
        assert_eq!(steps[at + 1], Step::SetUser("app".into()));
        let mut spec = crate::spec::build(
            &args(Some("app"), &[]),
            &"0".repeat(64),
            Path::new("/s"),
            None,
            &|_| None,
        )
        .unwrap();
        let mut process = spec.process().clone().unwrap();
        process.set_no_new_privileges(Some(true));
        spec.set_process(Some(process));
        let steps = Plan::from_spec(&spec).unwrap().steps;
        assert!(is_seccomp(steps.last().unwrap()));
        // Unconfined: no filter.
        let steps = plan(&args(None, &["seccomp=unconfined"])).steps;
        assert!(!steps.iter().any(is_seccomp));
    }

    fn plan_with_switches(switches: &str) -> Plan {
        let args = RunArgs {
            command: vec!["true".into()],
            network: "host".into(),
            ..RunArgs::default()
        };
        let lookup = |key: &str| (key == test_switch::VARIABLE).then(|| switches.to_string());
        let spec =
            crate::spec::build(&args, &"0".repeat(64), Path::new("/s"), None, &lookup).unwrap();
        Plan::from_spec(&spec).unwrap()
    }

    #[test]
    fn masks_and_read_only_paths_follow_every_mount_without_a_rootfs_too() {
        let steps = plan_with_switches("").steps;
        let first_mask = steps
            .iter()
            .position(|s| matches!(s, Step::Mask(_)))
            .unwrap();
        let last_mount = steps
            .iter()
            .rposition(|s| matches!(s, Step::Mount(_)))
            .unwrap();
        assert!(last_mount < first_mask);
        assert!(steps.contains(&Step::Mask("/proc/kcore".into())));
        assert!(steps.contains(&Step::MakeReadOnly {
            path: "/proc/sys".into(),
            by_fd: true
        }));
        let cgroup = steps.iter().find_map(|s| match s {
            Step::Mount(m) if m.fstype.as_deref() == Some("cgroup") => Some(m.clone()),
            _ => None,
        });
        assert!(
            cgroup
                .unwrap()
                .flags
                .contains(nix::mount::MsFlags::MS_RDONLY)
        );
    }

    #[test]
    fn test_switches_turn_the_mount_protections_off_in_debug_builds() {
        let steps = plan_with_switches("masks,ro-by-fd,cgroupfs-ro").steps;
        let off = cfg!(debug_assertions);
        assert_eq!(!steps.iter().any(|s| matches!(s, Step::Mask(_))), off);
        for step in &steps {
            if let Step::Mount(mount) = step {
                assert_eq!(mount.ro_by_fd, !off);
                if mount.fstype.as_deref() == Some("cgroup") {
                    assert_eq!(!mount.flags.contains(nix::mount::MsFlags::MS_RDONLY), off);
                }
            }
        }
    }

    #[test]
    fn a_cgroup_view_needs_a_cgroup_namespace() {
        let args = RunArgs {
            command: vec!["true".into()],
            network: "host".into(),
            ..RunArgs::default()
        };
        let mut spec =
            crate::spec::build(&args, &"0".repeat(64), Path::new("/s"), None, &|_| None).unwrap();
        let linux = spec.linux_mut().as_mut().unwrap();
        let namespaces = linux.namespaces().clone().unwrap();
        linux.set_namespaces(Some(
            namespaces
                .into_iter()
                .filter(|ns| ns.typ() != LinuxNamespaceType::Cgroup)
                .collect(),
        ));
        let err = Plan::from_spec(&spec).unwrap_err();
        assert!(err.to_string().contains("no cgroup namespace"), "{err}");
    }

    #[test]
    fn network_none_brings_up_loopback() {
        assert!(plan_for("none").steps.contains(&Step::BringLoopbackUp));
        assert!(!plan_for("host").steps.contains(&Step::BringLoopbackUp));
    }

    #[test]
    fn mounts_without_a_mount_namespace_are_refused() {
        let args = RunArgs {
            command: vec!["true".into()],
            network: "host".into(),
            ..RunArgs::default()
        };
        let mut spec =
            crate::spec::build(&args, &"0".repeat(64), Path::new("/state"), None, &|_| None)
                .unwrap();
        let linux = spec.linux_mut().as_mut().unwrap();
        let namespaces = linux.namespaces().clone().unwrap();
        linux.set_namespaces(Some(
            namespaces
                .into_iter()
                .filter(|ns| ns.typ() != LinuxNamespaceType::Mount)
                .collect(),
        ));
        assert!(Plan::from_spec(&spec).is_err());
    }
}
