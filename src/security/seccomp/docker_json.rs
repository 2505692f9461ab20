//! Docker's JSON profile format (`--security-opt seccomp=FILE`): `defaultAction`,
//! `defaultErrnoRet`, `architectures` or `archMap`, `flags`, and `syscalls` with
//! `names` (or the older `name`), `action`, `errnoRet`, `args` (`index`, `value`, `valueTwo`,
//! `op`), `includes` and `excludes` (`caps`, `arches`, `minKernel`). Anything malformed is an
//! error that names what is wrong.

use super::oci::action_from_oci;
use super::profile::{
    Action, ArchMapEntry, ArgCondition, Conditions, FLAG_LOG, FLAG_SPEC_ALLOW, FLAG_TSYNC,
    KernelVersion, Op, Profile, Rule,
};
use super::syscalls::Arch;
use anyhow::{Context, Result, bail};
use oci_spec::runtime::{LinuxSeccompAction, LinuxSeccompOperator};
use serde::Deserialize;
use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;

/// Reads and checks the profile in `path`, for a container on `arch`.
pub fn read(path: &Path, arch: &Arch) -> Result<Profile> {
    let json = std::fs::read(path)
        .with_context(|| format!("reading seccomp profile {}", path.display()))?;
    parse(&json, arch).with_context(|| format!("invalid seccomp profile {}", path.display()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonProfile {
    default_action: String,
    default_errno_ret: Option<u32>,
    architectures: Option<Vec<String>>,
    arch_map: Option<Vec<JsonArchMap>>,
    flags: Option<Vec<String>>,
    syscalls: Option<Vec<JsonSyscall>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonArchMap {
    architecture: String,
    sub_architectures: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonSyscall {
    name: Option<String>,
    names: Option<Vec<String>>,
    action: String,
    errno_ret: Option<u32>,
    args: Option<Vec<JsonArg>>,
    includes: Option<JsonConditions>,
    excludes: Option<JsonConditions>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonArg {
    index: u32,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonConditions {
    caps: Option<Vec<String>>,
    arches: Option<Vec<String>>,
    min_kernel: Option<String>,
}

/// Parses a profile in Docker's JSON format, for a container on `arch`.
pub fn parse(json: &[u8], arch: &Arch) -> Result<Profile> {
    let profile: JsonProfile = serde_json::from_slice(json)?;
    let architectures = profile.architectures.unwrap_or_default();
    let arch_map = profile.arch_map.unwrap_or_default();
    if !architectures.is_empty() && !arch_map.is_empty() {
        bail!("it has both architectures and archMap: use one of them");
    }
    let all_arches = architectures
        .iter()
        .chain(arch_map.iter().flat_map(|entry| {
            std::iter::once(&entry.architecture).chain(entry.sub_architectures.iter().flatten())
        }));
    for name in all_arches {
        if oci_spec::runtime::Arch::from_str(name).is_err() {
            bail!("unknown architecture {name:?}");
        }
    }
    let native = arch.native.scmp_name;
    if !architectures.is_empty() && !architectures.iter().any(|a| a == native) {
        bail!("its architectures do not include {native}");
    }
    let default_action =
        action(&profile.default_action, profile.default_errno_ret).context("defaultAction")?;
    let mut flags = 0;
    for flag in profile.flags.unwrap_or_default() {
        flags |= match flag.as_str() {
            "SECCOMP_FILTER_FLAG_TSYNC" => FLAG_TSYNC,
            "SECCOMP_FILTER_FLAG_LOG" => FLAG_LOG,
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => FLAG_SPEC_ALLOW,
            other => bail!("unsupported flag {other:?}"),
        };
    }
    let rules = profile
        .syscalls
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, syscall)| rule(syscall).with_context(|| format!("syscalls[{i}]")))
        .collect::<Result<Vec<Rule>>>()?;
    Ok(Profile {
        default_action,
        architectures: architectures.into_iter().map(Cow::Owned).collect(),
        arch_map: arch_map
            .into_iter()
            .map(|entry| ArchMapEntry {
                architecture: Cow::Owned(entry.architecture),
                sub_architectures: entry
                    .sub_architectures
                    .unwrap_or_default()
                    .into_iter()
                    .map(Cow::Owned)
                    .collect(),
            })
            .collect(),
        rules,
        flags,
    })
}

fn rule(syscall: JsonSyscall) -> Result<Rule> {
    let names = match (syscall.name, syscall.names) {
        (Some(_), Some(names)) if !names.is_empty() => {
            bail!("it has both name and names: use one of them")
        }
        (Some(name), _) => vec![name],
        (None, Some(names)) if !names.is_empty() => names,
        (None, _) => bail!("it names no system call"),
    };
    let what = names.join(", ");
    let action = action(&syscall.action, syscall.errno_ret).with_context(|| what.clone())?;
    let args = syscall
        .args
        .unwrap_or_default()
        .into_iter()
        .map(arg)
        .collect::<Result<Vec<_>>>()
        .with_context(|| what.clone())?;
    Ok(Rule {
        names: names.into_iter().map(Cow::Owned).collect(),
        action,
        args,
        includes: conditions(syscall.includes).with_context(|| format!("{what}: includes"))?,
        excludes: conditions(syscall.excludes).with_context(|| format!("{what}: excludes"))?,
    })
}

fn action(name: &str, errno: Option<u32>) -> Result<Action> {
    let action = LinuxSeccompAction::from_str(name)
        .ok()
        .with_context(|| format!("unknown action {name:?}"))?;
    action_from_oci(action, errno)
}

fn arg(arg: JsonArg) -> Result<ArgCondition> {
    let index = match arg.index {
        index @ 0..=5 => index as u8,
        index => bail!("argument index {index} out of range 0-5"),
    };
    let op = match LinuxSeccompOperator::from_str(&arg.op) {
        Ok(LinuxSeccompOperator::ScmpCmpEq) => Op::Eq,
        Ok(LinuxSeccompOperator::ScmpCmpNe) => Op::Ne,
        Ok(LinuxSeccompOperator::ScmpCmpLt) => Op::Lt,
        Ok(LinuxSeccompOperator::ScmpCmpLe) => Op::Le,
        Ok(LinuxSeccompOperator::ScmpCmpGt) => Op::Gt,
        Ok(LinuxSeccompOperator::ScmpCmpGe) => Op::Ge,
        Ok(LinuxSeccompOperator::ScmpCmpMaskedEq) => Op::MaskedEq,
        Err(_) => bail!("unknown operator {:?}", arg.op),
    };
    Ok(ArgCondition {
        index,
        op,
        value: arg.value,
        value_two: arg.value_two,
    })
}

fn conditions(json: Option<JsonConditions>) -> Result<Conditions> {
    let Some(json) = json else {
        return Ok(Conditions::default());
    };
    let min_kernel = match json.min_kernel {
        None => None,
        Some(text) => Some(min_kernel(&text)?),
    };
    Ok(Conditions {
        caps: json.caps.unwrap_or_default(),
        arches: json.arches.unwrap_or_default(),
        min_kernel,
    })
}

/// `minKernel` is "major.minor", as Docker requires.
fn min_kernel(text: &str) -> Result<KernelVersion> {
    let well_formed = text.split_once('.').is_some_and(|(a, b)| {
        [a, b]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
    });
    match KernelVersion::parse(text) {
        Some(version) if well_formed => Ok(version),
        _ => bail!("invalid minKernel {text:?}: use major.minor, such as \"5.8\""),
    }
}
