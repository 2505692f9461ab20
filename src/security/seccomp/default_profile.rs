//! Docker's default seccomp profile: moby's default.json, kept here as `default.json` and
//! turned into Rust data (`default_profile_data.rs`) by tools/seccomp/gen-default-profile.py;
//! a unit test checks that the data is what the JSON says. An allow list, with EPERM for
//! everything else and ENOSYS for clone3 (so that the C library falls back to clone, whose
//! namespace flags the filter can see); socket(2) is allowed for every family but AF_ALG and
//! AF_VSOCK; calls that need a capability are allowed only when the container has it, so the
//! filter is a function of the capabilities.
//!
//! Shared with build.rs, which compiles it for [`DEFAULT_CAPABILITIES`] once, at build time.

use super::profile::{
    Action, ArchMapEntry, ArgCondition, Conditions, KernelVersion, Name, Op, Profile, Rule,
};
use std::borrow::Cow;

/// Docker's default capability set: the profile precompiled at build time is for these.
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The oldest kernel mini-container runs on (openat2 with RESOLVE_IN_ROOT came in 5.6): the
/// build-time resolution assumes it, which only matters for rules with a newer `minKernel`.
pub const MIN_KERNEL: KernelVersion = KernelVersion(5, 6);

include!("default_profile_data.rs");

fn names(list: &[&'static str]) -> Vec<Name> {
    list.iter().map(|name| Cow::Borrowed(*name)).collect()
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn arch_map(architecture: &'static str, subs: &[&'static str]) -> ArchMapEntry {
    ArchMapEntry {
        architecture: Cow::Borrowed(architecture),
        sub_architectures: names(subs),
    }
}

fn arg(index: u8, op: Op, value: u64, value_two: u64) -> ArgCondition {
    ArgCondition {
        index,
        op,
        value,
        value_two,
    }
}

fn conditions(caps: &[&str], arches: &[&str], min_kernel: Option<KernelVersion>) -> Conditions {
    Conditions {
        caps: strings(caps),
        arches: strings(arches),
        min_kernel,
    }
}

fn rule(
    names_: &[&'static str],
    action: Action,
    args: &[ArgCondition],
    includes: Conditions,
    excludes: Conditions,
) -> Rule {
    Rule {
        names: names(names_),
        action,
        args: args.to_vec(),
        includes,
        excludes,
    }
}
