//! Managing containers after `run -d`: `ps`, `inspect`, `logs`, `stop`, `kill` and `rm`.
//! A container's runner (or monitor) holds the lock on its state directory while it runs,
//! and its init is the process state.json names only while that process has the start time
//! recorded beside the pid: "running" is both facts, never a guess from a pid that may have
//! been reused, and signals go through a pidfd checked against that start time.

use super::init_process::{self, InitProcess};
use super::logfile::{self, LOG_FILE};
use super::state::{self, Paths, State, is_locked, now};
use crate::time::{format_rfc3339, human_duration};
use anyhow::{Context, Result, bail};
use nix::sys::signal::Signal;
use std::io::{Read, Write};
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// How often the management commands look again at a container that is ending.
const POLL: Duration = Duration::from_millis(20);

/// `ps [-a] [-q]`.
pub fn ps(paths: &Paths, all: bool, quiet: bool) -> Result<i32> {
    let mut containers: Vec<(String, State, Status)> = state::all(paths)
        .into_iter()
        .map(|(dir, state)| {
            let status = Status::of(&dir, &state);
            (command_of(&dir), state, status)
        })
        .filter(|(_, _, status)| all || *status == Status::Running)
        .collect();
    containers.sort_by_key(|(_, state, _)| std::cmp::Reverse(state.created));
    let mut out = std::io::stdout().lock();
    if quiet {
        for (_, state, _) in &containers {
            writeln!(out, "{}", &state.id[..12])?;
        }
        return Ok(0);
    }
    let rows: Vec<[String; 5]> = containers
        .iter()
        .map(|(command, state, status)| {
            [
                state.id[..12].to_string(),
                state.name.clone().unwrap_or_default(),
                format!("\"{}\"", truncate(command, 20)),
                format!(
                    "{} ago",
                    human_duration(now().saturating_sub(state.created) as i64)
                ),
                status_text(state, *status),
            ]
        })
        .collect();
    let header = ["CONTAINER ID", "NAME", "COMMAND", "CREATED", "STATUS"].map(String::from);
    let widths: Vec<usize> = (0..5)
        .map(|i| {
            rows.iter()
                .chain([&header])
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in [&header].into_iter().chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        writeln!(out, "{}", line.join("   ").trim_end())?;
    }
    Ok(0)
}

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Running,
    /// Its init is gone: its runner has recorded the end, or is about to.
    Exited,
    /// Its runner died without recording an end: SIGKILLed, and the container with it.
    Dead,
}

impl Status {
    fn of(dir: &Path, state: &State) -> Status {
        if init_process::is_running(dir, state) {
            Status::Running
        } else if state.exit_code.is_some() || is_locked(dir) {
            Status::Exited
        } else {
            Status::Dead
        }
    }

    fn name(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }
}

/// Docker's STATUS column.
fn status_text(state: &State, status: Status) -> String {
    match (status, state.exit_code, state.finished) {
        (Status::Running, _, _) => format!(
            "Up {}",
            human_duration(now().saturating_sub(state.started.unwrap_or(state.created)) as i64)
        ),
        (Status::Exited, Some(code), Some(finished)) => format!(
            "Exited ({code}) {} ago",
            human_duration(now().saturating_sub(finished) as i64)
        ),
        (Status::Exited, _, _) => "Exited".to_string(),
        (Status::Dead, _, _) => "Dead".to_string(),
    }
}

/// The command line from the container's spec.
fn command_of(dir: &Path) -> String {
    std::fs::read(dir.join("config.json"))
        .ok()
        .and_then(|json| serde_json::from_slice::<oci_spec::runtime::Spec>(&json).ok())
        .and_then(|spec| spec.process().as_ref()?.args().clone())
        .map(|args| args.join(" "))
        .unwrap_or_default()
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(max - 1).collect::<String>())
    }
}

/// `inspect CONTAINER`: its state, spec and cgroups as JSON.
pub fn inspect(paths: &Paths, container: &str) -> Result<i32> {
    let (dir, state) = state::find(paths, container)?;
    let status = Status::of(&dir, &state);
    let running = status == Status::Running;
    let spec: serde_json::Value = std::fs::read(dir.join("config.json"))
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .unwrap_or(serde_json::Value::Null);
    let rfc3339 = |t: u64| format_rfc3339(t as i64);
    let time = |t: Option<u64>| t.map(rfc3339);
    let inspected = serde_json::json!([{
        "Id": state.id,
        "Name": state.name,
        "Created": rfc3339(state.created),
        "Image": state.image,
        "State": {
            "Status": status.name(),
            "Running": running,
            "Pid": if running { state.pid } else { None },
            "ExitCode": state.exit_code,
            "StartedAt": time(state.started),
            "FinishedAt": time(state.finished),
        },
        "Detached": state.detached,
        "Cgroups": state.cgroups,
        "LogPath": state.detached.then(|| dir.join(LOG_FILE)),
        "Spec": spec,
    }]);
    println!("{}", serde_json::to_string_pretty(&inspected)?);
    Ok(0)
}

/// `logs [-f] CONTAINER`: what a detached container wrote, its rotated files oldest first;
/// `-f` follows until it exits, across rotations.
pub fn logs(paths: &Paths, container: &str, follow: bool) -> Result<i32> {
    let (dir, state) = state::find(paths, container)?;
    if !state.detached {
        bail!("container {container} has no log: only `run -d` keeps one");
    }
    let mut out = std::io::stdout().lock();
    let files = logfile::files_in_order(&dir);
    let (current, rotated) = files
        .split_last()
        .expect("the current log is always listed");
    for path in rotated {
        match std::fs::File::open(path) {
            Ok(mut file) => {
                std::io::copy(&mut file, &mut out)
                    .with_context(|| format!("reading {}", path.display()))?;
            }
            // Rotated away meanwhile.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
        }
    }
    let open =
        || std::fs::File::open(current).with_context(|| format!("reading {}", current.display()));
    let mut file = open()?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", current.display()))?;
        if n > 0 {
            out.write_all(&buf[..n])?;
            continue;
        }
        if follow && !logfile::is_current(&file, current) {
            // Rotated: the rest of it was read above; on with the new file.
            file = open()?;
            continue;
        }
        if !follow || !is_locked(&dir) {
            // One more read: what was written just before the monitor let go.
            std::io::copy(&mut file, &mut out)?;
            out.flush()?;
            return Ok(0);
        }
        out.flush()?;
        std::thread::sleep(POLL);
    }
}

/// `kill [-s SIGNAL] CONTAINER`.
pub fn kill_container(paths: &Paths, container: &str, signal: &str) -> Result<i32> {
    let signal = parse_signal(signal)?;
    let (dir, state) = state::find(paths, container)?;
    running_init(&dir, &state)?.signal(signal)?;
    println!("{container}");
    Ok(0)
}

/// `stop [-t SECONDS] CONTAINER`: SIGTERM, then SIGKILL after the grace period. A
/// container whose init is gone is stopped already.
pub fn stop(paths: &Paths, container: &str, grace: u64) -> Result<i32> {
    let (dir, state) = state::find(paths, container)?;
    if let Some(init) = init_process::find(&dir, &state)? {
        init.signal(Signal::SIGTERM)?;
        if !wait_until_ended(&dir, Duration::from_secs(grace)) {
            log::debug!("{container} did not stop within {grace}s: SIGKILL");
            let _ = init.signal(Signal::SIGKILL);
            wait_until_ended(&dir, Duration::from_secs(10));
        }
    }
    println!("{container}");
    Ok(0)
}

/// `rm [-f] CONTAINER...`: removes ended containers; `-f` kills running ones first.
pub fn rm(paths: &Paths, containers: &[String], force: bool) -> Result<i32> {
    for container in containers {
        let (dir, state) = state::find(paths, container)?;
        if is_locked(&dir) {
            if !force {
                bail!("cannot remove running container {container}: stop it first, or use rm -f");
            }
            if let Some(init) = init_process::find(&dir, &state)? {
                init.signal(Signal::SIGKILL)?;
            }
            if !wait_until_ended(&dir, Duration::from_secs(10)) {
                bail!("container {container} did not end after SIGKILL");
            }
        }
        state::remove(paths, &dir, &state)?;
        println!("{container}");
    }
    Ok(0)
}

/// The container's init, found by its pidfd and start time, or "not running".
fn running_init(dir: &Path, state: &State) -> Result<InitProcess> {
    match init_process::find(dir, state)? {
        Some(init) => Ok(init),
        None => bail!("container {} is not running", &state.id[..12]),
    }
}

/// Waits until the container's runner lets go of it; false if it did not within `limit`.
/// A limit too large for a deadline (`stop -t 18446744073709551615`) waits without one.
fn wait_until_ended(dir: &Path, limit: Duration) -> bool {
    let deadline = Instant::now().checked_add(limit);
    while is_locked(dir) {
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return false;
        }
        std::thread::sleep(POLL);
    }
    true
}

/// A signal as Docker takes it: `KILL`, `SIGKILL`, `kill` or `9`.
fn parse_signal(text: &str) -> Result<Signal> {
    if let Ok(number) = text.parse::<i32>() {
        return Signal::try_from(number).with_context(|| format!("invalid signal {text:?}"));
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name).with_context(|| format!("invalid signal {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(parse_signal("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("sigterm").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("15").unwrap(), Signal::SIGTERM);
        assert!(parse_signal("NOPE").is_err() && parse_signal("99").is_err());
        assert_eq!(truncate("abcdef", 4), "abc…");
    }
}
