//! A container's lifecycle as `run` drives it: build its spec, claim an id, a name and a
//! state directory, create it, start it, wait for it, and remove what it left.

mod etc_files;
pub mod id;
pub mod state;
mod storage;

use crate::cli::RunArgs;
use crate::{launch, spec};
use anyhow::{Context, Result};
use state::{Paths, StateDir};

/// `mini-container run`: returns the container's exit status.
pub fn run(paths: &Paths, args: RunArgs) -> Result<i32> {
    let id = id::generate()?;
    let image = args
        .image
        .as_deref()
        .map(|name| crate::image::resolve(paths, name))
        .transpose()?;
    state::remove_stale(paths);
    storage::remove_stale(paths);
    let mut state_dir = StateDir::create(paths, &id, args.name.as_deref())?;
    // The writable layer comes after the state directory, so that a sweep never takes a
    // live container's layer for a stale one.
    let layer = match &image {
        Some(image) => {
            state_dir.set_image(&image.id.to_string())?;
            Some(storage::ContainerStorage::create(paths, &id)?)
        }
        None => None,
    };
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
