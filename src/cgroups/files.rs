//! The file system side of cgroups: reading and writing their files, finding and killing
//! the processes in a cgroup tree, and removing cgroup directories.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::fs::{self, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// Writes `value` to an existing cgroup file in one write(2), as the kernel wants it (and
/// truncating, as a shell's `>` does). A missing file is an error (ENOENT): cgroup files are
/// never created.
pub fn write(path: &Path, value: &str) -> io::Result<()> {
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)?
        .write_all(value.as_bytes())
}

/// A file holding one number (`memory.max_usage_in_bytes`, `pids.peak`).
pub fn read_number(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The value of `key` in a flat-keyed file (`memory.events`, `cpu.stat`, `memory.oom_control`):
/// lines of `key value`.
pub fn keyed_number(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        (name == key).then(|| value.trim().parse().ok()).flatten()
    })
}

/// The pids listed in `dir/cgroup.procs` (as this process's PID namespace sees them).
pub fn pids(dir: &Path) -> Vec<i32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .map(|text| text.lines().filter_map(|l| l.parse().ok()).collect())
        .unwrap_or_default()
}

/// The pids in `dir` and every cgroup below it (a container may make cgroups of its own).
pub fn pids_in_tree(dir: &Path) -> Vec<i32> {
    let mut found = pids(dir);
    for child in child_dirs(dir) {
        found.extend(pids_in_tree(&child));
    }
    found
}

/// SIGKILL to each pid. Never this process or the host's init, whatever a cgroup lists.
pub fn kill_pids(pids: &[i32]) {
    let own = std::process::id() as i32;
    for &pid in pids {
        if pid > 1 && pid != own {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// Removes the cgroup `dir` and any cgroups inside it, deepest first. Gone already is fine;
/// a cgroup that still has processes fails with EBUSY.
pub fn remove_tree(dir: &Path) -> io::Result<()> {
    match fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(()),
        Err(err) if err.raw_os_error() == Some(libc::EBUSY) => {
            let children = child_dirs(dir);
            if children.is_empty() {
                return Err(err);
            }
            for child in children {
                remove_tree(&child)?;
            }
            match fs::remove_dir(dir) {
                Err(err) if err.kind() == ErrorKind::NotFound => Ok(()),
                other => other,
            }
        }
        Err(err) => Err(err),
    }
}

/// Polls `done` every millisecond or so until it holds or `timeout` passes; returns whether
/// it held.
pub fn wait_for(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_micros(200);
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

/// The cgroups directly below `dir`.
fn child_dirs(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
        .map(|entry| entry.path())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_files_are_read_by_key() {
        let text = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
        assert_eq!(keyed_number(text, "oom_kill"), Some(2));
        assert_eq!(keyed_number(text, "oom"), None);
        assert_eq!(keyed_number("usage_usec 15\n", "user_usec"), None);
    }

    #[test]
    fn writes_never_create_files() {
        let dir = std::env::temp_dir().join(format!("mc-files-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let err = write(&dir.join("memory.max"), "1").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        fs::write(dir.join("pids.max"), "max\n").unwrap();
        write(&dir.join("pids.max"), "20").unwrap();
        assert_eq!(read_number(&dir.join("pids.max")), Some(20));
        fs::remove_dir_all(&dir).unwrap();
    }
}
