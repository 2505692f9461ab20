//! The container's side: `mini-container child`, re-exec'd by `run` as PID 1 of the new
//! namespaces. It joins the cgroup the runner made, receives the spec over the sync socket,
//! turns it into an ordered plan of setup steps, runs them, reports Ready, waits for Go and
//! execs the command. Any failure goes back to the parent with its errno; the parent prints
//! it.

use crate::errors::{EXIT_SETUP_FAILED, describe, errno_of, exec_failure_status};
use crate::exec::Command;
use crate::mounts::{self, MountStep};
use crate::net;
use crate::rlimits::Rlimit;
use crate::sync::{Message, SyncSocket};
use anyhow::{Context, Result, bail};
use nix::sched::{CloneFlags, unshare};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::fmt;
use std::path::PathBuf;

/// One setup step, run in the order the plan lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A new cgroup namespace, made after the parent placed us in our cgroup.
    EnterCgroupNamespace,
    /// `mount --make-rprivate /`: before any mount, so nothing reaches the host.
    MakeMountsPrivate,
    Mount(MountStep),
    SetHostname(String),
    BringLoopbackUp,
    /// One of `process.rlimits`; the limits not listed are left as they are.
    SetRlimit(Rlimit),
    ChangeDirectory(PathBuf),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::EnterCgroupNamespace => write!(f, "entering a new cgroup namespace"),
            Step::MakeMountsPrivate => write!(f, "making mounts private"),
            Step::Mount(mount) => write!(f, "mounting {mount}"),
            Step::SetHostname(name) => write!(f, "setting hostname {name:?}"),
            Step::BringLoopbackUp => write!(f, "bringing up lo"),
            Step::SetRlimit(rlimit) => write!(f, "setting ulimit {rlimit}"),
            Step::ChangeDirectory(dir) => write!(f, "changing to {}", dir.display()),
        }
    }
}

impl Step {
    fn run(&self) -> Result<()> {
        match self {
            Step::EnterCgroupNamespace => {
                unshare(CloneFlags::CLONE_NEWCGROUP).context("creating a cgroup namespace")
            }
            Step::MakeMountsPrivate => mounts::make_mounts_private(),
            Step::Mount(mount) => mount.apply(),
            Step::SetHostname(name) => {
                nix::unistd::sethostname(name).with_context(|| format!("setting hostname {name:?}"))
            }
            Step::BringLoopbackUp => net::bring_loopback_up(),
            Step::SetRlimit(rlimit) => rlimit.apply(),
            Step::ChangeDirectory(dir) => nix::unistd::chdir(dir)
                .with_context(|| format!("changing to working directory {}", dir.display())),
        }
    }
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

        let mut steps = Vec::new();
        if has(LinuxNamespaceType::Cgroup) {
            steps.push(Step::EnterCgroupNamespace);
        }
        let spec_mounts = spec.mounts().as_deref().unwrap_or_default();
        if !spec_mounts.is_empty() && !has(LinuxNamespaceType::Mount) {
            bail!("the spec has mounts but no mount namespace: they would reach the host");
        }
        if has(LinuxNamespaceType::Mount) {
            steps.push(Step::MakeMountsPrivate);
        }
        steps.extend(
            spec_mounts
                .iter()
                .map(|m| Step::Mount(MountStep::from_spec(m))),
        );
        if let Some(hostname) = spec.hostname() {
            if !has(LinuxNamespaceType::Uts) {
                bail!("the spec sets a hostname but has no UTS namespace");
            }
            steps.push(Step::SetHostname(hostname.clone()));
        }
        if has(LinuxNamespaceType::Network) {
            steps.push(Step::BringLoopbackUp);
        }
        for rlimit in process.rlimits().as_deref().unwrap_or_default() {
            steps.push(Step::SetRlimit(Rlimit::from_spec(rlimit)?));
        }
        steps.push(Step::ChangeDirectory(process.cwd().clone()));
        Ok(Plan {
            steps,
            command: Command::from_process(process)?,
        })
    }
}

/// `mini-container child`: returns only if the command could not be exec'd.
pub fn main() -> i32 {
    let sync = match SyncSocket::inherited() {
        Ok(sync) => sync,
        Err(err) => {
            eprintln!("mini-container: child: {}", describe(&err));
            return EXIT_SETUP_FAILED;
        }
    };
    let command = match set_up(&sync) {
        Ok(Some(command)) => command,
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
    let failure = command.exec();
    let _ = sync.send_message(&Message::ExecFailed {
        errno: failure.errno as i32,
        what: failure.what,
    });
    exec_failure_status(failure.errno)
}

/// Joins the container's cgroup, receives the spec and runs the plan's steps; `None` if the
/// runner went away first.
fn set_up(sync: &SyncSocket) -> Result<Option<Command>> {
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
    let plan = Plan::from_spec(&spec)?;
    for step in &plan.steps {
        log::debug!("setup: {step}");
        step.run()?;
    }
    sync.send_message(&Message::Ready)?;
    Ok(Some(plan.command))
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
        let spec = crate::spec::build(&args, &id, &|_| None).unwrap();
        Plan::from_spec(&spec).unwrap()
    }

    #[test]
    fn mounts_are_made_private_before_anything_is_mounted() {
        let plan = plan_for("host");
        let names: Vec<String> = plan.steps.iter().map(Step::to_string).collect();
        assert_eq!(
            names,
            [
                "entering a new cgroup namespace",
                "making mounts private",
                "mounting proc on /proc",
                "setting hostname \"ffffffffffff\"",
                "changing to /tmp",
            ]
        );
        assert_eq!(plan.command.args[0].as_bytes(), b"echo");
    }

    #[test]
    fn ulimits_are_set_after_the_hostname_and_only_when_asked_for() {
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
        let spec = crate::spec::build(&args, &"f".repeat(64), &|_| None).unwrap();
        let names: Vec<String> = Plan::from_spec(&spec)
            .unwrap()
            .steps
            .iter()
            .map(Step::to_string)
            .collect();
        assert_eq!(
            names[names.len() - 3..],
            [
                "setting ulimit nofile=1024:2048",
                "setting ulimit core=0:0",
                "changing to /",
            ]
        );
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
        let mut spec = crate::spec::build(&args, &"0".repeat(64), &|_| None).unwrap();
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
