//! Compiles Docker's default seccomp profile, for Docker's default capabilities, to a BPF
//! program when mini-container is built, so that starting a container only loads it. The
//! profile and the compiler are the binary's own modules, included with `#[path]`, so the
//! program cannot drift from what the binary would compile (a unit test checks that too).

// The shared modules have parts only the binary uses.
#![allow(dead_code)]

#[path = "src/security/seccomp/bpf.rs"]
mod bpf;
#[path = "src/security/seccomp/compile.rs"]
mod compile;
#[path = "src/security/seccomp/default_profile.rs"]
mod default_profile;
#[path = "src/security/seccomp/profile.rs"]
mod profile;
#[path = "src/security/seccomp/syscalls.rs"]
mod syscalls;
#[path = "src/security/seccomp/tables.rs"]
mod tables;

use std::fmt::Write;
use std::path::PathBuf;

const SHARED: [&str; 7] = [
    "bpf.rs",
    "compile.rs",
    "default_profile.rs",
    "default_profile_data.rs",
    "profile.rs",
    "syscalls.rs",
    "tables.rs",
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    for file in SHARED {
        println!("cargo:rerun-if-changed=src/security/seccomp/{file}");
    }
    let target_arch = std::env::var("CARGO_CFG_TARGET_ARCH").expect("CARGO_CFG_TARGET_ARCH");
    let program = match syscalls::Arch::for_target(&target_arch) {
        Some(arch) => {
            let resolved = default_profile::docker_default().resolve(&profile::Target {
                capabilities: &default_profile::DEFAULT_CAPABILITIES,
                arch: arch.go_name,
                scmp_arch: arch.native.scmp_name,
                kernel: default_profile::MIN_KERNEL,
            });
            compile::compile(&resolved, arch)
                .unwrap_or_else(|err| panic!("compiling the default seccomp profile: {err}"))
                .insns
        }
        // No filters there: the binary says so when a container asks for one.
        None => Vec::new(),
    };
    let mut code = format!(
        "/// Docker's default profile for Docker's default capabilities, compiled by build.rs.\n\
         static DEFAULT_PROGRAM: [Insn; {}] = [\n",
        program.len()
    );
    for insn in &program {
        let bpf::Insn {
            code: op,
            jt,
            jf,
            k,
        } = insn;
        writeln!(
            code,
            "    Insn {{ code: {op:#06x}, jt: {jt}, jf: {jf}, k: {k:#010x} }},"
        )
        .unwrap();
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(out.join("seccomp_default.rs"), code).expect("writing seccomp_default.rs");
}
