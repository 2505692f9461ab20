//! The local image store and the commands around it: `import`, `load`, `pull`, `images`,
//! `rmi` and `image inspect`, and [`resolve`], which gives `run --image` an image's layers
//! and config.

pub mod commands;
pub mod config;
pub mod digest;
pub mod reference;
pub mod store;

mod archive;
mod compress;
mod extract;
mod registry;
mod tls;

use crate::container::state::Paths;
use anyhow::{Result, bail};
use config::ImageConfig;
use digest::Digest;
use reference::Reference;
use std::path::PathBuf;
use store::{Index, Store};

/// An image ready to be mounted: what `run --image` needs.
#[derive(Debug)]
pub struct ResolvedImage {
    pub id: Digest,
    /// The extracted layers, topmost first: overlayfs' `lowerdir=` order.
    pub lower_dirs: Vec<PathBuf>,
    pub config: ImageConfig,
}

/// Finds an image by name (`busybox`, `busybox:1.36`) or id (`sha256:...` or a prefix of its
/// hex) and returns its layer directories and config.
pub fn resolve(paths: &Paths, image: &str) -> Result<ResolvedImage> {
    let store = Store::open(&paths.storage)?;
    let id = find(&store.index()?, image)?.id;
    let config = store.image_config(&id)?;
    let mut lower_dirs = Vec::with_capacity(config.rootfs.diff_ids.len());
    for diff_id in config.rootfs.diff_ids.iter().rev() {
        if store.layer(diff_id).is_none() {
            bail!("image {image}: the layer {diff_id} is missing from the store");
        }
        lower_dirs.push(store.layer_dir(diff_id));
    }
    Ok(ResolvedImage {
        id,
        lower_dirs,
        config,
    })
}

/// An image found in the index, and the names that led to it.
#[derive(Debug)]
pub struct Found {
    pub id: Digest,
    /// The index entries `image` named: one for a name, every tag of the image for an id.
    pub names: Vec<String>,
    /// Whether `image` was given as an id.
    pub by_id: bool,
}

/// Looks `image` up: first as a reference, then as an id or an unambiguous id prefix.
pub fn find(index: &Index, image: &str) -> Result<Found> {
    if let Ok(reference) = Reference::parse(image) {
        let key = reference.to_string();
        if let Some(id) = index.get(&key) {
            return Ok(Found {
                id: id.clone(),
                names: vec![key],
                by_id: false,
            });
        }
    }
    let hex = image.strip_prefix("sha256:").unwrap_or(image);
    if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut ids: Vec<&Digest> = index
            .values()
            .filter(|id| id.hex().starts_with(hex))
            .collect();
        ids.sort();
        ids.dedup();
        match ids.as_slice() {
            [id] => {
                let names = index
                    .iter()
                    .filter(|(_, v)| v == id)
                    .map(|(k, _)| k.clone())
                    .collect();
                return Ok(Found {
                    id: (*id).clone(),
                    names,
                    by_id: true,
                });
            }
            [] => {}
            _ => bail!("image {image}: the id prefix is ambiguous"),
        }
    }
    bail!("no such image: {image}")
}

/// The containers that use image `id` (none can yet: `run --image` will record its image in
/// the container's state, and this is where `rmi` looks for it).
pub fn containers_using(paths: &Paths, id: &Digest) -> Vec<String> {
    crate::container::state::live_states(paths)
        .into_iter()
        .filter(|state| state.image.as_deref() == Some(id.as_str()))
        .map(|state| state.name.unwrap_or(state.id))
        .collect()
}
