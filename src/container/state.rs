//! Where a container's state lives: `<state root>/<id>/` holds `state.json` (id, name, pids,
//! status, cgroups) and `config.json` (its spec) while it runs; `<state root>/names/<name>`
//! links a name to its id. The runner holds a lock on the directory for as long as it lives,
//! so a directory nobody has locked belongs to a runner that is gone, and the next command
//! removes it, with the cgroups it names.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::fs::{self, File, TryLockError};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The directories mini-container keeps things in.
#[derive(Debug, Clone)]
pub struct Paths {
    /// Running containers' state: /run/mini-container, or `<--root>/run`.
    pub state: PathBuf,
    /// Images and layers: /var/lib/mini-container, or `<--root>/lib`.
    pub storage: PathBuf,
    /// Configuration (`certs.d/` for `pull`): /etc/mini-container, or `<--root>` itself.
    /// None only for a rootless user with neither XDG_CONFIG_HOME nor HOME set.
    pub config: Option<PathBuf>,
}

impl Paths {
    /// `--root DIR` if given; else /run/mini-container, /var/lib/mini-container and
    /// /etc/mini-container for root, and $XDG_RUNTIME_DIR/mini-container,
    /// ~/.local/share/mini-container and ~/.config/mini-container for anyone else (rootless).
    pub fn new(root: Option<&Path>) -> Result<Paths> {
        if let Some(root) = root {
            return Ok(Paths {
                state: root.join("run"),
                storage: root.join("lib"),
                config: Some(root.to_path_buf()),
            });
        }
        if nix::unistd::geteuid().is_root() {
            return Ok(Paths {
                state: PathBuf::from("/run/mini-container"),
                storage: PathBuf::from("/var/lib/mini-container"),
                config: Some(PathBuf::from("/etc/mini-container")),
            });
        }
        let env_dir = |name: &str| {
            std::env::var_os(name)
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
        };
        let Some(runtime) = env_dir("XDG_RUNTIME_DIR") else {
            bail!(
                "rootless: XDG_RUNTIME_DIR is not set; set it (e.g. to /run/user/$(id -u)) or use --root DIR"
            );
        };
        let data = env_dir("XDG_DATA_HOME")
            .or_else(|| env_dir("HOME").map(|home| home.join(".local/share")))
            .context("rootless: neither XDG_DATA_HOME nor HOME is set; use --root DIR")?;
        // Only `pull` reads it: its absence must not stop `run`.
        let config =
            env_dir("XDG_CONFIG_HOME").or_else(|| env_dir("HOME").map(|home| home.join(".config")));
        Ok(Paths {
            state: runtime.join("mini-container"),
            storage: data.join("mini-container"),
            config: config.map(|dir| dir.join("mini-container")),
        })
    }
}

impl Paths {
    /// The state directory of container `id`.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.state.join(id)
    }

    /// Where `pull` looks for a registry's extra CAs: `<config>/certs.d/<host[:port]>/`.
    pub fn certs_d(&self) -> Option<PathBuf> {
        self.config.as_ref().map(|dir| dir.join("certs.d"))
    }
}

/// The contents of `state.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct State {
    pub id: String,
    pub name: Option<String>,
    /// "creating" until the container's init exists, then "running".
    pub status: String,
    /// The runner (`mini-container run`) that owns the container.
    pub runner_pid: u32,
    /// The container's init, as the host sees it.
    pub pid: Option<i32>,
    /// The init's start time (field 22 of /proc/PID/stat, clock ticks after boot): `exec`,
    /// `kill` and `stop` act on `pid` only while the process there started at this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<u64>,
    /// Seconds since the epoch.
    pub created: u64,
    /// The id of the image the container runs (`run --image`), which `rmi` then refuses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The container's cgroup directories, recorded before they are created.
    #[serde(default)]
    pub cgroups: Vec<PathBuf>,
    /// Started with `run -d`: kept after it exits (unless `--rm`) until `rm`.
    #[serde(default)]
    pub detached: bool,
    /// Seconds since the epoch when the command started, and when it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<u64>,
    /// The command's exit status, once it has ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

const NAMES_DIR: &str = "names";
/// Others may pass through (a remapped container root binds its /etc files from here) but
/// not list; the state and spec files themselves are private to root.
const STATE_DIR_MODE: u32 = 0o711;
const STATE_FILE: &str = "state.json";
const CONFIG_FILE: &str = "config.json";
/// A directory that never got its state file is left this long to its creator.
const CREATION_GRACE: Duration = Duration::from_secs(60);

/// A container's state directory, locked while this value lives and removed when it drops.
#[derive(Debug)]
pub struct StateDir {
    path: PathBuf,
    names: PathBuf,
    name: Option<String>,
    state: State,
    /// Left for the next command's `remove_stale` instead of removed (cgroups that could
    /// not be removed).
    keep: bool,
    /// Kept, with its name, after the container ended: a detached container until `rm`.
    retain: bool,
    // Held for the container's lifetime; the lock goes with the runner.
    _lock: File,
}

/// What is known of a container when its state directory is made: all of it is in the first
/// state file, so that a sweep after a killed runner finds its cgroups before they exist.
#[derive(Debug, Default)]
pub struct NewContainer<'a> {
    pub id: &'a str,
    pub name: Option<&'a str>,
    pub image: Option<String>,
    pub cgroups: Vec<PathBuf>,
    /// `run -d`: kept after it ends, unless `remove` (`--rm`).
    pub detached: bool,
    pub remove: bool,
}

impl StateDir {
    /// Creates and locks `<root>/<id>`, claims the name, and writes the first state file.
    pub fn create(paths: &Paths, new: NewContainer) -> Result<StateDir> {
        let (id, name) = (new.id, new.name);
        let what = || format!("creating state directory {}", paths.state.display());
        fs::DirBuilder::new()
            .recursive(true)
            .mode(STATE_DIR_MODE)
            .create(&paths.state)
            .with_context(what)?;
        // An older version made it 0700: open it up for remapped containers.
        fs::set_permissions(&paths.state, fs::Permissions::from_mode(STATE_DIR_MODE))
            .with_context(what)?;
        let path = paths.container_dir(id);
        fs::DirBuilder::new()
            .mode(STATE_DIR_MODE)
            .create(&path)
            .with_context(what)?;
        let lock = File::open(&path).with_context(what)?;
        lock.lock().with_context(what)?;
        let created = now();
        let mut dir = StateDir {
            names: paths.state.join(NAMES_DIR),
            path,
            name: None,
            state: State {
                id: id.to_string(),
                name: name.map(String::from),
                status: "creating".to_string(),
                runner_pid: std::process::id(),
                pid: None,
                start_time: None,
                created,
                image: new.image,
                cgroups: new.cgroups,
                detached: new.detached,
                started: None,
                finished: None,
                exit_code: None,
            },
            keep: false,
            retain: false,
            _lock: lock,
        };
        if let Some(name) = name {
            dir.claim_name(name)?;
        }
        dir.write_state()?;
        // Kept from here on; a failure above removed it.
        dir.retain = new.detached && !new.remove;
        Ok(dir)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn id(&self) -> &str {
        &self.state.id
    }

    /// Records the container's init pid and start time, and marks it running.
    pub fn set_running(&mut self, pid: i32) -> Result<()> {
        self.state.start_time = Some(crate::pidfd::start_time(pid)?);
        self.state.pid = Some(pid);
        self.state.status = "running".to_string();
        self.state.started = Some(now());
        self.write_state()
    }

    /// Removes the directory when dropped even if it was to be kept.
    pub fn remove_when_dropped(&mut self) {
        self.retain = false;
    }

    /// Records how the container ended, for a detached one kept for `ps -a` (a directory
    /// about to be removed is not written to).
    pub fn finish(&mut self, exit_code: Option<i32>) -> Result<()> {
        if !self.retain {
            return Ok(());
        }
        self.state.status = "exited".to_string();
        self.state.exit_code = exit_code;
        self.state.finished = Some(now());
        self.write_state()
    }

    /// Leaves the directory to the next command's cleanup: something it names (a cgroup)
    /// could not be removed.
    pub fn keep_for_cleanup(&mut self) {
        self.keep = true;
    }

    /// Writes the container's spec as `config.json`.
    pub fn write_config(&self, json: &[u8]) -> Result<()> {
        write_atomically(&self.path.join(CONFIG_FILE), json)
    }

    fn write_state(&self) -> Result<()> {
        let json = serde_json::to_vec_pretty(&self.state).context("serializing state")?;
        write_atomically(&self.path.join(STATE_FILE), &json)
    }

    /// Links `names/<name>` to this container; a name held by a live container is refused,
    /// one left by a dead runner is taken over.
    fn claim_name(&mut self, name: &str) -> Result<()> {
        validate_name(name)?;
        let link = self.names.join(name);
        for _ in 0..3 {
            // Made again each time: another runner removes it when its last name goes.
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.names)
                .with_context(|| format!("creating {}", self.names.display()))?;
            match std::os::unix::fs::symlink(&self.state.id, &link) {
                Ok(()) => {
                    self.name = Some(name.to_string());
                    return Ok(());
                }
                Err(err) if err.kind() == ErrorKind::AlreadyExists => {
                    let holder = fs::read_link(&link).unwrap_or_default();
                    let holder_dir = self.path.with_file_name(&holder);
                    if is_locked(&holder_dir) || is_kept(&holder_dir) {
                        bail!(
                            "the container name {name:?} is already in use by container {}",
                            holder.display()
                        );
                    }
                    // Left by a runner that is gone.
                    let _ = fs::remove_file(&link);
                }
                // The directory went between its creation and the link: again.
                Err(err) if err.kind() == ErrorKind::NotFound => {}
                Err(err) => {
                    return Err(err).with_context(|| format!("creating {}", link.display()));
                }
            }
        }
        bail!("the container name {name:?} is already in use")
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        if self.retain {
            return;
        }
        if let Some(name) = &self.name {
            let _ = fs::remove_file(self.names.join(name));
            // The last name gone, so is the directory (claim_name makes it again).
            let _ = fs::remove_dir(&self.names);
        }
        if self.keep {
            return;
        }
        if let Err(err) = fs::remove_dir_all(&self.path) {
            log::warn!("removing {}: {err}", self.path.display());
        }
    }
}

/// Docker's rule for names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
fn validate_name(name: &str) -> Result<()> {
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric());
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !first_ok || !rest_ok || name.len() < 2 {
        bail!(
            "invalid container name {name:?}: use at least two of [a-zA-Z0-9_.-], starting with a letter or digit"
        );
    }
    Ok(())
}

/// A container's state directory and state, found by name, id or unique id prefix.
pub fn find(paths: &Paths, query: &str) -> Result<(PathBuf, State)> {
    let by_name = fs::read_link(paths.state.join(NAMES_DIR).join(query))
        .ok()
        .map(|id| paths.state.join(id))
        .filter(|dir| dir.exists());
    let dir = match by_name {
        Some(dir) => dir,
        None => {
            let matches: Vec<PathBuf> = if query.is_empty() {
                Vec::new()
            } else {
                fs::read_dir(&paths.state)
                    .map(|entries| {
                        entries
                            .flatten()
                            .filter(|e| e.file_name() != NAMES_DIR)
                            .filter(|e| e.file_name().to_string_lossy().starts_with(query))
                            .map(|e| e.path())
                            .collect()
                    })
                    .unwrap_or_default()
            };
            match matches.as_slice() {
                [dir] => dir.clone(),
                [] => bail!("no such container: {query}"),
                _ => bail!(
                    "{query:?} matches {} containers: give more of the id",
                    matches.len()
                ),
            }
        }
    };
    let state = read_state(&dir)?;
    Ok((dir, state))
}

/// Every container's state directory and state, running or kept.
pub fn all(paths: &Paths) -> Vec<(PathBuf, State)> {
    let Ok(entries) = fs::read_dir(&paths.state) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| entry.file_name() != NAMES_DIR)
        .filter_map(|entry| Some((entry.path(), read_state(&entry.path()).ok()?)))
        .collect()
}

/// Removes a container that no runner holds: the cgroups its state names (killing what is
/// left in them), its writable layer, its name and its state directory.
pub fn remove(paths: &Paths, dir: &Path, state: &State) -> Result<()> {
    if !state.cgroups.is_empty() {
        crate::cgroups::remove_stale(&state.id, &state.cgroups)
            .with_context(|| format!("removing the cgroups of container {}", state.id))?;
    }
    let layer = paths.storage.join("containers").join(&state.id);
    if layer.exists() {
        fs::remove_dir_all(&layer).with_context(|| format!("removing {}", layer.display()))?;
    }
    if let Some(name) = &state.name {
        let link = paths.state.join(NAMES_DIR).join(name);
        if fs::read_link(&link).is_ok_and(|id| id.as_os_str() == state.id.as_str()) {
            let _ = fs::remove_file(&link);
        }
    }
    fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))
}

/// True if the container in `dir` was detached: kept until `rm`, even when its monitor died.
fn is_kept(dir: &Path) -> bool {
    read_state(dir).is_ok_and(|state| state.detached)
}

/// The state of the container in `dir`.
pub fn read_state(dir: &Path) -> Result<State> {
    let path = dir.join(STATE_FILE);
    let json = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&json).with_context(|| format!("reading {}", path.display()))
}

/// True if some live runner holds the lock on `dir`.
pub fn is_locked(dir: &Path) -> bool {
    match File::open(dir) {
        Ok(file) => matches!(file.try_lock(), Err(TryLockError::WouldBlock)),
        Err(_) => false,
    }
}

/// Removes what runners that were killed left behind: state directories nobody holds, the
/// cgroups they name, and name links to containers that no longer exist. Best effort:
/// failures are logged, and a directory whose cgroups remain is kept for the next try.
pub fn remove_stale(paths: &Paths) {
    let Ok(entries) = fs::read_dir(&paths.state) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name() == NAMES_DIR {
            continue;
        }
        let Ok(dir) = File::open(&path) else { continue };
        if dir.try_lock().is_err() {
            continue; // a live runner holds it
        }
        if is_kept(&path) {
            continue; // a detached container: `ps -a` shows it until `rm`
        }
        if !path.join(STATE_FILE).exists() && !older_than(&path, CREATION_GRACE) {
            continue; // its runner may be between mkdir and lock
        }
        log::info!("removing state left by a dead runner: {}", path.display());
        if let Err(err) = remove_stale_cgroups(&path) {
            log::warn!("{}", crate::errors::describe(&err));
            continue;
        }
        if let Err(err) = fs::remove_dir_all(&path) {
            log::warn!("removing {}: {err}", path.display());
        }
    }
    let Ok(names) = fs::read_dir(paths.state.join(NAMES_DIR)) else {
        return;
    };
    for link in names.flatten() {
        let link = link.path();
        let target_exists = fs::read_link(&link)
            .map(|id| paths.state.join(id).exists())
            .unwrap_or(false);
        if !target_exists {
            let _ = fs::remove_file(&link);
        }
    }
}

/// The states of the containers whose runners are alive.
pub fn live_states(paths: &Paths) -> Vec<State> {
    let Ok(entries) = fs::read_dir(&paths.state) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| entry.file_name() != NAMES_DIR && is_locked(&entry.path()))
        .filter_map(|entry| fs::read(entry.path().join(STATE_FILE)).ok())
        .filter_map(|json| serde_json::from_slice(&json).ok())
        .collect()
}

/// Kills and removes the cgroups a dead runner's state names.
fn remove_stale_cgroups(dir: &Path) -> Result<()> {
    let Ok(json) = fs::read(dir.join(STATE_FILE)) else {
        return Ok(());
    };
    let Ok(state) = serde_json::from_slice::<State>(&json) else {
        return Ok(()); // not a state file of ours: it names nothing to remove
    };
    if state.cgroups.is_empty() {
        return Ok(());
    }
    let id = dir.file_name().unwrap_or_default().to_string_lossy();
    crate::cgroups::remove_stale(&id, &state.cgroups)
        .with_context(|| format!("removing the cgroups of dead container {id}"))
}

/// True if `path` was last modified more than `age` ago.
pub fn older_than(path: &Path, age: Duration) -> bool {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|modified| modified.elapsed().ok())
        .is_some_and(|elapsed| elapsed > age)
}

/// Writes `path` through a temporary file and a rename, so readers never see half a file.
fn write_atomically(path: &Path, contents: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut file| file.write_all(contents))
        .and_then(|()| fs::rename(&tmp, path))
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named<'a>(id: &'a str, name: &'a str) -> NewContainer<'a> {
        NewContainer {
            id,
            name: Some(name),
            ..NewContainer::default()
        }
    }

    fn temp_paths(tag: &str) -> Paths {
        let root = std::env::temp_dir().join(format!("mc-state-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        Paths::new(Some(&root)).unwrap()
    }

    #[test]
    fn state_dir_lives_as_long_as_its_value() {
        let paths = temp_paths("life");
        let mut dir = StateDir::create(&paths, named("abc", "web")).unwrap();
        let pid = std::process::id() as i32;
        dir.set_running(pid).unwrap();
        let state: State =
            serde_json::from_slice(&fs::read(dir.path().join(STATE_FILE)).unwrap()).unwrap();
        assert_eq!(state.pid, Some(pid));
        assert_eq!(state.start_time, crate::pidfd::start_time(pid).ok());
        assert_eq!(state.name.as_deref(), Some("web"));
        assert_eq!(
            fs::read_link(paths.state.join("names/web")).unwrap(),
            Path::new("abc")
        );
        // A second container cannot take the name while the first lives.
        let err = StateDir::create(&paths, named("def", "web")).unwrap_err();
        assert!(
            format!("{err:#}").contains("already in use by container abc"),
            "{err:#}"
        );
        // Its failed creation removed its own directory.
        assert!(!paths.state.join("def").exists());
        remove_stale(&paths);
        assert!(
            paths.state.join("abc").exists(),
            "a live container is not stale"
        );
        drop(dir);
        assert!(!paths.state.join("abc").exists());
        assert!(fs::symlink_metadata(paths.state.join("names/web")).is_err());
        assert!(
            !paths.state.join("names").exists(),
            "the last name took the directory"
        );
        fs::remove_dir_all(paths.state.parent().unwrap()).unwrap();
    }

    #[test]
    fn stale_state_is_removed() {
        let paths = temp_paths("stale");
        // What a SIGKILLed runner leaves: a directory with a state file, nobody holding it,
        // and its name link.
        let dead = paths.state.join("dead");
        fs::create_dir_all(&dead).unwrap();
        fs::write(dead.join(STATE_FILE), "{}").unwrap();
        fs::create_dir_all(paths.state.join(NAMES_DIR)).unwrap();
        std::os::unix::fs::symlink("dead", paths.state.join("names/old")).unwrap();
        // A directory just made by a runner that has not written its state yet.
        fs::create_dir_all(paths.state.join("young")).unwrap();
        remove_stale(&paths);
        assert!(!dead.exists());
        assert!(fs::symlink_metadata(paths.state.join("names/old")).is_err());
        assert!(paths.state.join("young").exists());
        // The name is free again.
        drop(StateDir::create(&paths, named("new", "old")).unwrap());
        fs::remove_dir_all(paths.state.parent().unwrap()).unwrap();
    }

    #[test]
    fn names_follow_dockers_rule() {
        for good in ["web", "a1", "my_app.v2-x"] {
            validate_name(good).unwrap();
        }
        for bad in ["", "a", "-x", "a b", "a/b", "é1"] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }
}
