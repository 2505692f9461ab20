//! The resource flags (`-m`, `--memory-swap`, `--cpus`, `--cpu-shares`, `--cpuset-cpus`,
//! `--pids-limit`, `--cgroup-parent`) turned into the spec's `linux.resources` and
//! `linux.cgroupsPath`, with Docker's units, defaults and checks.

use super::units::{format_bytes, parse_bytes, parse_cpu_list, parse_scaled};
use crate::cli::RunArgs;
use anyhow::{Context, Result, bail};
use oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};
use std::path::PathBuf;

/// Docker's smallest memory limit.
pub const MIN_MEMORY: i64 = 6 << 20;
/// The CFS period `--cpus` is a share of, in microseconds (Docker's).
pub const CPU_PERIOD: u64 = 100_000;
/// The kernel's smallest CFS quota, in microseconds: 0.01 CPU over [`CPU_PERIOD`].
const MIN_CPU_QUOTA: u64 = 1_000;
/// `cpu.shares` as the kernel takes it; 0 means the default, as in Docker.
const MIN_SHARES: u64 = 2;
const MAX_SHARES: u64 = 262_144;

/// The container's cgroup, as the spec describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// `None` when no flag limits anything.
    pub resources: Option<LinuxResources>,
    /// `mini-container-<id>`, below `--cgroup-parent` if given. Relative paths are relative
    /// to the runner's own cgroup, absolute ones to the root of the hierarchy.
    pub cgroups_path: PathBuf,
}

/// Reads and checks the resource flags. Host facts (the number of CPUs, which are online)
/// are read only when a flag needs them.
pub fn from_args(args: &RunArgs, id: &str) -> Result<Limits> {
    let memory = args
        .memory
        .as_deref()
        .map(parse_memory)
        .transpose()?
        .flatten();
    let swap = memory_swap(memory, args.memory_swap.as_deref())?;
    let quota = match args.cpus.as_deref() {
        Some(value) => parse_cpus(value, available_cpus()?)?,
        None => None,
    };
    let shares = args
        .cpu_shares
        .as_deref()
        .map(parse_cpu_shares)
        .transpose()?;
    let cpuset = match args.cpuset_cpus.as_deref() {
        Some(value) => Some(parse_cpuset(value, &online_cpus()?)?),
        None => None,
    };
    let pids = args
        .pids_limit
        .as_deref()
        .map(parse_pids_limit)
        .transpose()?;

    let mut resources = LinuxResources::default();
    if let Some(limit) = memory {
        let mut linux_memory = LinuxMemory::default();
        linux_memory.set_limit(Some(limit));
        linux_memory.set_swap(swap);
        resources.set_memory(Some(linux_memory));
    }
    let (quota, shares) = (quota, shares.flatten());
    if quota.is_some() || shares.is_some() || cpuset.is_some() {
        let mut cpu = LinuxCpu::default();
        cpu.set_quota(quota);
        cpu.set_period(quota.map(|_| CPU_PERIOD));
        cpu.set_shares(shares);
        cpu.set_cpus(cpuset);
        resources.set_cpu(Some(cpu));
    }
    if let Some(Some(limit)) = pids {
        let mut linux_pids = LinuxPids::default();
        linux_pids.set_limit(limit);
        resources.set_pids(Some(linux_pids));
    }
    let limited = resources != LinuxResources::default();
    Ok(Limits {
        resources: limited.then_some(resources),
        cgroups_path: cgroups_path(args.cgroup_parent.as_deref(), id)?,
    })
}

/// `--memory`: `None` for 0, no limit, as in Docker.
fn parse_memory(value: &str) -> Result<Option<i64>> {
    let bytes = parse_size("--memory", value)?;
    if bytes == 0 {
        return Ok(None);
    }
    if bytes < MIN_MEMORY {
        bail!(
            "invalid --memory {value:?}: the minimum memory limit is {}",
            format_bytes(MIN_MEMORY as u64)
        );
    }
    Ok(Some(bytes))
}

fn parse_size(flag: &str, value: &str) -> Result<i64> {
    parse_bytes(value).with_context(|| {
        format!("invalid {flag} {value:?}: expected a size such as 512m or 1.5g (units b, k, m, g)")
    })
}

/// Memory plus swap, as the spec counts it: `-1` for unlimited swap, twice the memory limit
/// when unset (or 0), as in Docker.
fn memory_swap(memory: Option<i64>, value: Option<&str>) -> Result<Option<i64>> {
    let swap = match value {
        None | Some("0") => None,
        Some("-1") => Some(-1),
        Some(value) => Some(parse_size("--memory-swap", value)?),
    };
    let Some(memory) = memory else {
        if let (Some(value), Some(_)) = (value, swap) {
            bail!("invalid --memory-swap {value:?}: it needs --memory as well");
        }
        return Ok(None);
    };
    match swap {
        None => Ok(Some(memory.saturating_mul(2))),
        Some(swap) if swap != -1 && swap < memory => bail!(
            "invalid --memory-swap {:?}: it counts memory plus swap, so it must be at least --memory ({})",
            value.unwrap_or_default(),
            format_bytes(memory as u64)
        ),
        Some(swap) => Ok(Some(swap)),
    }
}

/// `--cpus` as a CFS quota over [`CPU_PERIOD`]; `None` for 0 (no limit, as in Docker).
fn parse_cpus(value: &str, available: usize) -> Result<Option<i64>> {
    let range = || {
        format!(
            "invalid --cpus {value:?}: the range of CPUs is from 0.01 to {available}.00, as there are only {available} CPUs available"
        )
    };
    let negative = value
        .strip_prefix('-')
        .is_some_and(|rest| parse_scaled(rest, 9).is_some());
    if negative {
        bail!(range());
    }
    let nanos = parse_scaled(value, 9).with_context(|| {
        format!("invalid --cpus {value:?}: expected a decimal number of CPUs such as 0.5")
    })?;
    if nanos == 0 {
        return Ok(None);
    }
    let quota = nanos / (1_000_000_000 / CPU_PERIOD);
    if quota < MIN_CPU_QUOTA || nanos > available as u64 * 1_000_000_000 {
        bail!(range());
    }
    Ok(Some(quota as i64))
}

/// `--cpu-shares`: `None` for 0, the default.
fn parse_cpu_shares(value: &str) -> Result<Option<u64>> {
    let shares: u64 = value.parse().ok().with_context(|| {
        format!("invalid --cpu-shares {value:?}: expected a whole number such as 512")
    })?;
    if shares == 0 {
        return Ok(None);
    }
    if !(MIN_SHARES..=MAX_SHARES).contains(&shares) {
        bail!(
            "invalid --cpu-shares {value:?}: the range is {MIN_SHARES} to {MAX_SHARES} (0 for the default)"
        );
    }
    Ok(Some(shares))
}

/// `--cpuset-cpus`: a CPU list whose CPUs are all online. Kept as written.
fn parse_cpuset(value: &str, online: &[u32]) -> Result<String> {
    let cpus = parse_cpu_list(value).with_context(|| {
        format!("invalid --cpuset-cpus {value:?}: expected a list of CPUs such as 0-3 or 0,2")
    })?;
    if let Some(missing) = cpus.iter().find(|cpu| !online.contains(cpu)) {
        bail!(
            "invalid --cpuset-cpus {value:?}: CPU {missing} is not available (online: {})",
            format_cpu_list(online)
        );
    }
    Ok(value.to_string())
}

/// `--pids-limit`: `None` inside for 0 or -1, unlimited as in Docker.
fn parse_pids_limit(value: &str) -> Result<Option<i64>> {
    match value.parse::<i64>() {
        Ok(0 | -1) => Ok(None),
        Ok(limit) if limit > 0 => Ok(Some(limit)),
        _ => bail!(
            "invalid --pids-limit {value:?}: expected a number of processes (0 or -1: unlimited)"
        ),
    }
}

/// `mini-container-<id>`, below `--cgroup-parent` when given: a path of plain cgroup names,
/// absolute (from the hierarchy's root) or relative (to the runner's own cgroup).
fn cgroups_path(parent: Option<&str>, id: &str) -> Result<PathBuf> {
    let leaf = format!("mini-container-{id}");
    let Some(parent) = parent else {
        return Ok(PathBuf::from(leaf));
    };
    let absolute = parent.starts_with('/');
    let inner = parent.trim_start_matches('/').trim_end_matches('/');
    if inner.is_empty() && !absolute {
        bail!("invalid --cgroup-parent {parent:?}: it is empty");
    }
    let bad = inner
        .split('/')
        .any(|name| matches!(name, "" | "." | "..") && !inner.is_empty());
    if bad {
        bail!(
            "invalid --cgroup-parent {parent:?}: use cgroup names separated by '/', without '.', '..' or empty names"
        );
    }
    let mut path = PathBuf::from(if absolute { "/" } else { "" });
    path.push(inner);
    path.push(leaf);
    Ok(path)
}

/// How many CPUs this process may run on, as Docker counts them for `--cpus`.
fn available_cpus() -> Result<usize> {
    let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .context("checking --cpus: reading the CPU affinity")?;
    Ok((0..nix::sched::CpuSet::count())
        .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
        .count())
}

/// The host's online CPUs, for `--cpuset-cpus`.
fn online_cpus() -> Result<Vec<u32>> {
    const ONLINE: &str = "/sys/devices/system/cpu/online";
    let text = std::fs::read_to_string(ONLINE)
        .with_context(|| format!("checking --cpuset-cpus: reading {ONLINE}"))?;
    parse_cpu_list(text.trim())
        .with_context(|| format!("checking --cpuset-cpus: {ONLINE} is not a CPU list"))
}

/// `0-3,5` from `[0, 1, 2, 3, 5]`.
fn format_cpu_list(cpus: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut iter = cpus.iter().copied().peekable();
    while let Some(first) = iter.next() {
        let mut last = first;
        while iter.peek() == Some(&(last + 1)) {
            last = iter.next().unwrap_or(last);
        }
        parts.push(if first == last {
            first.to_string()
        } else {
            format!("{first}-{last}")
        });
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn message(result: Result<impl std::fmt::Debug>) -> String {
        crate::errors::describe(&result.unwrap_err())
    }

    #[test]
    fn memory_has_dockers_units_and_minimum() {
        assert_eq!(parse_memory("32m").unwrap(), Some(32 << 20));
        assert_eq!(parse_memory("6m").unwrap(), Some(MIN_MEMORY));
        assert_eq!(parse_memory("0").unwrap(), None);
        assert_eq!(
            message(parse_memory("1k")),
            "invalid --memory \"1k\": the minimum memory limit is 6MiB"
        );
        assert_eq!(
            message(parse_memory("abc")),
            "invalid --memory \"abc\": expected a size such as 512m or 1.5g (units b, k, m, g)"
        );
    }

    #[test]
    fn swap_defaults_to_twice_the_memory() {
        let m = 32 << 20;
        assert_eq!(memory_swap(Some(m), None).unwrap(), Some(2 * m));
        assert_eq!(memory_swap(Some(m), Some("0")).unwrap(), Some(2 * m));
        assert_eq!(memory_swap(Some(m), Some("-1")).unwrap(), Some(-1));
        assert_eq!(memory_swap(Some(m), Some("32m")).unwrap(), Some(m));
        assert_eq!(memory_swap(Some(m), Some("1g")).unwrap(), Some(1 << 30));
        assert_eq!(memory_swap(None, None).unwrap(), None);
        assert!(message(memory_swap(Some(m), Some("16m"))).contains("at least --memory (32MiB)"));
        assert!(message(memory_swap(None, Some("1g"))).contains("needs --memory"));
        assert!(message(memory_swap(Some(m), Some("x"))).starts_with("invalid --memory-swap"));
    }

    #[test]
    fn cpus_become_a_quota_over_100ms() {
        assert_eq!(parse_cpus("0.5", 2).unwrap(), Some(50_000));
        assert_eq!(parse_cpus("2", 2).unwrap(), Some(200_000));
        assert_eq!(parse_cpus("1.25", 2).unwrap(), Some(125_000));
        assert_eq!(parse_cpus("0.01", 2).unwrap(), Some(1_000));
        assert_eq!(parse_cpus("0", 2).unwrap(), None);
        let range = "the range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available";
        for bad in ["-1", "2.5", "3", "0.001"] {
            let line = message(parse_cpus(bad, 2));
            assert_eq!(line, format!("invalid --cpus {bad:?}: {range}"));
        }
        assert!(message(parse_cpus("abc", 2)).contains("expected a decimal number"));
    }

    #[test]
    fn cpu_shares_and_pids_limits() {
        assert_eq!(parse_cpu_shares("512").unwrap(), Some(512));
        assert_eq!(parse_cpu_shares("0").unwrap(), None);
        for bad in ["1", "262145", "-5", "x"] {
            assert!(parse_cpu_shares(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_pids_limit("20").unwrap(), Some(20));
        assert_eq!(parse_pids_limit("0").unwrap(), None);
        assert_eq!(parse_pids_limit("-1").unwrap(), None);
        for bad in ["-2", "x", "1.5"] {
            assert!(parse_pids_limit(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cpusets_name_online_cpus() {
        assert_eq!(parse_cpuset("0", &[0, 1]).unwrap(), "0");
        assert_eq!(parse_cpuset("0-1", &[0, 1]).unwrap(), "0-1");
        assert_eq!(
            message(parse_cpuset("99", &[0, 1])),
            "invalid --cpuset-cpus \"99\": CPU 99 is not available (online: 0-1)"
        );
        assert!(message(parse_cpuset("x", &[0])).contains("expected a list of CPUs"));
        assert_eq!(format_cpu_list(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
    }

    #[test]
    fn cgroup_paths_sit_below_the_parent() {
        let leaf = format!("mini-container-{ID}");
        assert_eq!(cgroups_path(None, ID).unwrap(), PathBuf::from(&leaf));
        assert_eq!(
            cgroups_path(Some("/batch/"), ID).unwrap(),
            PathBuf::from(format!("/batch/{leaf}"))
        );
        assert_eq!(
            cgroups_path(Some("jobs/a"), ID).unwrap(),
            PathBuf::from(format!("jobs/a/{leaf}"))
        );
        assert_eq!(
            cgroups_path(Some("/"), ID).unwrap(),
            PathBuf::from(format!("/{leaf}"))
        );
        for bad in ["", "../x", "a/../b", "a//b", "./a"] {
            assert!(cgroups_path(Some(bad), ID).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn no_flags_no_resources() {
        let args = RunArgs::default();
        let limits = from_args(&args, ID).unwrap();
        assert_eq!(limits.resources, None);
        let args = RunArgs {
            memory: Some("64m".into()),
            cpus: Some("0.5".into()),
            pids_limit: Some("20".into()),
            ..RunArgs::default()
        };
        let resources = from_args(&args, ID).unwrap().resources.unwrap();
        let memory = resources.memory().unwrap();
        assert_eq!(memory.limit(), Some(64 << 20));
        assert_eq!(memory.swap(), Some(128 << 20));
        let cpu = resources.cpu().clone().unwrap();
        assert_eq!((cpu.quota(), cpu.period()), (Some(50_000), Some(100_000)));
        assert_eq!(resources.pids().unwrap().limit(), 20);
    }
}
