//! A container's lifecycle as `run` drives it: build its spec, claim an id, a name, a state
//! directory and a cgroup, create it, start it, wait for it, report how it ended, and remove
//! what it left.

pub mod detach;
mod etc_files;
pub mod id;
mod init_process;
pub mod join;
pub mod logfile;
pub mod manage;
pub mod state;
mod storage;

use crate::cgroups::{self, Accounting, Cgroup};
use crate::cli::RunArgs;
use crate::errors::describe;
use crate::spec::units::format_bytes;
use crate::{launch, spec};
use anyhow::{Context, Result};
use oci_spec::runtime::Spec;
use state::{NewContainer, Paths, StateDir};
use std::time::Instant;

/// The exit status of a container killed by SIGKILL, which is what the OOM killer sends.
const STATUS_SIGKILL: i32 = 128 + libc::SIGKILL;

/// `mini-container run`: returns the container's exit status (`-d`: 0 once it started).
pub fn run(paths: &Paths, args: RunArgs) -> Result<i32> {
    // Checked for every run (Docker takes them without -d too), used by -d.
    let log = logfile::LogOptions::parse(&args.log_opt)?;
    if args.detach {
        return detach::run(paths, args, log);
    }
    run_container(paths, args, None)
}

/// Runs a container to its end; `monitor` is set when this is the monitor of `run -d`.
fn run_container(
    paths: &Paths,
    args: RunArgs,
    mut monitor: Option<&mut detach::Monitor>,
) -> Result<i32> {
    let id = id::generate()?;
    let image = args
        .image
        .as_deref()
        .map(|name| crate::image::resolve(paths, name))
        .transpose()?;
    // From here on, signals are forwarded or read, never fatal: cleanup always runs.
    let signals = launch::block_signals(args.tty)?;
    state::remove_stale(paths);
    storage::remove_stale(paths);
    // The writable layer's place is in the spec; it is made after the state directory.
    let layer = image
        .as_ref()
        .map(|_| storage::ContainerStorage::new(paths, &id));
    let image_root = image
        .as_ref()
        .zip(layer.as_ref())
        .map(|(image, layer)| spec::ImageRoot {
            rootfs: layer.rootfs(),
            overlay_options: layer.overlay_options(&image.lower_dirs),
            config: image.config.config.clone(),
        });
    let spec = spec::build(
        &args,
        &id,
        &paths.container_dir(&id),
        image_root.as_ref(),
        &|name| std::env::var(name).ok(),
    )?;
    let spec_json = serde_json::to_vec(&spec).context("serializing the container spec")?;
    let plan = cgroups::Plan::new(&spec, Accounting { stats: args.stats })?;
    // A rootless run gets a cgroup only where one is delegated to its user.
    let plan = if nix::unistd::geteuid().is_root() || plan.is_permitted() {
        Some(plan)
    } else {
        if plan.has_limits() || args.stats {
            eprintln!(
                "mini-container: warning: rootless: no cgroup is delegated to this user, so the \
                 resource limits and --stats cannot be applied"
            );
        }
        log::debug!("rootless: running without a cgroup of its own");
        None
    };
    let mut state_dir = StateDir::create(
        paths,
        NewContainer {
            id: &id,
            name: args.name.as_deref(),
            image: image.as_ref().map(|image| image.id.to_string()),
            cgroups: plan.as_ref().map(cgroups::Plan::paths).unwrap_or_default(),
            detached: monitor.is_some(),
            remove: args.rm,
        },
    )?;
    if let Some(monitor) = monitor.as_deref_mut() {
        monitor.attach_log(state_dir.path())?;
    }
    if let Some(layer) = &layer {
        layer.create()?;
    }
    state_dir.write_config(&spec_json)?;
    if spec.root().is_some() {
        let hostname = spec.hostname().as_deref().unwrap_or_default();
        etc_files::write(state_dir.path(), hostname)?;
    }
    log::info!("container {id}: state in {}", state_dir.path().display());

    let cgroup = plan.map(cgroups::Plan::create).transpose()?;
    let ended = create_start_wait(
        &spec,
        &spec_json,
        signals,
        cgroup.as_ref(),
        &mut state_dir,
        monitor.as_deref_mut(),
    );
    let report = ended
        .as_ref()
        .ok()
        .zip(cgroup.as_ref())
        .map(|(&(status, created_at), cgroup)| Report {
            oom_killed: status == STATUS_SIGKILL && cgroup.oom_killed(),
            usage: args.stats.then(|| cgroup.usage(created_at.elapsed())),
        });
    if let Some(Err(err)) = cgroup.map(Cgroup::remove) {
        eprintln!("mini-container: warning: {}", describe(&err));
        state_dir.keep_for_cleanup();
    }
    // After the cleanup, which must happen whatever became of the state directory.
    match &ended {
        Ok((status, _)) => {
            if let Err(err) = state_dir.finish(Some(*status)) {
                log::warn!("recording the exit status: {}", describe(&err));
            }
        }
        // A container that never started is not kept, even detached: `run -d` said why.
        Err(_) => state_dir.remove_when_dropped(),
    }
    if let Some(monitor) = monitor {
        monitor.close_log();
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
    cgroup: Option<&Cgroup>,
    state_dir: &mut StateDir,
    monitor: Option<&mut detach::Monitor>,
) -> Result<(i32, Instant)> {
    let created_at = Instant::now();
    let place = cgroup.map_or(launch::Placement::Nowhere, launch::Placement::New);
    let created = launch::create(spec, spec_json, signals, place)?;
    state_dir.set_running(created.pid().as_raw())?;
    let running = created.start()?;
    if let Some(monitor) = monitor {
        monitor.started(state_dir.id());
    }
    let status = running.wait()?;
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
