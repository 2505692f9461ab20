//! Seccomp profiles in Docker's model: a default action, and rules (system call names, an
//! action, conditions on arguments) that may apply only with some capabilities, on some
//! architectures or from some kernel version on. [`Profile::resolve`] keeps the rules that
//! apply to one container; the result, a [`Resolved`] profile, is what the OCI spec's
//! `linux.seccomp` holds and what the compiler turns into BPF.
//!
//! Shared with build.rs (which precompiles the default profile): std only.

use std::borrow::Cow;

/// A system call's name: borrowed in the built-in profile, owned in one read from a file.
pub type Name = Cow<'static, str>;

/// What the kernel does with a system call (SECCOMP_RET_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    KillProcess,
    KillThread,
    Trap,
    /// Fail with this errno; the call does not run.
    Errno(u16),
    /// Ask the tracer, passing this value (ENOSYS without a tracer).
    Trace(u16),
    Log,
    Allow,
}

/// errno values (asm-generic/errno-base.h), the same on every architecture Linux has.
pub const EPERM: u16 = 1;
pub const ENOSYS: u16 = 38;

/// SECCOMP_FILTER_FLAG_* bits for seccomp(2).
pub const FLAG_TSYNC: u32 = 1;
pub const FLAG_LOG: u32 = 2;
pub const FLAG_SPEC_ALLOW: u32 = 4;

impl Action {
    /// The filter's return value for this action.
    pub fn ret(self) -> u32 {
        match self {
            Action::KillProcess => 0x8000_0000,
            Action::KillThread => 0x0000_0000,
            Action::Trap => 0x0003_0000,
            Action::Errno(errno) => 0x0005_0000 | u32::from(errno),
            Action::Trace(data) => 0x7ff0_0000 | u32::from(data),
            Action::Log => 0x7ffc_0000,
            Action::Allow => 0x7fff_0000,
        }
    }

    /// Whether the call may run: a profile with such a default is a deny list, and gives
    /// system calls it does not know that default (instead of ENOSYS).
    pub fn lets_calls_run(self) -> bool {
        matches!(self, Action::Allow | Action::Log | Action::Trace(_))
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::KillProcess => write!(f, "SCMP_ACT_KILL_PROCESS"),
            Action::KillThread => write!(f, "SCMP_ACT_KILL_THREAD"),
            Action::Trap => write!(f, "SCMP_ACT_TRAP"),
            Action::Errno(errno) => write!(f, "SCMP_ACT_ERRNO({errno})"),
            Action::Trace(data) => write!(f, "SCMP_ACT_TRACE({data})"),
            Action::Log => write!(f, "SCMP_ACT_LOG"),
            Action::Allow => write!(f, "SCMP_ACT_ALLOW"),
        }
    }
}

/// A comparison of one 64-bit argument (libseccomp's SCMP_CMP_*), all unsigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `arg & value == value_two`
    MaskedEq,
}

/// A condition on argument `index` (0 to 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArgCondition {
    pub index: u8,
    pub op: Op,
    pub value: u64,
    pub value_two: u64,
}

/// A kernel version, major.minor, as Docker's `minKernel` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KernelVersion(pub u32, pub u32);

impl KernelVersion {
    /// Parses "5.8" or a release such as "6.1.0-18-amd64" (only major.minor count).
    pub fn parse(text: &str) -> Option<KernelVersion> {
        let mut parts = text.splitn(3, '.');
        let major = parts.next()?.parse().ok()?;
        let minor: String = parts
            .next()?
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        Some(KernelVersion(major, minor.parse().ok()?))
    }
}

/// When a rule applies (Docker's `includes`) or does not (`excludes`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    /// Capability names, "CAP_SYS_ADMIN".
    pub caps: Vec<String>,
    /// Go architecture names, "amd64".
    pub arches: Vec<String>,
    pub min_kernel: Option<KernelVersion>,
}

/// One rule of a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub names: Vec<Name>,
    pub action: Action,
    /// All must hold for the rule to match.
    pub args: Vec<ArgCondition>,
    /// The rule applies only if all of these hold...
    pub includes: Conditions,
    /// ...and none of these.
    pub excludes: Conditions,
}

/// An entry of Docker's `archMap`: an architecture and the others a machine of that
/// architecture runs ("SCMP_ARCH_X86_64" with "SCMP_ARCH_X86" and "SCMP_ARCH_X32").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchMapEntry {
    pub architecture: Name,
    pub sub_architectures: Vec<Name>,
}

/// A profile, as Docker's JSON format describes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub default_action: Action,
    /// libseccomp names ("SCMP_ARCH_X86") of the ABIs to filter besides the native one.
    pub architectures: Vec<Name>,
    pub arch_map: Vec<ArchMapEntry>,
    pub rules: Vec<Rule>,
    /// SECCOMP_FILTER_FLAG_* bits for seccomp(2).
    pub flags: u32,
}

/// What a profile is resolved for: one container on one machine.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The container's capabilities (its bounding set), "CAP_CHOWN" or "CHOWN".
    pub capabilities: &'a [&'a str],
    /// Go's name for the architecture, "amd64".
    pub arch: &'a str,
    /// libseccomp's name for it, "SCMP_ARCH_X86_64", to pick the `archMap` entry.
    pub scmp_arch: &'a str,
    pub kernel: KernelVersion,
}

/// A rule that applies, without its conditions: one entry of the OCI spec's syscalls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedRule {
    pub names: Vec<Name>,
    pub action: Action,
    pub args: Vec<ArgCondition>,
}

/// A profile reduced to the rules that apply to one container: what the OCI spec's
/// `linux.seccomp` describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub default_action: Action,
    /// libseccomp names of the ABIs to filter besides the native one.
    pub architectures: Vec<Name>,
    pub rules: Vec<ResolvedRule>,
    pub flags: u32,
}

impl Profile {
    /// Keeps the rules that apply to `target`, as Docker does before it hands the profile to
    /// the runtime.
    pub fn resolve(&self, target: &Target) -> Resolved {
        let has_cap = |cap: &str| {
            let cap = cap.strip_prefix("CAP_").unwrap_or(cap);
            target.capabilities.iter().any(|c| {
                c.strip_prefix("CAP_")
                    .unwrap_or(c)
                    .eq_ignore_ascii_case(cap)
            })
        };
        let arch = |arches: &[String]| arches.iter().any(|a| a == target.arch);
        let applies = |rule: &Rule| {
            let (inc, exc) = (&rule.includes, &rule.excludes);
            let excluded = arch(&exc.arches)
                || exc.caps.iter().any(|c| has_cap(c))
                || exc.min_kernel.is_some_and(|v| target.kernel >= v);
            let included = (inc.arches.is_empty() || arch(&inc.arches))
                && inc.caps.iter().all(|c| has_cap(c))
                && inc.min_kernel.is_none_or(|v| target.kernel >= v);
            included && !excluded
        };
        // Docker copies `architectures` and appends the archMap entry of the machine.
        let mut architectures = self.architectures.clone();
        if let Some(entry) = self
            .arch_map
            .iter()
            .find(|entry| entry.architecture == target.scmp_arch)
        {
            architectures.push(entry.architecture.clone());
            architectures.extend(entry.sub_architectures.iter().cloned());
        }
        Resolved {
            default_action: self.default_action,
            architectures,
            rules: self
                .rules
                .iter()
                .filter(|rule| applies(rule))
                .map(|rule| ResolvedRule {
                    names: rule.names.clone(),
                    action: rule.action,
                    args: rule.args.clone(),
                })
                .collect(),
            flags: self.flags,
        }
    }
}
