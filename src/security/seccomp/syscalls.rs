//! The machines a filter can be compiled for and the ABIs each runs, as Docker's `archMap`
//! pairs them: x86_64 with i386 and x32, aarch64 with arm. For every ABI: how the kernel names
//! it in `seccomp_data.arch`, how libseccomp and Docker's profiles name it, and its system
//! call table, generated from the kernel's (see `tables`).
//!
//! Shared with build.rs: std only.

use super::tables;

/// One system call ABI.
#[derive(Debug, PartialEq, Eq)]
pub struct Abi {
    /// libseccomp's name, as in the OCI spec and Docker's `architectures`.
    pub scmp_name: &'static str,
    /// AUDIT_ARCH_* value, as found in `seccomp_data.arch` (x32 shares x86_64's).
    pub audit_arch: u32,
    /// (number, name) by number; x32 numbers carry the x32 bit.
    pub table: &'static [(u32, &'static str)],
    /// Arguments are 32-bit: conditions compare the low word only, as libseccomp's do.
    pub args_32bit: bool,
    /// Socket and IPC calls also go through socketcall(2) and ipc(2) (i386).
    pub multiplexes: bool,
}

/// The bit set in the numbers of x32 calls (__X32_SYSCALL_BIT).
pub const X32_BIT: u32 = 0x4000_0000;

// AUDIT_ARCH_* = EM_* | __AUDIT_ARCH_64BIT (0x8000_0000) | __AUDIT_ARCH_LE (0x4000_0000).
pub const X86_64_ABI: Abi = Abi {
    scmp_name: "SCMP_ARCH_X86_64",
    audit_arch: 0xc000_003e,
    table: tables::X86_64,
    args_32bit: false,
    multiplexes: false,
};
pub const X32_ABI: Abi = Abi {
    scmp_name: "SCMP_ARCH_X32",
    audit_arch: 0xc000_003e,
    table: tables::X32,
    args_32bit: true,
    multiplexes: false,
};
pub const I386_ABI: Abi = Abi {
    scmp_name: "SCMP_ARCH_X86",
    audit_arch: 0x4000_0003,
    table: tables::I386,
    args_32bit: true,
    multiplexes: true,
};
pub const AARCH64_ABI: Abi = Abi {
    scmp_name: "SCMP_ARCH_AARCH64",
    audit_arch: 0xc000_00b7,
    table: tables::AARCH64,
    args_32bit: false,
    multiplexes: false,
};
pub const ARM_ABI: Abi = Abi {
    scmp_name: "SCMP_ARCH_ARM",
    audit_arch: 0x4000_0028,
    table: tables::ARM,
    args_32bit: true,
    multiplexes: false,
};

/// A machine filters can be compiled for.
#[derive(Debug, PartialEq, Eq)]
pub struct Arch {
    /// Go's name (GOARCH, as libseccomp spells it), as in Docker's `includes.arches`.
    pub go_name: &'static str,
    /// The machine's own ABI: always filtered, as libseccomp always filters it.
    pub native: &'static Abi,
    /// The other ABIs it runs, filtered when the profile lists them.
    pub others: &'static [&'static Abi],
}

pub const X86_64: Arch = Arch {
    go_name: "amd64",
    native: &X86_64_ABI,
    others: &[&X32_ABI, &I386_ABI],
};

pub const AARCH64: Arch = Arch {
    go_name: "arm64",
    native: &AARCH64_ABI,
    others: &[&ARM_ABI],
};

impl Arch {
    /// The architecture of a Rust target (`target_arch`), if filters can be compiled for it.
    pub fn for_target(target_arch: &str) -> Option<&'static Arch> {
        match target_arch {
            "x86_64" => Some(&X86_64),
            "aarch64" => Some(&AARCH64),
            _ => None,
        }
    }

    /// The native ABI and the others, in that order.
    pub fn abis(&self) -> impl Iterator<Item = &'static Abi> + '_ {
        std::iter::once(self.native).chain(self.others.iter().copied())
    }
}

impl Abi {
    /// The number of system call `name`, if this ABI has it (a linear search).
    #[cfg(test)]
    pub fn number(&self, name: &str) -> Option<u32> {
        self.table
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(nr, _)| *nr)
    }
}
