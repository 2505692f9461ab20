//! A container's lifecycle as `run` drives it: build its spec, claim an id, a name, a state
//! directory and a cgroup, create it, start it, wait for it, report how it ended, and remove
//! what it left.

pub mod id;
pub mod state;

use crate::cgroups::{self, Accounting, Cgroup};
use crate::cli::RunArgs;
use crate::errors::describe;
use crate::spec::units::format_bytes;
use crate::{launch, spec};
use anyhow::{Context, Result, bail};
use oci_spec::runtime::Spec;
use state::{Paths, StateDir};
use std::path::Path;
use std::time::Instant;

/// The exit status of a container killed by SIGKILL, which is what the OOM killer sends.
const STATUS_SIGKILL: i32 = 128 + libc::SIGKILL;

/// `mini-container run`: returns the container's exit status.
pub fn run(root: Option<&Path>, args: RunArgs) -> Result<i32> {
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "run: mini-container needs root (rootless containers are not supported yet); try sudo"
        );
    }
    let paths = Paths::new(root);
    let id = id::generate()?;
    let spec = spec::build(&args, &id, &|name| std::env::var(name).ok())?;
    let spec_json = serde_json::to_vec(&spec).context("serializing the container spec")?;
    let accounting = Accounting { stats: args.stats };

    // From here on, signals are forwarded or read, never fatal: cleanup always runs.
    let signals = launch::block_signals()?;
    state::remove_stale(&paths);
    let plan = cgroups::Plan::new(&spec, accounting)?;
    let mut state_dir = StateDir::create(&paths, &id, args.name.as_deref(), plan.paths())?;
    state_dir.write_config(&spec_json)?;
    log::info!("container {id}: state in {}", state_dir.path().display());

    let cgroup = plan.create()?;
    let ended = create_start_wait(&spec, &spec_json, signals, &cgroup, &mut state_dir);
    let report = ended.as_ref().ok().map(|&(status, created_at)| Report {
        oom_killed: status == STATUS_SIGKILL && cgroup.oom_killed(),
        usage: args.stats.then(|| cgroup.usage(created_at.elapsed())),
    });
    if let Err(err) = cgroup.remove() {
        eprintln!("mini-container: warning: {}", describe(&err));
        state_dir.keep_for_cleanup();
    }
    let (status, _) = ended?;
    log::info!("container {id}: exited with status {status}");
    if let Some(report) = report {
        report.print(&spec);
    }
    Ok(status)
}

/// The container from clone to exit: its status, and when it was created. Its cgroup counts
/// from then on, so `--stats`' wall time covers what its CPU time covers.
fn create_start_wait(
    spec: &Spec,
    spec_json: &[u8],
    signals: nix::sys::signalfd::SignalFd,
    cgroup: &Cgroup,
    state_dir: &mut StateDir,
) -> Result<(i32, Instant)> {
    let created_at = Instant::now();
    let created = launch::create(spec, spec_json, signals, cgroup)?;
    state_dir.set_running(created.pid().as_raw())?;
    let status = created.start()?.wait()?;
    Ok((status, created_at))
}

/// How the container ended, as the cgroup counted it.
struct Report {
    oom_killed: bool,
    usage: Option<cgroups::Usage>,
}

impl Report {
    fn print(&self, spec: &Spec) {
        if self.oom_killed {
            let limit = spec
                .linux()
                .as_ref()
                .and_then(|linux| linux.resources().as_ref())
                .and_then(|resources| resources.memory().as_ref())
                .and_then(|memory| memory.limit())
                .map(|limit| format!(" (limit {})", format_bytes(limit as u64)))
                .unwrap_or_default();
            eprintln!("mini-container: container killed: out of memory{limit}");
        }
        if let Some(usage) = &self.usage {
            eprintln!("mini-container: stats: {usage}");
        }
    }
}
