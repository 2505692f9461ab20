//! The local image store, content-addressed:
//!
//! ```text
//! <storage>/lock                 held (flock) while the index or the set of layers changes
//! <storage>/repositories.json    the index: {"docker.io/library/busybox:latest": "sha256:<id>"}
//! <storage>/blobs/sha256/<hex>   image configs (an image's id is its config's digest)
//! <storage>/layers/<hex>/        one extracted layer, named by its DiffID: fs/ and layer.json
//! <storage>/tmp/<pid>-<n>/       work directories, locked by the command that owns them
//! ```
//!
//! Every write goes to `tmp/` first and is renamed into place only once complete and verified,
//! and the index is written last, under the lock: a command that is interrupted leaves at most
//! complete layers and blobs nobody points at yet (which the next import, load or pull reuses)
//! and a work directory that the next command removes.

use super::config::ImageConfig;
use super::digest::Digest;
use super::extract::{self, Kind};
use crate::container::state::older_than;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File, TryLockError};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The index: full reference (`docker.io/library/busybox:latest`) to image id.
pub type Index = BTreeMap<String, Digest>;

const INDEX_FILE: &str = "repositories.json";
const LAYER_FILE: &str = "layer.json";

/// What the store knows about an extracted layer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerInfo {
    pub diff_id: Digest,
    /// Bytes of file contents.
    pub size: u64,
}

/// An open store.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// Held while the index changes; other writers wait for it.
pub struct IndexLock<'a> {
    store: &'a Store,
    _file: File,
}

/// A work directory in `tmp/`, locked while this value lives and removed when it drops.
pub struct WorkDir {
    path: PathBuf,
    _lock: File,
}

impl Store {
    /// Opens (creating if needed) the store under `root`, removing work directories that
    /// interrupted commands left.
    pub fn open(root: &Path) -> Result<Store> {
        let store = Store {
            root: root.to_path_buf(),
        };
        for dir in [
            root.to_path_buf(),
            store.blob_dir(),
            store.root.join("layers"),
            store.tmp_dir(),
        ] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .with_context(|| format!("creating the image store {}", dir.display()))?;
        }
        store.remove_stale_work();
        Ok(store)
    }

    fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blob_dir().join(digest.hex())
    }

    fn layer_path(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.hex())
    }

    /// The extracted tree of a layer: a lower directory for overlayfs.
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.layer_path(diff_id).join("fs")
    }

    /// A fresh, locked work directory.
    pub fn work_dir(&self) -> Result<WorkDir> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = self.tmp_dir().join(format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        // Made under a name that cleaners skip, locked, then renamed: a cleaner never sees
        // a work directory between its creation and its lock.
        let fresh = self.tmp_dir().join(format!(
            ".new-{}",
            path.file_name().unwrap_or_default().to_string_lossy()
        ));
        let _ = fs::remove_dir_all(&path);
        let _ = fs::remove_dir_all(&fresh);
        let what = || format!("creating the work directory {}", path.display());
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&fresh)
            .with_context(what)?;
        let lock = File::open(&fresh).with_context(what)?;
        lock.lock().with_context(what)?;
        fs::rename(&fresh, &path).with_context(what)?;
        Ok(WorkDir { path, _lock: lock })
    }

    fn remove_stale_work(&self) {
        let Ok(entries) = fs::read_dir(self.tmp_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let fresh = entry.file_name().to_string_lossy().starts_with(".new-");
            if fresh && !older_than(&path, Duration::from_secs(60)) {
                continue; // its command may be between mkdir and lock
            }
            let Ok(dir) = File::open(&path) else { continue };
            match dir.try_lock() {
                Ok(()) => {
                    log::info!(
                        "removing work left by an interrupted command: {}",
                        path.display()
                    );
                    if let Err(err) = fs::remove_dir_all(&path) {
                        log::warn!("removing {}: {err}", path.display());
                    }
                }
                Err(TryLockError::WouldBlock) => {} // a live command's
                Err(err) => log::warn!("locking {}: {err}", path.display()),
            }
        }
    }

    /// Stores `bytes` as a blob, checking them against `expected` when given.
    pub fn write_blob(&self, bytes: &[u8], expected: Option<&Digest>) -> Result<Digest> {
        let digest = Digest::of(bytes);
        if let Some(expected) = expected
            && &digest != expected
        {
            bail!("digest mismatch: expected {expected}, got {digest}");
        }
        let path = self.blob_path(&digest);
        if !path.exists() {
            let work = self.work_dir()?;
            write_synced(&work.path.join("blob"), bytes)?;
            fs::rename(work.path.join("blob"), &path)
                .with_context(|| format!("storing the blob {digest}"))?;
        }
        Ok(digest)
    }

    /// Reads a blob back, verifying it.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let bytes = fs::read(self.blob_path(digest))
            .with_context(|| format!("reading the blob {digest}"))?;
        if &Digest::of(&bytes) != digest {
            bail!("the blob {digest} is corrupt");
        }
        Ok(bytes)
    }

    /// The layer, if it is in the store.
    pub fn layer(&self, diff_id: &Digest) -> Option<LayerInfo> {
        let json = fs::read(self.layer_path(diff_id).join(LAYER_FILE)).ok()?;
        serde_json::from_slice(&json).ok()
    }

    /// Extracts a layer (plain, gzip or zstd tar) into the store, unless it is there already
    /// (then `input` is still read, so that its digest can be checked by the caller).
    /// With `expected`, the layer's DiffID must match it.
    pub fn add_layer(&self, input: impl Read, expected: Option<&Digest>) -> Result<LayerInfo> {
        let work = self.work_dir()?;
        let staged = work.path.join("layer");
        let tree = staged.join("fs");
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&tree)
            .with_context(|| format!("creating {}", tree.display()))?;
        let unpacked = extract::unpack(input, &tree, Kind::Layer)?;
        if let Some(expected) = expected
            && &unpacked.diff_id != expected
        {
            bail!(
                "the layer's content does not match its DiffID: expected {expected}, got {}",
                unpacked.diff_id
            );
        }
        let info = LayerInfo {
            diff_id: unpacked.diff_id,
            size: unpacked.size,
        };
        if self.layer(&info.diff_id).is_some() {
            return Ok(info); // already there: shared with another image
        }
        let json = serde_json::to_vec(&info).context("serializing layer.json")?;
        write_synced(&staged.join(LAYER_FILE), &json)?;
        match fs::rename(&staged, self.layer_path(&info.diff_id)) {
            Ok(()) => {}
            // Another command stored the same layer meanwhile.
            Err(err)
                if err.kind() == ErrorKind::DirectoryNotEmpty
                    || err.raw_os_error() == Some(libc::EEXIST) => {}
            Err(err) => {
                return Err(err).with_context(|| format!("storing the layer {}", info.diff_id));
            }
        }
        log::info!("stored layer {} ({} bytes)", info.diff_id, info.size);
        Ok(info)
    }

    /// Takes the store's lock (waiting for other writers).
    pub fn lock(&self) -> Result<IndexLock<'_>> {
        let path = self.root.join("lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        file.lock()
            .with_context(|| format!("locking {}", path.display()))?;
        Ok(IndexLock {
            store: self,
            _file: file,
        })
    }

    /// The index as it is now (an absent index is empty).
    pub fn index(&self) -> Result<Index> {
        let path = self.root.join(INDEX_FILE);
        match fs::read(&path) {
            Ok(json) => serde_json::from_slice(&json)
                .with_context(|| format!("reading the image index {}", path.display())),
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(Index::new()),
            Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// An image's config, from its id.
    pub fn image_config(&self, id: &Digest) -> Result<ImageConfig> {
        ImageConfig::parse(&self.read_blob(id)?)
    }

    /// Removes a layer: renamed away first, so that it is never seen half removed.
    fn remove_layer(&self, diff_id: &Digest) -> Result<()> {
        let work = self.work_dir()?;
        let trash = work.path.join("trash");
        match fs::rename(self.layer_path(diff_id), &trash) {
            Ok(()) => {
                fs::remove_dir_all(&trash).with_context(|| format!("removing the layer {diff_id}"))
            }
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(()),
            Err(err) => Err(err).with_context(|| format!("removing the layer {diff_id}")),
        }
    }
}

impl IndexLock<'_> {
    /// Points each of `names` at the image `id`, after checking that its config and every
    /// layer are in the store.
    pub fn tag(&self, names: &[String], id: &Digest) -> Result<()> {
        let config = self.store.image_config(id)?;
        for diff_id in &config.rootfs.diff_ids {
            if self.store.layer(diff_id).is_none() {
                bail!(
                    "the layer {diff_id} is missing from the store (removed meanwhile?): try again"
                );
            }
        }
        let mut index = self.store.index()?;
        for name in names {
            index.insert(name.clone(), id.clone());
        }
        self.write_index(&index)
    }

    pub fn write_index(&self, index: &Index) -> Result<()> {
        let json = serde_json::to_vec_pretty(index).context("serializing the image index")?;
        let work = self.store.work_dir()?;
        let staged = work.path.join(INDEX_FILE);
        write_synced(&staged, &json)?;
        fs::rename(&staged, self.store.root.join(INDEX_FILE)).context("writing the image index")
    }

    /// Removes the images among `candidates` that the index no longer names, and their layers
    /// that no remaining image uses.
    pub fn collect_garbage(&self, candidates: &[Digest]) -> Result<()> {
        let index = self.store.index()?;
        let mut kept_layers = std::collections::BTreeSet::new();
        for id in index.values() {
            if let Ok(config) = self.store.image_config(id) {
                kept_layers.extend(config.rootfs.diff_ids);
            }
        }
        for id in candidates {
            if index.values().any(|v| v == id) {
                continue;
            }
            if let Ok(config) = self.store.image_config(id) {
                for diff_id in config.rootfs.diff_ids {
                    if !kept_layers.contains(&diff_id) {
                        self.store.remove_layer(&diff_id)?;
                        log::info!("removed layer {diff_id}");
                    }
                }
            }
            match fs::remove_file(self.store.blob_path(id)) {
                Err(err) if err.kind() != ErrorKind::NotFound => {
                    return Err(err).with_context(|| format!("removing the image {id}"));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl WorkDir {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Err(err) = fs::remove_dir_all(&self.path)
            && err.kind() != ErrorKind::NotFound
        {
            log::warn!("removing {}: {err}", self.path.display());
        }
    }
}

/// Writes a file and flushes it to disk, so that a rename publishes complete contents.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_store(tag: &str) -> (PathBuf, Store) {
        let root = std::env::temp_dir().join(format!("mc-store-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let store = Store::open(&root).unwrap();
        (root, store)
    }

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            builder.append_data(&mut header, name, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn blobs_are_verified() {
        let (root, store) = temp_store("blobs");
        let digest = store.write_blob(b"{}", None).unwrap();
        assert_eq!(store.read_blob(&digest).unwrap(), b"{}");
        let wrong = Digest::of(b"other");
        assert!(store.write_blob(b"{}", Some(&wrong)).is_err());
        assert!(!store.blob_path(&wrong).exists());
        fs::write(store.blob_path(&digest), b"[]").unwrap();
        assert!(store.read_blob(&digest).is_err());
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn layers_are_shared_and_leave_no_work_behind() {
        let (root, store) = temp_store("layers");
        let tar = tar_of(&[("etc/hello", b"hi\n")]);
        let first = store.add_layer(&tar[..], None).unwrap();
        assert_eq!(first.diff_id, Digest::of(&tar));
        assert_eq!(first.size, 3);
        let again = store.add_layer(&tar[..], Some(&first.diff_id)).unwrap();
        assert_eq!(again.diff_id, first.diff_id);
        assert_eq!(
            fs::read(store.layer_dir(&first.diff_id).join("etc/hello")).unwrap(),
            b"hi\n"
        );
        assert!(store.add_layer(&tar[..], Some(&Digest::of(b"x"))).is_err());
        assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn stale_work_is_removed_on_open() {
        let (root, store) = temp_store("stale");
        fs::create_dir_all(store.tmp_dir().join("999-0/layer")).unwrap();
        let live = store.work_dir().unwrap();
        Store::open(&root).unwrap();
        assert!(!store.tmp_dir().join("999-0").exists());
        assert!(live.path.exists());
        drop(live);
        fs::remove_dir_all(root).unwrap();
    }
}
