//! `load`: images from `docker save` archives, OCI image archives and OCI image layout
//! directories. An archive is first extracted (safely, as plain files) into a work directory;
//! then both kinds are read as directories, every file opened with `openat2(RESOLVE_IN_ROOT)`
//! so that a symbolic link in a hostile archive or layout can never lead outside it.

use super::config::{
    CONTAINERD_IMAGE_NAME, Descriptor, ImageConfig, Index, Manifest, OCI_REF_NAME, choose_platform,
    is_index,
};
use super::digest::{Digest, HashingReader};
use super::extract::{self, Kind};
use super::reference::Reference;
use super::store::Store;
use anyhow::{Context, Result, bail};
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::Mode;
use serde::Deserialize;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::Path;

/// Image bodies larger than this are not JSON documents we should hold in memory.
const MAX_JSON: u64 = 16 << 20;

/// One image found in an archive or layout, loaded into the store.
#[derive(Debug)]
pub struct Loaded {
    pub id: Digest,
    /// Full references, as the index stores them.
    pub names: Vec<String>,
}

/// Loads every image of `input` (a file, `-` for stdin, or a directory) into the store.
pub fn load(store: &Store, input: &str) -> Result<Vec<Loaded>> {
    let path = Path::new(input);
    if input != "-" && path.is_dir() {
        return load_dir(store, &Dir::at(path)?);
    }
    let work = store.work_dir()?;
    let unpacked = work.path().join("archive");
    std::fs::create_dir(&unpacked).with_context(|| format!("creating {}", unpacked.display()))?;
    let reader: Box<dyn Read> = if input == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(File::open(path).with_context(|| format!("opening {input}"))?)
    };
    extract::unpack(reader, &unpacked, Kind::Files)?;
    load_dir(store, &Dir::at(&unpacked)?)
}

fn load_dir(store: &Store, dir: &Dir) -> Result<Vec<Loaded>> {
    if dir.exists("manifest.json") {
        load_docker(store, dir)
    } else if dir.exists("index.json") {
        load_oci(store, dir)
    } else {
        bail!("neither a docker save archive (manifest.json) nor an OCI image layout (index.json)")
    }
}

/// An entry of docker save's manifest.json.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn load_docker(store: &Store, dir: &Dir) -> Result<Vec<Loaded>> {
    let entries: Vec<DockerEntry> =
        serde_json::from_slice(&dir.read("manifest.json")?).context("parsing manifest.json")?;
    let mut loaded = Vec::new();
    for entry in entries {
        let config_bytes = dir.read(&entry.config)?;
        let config = ImageConfig::parse(&config_bytes)?;
        if config.rootfs.diff_ids.len() != entry.layers.len() {
            bail!(
                "{}: the config lists {} layers, manifest.json {}",
                entry.config,
                config.rootfs.diff_ids.len(),
                entry.layers.len()
            );
        }
        for (layer, diff_id) in entry.layers.iter().zip(&config.rootfs.diff_ids) {
            if store.layer(diff_id).is_none() {
                let file = dir.open(layer)?;
                store
                    .add_layer(file, Some(diff_id))
                    .with_context(|| format!("layer {layer}"))?;
            }
        }
        let id = store.write_blob(&config_bytes, None)?;
        let names = entry
            .repo_tags
            .unwrap_or_default()
            .iter()
            .map(|tag| Reference::parse(tag).map(|r| r.to_string()))
            .collect::<Result<_>>()?;
        loaded.push(Loaded { id, names });
    }
    Ok(loaded)
}

fn load_oci(store: &Store, dir: &Dir) -> Result<Vec<Loaded>> {
    let index: Index =
        serde_json::from_slice(&dir.read("index.json")?).context("parsing index.json")?;
    let host_platform = choose_platform(&index).map(|d| d.digest.clone());
    let mut loaded = Vec::new();
    for descriptor in &index.manifests {
        // A flat index of several platforms' manifests: only this machine's.
        if descriptor.platform.is_some()
            && !is_index(&descriptor.media_type)
            && host_platform.as_ref() != Some(&descriptor.digest)
        {
            continue;
        }
        let name = descriptor
            .annotations
            .get(CONTAINERD_IMAGE_NAME)
            .or_else(|| descriptor.annotations.get(OCI_REF_NAME));
        let names = match name {
            Some(name) => vec![
                Reference::parse(name)
                    .with_context(|| format!("the image name {name:?} in index.json"))?
                    .to_string(),
            ],
            None => Vec::new(),
        };
        let manifest = manifest_for(dir, descriptor)?;
        let id = load_manifest(store, dir, &manifest)?;
        loaded.push(Loaded { id, names });
    }
    Ok(loaded)
}

/// The image manifest a descriptor leads to, through an index if it is one.
fn manifest_for(dir: &Dir, descriptor: &Descriptor) -> Result<Manifest> {
    let bytes = dir.read_blob(&descriptor.digest)?;
    if is_index(&descriptor.media_type) {
        let index: Index = serde_json::from_slice(&bytes).context("parsing an image index")?;
        let chosen = choose_platform(&index).with_context(|| {
            format!(
                "the image index {} has no manifest for linux/{}",
                descriptor.digest,
                super::config::host_architecture()
            )
        })?;
        return manifest_for(dir, chosen);
    }
    serde_json::from_slice(&bytes)
        .with_context(|| format!("parsing the manifest {}", descriptor.digest))
}

/// Stores a manifest's layers and config; returns the image id.
fn load_manifest(store: &Store, dir: &Dir, manifest: &Manifest) -> Result<Digest> {
    let config_bytes = dir.read_blob(&manifest.config.digest)?;
    let config = ImageConfig::parse(&config_bytes)?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        bail!(
            "the manifest and the config of image {} disagree on the layers",
            manifest.config.digest
        );
    }
    for (layer, diff_id) in manifest.layers.iter().zip(&config.rootfs.diff_ids) {
        if store.layer(diff_id).is_some() {
            continue;
        }
        let mut blob = HashingReader::new(dir.open(&blob_path(&layer.digest))?);
        store
            .add_layer(&mut blob, Some(diff_id))
            .with_context(|| format!("layer {}", layer.digest))?;
        let (digest, _) = blob
            .finish()
            .with_context(|| format!("reading the layer {}", layer.digest))?;
        if digest != layer.digest {
            bail!("layer {}: the blob's digest is {digest}", layer.digest);
        }
    }
    store.write_blob(&config_bytes, Some(&manifest.config.digest))
}

fn blob_path(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

/// A directory whose files are opened without ever leaving it.
struct Dir {
    fd: OwnedFd,
}

impl Dir {
    fn at(path: &Path) -> Result<Dir> {
        let fd = openat(
            nix::fcntl::AT_FDCWD,
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("opening {}", path.display()))?;
        Ok(Dir { fd })
    }

    /// Opens `name` as if the directory were `/`: `..` and symbolic links stay inside it.
    fn open(&self, name: &str) -> Result<File> {
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let fd = openat2(&self.fd, name, how).with_context(|| format!("opening {name}"))?;
        Ok(File::from(fd))
    }

    fn exists(&self, name: &str) -> bool {
        self.open(name).is_ok()
    }

    fn read(&self, name: &str) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.open(name)?
            .take(MAX_JSON)
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading {name}"))?;
        Ok(bytes)
    }

    /// Reads a blob of an OCI layout, checking its digest.
    fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let bytes = self.read(&blob_path(digest))?;
        if &Digest::of(&bytes) != digest {
            bail!("the blob {digest} does not match its digest");
        }
        Ok(bytes)
    }
}
