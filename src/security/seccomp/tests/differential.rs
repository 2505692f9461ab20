//! The differential test against libseccomp: for a profile, the program this compiler makes
//! and the one runc makes (libseccomp's, built by tools/seccomp/libseccomp-reference.py with
//! python3-seccomp, behind runc's ENOSYS stub) run in the interpreter over every system call
//! number of each ABI (and past the tables, and the edges of the number space) with a spread
//! of argument values, and must decide the same everywhere.
//!
//! Profiles: Docker's default for the default capabilities and for several `--cap-add`
//! sets, on x86_64 (x86_64, i386, x32) and aarch64 (aarch64, arm), and custom profiles that
//! mix unconditional and conditional rules, repeated arguments, 64-bit values, other
//! defaults and fewer architectures.
//!
//! The one documented difference: Debian 12's libseccomp (2.5.4) does not know the system
//! calls of Linux 6.7 and later (statmount, listmount, lsm_*, mseal, *xattrat, uretprobe,
//! x32 map_shadow_stack), so runc built with it skips their rules and answers ENOSYS, where
//! Docker with a current libseccomp allows them as the profile says. Those names are left
//! out of the profiles both sides compile, and the test checks that exactly they are.

use super::*;
use std::collections::{BTreeSet, HashMap};
use std::io::Write as _;
use std::process::{Command, Stdio};

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tools/seccomp/libseccomp-reference.py"
);
const PYTHON: &str = "/usr/bin/python3";

/// The calls Debian 12's libseccomp does not know, by ABI (see the module's note).
const NEWER_THAN_LIBSECCOMP: [&str; 12] = [
    "getxattrat",
    "listmount",
    "listxattrat",
    "lsm_get_self_attr",
    "lsm_list_modules",
    "lsm_set_self_attr",
    "map_shadow_stack",
    "mseal",
    "removexattrat",
    "setxattrat",
    "statmount",
    "uretprobe",
];

fn python(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let mut child = Command::new(PYTHON)
        .arg(SCRIPT)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running python3 (python3-seccomp is test tooling)");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{SCRIPT} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// runc's filter for a profile: libseccomp's program and what its stub needs.
struct Reference {
    program: Vec<Insn>,
    stub: bool,
    /// The largest number named, by ABI (libseccomp name).
    largest: HashMap<String, u32>,
}

/// What runc does with `profile` on `arch`: its filter, or libseccomp's refusal.
fn runc(profile: &Resolved, arch: &Arch) -> Result<Reference, String> {
    let oci = oci::to_oci(profile, arch).unwrap();
    let json = serde_json::to_vec(&oci).unwrap();
    let out = std::env::temp_dir().join(format!(
        "seccomp-differential-{}-{:?}.bpf",
        std::process::id(),
        std::thread::current().id()
    ));
    let stdout = python(&[arch.native.scmp_name, out.to_str().unwrap()], &json);
    let answer: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
    if let Some(error) = answer.get("error") {
        return Err(error.to_string());
    }
    let bytes = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    let program = bytes
        .chunks_exact(8)
        .map(|c| Insn {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    let largest = answer["largest"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(abi, n)| (abi.clone(), n.as_u64().unwrap() as u32))
        .collect();
    Ok(Reference {
        program,
        stub: answer["stub"].as_bool().unwrap(),
        largest,
    })
}

/// The names of `names` libseccomp knows on `abi`.
fn libseccomp_knows(abi: &Abi, names: &BTreeSet<String>) -> BTreeSet<String> {
    let json = serde_json::to_vec(names).unwrap();
    let out = python(&["known", abi.scmp_name], &json);
    serde_json::from_slice(&out).unwrap()
}

impl Reference {
    /// runc's ENOSYS stub (patchbpf's generateEnosysStub), then libseccomp's program.
    fn decide(&self, arch: &Arch, audit_arch: u32, nr: u32, args: &[u64; 6]) -> u32 {
        if let Some(ret) = self.stub_decides(arch, audit_arch, nr) {
            return ret;
        }
        run_bpf(&self.program, &seccomp_data(audit_arch, nr, args))
    }

    fn stub_decides(&self, arch: &Arch, audit_arch: u32, nr: u32) -> Option<u32> {
        if !self.stub {
            return None;
        }
        let enosys = Action::Errno(ENOSYS).ret();
        let largest = |abi: &Abi| self.largest.get(abi.scmp_name).copied();
        let abis: Vec<&Abi> = arch.abis().filter(|a| a.audit_arch == audit_arch).collect();
        let native = abis.iter().find(|a| a.scmp_name != X32_ABI.scmp_name);
        let x32 = abis.iter().find(|a| a.scmp_name == X32_ABI.scmp_name);
        let (main_max, x32_max) = (
            native.and_then(|a| largest(a)),
            x32.and_then(|a| largest(a)),
        );
        let over = |max: u32| (nr > max).then_some(enosys);
        match (main_max, x32_max) {
            (None, None) => None,
            (Some(max), None) if x32.is_none() => over(max),
            (Some(max), None) => (nr & X32_BIT == 0).then(|| over(max)).flatten(),
            (None, Some(max)) => (nr & X32_BIT != 0).then(|| over(max)).flatten(),
            (Some(max), Some(x32max)) => match nr & X32_BIT {
                0 => over(max),
                _ => over(x32max),
            },
        }
    }
}

fn describe(ret: u32) -> String {
    let data = ret & 0xffff;
    match ret & 0xffff_0000 {
        0 => "KILL_THREAD".into(),
        0x8000_0000 => "KILL_PROCESS".into(),
        0x0003_0000 => format!("TRAP({data})"),
        0x0005_0000 => format!("ERRNO({data})"),
        0x7ff0_0000 => format!("TRACE({data})"),
        0x7ffc_0000 => "LOG".into(),
        0x7fff_0000 => "ALLOW".into(),
        _ => format!("{ret:#x}"),
    }
}

/// Argument values around the profile's own: 0, 1, each value and value_two, one off, and
/// with the other half of the 64 bits set, and the edges of both halves.
fn spread(profile: &Resolved) -> Vec<u64> {
    let mut values: BTreeSet<u64> = [0, 1, 2, 0x7fff_ffff, 0xffff_ffff, 1 << 32, u64::MAX]
        .into_iter()
        .collect();
    for rule in &profile.rules {
        for arg in &rule.args {
            for v in [arg.value, arg.value_two] {
                for w in [v, v.wrapping_add(1), v.wrapping_sub(1)] {
                    values.extend([w, w | 1 << 32, w | 0xffff_ffff_0000_0000, w << 32]);
                    values.insert(w & 0xffff_ffff);
                }
            }
        }
    }
    values.into_iter().collect()
}

/// Compares the two programs on every ABI of `arch` and a foreign one; returns how many
/// inputs were compared.
fn assert_same_decisions(what: &str, profile: &Resolved, arch: &Arch) -> usize {
    let ours = compile(profile, arch).unwrap();
    let theirs = runc(profile, arch).unwrap_or_else(|e| panic!("{what}: libseccomp: {e}"));
    let values = spread(profile);
    let mut vectors: Vec<[u64; 6]> = Vec::new();
    for &v in &values {
        vectors.extend([[v, 0, 0, 0, 0, 0], [0, v, 0, 0, 0, 0], [v; 6]]);
    }
    // Pairs for rules on two arguments.
    let few: Vec<u64> = values.iter().copied().step_by(3).collect();
    for &a in &few {
        for &b in &few {
            vectors.push([a, b, a, b, a, b]);
        }
    }
    let plain = [[0; 6], [1; 6], [u64::MAX; 6]];
    let foreign = 0x8000_0016; // AUDIT_ARCH_S390X
    let mut compared = 0;
    let mut differences = Vec::new();
    for audit_arch in arch.abis().map(|abi| abi.audit_arch).chain([foreign]) {
        let plan = compiler::Plan::new(profile, arch).unwrap();
        for nr in numbers_to_try() {
            // Calls whose rules depend on arguments (on either side) get every vector.
            let depends = vectors[..3]
                .iter()
                .chain(&plain)
                .map(|args| plan.decide(audit_arch, nr, args))
                .collect::<BTreeSet<_>>()
                .len()
                > 1
                || plan.decide(audit_arch, nr, &[0; 6]) != plan.decide(audit_arch, nr, &[2; 6])
                || conditional(profile, arch, audit_arch, nr);
            let args: &[[u64; 6]] = if depends { &vectors } else { &plain };
            for args in args {
                let got = run_bpf(&ours, &seccomp_data(audit_arch, nr, args));
                let expected = theirs.decide(arch, audit_arch, nr, args);
                compared += 1;
                if got != expected && differences.len() < 20 {
                    differences.push(format!(
                        "arch {audit_arch:#x} call {nr:#x} args {args:x?}: ours {}, runc {}",
                        describe(got),
                        describe(expected)
                    ));
                }
            }
        }
    }
    assert!(
        differences.is_empty(),
        "{what}: differences:\n{}",
        differences.join("\n")
    );
    compared
}

/// Whether `nr` on `audit_arch` has a conditional rule in the profile (by name, in any ABI
/// of that value), or is i386's socketcall or ipc, which libseccomp conditions on the
/// socket and IPC calls' rules.
fn conditional(profile: &Resolved, arch: &Arch, audit_arch: u32, nr: u32) -> bool {
    arch.abis()
        .filter(|abi| abi.audit_arch == audit_arch)
        .filter_map(|abi| abi.table.iter().find(|(n, _)| *n == nr))
        .any(|(_, name)| {
            ["socketcall", "ipc"].contains(name)
                || profile
                    .rules
                    .iter()
                    .any(|r| !r.args.is_empty() && r.names.iter().any(|n| n == name))
        })
}

/// `profile` without the names libseccomp does not know on an ABI of `arch` whose table
/// has them; returns the names left out.
fn without_names_libseccomp_lacks(profile: &mut Resolved, arch: &Arch) -> BTreeSet<String> {
    let names: BTreeSet<String> = profile
        .rules
        .iter()
        .flat_map(|r| r.names.iter().map(|n| n.to_string()))
        .collect();
    let mut lacking = BTreeSet::new();
    for abi in arch.abis() {
        let known = libseccomp_knows(abi, &names);
        for name in &names {
            if abi.number(name).is_some() && !known.contains(name) {
                lacking.insert(name.clone());
            }
        }
    }
    for rule in &mut profile.rules {
        rule.names.retain(|n| !lacking.contains(n.as_ref()));
    }
    profile.rules.retain(|r| !r.names.is_empty());
    lacking
}

#[test]
fn docker_default_agrees_with_libseccomp_for_every_capability_set() {
    let cap_sets: [&[&str]; 6] = [
        &[],
        &["CAP_SYS_ADMIN"],
        &["CAP_SYS_PTRACE"],
        &["CAP_SYS_MODULE"],
        &[
            "CAP_SYS_ADMIN",
            "CAP_SYS_PTRACE",
            "CAP_SYS_BOOT",
            "CAP_SYS_TIME",
            "CAP_BPF",
        ],
        &[
            "CAP_DAC_READ_SEARCH",
            "CAP_SYS_NICE",
            "CAP_PERFMON",
            "CAP_SYSLOG",
        ],
    ];
    let mut total = 0;
    for arch in [&X86_64, &AARCH64] {
        for added in cap_sets {
            let mut caps = DEFAULT_CAPABILITIES.to_vec();
            caps.extend(added);
            let mut profile = default_on(arch, &caps);
            let lacking = without_names_libseccomp_lacks(&mut profile, arch);
            let expected: BTreeSet<String> = NEWER_THAN_LIBSECCOMP
                .iter()
                .filter(|name| {
                    default_on(arch, &caps)
                        .rules
                        .iter()
                        .any(|r| r.names.iter().any(|n| n == *name))
                        && arch.abis().any(|abi| abi.number(name).is_some())
                        // libseccomp lacks map_shadow_stack on x32 only.
                        && (**name != "map_shadow_stack" || arch.others.contains(&&X32_ABI))
                })
                .map(|s| s.to_string())
                .collect();
            assert_eq!(lacking, expected, "{} {added:?}", arch.go_name);
            let what = format!("default profile on {} with {added:?}", arch.go_name);
            total += assert_same_decisions(&what, &profile, arch);
        }
    }
    eprintln!("compared {total} inputs");
}

fn custom(default_action: Action, architectures: &[&str], rules: Vec<ResolvedRule>) -> Resolved {
    Resolved {
        default_action,
        architectures: architectures.iter().map(|a| a.to_string().into()).collect(),
        rules,
        flags: 0,
    }
}

#[test]
fn custom_profiles_agree_with_libseccomp() {
    let all = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"];
    let mixed = || {
        vec![
            // Unconditional and conditional rules on one call, in both orders.
            rule(&["mkdir"], Action::Errno(13), &[]),
            rule(&["mkdir"], Action::Allow, &[(0, Op::Eq, 5, 0)]),
            rule(&["rmdir"], Action::Allow, &[(1, Op::Gt, 10, 0)]),
            rule(&["rmdir"], Action::Errno(13), &[]),
            // Two conditions on one argument: either; on two arguments: both.
            rule(
                &["chmod"],
                Action::Allow,
                &[(0, Op::Eq, 1, 0), (0, Op::Eq, 0x1_0000_0002, 0)],
            ),
            rule(
                &["fchmod"],
                Action::Allow,
                &[
                    (0, Op::Le, 3, 0),
                    (1, Op::MaskedEq, 0xff00_0000_0000_00ff, 0x12),
                ],
            ),
            rule(&["kill"], Action::Allow, &[(1, Op::Ne, 9, 0)]),
            rule(&["prctl"], Action::Allow, &[(0, Op::Ge, 0x8000_0000, 0)]),
            rule(&["ptrace"], Action::KillProcess, &[]),
            rule(
                &["getpid", "getppid", "chown32", "arch_prctl"],
                Action::Allow,
                &[],
            ),
            rule(&["uname"], Action::Trap, &[]),
            rule(&["read", "write", "exit_group", "ipc"], Action::Allow, &[]),
            rule(&["socketcall", "socket"], Action::Allow, &[]),
        ]
    };
    let profiles = [
        (
            "deny, all x86 ABIs",
            custom(Action::Errno(EPERM), &all, mixed()),
        ),
        (
            "deny, x86_64 only",
            custom(Action::Errno(EPERM), &[], mixed()),
        ),
        (
            "ENOSYS default (no stub), x86_64 and i386",
            custom(Action::Errno(ENOSYS), &all[..2], mixed()),
        ),
        (
            "kill default, x32",
            custom(Action::KillProcess, &[all[0], all[2]], mixed()),
        ),
        (
            "allow default with denials",
            custom(
                Action::Allow,
                &all,
                vec![
                    rule(&["mkdir"], Action::Errno(13), &[]),
                    rule(&["mount"], Action::Errno(EPERM), &[(3, Op::MaskedEq, 1, 1)]),
                    rule(&["socket"], Action::Log, &[(0, Op::Eq, 38, 0)]),
                ],
            ),
        ),
        (
            "log default, x86_64 only",
            custom(Action::Log, &[], mixed()),
        ),
    ];
    for (what, profile) in profiles {
        assert_same_decisions(what, &profile, &X86_64);
    }
    let arm = ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"];
    assert_same_decisions(
        "deny, aarch64 and arm",
        &custom(Action::Errno(EPERM), &arm, mixed()),
        &AARCH64,
    );
}
