//! Device cgroup rules (`linux.resources.devices`) as the kernel's cgroup v1 devices
//! controller reads them, in order: an `a` rule resets the whole list to deny-all or
//! allow-all, other rules add or remove exceptions. [`Filter::new`] replays a spec's rules
//! the way v1 would (as runc's emulator does) and yields the result, a default and the
//! exceptions to it: written to `devices.allow`/`devices.deny` on v1 and compiled into a BPF
//! program on v2, so that both layouts decide alike.

use anyhow::{Result, bail};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};
use std::fmt;

/// The access bits, with the values of the kernel's `BPF_DEVCG_ACC_*`.
pub const MKNOD: u8 = 1;
pub const READ: u8 = 2;
pub const WRITE: u8 = 4;
pub const ALL_ACCESS: u8 = MKNOD | READ | WRITE;

/// The kind of node a rule is for; the values are the kernel's `BPF_DEVCG_DEV_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Block = 1,
    Char = 2,
}

impl Kind {
    fn letter(self) -> char {
        match self {
            Kind::Block => 'b',
            Kind::Char => 'c',
        }
    }
}

/// One exception: a kind of node, a major and a minor number (`None`: any), and the access
/// it grants (or denies, in an allow-all list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Exception {
    pub kind: Kind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

impl fmt::Display for Exception {
    /// The line the v1 files take: `c 1:3 rwm`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let number = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
        write!(
            f,
            "{} {}:{} {}",
            self.kind.letter(),
            number(self.major),
            number(self.minor),
            access_string(self.access)
        )
    }
}

/// `rwm`, in that order, for the bits set.
pub fn access_string(access: u8) -> String {
    [(READ, 'r'), (WRITE, 'w'), (MKNOD, 'm')]
        .into_iter()
        .filter(|(bit, _)| access & bit != 0)
        .map(|(_, c)| c)
        .collect()
}

/// Parses an access string (`rwm`, `r`, `mw`...): each letter at most once, at least one.
pub fn parse_access(access: &str) -> Option<u8> {
    let mut bits = 0;
    for c in access.chars() {
        let bit = match c {
            'r' => READ,
            'w' => WRITE,
            'm' => MKNOD,
            _ => return None,
        };
        if bits & bit != 0 {
            return None;
        }
        bits |= bit;
    }
    (bits != 0).then_some(bits)
}

/// What a spec's device rules come to: everything allowed or denied but the exceptions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub default_allow: bool,
    /// Sorted, one per (kind, major, minor), none with an empty access.
    pub exceptions: Vec<Exception>,
}

impl Filter {
    /// Replays `rules` in order from the kernel's start (allow-all). A rule that removes
    /// part of a wildcard exception is refused, as runc refuses it: v1 would ignore it
    /// silently, leaving the access the rule means to take away.
    pub fn new(rules: &[LinuxDeviceCgroup]) -> Result<Filter> {
        let mut filter = Filter {
            default_allow: true,
            exceptions: Vec::new(),
        };
        for rule in rules {
            filter.apply(rule)?;
        }
        filter.exceptions.sort();
        Ok(filter)
    }

    /// True when nothing is restricted: no rules to apply at all.
    pub fn allows_all(&self) -> bool {
        self.default_allow && self.exceptions.is_empty()
    }

    fn apply(&mut self, rule: &LinuxDeviceCgroup) -> Result<()> {
        let access = match rule.access().as_deref() {
            None | Some("") => ALL_ACCESS,
            Some(access) => match parse_access(access) {
                Some(bits) => bits,
                None => bail!("invalid device rule {rule}: access must be letters of rwm"),
            },
        };
        let kind = match rule.typ().unwrap_or_default() {
            LinuxDeviceType::A => {
                // `a` resets the list, whatever its numbers and access say (as v1 does).
                self.default_allow = rule.allow();
                self.exceptions.clear();
                return Ok(());
            }
            LinuxDeviceType::B => Kind::Block,
            LinuxDeviceType::C | LinuxDeviceType::U => Kind::Char,
            LinuxDeviceType::P => bail!("invalid device rule {rule}: type p has no cgroup rule"),
        };
        let number = |n: Option<i64>, what: &str| -> Result<Option<u32>> {
            match n {
                None | Some(-1) => Ok(None),
                // The BPF program compares with a signed 32-bit immediate.
                Some(n) if (0..=i64::from(i32::MAX)).contains(&n) => Ok(Some(n as u32)),
                Some(n) => bail!("invalid device rule {rule}: {what} number {n} is out of range"),
            }
        };
        let exception = Exception {
            kind,
            major: number(rule.major(), "major")?,
            minor: number(rule.minor(), "minor")?,
            access,
        };
        if rule.allow() == self.default_allow {
            self.remove(exception, rule)
        } else {
            self.add(exception);
            Ok(())
        }
    }

    /// An exception for the same nodes as one already listed widens its access.
    fn add(&mut self, new: Exception) {
        match self.exceptions.iter_mut().find(|e| same_nodes(e, &new)) {
            Some(existing) => existing.access |= new.access,
            None => self.exceptions.push(new),
        }
    }

    /// Takes `gone.access` from the exception for exactly the same nodes.
    fn remove(&mut self, gone: Exception, rule: &LinuxDeviceCgroup) -> Result<()> {
        let wider = [(None, gone.minor), (gone.major, None), (None, None)];
        for (major, minor) in wider {
            if (major, minor) == (gone.major, gone.minor) {
                continue;
            }
            if self.exceptions.iter().any(|e| {
                e.kind == gone.kind
                    && e.major == major
                    && e.minor == minor
                    && e.access & gone.access != 0
            }) {
                bail!(
                    "device rule {rule} cannot be applied: it would punch a hole in a wildcard rule, which cgroup v1 ignores"
                );
            }
        }
        for existing in &mut self.exceptions {
            if same_nodes(existing, &gone) {
                existing.access &= !gone.access;
            }
        }
        self.exceptions.retain(|e| e.access != 0);
        Ok(())
    }

    /// The decision for one access (`access`: the bits asked for together, as an open for
    /// reading and writing asks for both), as v1 decides: in an allow list one exception
    /// must grant every bit asked for, in a deny list any overlap with an exception denies.
    /// The reference the BPF program of v2 is tested against.
    #[cfg(test)]
    pub fn allows(&self, kind: Kind, major: u32, minor: u32, access: u8) -> bool {
        let matched = self.exceptions.iter().any(|e| {
            e.kind == kind
                && e.major.is_none_or(|m| m == major)
                && e.minor.is_none_or(|m| m == minor)
                && (if self.default_allow {
                    e.access & access != 0
                } else {
                    access & !e.access == 0
                })
        });
        matched != self.default_allow
    }
}

fn same_nodes(a: &Exception, b: &Exception) -> bool {
    a.kind == b.kind && a.major == b.major && a.minor == b.minor
}

/// A rule of the spec: `allow` (or deny) `access` on nodes of `typ` with these numbers.
pub fn rule(
    allow: bool,
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut rule = LinuxDeviceCgroup::default();
    rule.set_allow(allow);
    rule.set_typ(Some(typ));
    rule.set_major(major);
    rule.set_minor(minor);
    rule.set_access(Some(access.to_string()));
    rule
}

#[cfg(test)]
mod tests {
    use super::*;
    use LinuxDeviceType::{A, B, C};

    #[test]
    fn rules_replay_as_cgroup_v1_does() {
        let filter = Filter::new(&[
            rule(false, A, None, None, "rwm"),
            rule(true, C, Some(1), Some(3), "r"),
            rule(true, C, Some(1), Some(3), "w"),
            rule(false, C, Some(10), Some(229), "rwm"),
            rule(true, C, None, None, "m"),
            rule(true, B, Some(7), None, "rwm"),
            rule(false, B, Some(7), None, "w"),
        ])
        .unwrap();
        assert!(!filter.default_allow);
        let lines: Vec<String> = filter.exceptions.iter().map(|e| e.to_string()).collect();
        assert_eq!(lines, ["b 7:* rm", "c *:* m", "c 1:3 rw"]);
        assert!(filter.allows(Kind::Char, 1, 3, READ | WRITE));
        assert!(
            !filter.allows(Kind::Char, 1, 3, READ | MKNOD),
            "one exception must cover all"
        );
        assert!(filter.allows(Kind::Char, 10, 232, MKNOD));
        assert!(!filter.allows(Kind::Char, 10, 232, READ));
        assert!(filter.allows(Kind::Block, 7, 9, READ));
        assert!(!filter.allows(Kind::Block, 7, 9, WRITE));
        assert!(!filter.allows(Kind::Block, 8, 0, READ));
    }

    #[test]
    fn a_resets_and_no_rules_allow_everything() {
        assert!(Filter::new(&[]).unwrap().allows_all());
        let filter = Filter::new(&[
            rule(false, A, None, None, "rwm"),
            rule(true, C, Some(1), Some(3), "rwm"),
            rule(true, A, None, None, "rwm"),
        ])
        .unwrap();
        assert!(filter.allows_all());
        let deny_list = Filter::new(&[rule(false, C, Some(10), Some(232), "rw")]).unwrap();
        assert!(deny_list.default_allow);
        assert!(!deny_list.allows(Kind::Char, 10, 232, READ));
        assert!(deny_list.allows(Kind::Char, 10, 232, MKNOD));
        assert!(deny_list.allows(Kind::Char, 10, 237, READ | WRITE));
    }

    #[test]
    fn holes_in_wildcards_and_bad_values_are_refused() {
        let err = Filter::new(&[
            rule(false, A, None, None, "rwm"),
            rule(true, C, None, None, "rwm"),
            rule(false, C, Some(10), Some(232), "rw"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("punch a hole"), "{err}");
        assert!(Filter::new(&[rule(true, C, Some(1), Some(3), "rx")]).is_err());
        assert!(Filter::new(&[rule(true, C, Some(1), Some(3), "rr")]).is_err());
        assert!(Filter::new(&[rule(true, C, Some(1 << 40), Some(3), "r")]).is_err());
        assert!(Filter::new(&[rule(true, LinuxDeviceType::P, None, None, "r")]).is_err());
        assert_eq!(parse_access("mwr"), Some(ALL_ACCESS));
        assert_eq!(parse_access(""), None);
    }
}
