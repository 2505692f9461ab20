//! Capabilities: Docker's default set, `--cap-add`/`--cap-drop`/`--privileged` as Docker
//! computes them, and the init's two steps: shrink the bounding set while still root, then,
//! after switching user, set the effective, permitted and inheritable sets and clear ambient.

use anyhow::{Context, Result};
use caps::{CapSet, Capability as Cap, CapsHashSet};
use oci_spec::runtime::{Capability, LinuxCapabilities};
use std::collections::HashSet;
use std::str::FromStr;

/// Docker's default capabilities (mask 0xa80425fb).
pub const DOCKER_DEFAULT: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// A capability name as users write it (`net_admin`, `CAP_NET_ADMIN`), checked.
fn parse_name(name: &str) -> Result<Capability> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    Capability::from_str(bare).map_err(|_| anyhow::anyhow!("unknown capability {name:?}"))
}

/// Every capability mini-container can grant: those it holds (all of them, less what a
/// restricted host withholds, such as CAP_SYS_RESOURCE in some sandboxes); run by another
/// user, every capability the kernel knows, held in the container's own user namespace.
fn available() -> HashSet<Capability> {
    let held = if nix::unistd::geteuid().is_root() {
        caps::read(None, CapSet::Permitted).unwrap_or_default()
    } else {
        caps::runtime::thread_all_supported()
    };
    held.into_iter()
        .filter_map(|cap| to_oci(cap).ok())
        .collect()
}

/// The container's capability set from Docker's flags, with Docker's precedence: ALL in
/// `--cap-add` grants everything but the drops; ALL in `--cap-drop` keeps only the adds.
/// "Everything" is what mini-container holds; a default it does not hold is left out, but a
/// capability asked for by name that it cannot grant is an error.
pub fn compute(adds: &[String], drops: &[String], privileged: bool) -> Result<HashSet<Capability>> {
    let available = available();
    if privileged {
        return Ok(available);
    }
    let is_all = |name: &String| name.eq_ignore_ascii_case("all");
    let parse = |names: &[String]| -> Result<HashSet<Capability>> {
        names
            .iter()
            .filter(|n| !is_all(n))
            .map(|n| parse_name(n).context("invalid --cap-add/--cap-drop"))
            .collect()
    };
    let (add, drop) = (parse(adds)?, parse(drops)?);
    if let Some(missing) = add.difference(&available).next() {
        anyhow::bail!(
            "--cap-add {missing}: mini-container does not hold it on this host, so cannot grant it"
        );
    }
    let set = if adds.iter().any(is_all) {
        available.difference(&drop).copied().collect()
    } else if drops.iter().any(is_all) {
        add
    } else {
        let default: HashSet<Capability> = DOCKER_DEFAULT
            .iter()
            .map(|n| parse_name(n))
            .collect::<Result<_>>()?;
        default
            .intersection(&available)
            .copied()
            .filter(|cap| !drop.contains(cap))
            .chain(add)
            .collect()
    };
    Ok(set)
}

/// The spec's capabilities: the set in bounding, permitted and effective; nothing inheritable
/// or ambient.
pub fn to_spec(set: HashSet<Capability>) -> LinuxCapabilities {
    let mut capabilities = LinuxCapabilities::default();
    capabilities.set_bounding(Some(set.clone()));
    capabilities.set_permitted(Some(set.clone()));
    capabilities.set_effective(Some(set));
    capabilities.set_inheritable(Some(HashSet::new()));
    capabilities.set_ambient(Some(HashSet::new()));
    capabilities
}

fn to_oci(cap: Cap) -> Result<Capability> {
    let name = cap.to_string();
    parse_name(&name)
}

fn to_caps(set: &Option<HashSet<Capability>>) -> Result<CapsHashSet> {
    set.iter()
        .flatten()
        .map(|cap| {
            Cap::from_str(&format!("CAP_{cap}"))
                .map_err(|_| anyhow::anyhow!("unknown capability {cap}"))
        })
        .collect()
}

/// Drops from the bounding set every capability the container does not get. Needs
/// CAP_SETPCAP, so it runs before the switch to the container's user.
pub fn limit_bounding_set(spec: &LinuxCapabilities) -> Result<()> {
    let keep = to_caps(spec.bounding())?;
    for cap in caps::runtime::thread_all_supported() {
        if !keep.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap)
                .with_context(|| format!("dropping {cap} from the bounding set"))?;
        }
    }
    Ok(())
}

/// Sets effective, permitted and inheritable and clears ambient. A user other than root keeps
/// none (the switch of uid already cleared them), as in Docker.
pub fn apply(spec: &LinuxCapabilities) -> Result<()> {
    let what = || "setting capabilities".to_string();
    let root = nix::unistd::geteuid().is_root();
    let (effective, permitted) = if root {
        (to_caps(spec.effective())?, to_caps(spec.permitted())?)
    } else {
        (CapsHashSet::new(), CapsHashSet::new())
    };
    // Effective must stay within permitted at every step: shrink effective first.
    caps::set(None, CapSet::Effective, &effective).with_context(what)?;
    caps::set(None, CapSet::Permitted, &permitted).with_context(what)?;
    caps::set(None, CapSet::Inheritable, &to_caps(spec.inheritable())?).with_context(what)?;
    if caps::runtime::ambient_set_supported().is_ok() {
        caps::clear(None, CapSet::Ambient).with_context(what)?;
    }
    Ok(())
}

/// The bit mask of a set, as /proc/PID/status shows it.
#[cfg(test)]
fn mask(set: &HashSet<Capability>) -> u64 {
    to_caps(&Some(set.clone()))
        .unwrap()
        .iter()
        .map(|cap| cap.bitmask())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_default_set_is_dockers_mask() {
        assert_eq!(mask(&compute(&[], &[], false).unwrap()), 0xa80425fb);
    }

    #[test]
    fn adds_and_drops_follow_dockers_precedence() {
        let with_admin = compute(&names(&["sys_admin"]), &[], false).unwrap();
        assert_eq!(mask(&with_admin), 0xa80425fb | (1 << 21));
        let without_chown = compute(&[], &names(&["CAP_CHOWN"]), false).unwrap();
        assert_eq!(mask(&without_chown), 0xa80425fb & !1);
        assert!(compute(&[], &names(&["ALL"]), false).unwrap().is_empty());
        let only_kill = compute(&names(&["KILL"]), &names(&["all"]), false).unwrap();
        assert_eq!(mask(&only_kill), 1 << 5);
        let all_but_net_admin = compute(&names(&["ALL"]), &names(&["NET_ADMIN"]), false).unwrap();
        assert_eq!(mask(&all_but_net_admin), mask(&available()) & !(1 << 12));
        assert_eq!(compute(&[], &[], true).unwrap(), available());
    }

    #[test]
    fn unknown_names_are_refused() {
        let err = compute(&names(&["CAP_FLY"]), &[], false).unwrap_err();
        assert_eq!(
            crate::errors::describe(&err),
            "invalid --cap-add/--cap-drop: unknown capability \"CAP_FLY\""
        );
    }
}
