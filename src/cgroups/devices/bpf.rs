//! Device rules on cgroup v2: a `BPF_PROG_TYPE_CGROUP_DEVICE` program, built from a
//! [`Filter`] as runc's devicefilter and crun's ebpf.c build theirs, loaded with
//! `bpf(BPF_PROG_LOAD)` and attached to the container's cgroup with `BPF_PROG_ATTACH`
//! (`BPF_F_ALLOW_MULTI`, so that programs of the cgroups above still apply). The kernel runs
//! it on every open and mknod of a device node by a process of the cgroup; it returns 1 to
//! allow, 0 to refuse (EPERM). The attachment holds the program: the fd is closed after.
//!
//! The program reads `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`:
//! `access_type` is the node's kind (`BPF_DEVCG_DEV_*`) in its low 16 bits and the access
//! asked for (`BPF_DEVCG_ACC_*`, together) in its high 16 bits. Then one block per
//! exception, each jumping to the next unless it matches, and the default at the end.

use super::rules::{ALL_ACCESS, Exception, Filter};
use anyhow::{Context, Result, bail};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// One eBPF instruction, as `struct bpf_insn` lays it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    pub code: u8,
    /// dst_reg in the low nibble, src_reg in the high one.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

// The opcodes used (linux/bpf_common.h, linux/bpf.h).
pub const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
pub const ALU32_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
pub const ALU32_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
pub const ALU32_MOV_K: u8 = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
pub const ALU32_MOV_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
pub const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
pub const JNE_X: u8 = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
pub const JEQ_K: u8 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
pub const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

/// The program deciding as `filter` does.
pub fn program(filter: &Filter) -> Vec<Insn> {
    let mut insns = vec![
        // r2 = the node's kind, r3 = the access asked for, r4 = major, r5 = minor.
        insn(LDX_MEM_W, R2, R1, 0, 0),
        insn(ALU32_AND_K, R2, 0, 0, 0xffff),
        insn(LDX_MEM_W, R3, R1, 0, 0),
        insn(ALU32_RSH_K, R3, 0, 0, 16),
        insn(LDX_MEM_W, R4, R1, 4, 0),
        insn(LDX_MEM_W, R5, R1, 8, 0),
    ];
    // An exception does the opposite of the default.
    let verdict = i32::from(!filter.default_allow);
    for exception in &filter.exceptions {
        insns.extend(block(exception, filter.default_allow, verdict));
    }
    insns.push(insn(ALU32_MOV_K, R0, 0, 0, i32::from(filter.default_allow)));
    insns.push(insn(EXIT, 0, 0, 0, 0));
    insns
}

/// The instructions of one exception: each test jumps past the block's end (to the next
/// block) when it fails, the last two set the verdict and return.
fn block(exception: &Exception, default_allow: bool, verdict: i32) -> Vec<Insn> {
    // Tests with their jump offsets left 0, patched once the block's length is known.
    let mut tests = vec![insn(JNE_K, R2, 0, 0, exception.kind as i32)];
    let access = i32::from(exception.access);
    if default_allow {
        // A denied access: any bit in common denies (as v1's partial match).
        tests.push(insn(ALU32_MOV_X, R1, R3, 0, 0));
        tests.push(insn(ALU32_AND_K, R1, 0, 0, access));
        tests.push(insn(JEQ_K, R1, 0, 0, 0));
    } else if exception.access != ALL_ACCESS {
        // An allowed access: every bit asked for must be granted.
        tests.push(insn(ALU32_MOV_X, R1, R3, 0, 0));
        tests.push(insn(ALU32_AND_K, R1, 0, 0, access));
        tests.push(insn(JNE_X, R1, R3, 0, 0));
    }
    if let Some(major) = exception.major {
        tests.push(insn(JNE_K, R4, 0, 0, major as i32));
    }
    if let Some(minor) = exception.minor {
        tests.push(insn(JNE_K, R5, 0, 0, minor as i32));
    }
    tests.push(insn(ALU32_MOV_K, R0, 0, 0, verdict));
    tests.push(insn(EXIT, 0, 0, 0, 0));
    let len = tests.len();
    for (i, test) in tests.iter_mut().enumerate() {
        if matches!(test.code, JNE_K | JNE_X | JEQ_K) {
            // Relative to the next instruction: to the first one after the block.
            test.off = (len - i - 1) as i16;
        }
    }
    tests
}

const SYS_BPF_PROG_LOAD: libc::c_long = 5;
const SYS_BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// `union bpf_attr` as BPF_PROG_LOAD reads it, up to `expected_attach_type`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `union bpf_attr` as BPF_PROG_ATTACH reads it.
#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// bpf(2), with the attribute's size.
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, initialized #[repr(C)] value laid out as the part of
    // `union bpf_attr` that `cmd` reads; the kernel reads at most `size_of::<T>()` bytes of
    // it (and zero-fills the rest of its own copy). Pointers inside it are the caller's.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Loads the program; on the verifier's refusal, again with its log, to say why.
pub fn load(insns: &[Insn]) -> Result<OwnedFd> {
    let license = c"Apache-2.0";
    let load_with_log = |log: Option<&mut Vec<u8>>| {
        let mut attr = ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
            insn_cnt: insns.len() as u32,
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
            ..ProgLoadAttr::default()
        };
        attr.prog_name[..13].copy_from_slice(b"mc_devices_v2");
        if let Some(log) = log {
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
        }
        // `insns`, `license` and the log outlive the call.
        bpf(SYS_BPF_PROG_LOAD, &mut attr)
    };
    match load_with_log(None) {
        // SAFETY: BPF_PROG_LOAD returned a new fd, owned by nothing else.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
        Err(err) if err.raw_os_error() == Some(libc::EINVAL) => {
            let mut log = vec![0u8; 1 << 16];
            let _ = load_with_log(Some(&mut log));
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]);
            bail!(
                "loading the device BPF program: {err}: {}",
                text.trim().lines().last().unwrap_or("no verifier log")
            )
        }
        Err(err) => Err(err).context("loading the device BPF program"),
    }
}

/// Attaches a loaded program to the cgroup directory `dir`.
pub fn attach(program: &OwnedFd, dir: &Path) -> Result<()> {
    let what = || format!("attaching the device BPF program to {}", dir.display());
    let cgroup = std::fs::File::open(dir).with_context(what)?;
    let mut attr = ProgAttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: program.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
    };
    bpf(SYS_BPF_PROG_ATTACH, &mut attr).with_context(what)?;
    Ok(())
}

/// Builds, loads and attaches the program for `filter` to the cgroup `dir`.
pub fn apply(filter: &Filter, dir: &Path) -> Result<()> {
    let insns = program(filter);
    log::debug!(
        "attaching a device BPF program of {} instructions ({} exceptions) to {}",
        insns.len(),
        filter.exceptions.len(),
        dir.display()
    );
    let fd = load(&insns)?;
    attach(&fd, dir)
}

#[cfg(test)]
pub mod interpreter {
    //! Just enough of an eBPF interpreter to run [`program`](super::program)'s output over
    //! a device context, so that its decisions are checked against the filter's without a
    //! kernel.
    use super::*;

    /// Runs `insns` on `(access_type, major, minor)`; panics on anything the generator
    /// never emits, on a jump out of the program and on falling off its end.
    pub fn run(insns: &[Insn], ctx: [u32; 3]) -> u64 {
        let mut regs = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = insns[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            let imm = i.imm as i64 as u64;
            pc += 1;
            let mut jump = |taken: bool| {
                if taken {
                    pc = (pc as i64 + i64::from(i.off)) as usize;
                    assert!(pc < insns.len(), "jump out of the program");
                }
            };
            match i.code {
                LDX_MEM_W => {
                    assert_eq!(src, 1, "loads only from the context");
                    assert!(i.off >= 0 && i.off % 4 == 0 && i.off < 12);
                    regs[dst] = u64::from(ctx[(i.off / 4) as usize]);
                }
                ALU32_AND_K => regs[dst] = u64::from(regs[dst] as u32 & imm as u32),
                ALU32_RSH_K => regs[dst] = u64::from((regs[dst] as u32) >> (imm as u32)),
                ALU32_MOV_K => regs[dst] = u64::from(imm as u32),
                ALU32_MOV_X => regs[dst] = u64::from(regs[src] as u32),
                JNE_K => jump(regs[dst] != imm),
                JEQ_K => jump(regs[dst] == imm),
                JNE_X => jump(regs[dst] != regs[src]),
                EXIT => return regs[0],
                other => panic!("opcode {other:#x} is not expected"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::rules::{Filter, Kind, MKNOD, READ, WRITE, rule};
    use super::*;
    use oci_spec::runtime::LinuxDeviceType::{A, B, C};

    /// Docker's rules, as the spec builder gives them for `--image`.
    fn docker() -> Filter {
        Filter::new(&crate::spec::devices::docker_rules(false)).unwrap()
    }

    fn decide(insns: &[Insn], kind: Kind, major: u32, minor: u32, access: u8) -> bool {
        let ctx = [(kind as u32) | (u32::from(access) << 16), major, minor];
        match interpreter::run(insns, ctx) {
            0 => false,
            1 => true,
            other => panic!("the program returned {other}"),
        }
    }

    /// Every kind, a spread of numbers around the rules' and every access set.
    fn agree(filter: &Filter) {
        let insns = program(filter);
        let numbers = [
            0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 136, 200, 229, 232, 237, 254, 4095,
        ];
        for kind in [Kind::Char, Kind::Block] {
            for major in numbers {
                for minor in numbers {
                    for access in 1..=7u8 {
                        assert_eq!(
                            decide(&insns, kind, major, minor, access),
                            filter.allows(kind, major, minor, access),
                            "{kind:?} {major}:{minor} access {access}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_program_decides_as_the_rules_do() {
        let filter = docker();
        agree(&filter);
        let insns = program(&filter);
        assert!(!decide(&insns, Kind::Char, 10, 232, READ | WRITE), "kvm");
        assert!(!decide(&insns, Kind::Char, 10, 237, READ), "loop-control");
        assert!(!decide(&insns, Kind::Char, 1, 11, WRITE), "kmsg");
        assert!(!decide(&insns, Kind::Block, 254, 0, READ), "a disk");
        assert!(
            decide(&insns, Kind::Block, 254, 0, MKNOD),
            "mknod, as Docker"
        );
        assert!(decide(&insns, Kind::Char, 1, 3, READ | WRITE), "null");
        assert!(decide(&insns, Kind::Char, 136, 7, READ | WRITE), "a pty");
        agree(&Filter::new(&crate::spec::devices::docker_rules(true)).unwrap());
        // A deny list, partial access, wildcards.
        agree(
            &Filter::new(&[
                rule(false, C, Some(10), None, "w"),
                rule(false, B, None, Some(0), "rm"),
            ])
            .unwrap(),
        );
        agree(
            &Filter::new(&[
                rule(false, A, None, None, "rwm"),
                rule(true, C, Some(10), None, "r"),
                rule(true, C, Some(10), Some(232), "w"),
                rule(true, B, None, Some(0), "rm"),
            ])
            .unwrap(),
        );
        agree(&Filter::new(&[]).unwrap());
    }

    /// The kernel's verifier takes the program (root only).
    #[test]
    fn the_kernel_loads_the_program() {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test loads a BPF program and needs root: run it with sudo"
        );
        load(&program(&docker())).unwrap();
        load(&program(
            &Filter::new(&[rule(false, C, Some(1), None, "w")]).unwrap(),
        ))
        .unwrap();
    }

    /// The program at work (root only): a scratch cgroup on this host's cgroup2 mount (the
    /// whole of /sys/fs/cgroup, or the hybrid layout's /sys/fs/cgroup/unified, which has no
    /// controllers but runs device programs) gets Docker's program; a child moved into it
    /// cannot open a loop-control node (c 10:237) made in a temporary directory, and can
    /// open a null node (c 1:3) made there.
    #[test]
    fn an_attached_program_refuses_devices_to_the_cgroups_processes() {
        use std::fs;
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test attaches a BPF program to a cgroup and needs root: run it with sudo"
        );
        let mount = crate::cgroups::v2::tests::cgroup2_mount();
        // The integration tests' harness checks that no mini-container-* cgroup is left
        // while no test holds this lock: hold it while the scratch cgroup exists.
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(std::env::temp_dir().join("mini-container-tests.lock"))
            .unwrap();
        lock.lock_shared().unwrap();
        let tag = format!("mini-container-devtest-{}", std::process::id());
        let cgroup = mount.join(&tag);
        let nodes = std::env::temp_dir().join(&tag);
        fs::create_dir_all(&nodes).unwrap();
        fs::create_dir(&cgroup).unwrap();
        let result = std::panic::catch_unwind(|| run_in_scratch_cgroup(&cgroup, &nodes));
        let _ = fs::remove_dir_all(&nodes);
        fs::remove_dir(&cgroup).unwrap();
        drop(lock);
        let (loop_control, null) = result.unwrap();
        assert_eq!(loop_control, libc::EPERM, "opening c 10:237");
        assert_eq!(null, 0, "opening c 1:3");
    }

    /// Makes the nodes, forks a child that waits, moves it into `cgroup` with the program
    /// attached, lets it open both nodes and returns their errnos (0: opened).
    fn run_in_scratch_cgroup(cgroup: &Path, nodes: &Path) -> (i32, i32) {
        use nix::sys::stat::{Mode, SFlag, makedev, mknod};
        use std::ffi::CString;
        let loop_control = nodes.join("loop-control");
        let null = nodes.join("null");
        let mode = Mode::from_bits_truncate(0o600);
        mknod(&loop_control, SFlag::S_IFCHR, mode, makedev(10, 237)).unwrap();
        mknod(&null, SFlag::S_IFCHR, mode, makedev(1, 3)).unwrap();
        // Unattached, this process (in no such program's cgroup) opens both.
        assert!(std::fs::File::open(&loop_control).is_ok());
        apply(&docker(), cgroup).unwrap();
        let paths = [
            CString::new(loop_control.as_os_str().as_encoded_bytes()).unwrap(),
            CString::new(null.as_os_str().as_encoded_bytes()).unwrap(),
        ];
        let (go_read, go_write) = nix::unistd::pipe().unwrap();
        let (result_read, result_write) = nix::unistd::pipe().unwrap();
        // SAFETY: the child calls only async-signal-safe functions (read, open, close,
        // write, _exit) on memory prepared before the fork, and never returns.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // SAFETY: as above; the fds and paths are valid in the child.
            unsafe {
                let mut byte = 0u8;
                libc::read(go_read.as_raw_fd(), (&raw mut byte).cast(), 1);
                let mut errnos = [0i32; 2];
                for (errno, path) in errnos.iter_mut().zip(&paths) {
                    let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
                    if fd < 0 {
                        *errno = *libc::__errno_location();
                    } else {
                        libc::close(fd);
                    }
                }
                libc::write(result_write.as_raw_fd(), errnos.as_ptr().cast(), 8);
                libc::_exit(0);
            }
        }
        drop(go_read);
        drop(result_write);
        let moved = crate::cgroups::files::write(&cgroup.join("cgroup.procs"), &pid.to_string());
        // Released either way, so that it exits.
        nix::unistd::write(&go_write, b"x").unwrap();
        let mut bytes = [0u8; 8];
        let read = nix::unistd::read(&result_read, &mut bytes).unwrap();
        nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
        moved.unwrap();
        assert_eq!(read, 8);
        let errno = |i: usize| i32::from_ne_bytes(bytes[i * 4..i * 4 + 4].try_into().unwrap());
        (errno(0), errno(1))
    }
}
