//! A detached container's log, bounded: `--log-opt max-size=SIZE` and `--log-opt
//! max-file=N` (Docker's json-file spellings; also `max-size=SIZE,max-file=N` in one flag).
//! The container writes into a pipe; a logger process of the monitor's copies it into
//! `container.log`, which never grows past max-size: it is renamed `container.log.1` (and the
//! older ones one number up, the oldest of max-file removed) and started afresh, at a line's
//! end where one fits. `logs` reads them oldest first.

use anyhow::{Context, Result, bail};
use nix::unistd::{ForkResult, Pid, fork};
use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The log a detached container writes to, in its state directory.
pub const LOG_FILE: &str = "container.log";

/// Docker's `local` log driver's defaults: 20 MiB per file, 5 files, 100 MiB at most.
pub const DEFAULT_MAX_SIZE: u64 = 20 << 20;
pub const DEFAULT_MAX_FILE: u32 = 5;

/// How big a detached container's log may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOptions {
    /// Bytes per file.
    pub max_size: u64,
    /// Files kept, the current one included.
    pub max_file: u32,
}

impl Default for LogOptions {
    fn default() -> LogOptions {
        LogOptions {
            max_size: DEFAULT_MAX_SIZE,
            max_file: DEFAULT_MAX_FILE,
        }
    }
}

impl LogOptions {
    /// The `--log-opt` values, each `KEY=VALUE` or several joined by commas.
    pub fn parse(values: &[String]) -> Result<LogOptions> {
        let mut options = LogOptions::default();
        for option in values.iter().flat_map(|value| value.split(',')) {
            let invalid = || format!("invalid --log-opt {option:?}");
            let Some((key, value)) = option.split_once('=') else {
                bail!(
                    "{}: expected KEY=VALUE (max-size=SIZE, max-file=N)",
                    invalid()
                );
            };
            match key {
                "max-size" => {
                    options.max_size = crate::spec::units::parse_bytes(value)
                        .and_then(|bytes| u64::try_from(bytes).ok())
                        .filter(|&bytes| bytes > 0)
                        .with_context(|| {
                            format!("{}: a size such as 10m, larger than 0", invalid())
                        })?;
                }
                "max-file" => {
                    options.max_file = value
                        .parse()
                        .ok()
                        .filter(|&files| files > 0)
                        .with_context(|| format!("{}: a number of files, 1 or more", invalid()))?;
                }
                _ => bail!(
                    "{}: unknown log option {key:?} (max-size and max-file are supported)",
                    invalid()
                ),
            }
        }
        Ok(options)
    }
}

/// `container.log.N`, the Nth newest rotated file.
fn rotated(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("{LOG_FILE}.{n}"))
}

/// The log's files, oldest first: the rotated ones from the highest number down, then the
/// current one.
pub fn files_in_order(dir: &Path) -> Vec<PathBuf> {
    let mut numbers: Vec<u32> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|entry| {
                    let name = entry.file_name();
                    name.to_str()?
                        .strip_prefix(LOG_FILE)?
                        .strip_prefix('.')?
                        .parse()
                        .ok()
                })
                .collect()
        })
        .unwrap_or_default();
    numbers.sort_unstable_by(|a, b| b.cmp(a));
    let mut files: Vec<PathBuf> = numbers.into_iter().map(|n| rotated(dir, n)).collect();
    files.push(dir.join(LOG_FILE));
    files
}

/// The writing end: `container.log` and its rotation.
struct RotatingLog {
    dir: PathBuf,
    options: LogOptions,
    file: File,
    size: u64,
}

fn open_log(path: &Path) -> std::io::Result<File> {
    fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
}

impl RotatingLog {
    fn open(dir: &Path, options: LogOptions) -> std::io::Result<RotatingLog> {
        let file = open_log(&dir.join(LOG_FILE))?;
        let size = file.metadata()?.len();
        Ok(RotatingLog {
            dir: dir.to_path_buf(),
            options,
            file,
            size,
        })
    }

    /// Writes `data`, starting a new file wherever the current one would pass max-size: at
    /// the last line's end that fits, or in the middle of a line longer than a whole file.
    fn write(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        while !data.is_empty() {
            let room = (self.options.max_size - self.size.min(self.options.max_size)) as usize;
            if data.len() <= room {
                self.file.write_all(data)?;
                self.size += data.len() as u64;
                return Ok(());
            }
            let cut = match data[..room].iter().rposition(|&b| b == b'\n') {
                Some(newline) => newline + 1,
                None if self.size == 0 => room,
                None => 0,
            };
            self.file.write_all(&data[..cut])?;
            data = &data[cut..];
            self.rotate()?;
        }
        Ok(())
    }

    /// `container.log` becomes `container.log.1`, each older one moves up a number, and the
    /// one past max-file goes; with max-file 1 the file is emptied instead.
    fn rotate(&mut self) -> std::io::Result<()> {
        let current = self.dir.join(LOG_FILE);
        let keep = self.options.max_file;
        if keep > 1 {
            let _ = fs::remove_file(rotated(&self.dir, keep - 1));
            for n in (1..keep - 1).rev() {
                match fs::rename(rotated(&self.dir, n), rotated(&self.dir, n + 1)) {
                    Err(err) if err.kind() != ErrorKind::NotFound => return Err(err),
                    _ => {}
                }
            }
            fs::rename(&current, rotated(&self.dir, 1))?;
            self.file = open_log(&current)?;
        } else {
            self.file.set_len(0)?;
        }
        self.size = 0;
        Ok(())
    }
}

/// Starts the logger: a child that copies what comes through a pipe into the log of the
/// state directory `dir` until every writer has closed the pipe. Returns its pid and the
/// pipe's writing end, for the container's stdout and stderr.
pub fn spawn_logger(dir: &Path, options: LogOptions) -> Result<(Pid, OwnedFd)> {
    // Opened here, so that a failure is the monitor's to report.
    let mut log = RotatingLog::open(dir, options).context("creating the container's log")?;
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .context("creating the container's log pipe")?;
    // SAFETY: the monitor is single-threaded, so the child may run any code after fork.
    match unsafe { fork() }.context("starting the container's logger")? {
        ForkResult::Parent { child } => Ok((child, write)),
        ForkResult::Child => {
            drop(write);
            keep_only(&read, log.file.as_raw_fd());
            let mut pipe = File::from(read);
            let mut buf = vec![0u8; 64 * 1024];
            let status = loop {
                match pipe.read(&mut buf) {
                    Ok(0) => break 0,
                    Ok(n) => {
                        if log.write(&buf[..n]).is_err() {
                            break 1; // a full disk: the container then gets EPIPE
                        }
                    }
                    Err(err) if err.kind() == ErrorKind::Interrupted => {}
                    Err(_) => break 1,
                }
            };
            // SAFETY: ends this process without running the monitor's exit handlers.
            unsafe { libc::_exit(status) }
        }
    }
}

/// In the logger: closes every fd but the pipe and the log (and stdio, pointed at
/// /dev/null), above all the lock on the state directory, which is the monitor's alone.
fn keep_only(pipe: &OwnedFd, log: i32) {
    if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
        for fd in 0..3 {
            // SAFETY: dup2 onto this process's own standard fds.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
    let keep = [pipe.as_raw_fd(), log];
    let Ok(entries) = fs::read_dir("/proc/self/fd") else {
        return;
    };
    let open: Vec<i32> = entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .collect();
    for fd in open {
        if fd > 2 && !keep.contains(&fd) {
            // SAFETY: closes an fd this process holds and no Rust value here owns (the
            // read_dir fd is gone already, and a stale number fails with EBADF).
            unsafe { libc::close(fd) };
        }
    }
}

/// True if `file` is still what `path` names (not rotated away).
pub fn is_current(file: &File, path: &Path) -> bool {
    match (file.metadata(), fs::metadata(path)) {
        (Ok(open), Ok(named)) => open.ino() == named.ino() && open.dev() == named.dev(),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_take_dockers_spellings() {
        let parse = |values: &[&str]| {
            LogOptions::parse(&values.iter().map(|v| v.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(parse(&[]).unwrap(), LogOptions::default());
        let both = LogOptions {
            max_size: 10 << 20,
            max_file: 3,
        };
        assert_eq!(parse(&["max-size=10m", "max-file=3"]).unwrap(), both);
        assert_eq!(parse(&["max-size=10m,max-file=3"]).unwrap(), both);
        for bad in [
            "max-size=0",
            "max-size=ten",
            "max-file=0",
            "max-file=-1",
            "mode=x",
            "x",
        ] {
            assert!(parse(&[bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn rotation_keeps_max_file_files_of_at_most_max_size() {
        let dir = std::env::temp_dir().join(format!("mc-log-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let options = LogOptions {
            max_size: 10,
            max_file: 3,
        };
        let mut log = RotatingLog::open(&dir, options).unwrap();
        for line in [
            "aaaa\n",
            "bbbb\n",
            "cccc\n",
            "dddd\n",
            "eeee\n",
            "0123456789abcdef\n",
        ] {
            log.write(line.as_bytes()).unwrap();
        }
        let contents: Vec<String> = files_in_order(&dir)
            .iter()
            .map(|file| fs::read_to_string(file).unwrap())
            .collect();
        // Lines stay whole where they fit; the long one is cut at max-size.
        assert_eq!(contents, ["eeee\n", "0123456789", "abcdef\n"]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
