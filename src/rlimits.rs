//! Resource limits of the container's process: `--ulimit NAME=SOFT[:HARD]` parsed into the
//! spec's `process.rlimits`, and applied in the child with setrlimit(2). Only the limits
//! asked for are touched: the others stay as the runner's, so a host without
//! CAP_SYS_RESOURCE runs containers fine.

use anyhow::{Context, Result, anyhow, bail};
use nix::errno::Errno;
use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit, setrlimit};
use oci_spec::runtime::{PosixRlimit, PosixRlimitBuilder, PosixRlimitType};
use std::fmt;

/// Docker's ulimit names, their spec type and the kernel's resource.
const NAMES: [(&str, PosixRlimitType, Resource); 16] = [
    ("as", PosixRlimitType::RlimitAs, Resource::RLIMIT_AS),
    ("core", PosixRlimitType::RlimitCore, Resource::RLIMIT_CORE),
    ("cpu", PosixRlimitType::RlimitCpu, Resource::RLIMIT_CPU),
    ("data", PosixRlimitType::RlimitData, Resource::RLIMIT_DATA),
    (
        "fsize",
        PosixRlimitType::RlimitFsize,
        Resource::RLIMIT_FSIZE,
    ),
    (
        "locks",
        PosixRlimitType::RlimitLocks,
        Resource::RLIMIT_LOCKS,
    ),
    (
        "memlock",
        PosixRlimitType::RlimitMemlock,
        Resource::RLIMIT_MEMLOCK,
    ),
    (
        "msgqueue",
        PosixRlimitType::RlimitMsgqueue,
        Resource::RLIMIT_MSGQUEUE,
    ),
    ("nice", PosixRlimitType::RlimitNice, Resource::RLIMIT_NICE),
    (
        "nofile",
        PosixRlimitType::RlimitNofile,
        Resource::RLIMIT_NOFILE,
    ),
    (
        "nproc",
        PosixRlimitType::RlimitNproc,
        Resource::RLIMIT_NPROC,
    ),
    ("rss", PosixRlimitType::RlimitRss, Resource::RLIMIT_RSS),
    (
        "rtprio",
        PosixRlimitType::RlimitRtprio,
        Resource::RLIMIT_RTPRIO,
    ),
    (
        "rttime",
        PosixRlimitType::RlimitRttime,
        Resource::RLIMIT_RTTIME,
    ),
    (
        "sigpending",
        PosixRlimitType::RlimitSigpending,
        Resource::RLIMIT_SIGPENDING,
    ),
    (
        "stack",
        PosixRlimitType::RlimitStack,
        Resource::RLIMIT_STACK,
    ),
];

/// The `--ulimit` flags as the spec's rlimits; `None` when there are none. A name given
/// twice keeps its last value, as in Docker.
pub fn from_flags(values: &[String]) -> Result<Option<Vec<PosixRlimit>>> {
    let mut rlimits: Vec<PosixRlimit> = Vec::new();
    for value in values {
        let rlimit = parse(value)?;
        rlimits.retain(|existing| existing.typ() != rlimit.typ());
        rlimits.push(rlimit);
    }
    Ok((!rlimits.is_empty()).then_some(rlimits))
}

/// `NAME=SOFT[:HARD]`; HARD defaults to SOFT; `-1` or `unlimited` is no limit.
fn parse(value: &str) -> Result<PosixRlimit> {
    let invalid = |why: String| anyhow!("invalid --ulimit {value:?}: {why}");
    let (name, limits) = value
        .split_once('=')
        .ok_or_else(|| invalid("expected NAME=SOFT[:HARD], e.g. nofile=1024:2048".into()))?;
    let (_, typ, _) = NAMES.iter().find(|(n, _, _)| *n == name).ok_or_else(|| {
        let names: Vec<&str> = NAMES.iter().map(|(n, _, _)| *n).collect();
        invalid(format!(
            "unknown name {name:?} (known: {})",
            names.join(", ")
        ))
    })?;
    let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
    let number = |text: &str| match text {
        "-1" | "unlimited" => Some(RLIM_INFINITY),
        _ => text.parse::<u64>().ok(),
    };
    let (Some(soft), Some(hard)) = (number(soft), number(hard)) else {
        return Err(invalid(
            "limits are whole numbers, -1 or unlimited (NAME=SOFT[:HARD])".into(),
        ));
    };
    if soft > hard {
        return Err(invalid(
            "the soft limit must be less than or equal to the hard limit".into(),
        ));
    }
    PosixRlimitBuilder::default()
        .typ(*typ)
        .soft(soft)
        .hard(hard)
        .build()
        .context("building the spec's rlimit")
}

/// One limit to set in the child: a plan step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    name: &'static str,
    resource: Resource,
    soft: u64,
    hard: u64,
}

impl Rlimit {
    pub fn from_spec(rlimit: &PosixRlimit) -> Result<Rlimit> {
        let (name, _, resource) = NAMES
            .iter()
            .find(|(_, typ, _)| *typ == rlimit.typ())
            .with_context(|| format!("the spec's rlimit {} is not supported", rlimit.typ()))?;
        Ok(Rlimit {
            name,
            resource: *resource,
            soft: rlimit.soft(),
            hard: rlimit.hard(),
        })
    }

    /// setrlimit(2). Raising a hard limit needs CAP_SYS_RESOURCE, and open files never go
    /// past fs.nr_open: say so when that is why it fails.
    pub fn apply(&self) -> Result<()> {
        match setrlimit(self.resource, self.soft, self.hard) {
            Ok(()) => Ok(()),
            Err(Errno::EPERM) => {
                if self.resource == Resource::RLIMIT_NOFILE {
                    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
                        .ok()
                        .and_then(|text| text.trim().parse::<u64>().ok());
                    if let Some(nr_open) = nr_open.filter(|&max| self.hard > max) {
                        bail!(
                            "setting ulimit {self}: the kernel allows at most {nr_open} open files (fs.nr_open)"
                        );
                    }
                }
                let (_, current) = getrlimit(self.resource).unwrap_or((0, RLIM_INFINITY));
                if self.hard > current {
                    bail!(
                        "setting ulimit {self}: the hard limit here is {} and raising it needs CAP_SYS_RESOURCE",
                        show(current)
                    );
                }
                Err(Errno::EPERM).with_context(|| format!("setting ulimit {self}"))
            }
            Err(errno) => Err(errno).with_context(|| format!("setting ulimit {self}")),
        }
    }
}

impl fmt::Display for Rlimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}:{}", self.name, show(self.soft), show(self.hard))
    }
}

fn show(limit: u64) -> String {
    if limit == RLIM_INFINITY {
        "unlimited".to_string()
    } else {
        limit.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(value: &str) -> Rlimit {
        let rlimits = from_flags(&[value.to_string()]).unwrap().unwrap();
        Rlimit::from_spec(&rlimits[0]).unwrap()
    }

    #[test]
    fn ulimits_are_parsed_as_docker_does() {
        assert_eq!(one("nofile=1024:2048").to_string(), "nofile=1024:2048");
        assert_eq!(one("nproc=100").to_string(), "nproc=100:100");
        assert_eq!(one("core=-1").to_string(), "core=unlimited:unlimited");
        assert_eq!(
            one("stack=8192:unlimited").to_string(),
            "stack=8192:unlimited"
        );
        assert_eq!(from_flags(&[]).unwrap(), None);
        let twice = from_flags(&["nofile=1".into(), "nofile=2".into()])
            .unwrap()
            .unwrap();
        assert_eq!(twice.len(), 1);
        assert_eq!(twice[0].soft(), 2);
    }

    #[test]
    fn bad_ulimits_are_refused_in_one_line() {
        for (value, why) in [
            ("nofile=abc", "limits are whole numbers"),
            ("nofile", "expected NAME=SOFT[:HARD]"),
            ("nofiles=1", "unknown name \"nofiles\""),
            ("nofile=2048:1024", "soft limit must be less than or equal"),
            ("nofile=1:", "limits are whole numbers"),
        ] {
            let err = from_flags(&[value.to_string()]).unwrap_err();
            let line = crate::errors::describe(&err);
            assert!(
                line.starts_with(&format!("invalid --ulimit {value:?}: ")),
                "{line}"
            );
            assert!(line.contains(why), "{line}");
        }
    }
}
