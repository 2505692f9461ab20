//! Classic BPF for seccomp: the instruction format the kernel takes (`struct sock_filter`) and
//! a small assembler with labels. Conditional jumps only reach 255 instructions ahead, so the
//! assembler turns a branch whose target is further away into a jump over an unconditional
//! `ja` (32-bit offset), repeating the layout until every offset fits.
//!
//! Shared with build.rs (which precompiles the default profile): std only.

/// One instruction, laid out as the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// The longest program the kernel accepts (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;

// Opcodes (linux/bpf_common.h), only those seccomp filters use here.
const BPF_LD_W_ABS: u16 = 0x20; // BPF_LD (0) | BPF_W (0) | BPF_ABS (0x20)
const BPF_ALU_AND_K: u16 = 0x54; // BPF_ALU (4) | BPF_AND (0x50) | BPF_K (0)
const BPF_JMP_JA: u16 = 0x05; // BPF_JMP (5) | BPF_JA (0)
const BPF_RET_K: u16 = 0x06; // BPF_RET (6) | BPF_K (0)

/// A conditional jump's comparison of the accumulator with a constant (all unsigned).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `A == k`
    Eq,
    /// `A > k`
    Gt,
    /// `A >= k`
    Ge,
}

impl Cmp {
    /// BPF_JMP | BPF_JEQ/JGT/JGE/JSET | BPF_K.
    fn code(self) -> u16 {
        0x05 | match self {
            Cmp::Eq => 0x10,
            Cmp::Gt => 0x20,
            Cmp::Ge => 0x30,
        }
    }
}

/// A place in the program, fixed by [`Asm::place`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label(usize);

/// Where a conditional jump goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The instruction after the jump.
    Next,
    Label(Label),
}

#[derive(Debug, Clone, Copy)]
enum Item {
    Load(u32),
    And(u32),
    Jump {
        cmp: Cmp,
        k: u32,
        jt: Target,
        jf: Target,
    },
    Ja(Label),
    Ret(u32),
    Place(Label),
}

/// A program under construction: instructions and labels, assembled by [`Asm::finish`].
#[derive(Debug, Default)]
pub struct Asm {
    items: Vec<Item>,
    labels: usize,
}

impl Asm {
    pub fn new() -> Asm {
        Asm::default()
    }

    /// A new label, to be placed once.
    pub fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    /// Fixes `label` at the next instruction.
    pub fn place(&mut self, label: Label) {
        self.items.push(Item::Place(label));
    }

    /// `A = *(u32 *)(data + offset)`.
    pub fn load(&mut self, offset: u32) {
        self.items.push(Item::Load(offset));
    }

    /// `A &= k`.
    pub fn and(&mut self, k: u32) {
        self.items.push(Item::And(k));
    }

    /// `if (A cmp k) goto jt else goto jf`.
    pub fn jump(&mut self, cmp: Cmp, k: u32, jt: Target, jf: Target) {
        self.items.push(Item::Jump { cmp, k, jt, jf });
    }

    /// `goto label`.
    pub fn goto(&mut self, label: Label) {
        self.items.push(Item::Ja(label));
    }

    /// `return k`.
    pub fn ret(&mut self, k: u32) {
        self.items.push(Item::Ret(k));
    }

    /// Resolves labels and returns the program. Fails on a label never placed, a backward
    /// jump, or a program longer than the kernel takes.
    pub fn finish(self) -> Result<Vec<Insn>, String> {
        // (far_true, far_false) for each item: which branches go through an extra `ja`.
        let mut far = vec![(false, false); self.items.len()];
        loop {
            let (starts, labels) = self.layout(&far)?;
            let mut changed = false;
            for (i, item) in self.items.iter().enumerate() {
                if let Item::Jump { jt, jf, .. } = *item {
                    let next = starts[i] + self.size(i, &far);
                    let reach = |target| self.position(target, next, &labels);
                    let (offset_t, offset_f) =
                        branch_offsets(starts[i], far[i], reach(jt)?, reach(jf)?)?;
                    if offset_t > 255 && !far[i].0 {
                        far[i].0 = true;
                        changed = true;
                    }
                    if offset_f > 255 && !far[i].1 {
                        far[i].1 = true;
                        changed = true;
                    }
                }
            }
            if !changed {
                return self.encode(&far, &starts, &labels);
            }
        }
    }

    /// Instructions taken by item `i`: a jump with far branches carries its `ja`s.
    fn size(&self, i: usize, far: &[(bool, bool)]) -> usize {
        match self.items[i] {
            Item::Place(_) => 0,
            Item::Jump { .. } => 1 + usize::from(far[i].0) + usize::from(far[i].1),
            _ => 1,
        }
    }

    /// The start of each item and the position of each label.
    fn layout(&self, far: &[(bool, bool)]) -> Result<(Vec<usize>, Vec<Option<usize>>), String> {
        let mut starts = Vec::with_capacity(self.items.len());
        let mut labels = vec![None; self.labels];
        let mut pc = 0;
        for (i, item) in self.items.iter().enumerate() {
            starts.push(pc);
            if let Item::Place(Label(l)) = item
                && labels[*l].replace(pc).is_some()
            {
                return Err(format!("BPF label {l} placed twice"));
            }
            pc += self.size(i, far);
        }
        if pc > MAX_INSNS {
            return Err(format!(
                "the filter needs {pc} BPF instructions; the kernel takes at most {MAX_INSNS}"
            ));
        }
        Ok((starts, labels))
    }

    fn position(
        &self,
        target: Target,
        next: usize,
        labels: &[Option<usize>],
    ) -> Result<usize, String> {
        match target {
            Target::Next => Ok(next),
            Target::Label(Label(l)) => {
                labels[l].ok_or_else(|| format!("BPF label {l} never placed"))
            }
        }
    }

    fn encode(
        &self,
        far: &[(bool, bool)],
        starts: &[usize],
        labels: &[Option<usize>],
    ) -> Result<Vec<Insn>, String> {
        let mut program = Vec::new();
        for (i, item) in self.items.iter().enumerate() {
            let pc = starts[i];
            debug_assert_eq!(pc, program.len());
            match *item {
                Item::Load(offset) => program.push(stmt(BPF_LD_W_ABS, offset)),
                Item::And(k) => program.push(stmt(BPF_ALU_AND_K, k)),
                Item::Ret(k) => program.push(stmt(BPF_RET_K, k)),
                Item::Place(_) => {}
                Item::Ja(label) => {
                    let to = self.position(Target::Label(label), pc + 1, labels)?;
                    program.push(stmt(BPF_JMP_JA, forward(pc, to)?));
                }
                Item::Jump { cmp, k, jt, jf } => {
                    let next = pc + self.size(i, far);
                    let to_t = self.position(jt, next, labels)?;
                    let to_f = self.position(jf, next, labels)?;
                    let (offset_t, offset_f) = branch_offsets(pc, far[i], to_t, to_f)?;
                    let short =
                        |offset: usize| u8::try_from(offset).map_err(|_| "BPF jump too long");
                    program.push(Insn {
                        code: cmp.code(),
                        jt: short(offset_t)?,
                        jf: short(offset_f)?,
                        k,
                    });
                    for (is_far, to) in [(far[i].0, to_t), (far[i].1, to_f)] {
                        if is_far {
                            let at = program.len();
                            program.push(stmt(BPF_JMP_JA, forward(at, to)?));
                        }
                    }
                }
            }
        }
        Ok(program)
    }
}

/// The jt and jf offsets (counted from the next instruction) of a conditional jump at `pc`
/// whose far branches go through the `ja`s that follow it, the true branch's first.
fn branch_offsets(
    pc: usize,
    far: (bool, bool),
    to_t: usize,
    to_f: usize,
) -> Result<(usize, usize), String> {
    let offset = |to: usize| {
        to.checked_sub(pc + 1)
            .ok_or_else(|| format!("backward BPF jump at {pc}"))
    };
    Ok(match far {
        (false, false) => (offset(to_t)?, offset(to_f)?),
        (true, false) => (0, offset(to_f)?),
        (false, true) => (offset(to_t)?, 0),
        (true, true) => (0, 1),
    })
}

/// The offset of a `ja` at `pc` to `to`.
fn forward(pc: usize, to: usize) -> Result<u32, String> {
    to.checked_sub(pc + 1)
        .and_then(|offset| u32::try_from(offset).ok())
        .ok_or_else(|| format!("backward BPF jump at {pc}"))
}

fn stmt(code: u16, k: u32) -> Insn {
    Insn {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}
