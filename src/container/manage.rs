//! Managing containers after `run -d`: `ps`, `inspect`, `logs`, `stop`, `kill` and `rm`.
//! A container's runner (or monitor) holds the lock on its state directory while it runs,
//! so "running" is a fact read from the lock, never a guess from a pid that may be reused.

use super::detach::LOG_FILE;
use super::state::{self, Paths, State, is_locked, now};
use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::{Read, Write};
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// How often the management commands look again at a container that is ending.
const POLL: Duration = Duration::from_millis(20);

/// `ps [-a] [-q]`.
pub fn ps(paths: &Paths, all: bool, quiet: bool) -> Result<i32> {
    let mut containers: Vec<(String, State, bool)> = state::all(paths)
        .into_iter()
        .map(|(dir, state)| {
            let running = is_locked(&dir);
            (command_of(&dir), state, running)
        })
        .filter(|(_, _, running)| all || *running)
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
        .map(|(command, state, running)| {
            [
                state.id[..12].to_string(),
                state.name.clone().unwrap_or_default(),
                format!("\"{}\"", truncate(command, 20)),
                format!(
                    "{} ago",
                    human_duration(now().saturating_sub(state.created))
                ),
                status_text(state, *running),
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

/// Docker's STATUS column.
fn status_text(state: &State, running: bool) -> String {
    match (running, state.exit_code, state.finished) {
        (true, _, _) => format!(
            "Up {}",
            human_duration(now().saturating_sub(state.started.unwrap_or(state.created)))
        ),
        (false, Some(code), Some(finished)) => format!(
            "Exited ({code}) {} ago",
            human_duration(now().saturating_sub(finished))
        ),
        // Its runner died without recording an end: SIGKILLed, and the container with it.
        _ => "Dead".to_string(),
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

/// Docker's human durations: "Less than a second", "5 seconds", "About a minute", ...
pub fn human_duration(seconds: u64) -> String {
    let (minutes, hours, days) = (seconds / 60, seconds / 3600, seconds / 86400);
    match seconds {
        0 => "Less than a second".to_string(),
        1 => "1 second".to_string(),
        2..60 => format!("{seconds} seconds"),
        _ if minutes == 1 => "About a minute".to_string(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".to_string(),
        _ if hours < 48 => format!("{hours} hours"),
        _ => format!("{days} days"),
    }
}

/// Seconds since the epoch as RFC 3339 UTC (`2026-11-29T05:13:20Z`).
pub fn rfc3339(seconds: u64) -> String {
    let days = (seconds / 86400) as i64;
    let rem = seconds % 86400;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `inspect CONTAINER`: its state, spec and cgroups as JSON.
pub fn inspect(paths: &Paths, container: &str) -> Result<i32> {
    let (dir, state) = state::find(paths, container)?;
    let running = is_locked(&dir);
    let spec: serde_json::Value = std::fs::read(dir.join("config.json"))
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .unwrap_or(serde_json::Value::Null);
    let time = |t: Option<u64>| t.map(rfc3339);
    let status = if running {
        "running"
    } else if state.exit_code.is_some() {
        "exited"
    } else {
        "dead"
    };
    let inspected = serde_json::json!([{
        "Id": state.id,
        "Name": state.name,
        "Created": rfc3339(state.created),
        "Image": state.image,
        "State": {
            "Status": status,
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

/// `logs [-f] CONTAINER`: what a detached container wrote; `-f` follows until it exits.
pub fn logs(paths: &Paths, container: &str, follow: bool) -> Result<i32> {
    let (dir, state) = state::find(paths, container)?;
    if !state.detached {
        bail!("container {container} has no log: only `run -d` keeps one");
    }
    let path = dir.join(LOG_FILE);
    let mut file =
        std::fs::File::open(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = std::io::stdout().lock();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n > 0 {
            out.write_all(&buf[..n])?;
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
    signal_running(&dir, &state, signal)?;
    println!("{container}");
    Ok(0)
}

/// `stop [-t SECONDS] CONTAINER`: SIGTERM, then SIGKILL after the grace period.
pub fn stop(paths: &Paths, container: &str, grace: u64) -> Result<i32> {
    let (dir, state) = state::find(paths, container)?;
    if is_locked(&dir) {
        signal_running(&dir, &state, Signal::SIGTERM)?;
        if !wait_until_ended(&dir, Duration::from_secs(grace)) {
            log::debug!("{container} did not stop within {grace}s: SIGKILL");
            let _ = signal_running(&dir, &state, Signal::SIGKILL);
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
            signal_running(&dir, &state, Signal::SIGKILL)?;
            if !wait_until_ended(&dir, Duration::from_secs(10)) {
                bail!("container {container} did not end after SIGKILL");
            }
        }
        state::remove(paths, &dir, &state)?;
        println!("{container}");
    }
    Ok(0)
}

/// Sends `signal` to the container's init, which exists as long as its runner holds the
/// lock (the init dies with the runner), so the pid cannot have been reused.
fn signal_running(dir: &Path, state: &State, signal: Signal) -> Result<()> {
    let Some(pid) = state.pid.filter(|_| is_locked(dir)) else {
        bail!("container {} is not running", &state.id[..12]);
    };
    match kill(Pid::from_raw(pid), signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(err) => Err(err).with_context(|| format!("sending {signal} to the container")),
    }
}

/// Waits until the container's runner lets go of it; false if it did not within `limit`.
fn wait_until_ended(dir: &Path, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while is_locked(dir) {
        if Instant::now() >= deadline {
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
    fn durations_read_as_dockers() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(5), "5 seconds");
        assert_eq!(human_duration(61), "About a minute");
        assert_eq!(human_duration(600), "10 minutes");
        assert_eq!(human_duration(3700), "About an hour");
        assert_eq!(human_duration(5 * 3600), "5 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
    }

    #[test]
    fn times_in_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_929_200), "2026-11-29T05:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(parse_signal("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("sigterm").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("15").unwrap(), Signal::SIGTERM);
        assert!(parse_signal("NOPE").is_err() && parse_signal("99").is_err());
        assert_eq!(truncate("abcdef", 4), "abc…");
    }
}
