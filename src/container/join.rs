//! `exec`: a new process in a running container. It joins every namespace of the container's
//! init and its cgroup, and gets the container's user, capabilities, no_new_privs and
//! environment (plus what `-e` adds), exactly as `run` sets them; its exit status is the
//! command's, as for `run`.

use super::init_process;
use super::state::{self, Paths, is_locked};
use crate::launch;
use crate::spec::exec::ExecRequest;
use anyhow::{Context, Result, bail};
use oci_spec::runtime::Spec;

/// `mini-container exec [OPTIONS] CONTAINER COMMAND...`.
pub fn exec(paths: &Paths, container: &str, request: &ExecRequest) -> Result<i32> {
    let (dir, state) = state::find(paths, container)?;
    // Found by a pidfd checked against its start time: the namespaces are joined through
    // it, so they are the init's even if the pid goes to another process meanwhile.
    let Some(init) = init_process::find(&dir, &state)? else {
        bail!("container {container} is not running");
    };
    let config = dir.join("config.json");
    let container_spec: Spec = serde_json::from_slice(
        &std::fs::read(&config).with_context(|| format!("reading {}", config.display()))?,
    )
    .with_context(|| format!("reading {}", config.display()))?;
    let spec = crate::spec::exec::build(&container_spec, init.pid(), request, &|name| {
        std::env::var(name).ok()
    })?;
    let spec_json = serde_json::to_vec(&spec).context("serializing the exec spec")?;
    let signals = launch::block_signals(request.tty)?;
    let place = launch::Placement::Existing(&state.cgroups, init.pidfd());
    let created = launch::create(&spec, &spec_json, signals, place)?;
    // The container must still be there: its init may have ended meanwhile.
    if !is_locked(&dir) {
        bail!("container {container} is not running");
    }
    created.start()?.wait()
}
