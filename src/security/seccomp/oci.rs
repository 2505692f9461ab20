//! A resolved profile to and from the OCI spec's `linux.seccomp`, the one place the container
//! init learns which filter to load.

use super::profile::{
    Action, ArgCondition, EPERM, FLAG_LOG, FLAG_SPEC_ALLOW, FLAG_TSYNC, Name, Op, Resolved,
    ResolvedRule,
};
use super::syscalls::Arch;
use anyhow::{Context, Result, bail};
use oci_spec::runtime::{
    Arch as OciArch, LinuxSeccomp, LinuxSeccompAction as OciAction, LinuxSeccompArg,
    LinuxSeccompArgBuilder, LinuxSeccompFilterFlag as OciFlag, LinuxSeccompOperator as OciOp,
    LinuxSyscall,
};
use std::borrow::Cow;
use std::str::FromStr;

/// The spec's description of `profile`, for `arch` only.
pub fn to_oci(profile: &Resolved, arch: &Arch) -> Result<LinuxSeccomp> {
    let mut seccomp = LinuxSeccomp::default();
    let (action, errno) = action_to_oci(profile.default_action);
    seccomp.set_default_action(action);
    seccomp.set_default_errno_ret(errno);
    let mut arches = Vec::new();
    for name in &profile.architectures {
        let parsed = OciArch::from_str(name)
            .ok()
            .with_context(|| format!("unknown architecture {name:?}"))?;
        arches.push(parsed);
    }
    if !arches.is_empty() && !arches.contains(&oci_arch(arch)?) {
        bail!("its architectures do not include {}", arch.native.scmp_name);
    }
    seccomp.set_architectures((!arches.is_empty()).then_some(arches));
    let flags: Vec<OciFlag> = FLAGS
        .iter()
        .filter(|(bit, _)| profile.flags & bit != 0)
        .map(|(_, flag)| *flag)
        .collect();
    seccomp.set_flags((!flags.is_empty()).then_some(flags));
    let mut syscalls = Vec::with_capacity(profile.rules.len());
    for rule in &profile.rules {
        let mut syscall = LinuxSyscall::default();
        syscall.set_names(rule.names.iter().map(|name| name.to_string()).collect());
        let (action, errno) = action_to_oci(rule.action);
        syscall.set_action(action);
        syscall.set_errno_ret(errno);
        let args = rule
            .args
            .iter()
            .map(arg_to_oci)
            .collect::<Result<Vec<_>>>()?;
        syscall.set_args((!args.is_empty()).then_some(args));
        syscalls.push(syscall);
    }
    seccomp.set_syscalls(Some(syscalls));
    Ok(seccomp)
}

/// Whether `seccomp` describes `profile`, that is, whether [`from_oci`] would read `profile`
/// from it; made without allocating, so that a default run skips compiling cheaply.
pub fn describes(seccomp: &LinuxSeccomp, profile: &Resolved, arch: &Arch) -> bool {
    let action_is = |action, errno, expected| action_from_oci(action, errno).ok() == Some(expected);
    let syscalls = seccomp.syscalls().as_deref().unwrap_or_default();
    action_is(
        seccomp.default_action(),
        seccomp.default_errno_ret(),
        profile.default_action,
    ) && covers(seccomp, arch)
        && architectures_of(seccomp) == profile.architectures
        && flags_of(seccomp).ok() == Some(profile.flags)
        && syscalls.len() == profile.rules.len()
        && syscalls.iter().zip(&profile.rules).all(|(syscall, rule)| {
            let args = syscall.args().as_deref().unwrap_or_default();
            action_is(syscall.action(), syscall.errno_ret(), rule.action)
                && syscall.names().len() == rule.names.len()
                && syscall.names().iter().zip(&rule.names).all(|(a, b)| a == b)
                && args.len() == rule.args.len()
                && args
                    .iter()
                    .zip(&rule.args)
                    .all(|(arg, expected)| arg_from_oci(arg).ok() == Some(*expected))
        })
}

/// Whether the spec's architectures include `arch` (or are not given).
fn covers(seccomp: &LinuxSeccomp, arch: &Arch) -> bool {
    let arches = seccomp.architectures().as_deref().unwrap_or_default();
    arches.is_empty() || arches.iter().any(|a| oci_arch(arch).is_ok_and(|n| n == *a))
}

/// The libseccomp names of the spec's architectures; none means the native one only.
fn architectures_of(seccomp: &LinuxSeccomp) -> Vec<Name> {
    let arches = seccomp.architectures().as_deref().unwrap_or_default();
    arches.iter().map(|a| Cow::Owned(a.to_string())).collect()
}

fn flags_of(seccomp: &LinuxSeccomp) -> Result<u32> {
    let mut flags = 0;
    for flag in seccomp.flags().as_deref().unwrap_or_default() {
        flags |= FLAGS
            .iter()
            .find(|(_, known)| known == flag)
            .map(|(bit, _)| *bit)
            .with_context(|| format!("flag {flag} is not supported"))?;
    }
    Ok(flags)
}

/// Reads the spec's description back; fails on what this runtime cannot load for `arch`.
pub fn from_oci(seccomp: &LinuxSeccomp, arch: &Arch) -> Result<Resolved> {
    if !covers(seccomp, arch) {
        bail!("its architectures do not include {}", arch.native.scmp_name);
    }
    let default_action = action_from_oci(seccomp.default_action(), seccomp.default_errno_ret())
        .context("default action")?;
    let flags = flags_of(seccomp)?;
    let architectures = architectures_of(seccomp);
    let mut rules = Vec::new();
    for syscall in seccomp.syscalls().as_deref().unwrap_or_default() {
        let what = || format!("rule for {}", syscall.names().join(", "));
        let action = action_from_oci(syscall.action(), syscall.errno_ret()).with_context(what)?;
        let args = syscall
            .args()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(arg_from_oci)
            .collect::<Result<Vec<_>>>()
            .with_context(what)?;
        rules.push(ResolvedRule {
            names: syscall.names().iter().cloned().map(Cow::Owned).collect(),
            action,
            args,
        });
    }
    Ok(Resolved {
        default_action,
        architectures,
        rules,
        flags,
    })
}

const FLAGS: [(u32, OciFlag); 3] = [
    (FLAG_TSYNC, OciFlag::SeccompFilterFlagTsync),
    (FLAG_LOG, OciFlag::SeccompFilterFlagLog),
    (FLAG_SPEC_ALLOW, OciFlag::SeccompFilterFlagSpecAllow),
];

fn oci_arch(arch: &Arch) -> Result<OciArch> {
    OciArch::from_str(arch.native.scmp_name)
        .ok()
        .with_context(|| format!("unknown architecture {}", arch.native.scmp_name))
}

fn action_to_oci(action: Action) -> (OciAction, Option<u32>) {
    match action {
        Action::KillProcess => (OciAction::ScmpActKillProcess, None),
        Action::KillThread => (OciAction::ScmpActKillThread, None),
        Action::Trap => (OciAction::ScmpActTrap, None),
        Action::Errno(errno) => (OciAction::ScmpActErrno, Some(errno.into())),
        Action::Trace(data) => (OciAction::ScmpActTrace, Some(data.into())),
        Action::Log => (OciAction::ScmpActLog, None),
        Action::Allow => (OciAction::ScmpActAllow, None),
    }
}

/// An action; ERRNO and TRACE take `errno` (EPERM when there is none, as in runc).
pub fn action_from_oci(action: OciAction, errno: Option<u32>) -> Result<Action> {
    let errno = || -> Result<u16> {
        match errno {
            None => Ok(EPERM),
            Some(errno @ 0..=4095) => Ok(errno as u16),
            Some(errno) => bail!("errno {errno} out of range 0-4095"),
        }
    };
    Ok(match action {
        OciAction::ScmpActKill | OciAction::ScmpActKillThread => Action::KillThread,
        OciAction::ScmpActKillProcess => Action::KillProcess,
        OciAction::ScmpActTrap => Action::Trap,
        OciAction::ScmpActErrno => Action::Errno(errno()?),
        OciAction::ScmpActTrace => Action::Trace(errno()?),
        OciAction::ScmpActLog => Action::Log,
        OciAction::ScmpActAllow => Action::Allow,
        OciAction::ScmpActNotify => bail!("SCMP_ACT_NOTIFY is not supported"),
    })
}

fn arg_to_oci(arg: &ArgCondition) -> Result<LinuxSeccompArg> {
    let mut oci = LinuxSeccompArgBuilder::default()
        .index(usize::from(arg.index))
        .value(arg.value);
    if arg.value_two != 0 {
        oci = oci.value_two(arg.value_two);
    }
    let op = match arg.op {
        Op::Eq => OciOp::ScmpCmpEq,
        Op::Ne => OciOp::ScmpCmpNe,
        Op::Lt => OciOp::ScmpCmpLt,
        Op::Le => OciOp::ScmpCmpLe,
        Op::Gt => OciOp::ScmpCmpGt,
        Op::Ge => OciOp::ScmpCmpGe,
        Op::MaskedEq => OciOp::ScmpCmpMaskedEq,
    };
    Ok(oci.op(op).build()?)
}

fn arg_from_oci(arg: &LinuxSeccompArg) -> Result<ArgCondition> {
    let index = match arg.index() {
        index @ 0..=5 => index as u8,
        index => bail!("argument index {index} out of range 0-5"),
    };
    Ok(ArgCondition {
        index,
        op: match arg.op() {
            OciOp::ScmpCmpEq => Op::Eq,
            OciOp::ScmpCmpNe => Op::Ne,
            OciOp::ScmpCmpLt => Op::Lt,
            OciOp::ScmpCmpLe => Op::Le,
            OciOp::ScmpCmpGt => Op::Gt,
            OciOp::ScmpCmpGe => Op::Ge,
            OciOp::ScmpCmpMaskedEq => Op::MaskedEq,
        },
        value: arg.value(),
        value_two: arg.value_two().unwrap_or(0),
    })
}
