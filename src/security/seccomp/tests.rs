//! Tests of the profile, the compiler and the loader: programs are run in a small BPF
//! interpreter against the compiler's reference semantics, and loaded into a forked child
//! that makes real system calls.

use super::bpf::Insn;
use super::compile::{self as compiler, Plan};
use super::default_profile::{DEFAULT_CAPABILITIES, MIN_KERNEL, docker_default};
use super::profile::{
    Action, ArgCondition, Conditions, ENOSYS, EPERM, KernelVersion, Op, Profile, Resolved,
    ResolvedRule, Rule, Target,
};
use super::syscalls::{AARCH64, Abi, Arch, I386_ABI, X32_ABI, X32_BIT, X86_64};
use super::*;

const ARCH: &Arch = &X86_64;

fn compile(profile: &Resolved, arch: &Arch) -> Result<Vec<Insn>, String> {
    compiler::compile(profile, arch).map(|program| program.insns)
}
const EINVAL: i64 = libc::EINVAL as i64;

fn default_for(capabilities: &[&str]) -> Resolved {
    default_on(ARCH, capabilities)
}

fn default_on(arch: &Arch, capabilities: &[&str]) -> Resolved {
    docker_default().resolve(&Target {
        capabilities,
        arch: arch.go_name,
        scmp_arch: arch.native.scmp_name,
        kernel: MIN_KERNEL,
    })
}

fn nr(name: &str) -> u32 {
    nr_of(ARCH.native, name)
}

fn nr_of(abi: &Abi, name: &str) -> u32 {
    abi.number(name)
        .unwrap_or_else(|| panic!("no system call {name} on {}", abi.scmp_name))
}

// ---- A classic BPF interpreter for seccomp programs ----

/// `struct seccomp_data` for one call.
fn seccomp_data(arch: u32, nr: u32, args: &[u64; 6]) -> [u8; 64] {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_le_bytes());
    data[4..8].copy_from_slice(&arch.to_le_bytes());
    for (i, arg) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&arg.to_le_bytes());
    }
    data
}

/// Runs `program` as the kernel would, returning its SECCOMP_RET_* value.
fn run_bpf(program: &[Insn], data: &[u8; 64]) -> u32 {
    run_bpf_counting(program, data).0
}

/// Runs `program`, returning its SECCOMP_RET_* value and how many instructions it ran.
fn run_bpf_counting(program: &[Insn], data: &[u8; 64]) -> (u32, usize) {
    let mut a: u32 = 0;
    let mut pc = 0;
    let mut steps = 0;
    loop {
        let insn = program[pc];
        pc += 1;
        steps += 1;
        let k = insn.k;
        let cond = |taken: bool| if taken { insn.jt } else { insn.jf } as usize;
        match insn.code {
            0x20 => {
                let at = k as usize;
                a = u32::from_le_bytes(data[at..at + 4].try_into().unwrap());
            }
            0x54 => a &= k,
            0x05 => pc += k as usize,
            0x15 => pc += cond(a == k),
            0x25 => pc += cond(a > k),
            0x35 => pc += cond(a >= k),
            0x45 => pc += cond(a & k != 0),
            0x06 => return (k, steps),
            code => panic!("unexpected opcode {code:#x} at {}", pc - 1),
        }
    }
}

fn decide_bpf(program: &[Insn], nr: u32, args: &[u64; 6]) -> u32 {
    run_bpf(program, &seccomp_data(ARCH.native.audit_arch, nr, args))
}

/// Numbers to try on every ABI: each table and past it, and the edges of the number space.
fn numbers_to_try() -> Vec<u32> {
    let mut numbers: Vec<u32> = (0..600).collect();
    numbers.extend((0..600).map(|n| X32_BIT | n));
    numbers.extend(0xf_0000..0xf_0010);
    numbers.extend([
        0x3fff_ffff,
        0x8000_0000,
        0xbfff_ffff,
        0xc000_0000,
        u32::MAX - 1,
        u32::MAX,
    ]);
    numbers
}

/// Checks the program against the reference semantics for every ABI of `arch` (and a
/// foreign one), every number to try, with the given argument vectors.
fn assert_program_matches_plan(
    profile: &Resolved,
    arch: &Arch,
    program: &[Insn],
    args: &[[u64; 6]],
) {
    let plan = Plan::new(profile, arch).unwrap();
    let foreign = 0x8000_0016; // AUDIT_ARCH_S390X
    let audit_arches = arch.abis().map(|abi| abi.audit_arch).chain([foreign]);
    for audit_arch in audit_arches {
        for nr in numbers_to_try() {
            for args in args {
                assert_eq!(
                    run_bpf(program, &seccomp_data(audit_arch, nr, args)),
                    plan.decide(audit_arch, nr, args).ret(),
                    "arch {audit_arch:#x} call {nr:#x} with {args:x?}"
                );
            }
        }
    }
}

// ---- The default profile ----

#[test]
fn the_precompiled_default_is_what_the_compiler_makes_now() {
    let compiled = compile(&default_resolved(ARCH), ARCH).unwrap();
    assert_eq!(
        &compiled[..],
        &DEFAULT_PROGRAM[..],
        "DEFAULT_PROGRAM is stale: build.rs must be rerun"
    );
}

#[test]
fn the_default_denies_what_docker_denies() {
    let program = &DEFAULT_PROGRAM;
    let eperm = Action::Errno(EPERM).ret();
    let enosys = Action::Errno(ENOSYS).ret();
    let allow = Action::Allow.ret();
    for denied in [
        "kexec_load",
        "kexec_file_load",
        "init_module",
        "finit_module",
        "delete_module",
        "reboot",
        "swapon",
        "swapoff",
        "acct",
        "keyctl",
        "add_key",
        "request_key",
        "bpf",
        "perf_event_open",
        "userfaultfd",
        "open_by_handle_at",
        "mount",
        "umount2",
        "pivot_root",
        "unshare",
        "setns",
        "settimeofday",
        "clock_settime",
    ] {
        assert_eq!(decide_bpf(program, nr(denied), &[0; 6]), eperm, "{denied}");
    }
    for allowed in [
        "read",
        "write",
        "execve",
        "futex",
        "adjtimex",
        "clock_adjtime",
        "chroot",
    ] {
        assert_eq!(
            decide_bpf(program, nr(allowed), &[0; 6]),
            allow,
            "{allowed}"
        );
    }
    // io_uring is denied (moby since 2023).
    for denied in ["io_uring_setup", "io_uring_enter", "io_uring_register"] {
        assert_eq!(decide_bpf(program, nr(denied), &[0; 6]), eperm, "{denied}");
    }
    // The newest calls Docker allows.
    for allowed in [
        "cachestat",
        "fchmodat2",
        "map_shadow_stack",
        "futex_wake",
        "futex_wait",
        "futex_requeue",
        "statmount",
        "listmount",
        "mseal",
        "setxattrat",
        "removexattrat",
        "uretprobe",
    ] {
        let got = decide_bpf(program, nr(allowed), &[0; 6]);
        assert_eq!(got, allow, "{allowed}");
    }
    // clone3 and calls newer than the profile fail with ENOSYS, so libc falls back; unnamed
    // numbers below the highest named get the default, as runc's filter gives them.
    assert_eq!(decide_bpf(program, nr("clone3"), &[0; 6]), enosys);
    for unknown in [1000, nr("file_setattr"), u32::MAX >> 2, u32::MAX] {
        assert_eq!(decide_bpf(program, unknown, &[0; 6]), enosys, "{unknown}");
    }
    assert_eq!(decide_bpf(program, 400, &[0; 6]), eperm);
    // clone: only without namespace flags.
    let clone = nr("clone");
    assert_eq!(decide_bpf(program, clone, &[0x11, 0, 0, 0, 0, 0]), allow);
    let newuser = 0x1000_0000;
    assert_eq!(
        decide_bpf(program, clone, &[newuser | 0x11, 0, 0, 0, 0, 0]),
        eperm
    );
    // personality: only the usual personas; socket: anything but AF_VSOCK.
    let personality = nr("personality");
    assert_eq!(
        decide_bpf(program, personality, &[0xffff_ffff, 0, 0, 0, 0, 0]),
        allow
    );
    assert_eq!(
        decide_bpf(program, personality, &[0x0040_0000, 0, 0, 0, 0, 0]),
        eperm
    );
    assert_eq!(
        decide_bpf(program, personality, &[0x1_0000_0000, 0, 0, 0, 0, 0]),
        eperm
    );
    // socket: anything but AF_ALG (38) and AF_VSOCK (40).
    let socket = nr("socket");
    for (family, expected) in [
        (1, allow),
        (37, allow),
        (38, eperm),
        (39, allow),
        (40, eperm),
    ] {
        let got = decide_bpf(program, socket, &[family, 1, 0, 0, 0, 0]);
        assert_eq!(got, expected, "family {family}");
    }
    assert_eq!(
        decide_bpf(program, socket, &[0x1_0000_0026, 1, 0, 0, 0, 0]),
        allow
    );
}

#[test]
fn i386_and_x32_calls_are_filtered_by_rule_and_foreign_ones_killed() {
    let program = &DEFAULT_PROGRAM[..];
    let on = |abi: &Abi, name: &str, args: [u64; 6]| {
        run_bpf(
            program,
            &seccomp_data(abi.audit_arch, nr_of(abi, name), &args),
        )
    };
    let (allow, eperm) = (Action::Allow.ret(), Action::Errno(EPERM).ret());
    for abi in [&I386_ABI, &X32_ABI] {
        for name in ["read", "getpid", "execve", "fchmodat2", "rt_sigreturn"] {
            assert_eq!(on(abi, name, [0; 6]), allow, "{} {name}", abi.scmp_name);
        }
        for name in ["keyctl", "mount", "unshare", "io_uring_setup", "bpf"] {
            assert_eq!(on(abi, name, [0; 6]), eperm, "{} {name}", abi.scmp_name);
        }
        // 32-bit arguments: the low word counts, as libseccomp compares them.
        assert_eq!(on(abi, "socket", [38, 1, 0, 0, 0, 0]), eperm);
        assert_eq!(on(abi, "socket", [0x1_0000_0026, 1, 0, 0, 0, 0]), eperm);
        assert_eq!(on(abi, "socket", [2, 1, 0, 0, 0, 0]), allow);
    }
    // i386 only: socketcall (Docker allows it; its arguments are in memory).
    assert_eq!(on(&I386_ABI, "socketcall", [1, 0, 0, 0, 0, 0]), allow);
    let arm = 0x4000_0028;
    let kill = compiler::BAD_ARCH.ret();
    assert_eq!(run_bpf(program, &seccomp_data(arm, 0, &[0; 6])), kill);
}

#[test]
fn the_aarch64_program_filters_aarch64_and_arm() {
    let program = compile(&default_on(&AARCH64, &DEFAULT_CAPABILITIES), &AARCH64).unwrap();
    let (allow, eperm) = (Action::Allow.ret(), Action::Errno(EPERM).ret());
    for abi in AARCH64.abis() {
        let on = |name: &str| {
            run_bpf(
                &program,
                &seccomp_data(abi.audit_arch, nr_of(abi, name), &[0; 6]),
            )
        };
        for name in ["read", "openat", "execve", "cachestat", "clone"] {
            assert_eq!(on(name), allow, "{} {name}", abi.scmp_name);
        }
        for name in ["keyctl", "mount", "io_uring_setup", "unshare"] {
            assert_eq!(on(name), eperm, "{} {name}", abi.scmp_name);
        }
    }
    let arm = AARCH64.others[0];
    let on_arm = |name: &str| {
        run_bpf(
            &program,
            &seccomp_data(arm.audit_arch, nr_of(arm, name), &[0; 6]),
        )
    };
    assert_eq!(on_arm("cacheflush"), allow);
    assert_eq!(on_arm("set_tls"), allow);
    let x86_64 = ARCH.native.audit_arch;
    let kill = compiler::BAD_ARCH.ret();
    assert_eq!(run_bpf(&program, &seccomp_data(x86_64, 0, &[0; 6])), kill);
    let args = [
        [0; 6],
        [0x1000_0011, 0, 0, 0, 0, 0],
        [38, 0, 0, 0, 0, 0],
        [u64::MAX; 6],
    ];
    let profile = default_on(&AARCH64, &DEFAULT_CAPABILITIES);
    assert_program_matches_plan(&profile, &AARCH64, &program, &args);
}

#[test]
fn the_default_profile_is_moby_default_json() {
    let json = include_bytes!("default.json");
    let parsed = docker_json::parse(json, ARCH).unwrap();
    assert_eq!(parsed, docker_default());
}

#[test]
fn the_tables_agree_with_the_installed_kernel_headers() {
    // The headers gen-syscalls.py reads on x86 (linux-libc-dev); skipped where absent.
    let headers = [
        (
            "/usr/include/x86_64-linux-gnu/asm/unistd_64.h",
            ARCH.native,
            0,
        ),
        (
            "/usr/include/x86_64-linux-gnu/asm/unistd_32.h",
            &I386_ABI,
            0,
        ),
        (
            "/usr/include/x86_64-linux-gnu/asm/unistd_x32.h",
            &X32_ABI,
            X32_BIT,
        ),
    ];
    for (path, abi, bit) in headers {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        let mut seen = 0;
        for line in text.lines() {
            let mut words = line.split_whitespace();
            let (Some("#define"), Some(name), Some(value)) =
                (words.next(), words.next(), words.next())
            else {
                continue;
            };
            let Some(name) = name.strip_prefix("__NR_") else {
                continue;
            };
            // "0", or "(__X32_SYSCALL_BIT + 0)" for x32.
            let last = words.last().unwrap_or(value);
            let number: u32 = last.trim_end_matches(')').parse().unwrap();
            assert_eq!(abi.number(name), Some(bit | number), "{path}: {name}");
            seen += 1;
        }
        assert!(seen > 300, "{path}: {seen} calls");
    }
}

#[test]
fn native_calls_cost_no_more_than_before_the_other_abis() {
    // Before i386, x32 and the weighted search (x86_64 alone, calls killed by ABI): 100
    // instructions; an x86_64 call ran 10.92 on average, 15 at most, read and write 10.
    let steps = |nr| {
        let data = seccomp_data(ARCH.native.audit_arch, nr, &[0; 6]);
        run_bpf_counting(&DEFAULT_PROGRAM, &data).1
    };
    let calls = ARCH.native.table;
    let total: usize = calls.iter().map(|(nr, _)| steps(*nr)).sum();
    let average = total as f64 / calls.len() as f64;
    assert!(average <= 10.92, "{average}");
    assert!(steps(nr("read")) <= 10 && steps(nr("write")) <= 10);
}

#[test]
fn capabilities_open_what_they_guard() {
    let with = |cap: &str| {
        let mut caps = DEFAULT_CAPABILITIES.to_vec();
        caps.push(cap);
        compile(&default_for(&caps), ARCH).unwrap()
    };
    let allow = Action::Allow.ret();
    let sys_admin = with("CAP_SYS_ADMIN");
    for call in ["mount", "umount2", "unshare", "setns", "clone3", "bpf"] {
        assert_eq!(decide_bpf(&sys_admin, nr(call), &[0; 6]), allow, "{call}");
    }
    let newuser = 0x1000_0000;
    assert_eq!(
        decide_bpf(&sys_admin, nr("clone"), &[newuser, 0, 0, 0, 0, 0]),
        allow
    );
    assert_eq!(
        decide_bpf(&with("SYS_TIME"), nr("clock_settime"), &[0; 6]),
        allow
    );
    assert_eq!(
        decide_bpf(&with("CAP_SYS_MODULE"), nr("finit_module"), &[0; 6]),
        allow
    );
    assert_eq!(
        decide_bpf(&with("CAP_SYS_BOOT"), nr("reboot"), &[0; 6]),
        allow
    );
    let none = compile(&default_for(&[]), ARCH).unwrap();
    assert_eq!(
        decide_bpf(&none, nr("chroot"), &[0; 6]),
        Action::Errno(EPERM).ret()
    );
}

#[test]
fn the_default_program_follows_the_reference_semantics() {
    let args = [
        [0; 6],
        [0x11, 0, 0, 0, 0, 0],
        [0x1000_0011, 0, 0, 0, 0, 0],
        [40, 0, 0, 0, 0, 0],
        [0x20008, 0, 0, 0, 0, 0],
        [0xffff_ffff, 0, 0, 0, 0, 0],
        [u64::MAX; 6],
    ];
    for caps in [
        &DEFAULT_CAPABILITIES[..],
        &[],
        &["CAP_SYS_ADMIN", "CAP_SYS_PTRACE"],
    ] {
        let profile = default_for(caps);
        assert_program_matches_plan(&profile, ARCH, &compile(&profile, ARCH).unwrap(), &args);
    }
}

#[test]
fn rules_apply_by_capability_architecture_and_kernel() {
    let mut rule = Rule {
        names: vec!["getpid".into()],
        action: Action::Allow,
        args: vec![],
        includes: Conditions::default(),
        excludes: Conditions::default(),
    };
    rule.includes.caps = vec!["CAP_NET_ADMIN".into()];
    rule.includes.min_kernel = Some(KernelVersion(5, 10));
    rule.excludes.arches = vec!["arm64".into()];
    let profile = Profile {
        default_action: Action::Errno(EPERM),
        architectures: vec![],
        arch_map: vec![],
        rules: vec![rule],
        flags: 0,
    };
    let applies = |caps: &[&str], arch, kernel| {
        let target = Target {
            capabilities: caps,
            arch,
            scmp_arch: "SCMP_ARCH_X86_64",
            kernel,
        };
        !profile.resolve(&target).rules.is_empty()
    };
    assert!(applies(&["NET_ADMIN"], "amd64", KernelVersion(6, 1)));
    assert!(!applies(&[], "amd64", KernelVersion(6, 1)));
    assert!(!applies(&["CAP_NET_ADMIN"], "amd64", KernelVersion(5, 9)));
    assert!(!applies(&["CAP_NET_ADMIN"], "arm64", KernelVersion(6, 1)));
    assert_eq!(
        KernelVersion::parse("6.1.0-18-amd64"),
        Some(KernelVersion(6, 1))
    );
    assert_eq!(
        KernelVersion::parse("6.18.44-fc"),
        Some(KernelVersion(6, 18))
    );
    assert_eq!(KernelVersion::parse("6"), None);
}

// ---- The compiler on arbitrary profiles ----

fn rule(names: &[&str], action: Action, args: &[(u8, Op, u64, u64)]) -> ResolvedRule {
    ResolvedRule {
        names: names.iter().map(|n| n.to_string().into()).collect(),
        action,
        args: args
            .iter()
            .map(|&(index, op, value, value_two)| ArgCondition {
                index,
                op,
                value,
                value_two,
            })
            .collect(),
    }
}

fn profile(default_action: Action, rules: Vec<ResolvedRule>) -> Resolved {
    Resolved {
        default_action,
        architectures: vec![],
        rules,
        flags: 0,
    }
}

/// Values around the 32-bit halves' edges, where two-word comparisons go wrong.
const EDGES: [u64; 12] = [
    0,
    1,
    0x7fff_ffff,
    0xffff_fffe,
    0xffff_ffff,
    0x1_0000_0000,
    0x1_0000_0001,
    0x1_ffff_ffff,
    0x2_0000_0000,
    0xffff_ffff_0000_0000,
    u64::MAX - 1,
    u64::MAX,
];

#[test]
fn every_comparison_matches_on_64_bits() {
    let ops = [Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge, Op::MaskedEq];
    for op in ops {
        for value in EDGES {
            for value_two in [0, 1, 0xffff_ffff, 0x1_0000_0000] {
                let p = profile(
                    Action::Allow,
                    vec![rule(
                        &["getppid"],
                        Action::Errno(99),
                        &[(2, op, value, value_two)],
                    )],
                );
                let program = compile(&p, ARCH).unwrap();
                for arg in EDGES {
                    let condition = p.rules[0].args[0];
                    let expected = match compiler::matches(&condition, arg, false) {
                        true => Action::Errno(99),
                        false => Action::Allow,
                    };
                    let got = decide_bpf(&program, nr("getppid"), &[0, 0, arg, 0, 0, 0]);
                    assert_eq!(
                        got,
                        expected.ret(),
                        "{op:?} {value:#x}/{value_two:#x} on {arg:#x}"
                    );
                }
            }
        }
    }
}

#[test]
fn rules_combine_as_in_runc() {
    let mkdir = nr("mkdir");
    let p = profile(
        Action::Errno(EPERM),
        vec![
            // An unconditional rule wins over conditional ones, before or after it.
            rule(&["mkdir"], Action::Log, &[]),
            rule(&["mkdir"], Action::Errno(6), &[(0, Op::Eq, 5, 0)]),
            rule(&["mknod"], Action::Errno(6), &[(0, Op::Eq, 5, 0)]),
            rule(&["mknod"], Action::Log, &[]),
            // Conditional rules are tried in order.
            rule(
                &["chmod"],
                Action::Errno(5),
                &[(0, Op::Eq, 5, 0), (1, Op::Gt, 10, 0)],
            ),
            rule(&["chmod"], Action::Errno(6), &[(0, Op::Eq, 5, 0)]),
            // Two conditions on one argument: either matches.
            rule(
                &["rmdir"],
                Action::Allow,
                &[(0, Op::Eq, 1, 0), (0, Op::Eq, 2, 0)],
            ),
            // The default action's rules are left out.
            rule(&["getpid"], Action::Errno(EPERM), &[(0, Op::Eq, 1, 0)]),
        ],
    );
    let program = compile(&p, ARCH).unwrap();
    let run = |nr, a0, a1| decide_bpf(&program, nr, &[a0, a1, 0, 0, 0, 0]);
    for call in [mkdir, nr("mknod")] {
        assert_eq!(run(call, 5, 11), Action::Log.ret());
        assert_eq!(run(call, 4, 11), Action::Log.ret());
    }
    let chmod = nr("chmod");
    assert_eq!(run(chmod, 5, 11), Action::Errno(5).ret());
    assert_eq!(run(chmod, 5, 10), Action::Errno(6).ret());
    assert_eq!(run(chmod, 4, 11), Action::Errno(EPERM).ret());
    assert_eq!(run(nr("rmdir"), 2, 0), Action::Allow.ret());
    assert_eq!(run(nr("rmdir"), 3, 0), Action::Errno(EPERM).ret());
    assert_eq!(run(nr("getpid"), 1, 0), Action::Errno(EPERM).ret());
    let conflicting = profile(
        Action::Errno(EPERM),
        vec![
            rule(&["mkdir"], Action::Allow, &[]),
            rule(&["mkdir"], Action::Log, &[]),
        ],
    );
    assert!(compile(&conflicting, ARCH).is_err());
}

#[test]
fn unknown_calls_answer_enosys_only_under_a_denying_default() {
    let rules = vec![rule(&["read", "no_such_call"], Action::Allow, &[])];
    let denying = compile(&profile(Action::Errno(EPERM), rules.clone()), ARCH).unwrap();
    let enosys = Action::Errno(ENOSYS).ret();
    // read (0) is the highest call named: everything above it is unknown.
    assert_eq!(decide_bpf(&denying, nr("write"), &[0; 6]), enosys);
    assert_eq!(
        decide_bpf(&denying, nr("read"), &[0; 6]),
        Action::Allow.ret()
    );
    let allowing = compile(&profile(Action::Log, rules.clone()), ARCH).unwrap();
    assert_eq!(decide_bpf(&allowing, 1000, &[0; 6]), Action::Log.ret());
    let p = profile(Action::Errno(EPERM), rules);
    let program = compiler::compile(&p, ARCH).unwrap();
    assert_eq!(program.unknown_names, ["no_such_call"]);
}

/// A profile whose program needs jumps longer than 255 instructions.
fn long_profile() -> Resolved {
    let rules = ARCH
        .native
        .table
        .iter()
        .enumerate()
        .map(|(i, (_, name))| {
            let ops = [Op::Eq, Op::Ne, Op::Ge, Op::Le, Op::MaskedEq];
            let value = 1u64 << (i % 64);
            rule(
                &[name],
                Action::Allow,
                &[(i as u8 % 6, ops[i % 5], value, value)],
            )
        })
        .collect();
    profile(Action::Errno(EPERM), rules)
}

#[test]
fn long_jumps_are_relayed() {
    let p = long_profile();
    let program = compile(&p, ARCH).unwrap();
    assert!(program.len() > 2000, "{}", program.len());
    let args: Vec<[u64; 6]> = EDGES
        .iter()
        .map(|&v| [v, v, v, !v, 1 << 5, 1 << 40])
        .collect();
    assert_program_matches_plan(&p, ARCH, &program, &args);
}

#[test]
fn programs_too_long_for_the_kernel_are_refused() {
    let mut p = long_profile();
    let more: Vec<ResolvedRule> = p
        .rules
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.args[0].value ^= 3;
            r
        })
        .collect();
    p.rules.extend(more.clone());
    p.rules.extend(more);
    let err = compile(&p, ARCH).unwrap_err();
    assert!(err.contains("at most 4096"), "{err}");
}

// ---- The spec's description ----

#[test]
fn the_spec_description_round_trips() {
    let mut p = default_for(&["CAP_SYS_ADMIN"]);
    p.rules.push(rule(
        &["mkdir"],
        Action::Trace(7),
        &[(5, Op::MaskedEq, 3, 1)],
    ));
    p.rules.push(rule(&["rmdir"], Action::KillThread, &[]));
    p.flags = profile::FLAG_LOG;
    let oci = oci::to_oci(&p, ARCH).unwrap();
    let json = serde_json::to_string(&oci).unwrap();
    assert!(
        json.contains(r#""defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1"#),
        "{json}"
    );
    let back: LinuxSeccomp = serde_json::from_str(&json).unwrap();
    assert_eq!(oci::from_oci(&back, ARCH).unwrap(), p);
}

#[test]
fn describes_agrees_with_reading_the_spec_back() {
    let p = default_for(&DEFAULT_CAPABILITIES);
    let agree = |oci: &LinuxSeccomp, expected: bool| {
        let read_back = oci::from_oci(oci, ARCH).ok().as_ref() == Some(&p);
        assert_eq!(read_back, expected);
        assert_eq!(oci::describes(oci, &p, ARCH), expected);
    };
    let oci = oci::to_oci(&p, ARCH).unwrap();
    agree(&oci, true);
    // Written differently, read the same: ERRNO without errnoRet is EPERM.
    let mut same = oci.clone();
    same.set_default_errno_ret(None);
    agree(&same, true);
    type Change = Box<dyn Fn(&mut LinuxSeccomp)>;
    let mut changes: Vec<Change> = vec![
        Box::new(|o| {
            o.set_default_errno_ret(Some(38));
        }),
        Box::new(|o| {
            o.set_flags(Some(vec![
                oci_spec::runtime::LinuxSeccompFilterFlag::SeccompFilterFlagLog,
            ]));
        }),
        Box::new(|o| {
            o.set_architectures(Some(vec![oci_spec::runtime::Arch::ScmpArchAarch64]));
        }),
        // No architectures is the native one only: no i386 or x32.
        Box::new(|o| {
            o.set_architectures(None);
        }),
    ];
    for i in [0, 1, 3, 5, 12] {
        changes.push(Box::new(move |o| {
            let mut syscalls = o.syscalls().clone().unwrap();
            let names = syscalls[i].names().clone();
            syscalls[i].set_names(names.into_iter().map(|n| n + "x").collect());
            o.set_syscalls(Some(syscalls));
        }));
        changes.push(Box::new(move |o| {
            let mut syscalls = o.syscalls().clone().unwrap();
            syscalls[i].set_errno_ret(Some(77));
            syscalls[i].set_action(oci_spec::runtime::LinuxSeccompAction::ScmpActErrno);
            o.set_syscalls(Some(syscalls));
        }));
    }
    changes.push(Box::new(|o| {
        let mut syscalls = o.syscalls().clone().unwrap();
        syscalls.pop();
        o.set_syscalls(Some(syscalls));
    }));
    changes.push(Box::new(|o| {
        let mut syscalls = o.syscalls().clone().unwrap();
        let with_args = syscalls.iter().position(|s| s.args().is_some()).unwrap();
        syscalls[with_args].set_args(None);
        o.set_syscalls(Some(syscalls));
    }));
    for change in changes {
        let mut changed = oci.clone();
        change(&mut changed);
        agree(&changed, false);
    }
}

#[test]
fn the_default_spec_loads_the_precompiled_program() {
    let caps = DEFAULT_CAPABILITIES;
    let spec = for_spec(&Choice::Default, &caps).unwrap().unwrap();
    let filter = Filter::from_spec(&spec).unwrap();
    assert!(filter.is_precompiled());
    let spec = for_spec(&Choice::Default, &["CAP_SYS_ADMIN"])
        .unwrap()
        .unwrap();
    let filter = Filter::from_spec(&spec).unwrap();
    assert!(!filter.is_precompiled());
    assert_eq!(for_spec(&Choice::Unconfined, &caps).unwrap(), None);
}

// ---- Docker's JSON format ----

fn parse_json(json: &str) -> anyhow::Result<Profile> {
    docker_json::parse(json.as_bytes(), ARCH)
}

#[test]
fn docker_json_profiles_parse() {
    let json = r#"{
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": null}],
        "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "comment": "io"},
            {"name": "mkdir", "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
             "excludes": {"caps": ["CAP_SYS_ADMIN"]},
             "includes": {"arches": ["amd64"], "minKernel": "4.8"}},
            {"names": ["kill"], "action": "SCMP_ACT_KILL"}
        ]
    }"#;
    let p = parse_json(json).unwrap();
    assert_eq!(p.default_action, Action::Errno(ENOSYS));
    assert_eq!(p.flags, profile::FLAG_SPEC_ALLOW);
    assert_eq!(p.rules.len(), 4);
    assert_eq!(p.rules[1].names, ["mkdir"]);
    assert_eq!(p.rules[1].action, Action::Errno(13));
    assert_eq!(p.rules[2].args[0].op, Op::MaskedEq);
    assert_eq!(p.rules[2].includes.min_kernel, Some(KernelVersion(4, 8)));
    assert_eq!(p.rules[2].excludes.caps, ["CAP_SYS_ADMIN"]);
    assert_eq!(p.rules[3].action, Action::KillThread);
    let minimal = parse_json(r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#).unwrap();
    assert!(minimal.rules.is_empty());
}

#[test]
fn malformed_docker_json_profiles_say_what_is_wrong() {
    let cases = [
        ("", "EOF while parsing"),
        ("{", "EOF while parsing"),
        (r#"{"syscalls": []}"#, "missing field `defaultAction`"),
        (
            r#"{"defaultAction": "SCMP_ACT_NOPE"}"#,
            r#"unknown action "SCMP_ACT_NOPE""#,
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 5000}"#,
            "errno 5000 out of range",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_AARCH64"]}"#,
            "do not include SCMP_ARCH_X86_64",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_PDP11"]}"#,
            r#"unknown architecture "SCMP_ARCH_PDP11""#,
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_ERRNO"}]}"#,
            "syscalls[0]: it names no system call",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"],
                "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
            "syscalls[0]: mkdir: argument index 6 out of range 0-5",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"],
                "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_IS"}]}]}"#,
            r#"unknown operator "SCMP_CMP_IS""#,
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"],
                "action": "SCMP_ACT_ERRNO", "includes": {"minKernel": "five"}}]}"#,
            r#"mkdir: includes: invalid minKernel "five""#,
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"],
                "action": "SCMP_ACT_NOTIFY"}]}"#,
            "SCMP_ACT_NOTIFY is not supported",
        ),
    ];
    for (json, expected) in cases {
        let err = crate::errors::describe(&parse_json(json).unwrap_err());
        assert!(err.contains(expected), "{json}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

// ---- Real system calls under a loaded filter ----

/// One system call: its number and six arguments.
type Probe = (i64, [u64; 6]);

/// How a forked child that loaded a filter and made the probes ended.
#[derive(Debug, PartialEq, Eq)]
enum Probed {
    /// Each probe's result: its return value, or minus its errno.
    Results(Vec<i64>),
    KilledBy(i32),
}

/// Forks a child that sets no_new_privs, installs `program` and makes each probe. The child
/// only makes system calls (no allocation, no locks), so forking the threaded test process
/// is safe.
fn probe(program: &[Insn], probes: &[Probe]) -> Probed {
    let mut results = vec![0i64; probes.len()];
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints for pipe2 to fill.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr().cast::<libc::sock_filter>().cast_mut(),
    };
    // SAFETY: the child runs only async-signal-safe system calls on memory prepared before
    // the fork (results, probes, fprog) and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: see above; every pointer refers to memory owned by this (copied) process.
        unsafe {
            let no_core = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &no_core);
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                libc::_exit(101);
            }
            if libc::syscall(libc::SYS_seccomp, 1, 0, &fprog as *const libc::sock_fprog) != 0 {
                libc::_exit(102);
            }
            for (i, (nr, a)) in probes.iter().enumerate() {
                let ret = libc::syscall(*nr, a[0], a[1], a[2], a[3], a[4], a[5]);
                results[i] = if ret == -1 {
                    -i64::from(*libc::__errno_location())
                } else {
                    ret
                };
            }
            let bytes = results.len() * 8;
            libc::write(fds[1], results.as_ptr().cast(), bytes);
            libc::_exit(0);
        }
    }
    // SAFETY: closing our copy of the write end, which we own.
    unsafe { libc::close(fds[1]) };
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: buf is a valid writable buffer of the given length.
        let n = unsafe { libc::read(fds[0], buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        bytes.extend_from_slice(&buf[..n as usize]);
    }
    // SAFETY: closing the read end, which we own.
    unsafe { libc::close(fds[0]) };
    let mut status = 0;
    // SAFETY: waiting for the child forked above.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    if libc::WIFSIGNALED(status) {
        return Probed::KilledBy(libc::WTERMSIG(status));
    }
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "the child could not load the filter"
    );
    Probed::Results(
        bytes
            .chunks_exact(8)
            .map(|c| i64::from_ne_bytes(c.try_into().unwrap()))
            .collect(),
    )
}

fn call(name: &str, args: &[u64]) -> Probe {
    let mut all = [0u64; 6];
    all[..args.len()].copy_from_slice(args);
    (i64::from(nr(name)), all)
}

#[test]
fn the_kernel_enforces_the_default_program() {
    const CLONE_NEWUSER: u64 = 0x1000_0000;
    const CLONE_FS: u64 = 0x200;
    const CLONE_THREAD: u64 = 0x10000;
    const CLONE_VFORK: u64 = 0x4000;
    let eperm = -i64::from(libc::EPERM);
    let enosys = -i64::from(libc::ENOSYS);
    let cases: Vec<(Probe, i64)> = vec![
        // Denied: EPERM, although the kernel would have said EINVAL or EFAULT.
        (call("clone", &[CLONE_NEWUSER | CLONE_FS]), eperm),
        (call("unshare", &[CLONE_VFORK]), eperm),
        (call("mount", &[0, 0, 0, 0, 0]), eperm),
        (call("umount2", &[0, 0xffff_0000]), eperm),
        (call("setns", &[u64::MAX, 0]), eperm),
        (call("keyctl", &[u64::from(u32::MAX)]), eperm),
        (call("add_key", &[0, 0, 0, 0, 0]), eperm),
        (call("clock_settime", &[9999, 0]), eperm),
        (call("personality", &[0x0040_0000]), eperm),
        (call("socket", &[40, 1, 0]), eperm),
        (call("socket", &[38, 5, 0]), eperm),
        (call("io_uring_setup", &[1, 0]), eperm),
        // Newer than the profile, or clone3: ENOSYS.
        (call("clone3", &[0, 0]), enosys),
        (call("file_setattr", &[u64::MAX, 0, 0, 0, 0]), enosys),
        ((1000, [0; 6]), enosys),
        // Allowed: the kernel's own answer.
        (call("clone", &[CLONE_THREAD]), -EINVAL),
        (call("getppid", &[]), i64::from(std::process::id())),
    ];
    let probes: Vec<Probe> = cases.iter().map(|(p, _)| *p).collect();
    let Probed::Results(results) = probe(&DEFAULT_PROGRAM, &probes) else {
        panic!("the child was killed");
    };
    for ((probe, expected), got) in cases.iter().zip(results) {
        assert_eq!(got, *expected, "{probe:?}");
    }
}

#[test]
fn the_kernel_lets_x32_calls_through_the_rules() {
    // x32 getpid passes the filter (the kernel runs it, or says ENOSYS without x32 support);
    // x32 keyctl is denied by the filter.
    let x32_getpid = (i64::from(nr_of(&X32_ABI, "getpid")), [0; 6]);
    let x32_keyctl = (i64::from(nr_of(&X32_ABI, "keyctl")), [0; 6]);
    let Probed::Results(results) = probe(&DEFAULT_PROGRAM, &[x32_getpid, x32_keyctl]) else {
        panic!("the child was killed");
    };
    assert!(
        results[0] > 0 || results[0] == -i64::from(libc::ENOSYS),
        "{results:?}"
    );
    assert_eq!(results[1], -i64::from(libc::EPERM));
}

#[test]
fn the_kernel_agrees_with_64_bit_comparisons_and_long_jumps() {
    for op in [Op::Lt, Op::Ge, Op::MaskedEq, Op::Ne] {
        let condition = (0, op, 0x1_0000_0000, 0x1_0000_0000);
        let p = profile(
            Action::Allow,
            vec![rule(&["getppid"], Action::Errno(99), &[condition])],
        );
        let program = compile(&p, ARCH).unwrap();
        let probes: Vec<Probe> = EDGES.iter().map(|&v| call("getppid", &[v])).collect();
        let Probed::Results(results) = probe(&program, &probes) else {
            panic!("the child was killed");
        };
        for (arg, got) in EDGES.iter().zip(results) {
            let denied = compiler::matches(&p.rules[0].args[0], *arg, false);
            assert_eq!(got == -99, denied, "{op:?} on {arg:#x}");
        }
    }
    // The long program loads, and routes calls at both ends of the table.
    let mut p = long_profile();
    p.default_action = Action::Errno(98);
    // What the child needs to report and exit.
    p.rules
        .push(rule(&["write", "exit", "exit_group"], Action::Allow, &[]));
    let program = compile(&p, ARCH).unwrap();
    let plan = Plan::new(&p, ARCH).unwrap();
    let probes = [call("getppid", &[0; 6]), call("getppid", &[u64::MAX; 6])];
    let Probed::Results(results) = probe(&program, &probes) else {
        panic!("the child was killed");
    };
    assert_eq!(results.len(), probes.len());
    for ((_, args), got) in probes.iter().zip(results) {
        let decision = plan.decide(ARCH.native.audit_arch, nr("getppid"), args);
        let denied = decision == Action::Errno(98);
        assert_eq!(got == -98, denied, "{args:x?}");
    }
}

mod differential;
