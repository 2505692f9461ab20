//! A container's writable layer for `run --image`: `<storage>/containers/<id>/` holds the
//! overlay's upper and work directories and the mount point of the merged root. It goes with
//! the container, or, if its runner was killed, with the next command's sweep.

use super::state::Paths;
use anyhow::{Context, Result};
use std::fs;
use std::path::{Path, PathBuf};

const CONTAINERS_DIR: &str = "containers";

/// The writable layer of one container; removed when dropped.
#[derive(Debug)]
pub struct ContainerStorage {
    path: PathBuf,
}

impl ContainerStorage {
    /// The writable layer of container `id`, not made yet (see [`ContainerStorage::create`]);
    /// whatever exists of it is removed when this value drops.
    pub fn new(paths: &Paths, id: &str) -> ContainerStorage {
        ContainerStorage {
            path: paths.storage.join(CONTAINERS_DIR).join(id),
        }
    }

    /// Makes the directories: after the state directory, so that a sweep never takes a live
    /// container's layer for a stale one.
    pub fn create(&self) -> Result<()> {
        for dir in ["upper", "work", "rootfs"] {
            let dir = self.path.join(dir);
            fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        Ok(())
    }

    /// Where the overlay is mounted: the container's root filesystem.
    pub fn rootfs(&self) -> PathBuf {
        self.path.join("rootfs")
    }

    /// The overlay's options: the image's layers under this container's upper directory.
    pub fn overlay_options(&self, lower_dirs: &[PathBuf]) -> Vec<String> {
        let lower: Vec<String> = lower_dirs.iter().map(|d| d.display().to_string()).collect();
        vec![
            format!("lowerdir={}", lower.join(":")),
            format!("upperdir={}", self.path.join("upper").display()),
            format!("workdir={}", self.path.join("work").display()),
        ]
    }
}

impl Drop for ContainerStorage {
    fn drop(&mut self) {
        if !self.path.exists() {
            return;
        }
        if let Err(err) = fs::remove_dir_all(&self.path) {
            log::warn!("removing {}: {err}", self.path.display());
        }
    }
}

/// Removes writable layers whose container has no state directory any more.
pub fn remove_stale(paths: &Paths) {
    let Ok(entries) = fs::read_dir(paths.storage.join(CONTAINERS_DIR)) else {
        return;
    };
    for entry in entries.flatten() {
        let id = entry.file_name();
        if !Path::new(&paths.container_dir(&id.to_string_lossy())).exists() {
            log::info!("removing the writable layer of a container that is gone: {id:?}");
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}
