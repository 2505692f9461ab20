//! A container's lifecycle as `run` drives it: build its spec, claim an id, a name and a
//! state directory, create it, start it, wait for it, and remove what it left.

mod etc_files;
pub mod id;
pub mod state;

use crate::cli::RunArgs;
use crate::{launch, spec};
use anyhow::{Context, Result};
use state::{Paths, StateDir};

/// `mini-container run`: returns the container's exit status.
pub fn run(paths: &Paths, args: RunArgs) -> Result<i32> {
    let id = id::generate()?;
    let spec = spec::build(&args, &id, &paths.container_dir(&id), &|name| {
        std::env::var(name).ok()
    })?;
    let spec_json = serde_json::to_vec(&spec).context("serializing the container spec")?;

    state::remove_stale(paths);
    let mut state_dir = StateDir::create(paths, &id, args.name.as_deref())?;
    state_dir.write_config(&spec_json)?;
    if spec.root().is_some() {
        let hostname = spec.hostname().as_deref().unwrap_or_default();
        etc_files::write(state_dir.path(), hostname)?;
    }
    log::info!("container {id}: state in {}", state_dir.path().display());

    let created = launch::create(&spec, &spec_json)?;
    state_dir.set_running(created.pid().as_raw())?;
    let running = created.start()?;
    let status = running.wait()?;
    log::info!("container {id}: exited with status {status}");
    Ok(status)
}
