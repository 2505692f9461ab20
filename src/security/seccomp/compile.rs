//! Compiles a resolved profile into a seccomp BPF program for one architecture.
//!
//! The program checks the architecture (a foreign one, or x32 calls on x86_64, kill the
//! process), then finds the call's number in a binary search tree over ranges of numbers that
//! share an outcome, so a call costs about log2(ranges) comparisons. A call with argument
//! conditions jumps to a block that tests them, 64-bit values as two 32-bit halves.
//!
//! Semantics, as runc gives Docker's profiles:
//! - a call's conditional rules are tried in profile order, then its unconditional rule, then
//!   the default action; a rule whose action is the default action is left out;
//! - a rule with two conditions on the same argument matches if any condition holds;
//! - with a default that denies, calls the profile does not know answer ENOSYS, so that
//!   programs fall back from system calls newer than the profile: numbers that are not system
//!   calls of the architecture, or above the highest one the profile names.
//!
//! Shared with build.rs (which precompiles the default profile): std only.

use super::bpf::{Asm, Cmp, Insn, Label, Target};
use super::profile::{Action, ArgCondition, ENOSYS, Op, Resolved};
use super::syscalls::Arch;
use std::collections::{BTreeMap, HashMap};

// Offsets in `struct seccomp_data`; arguments are 64-bit, little-endian.
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;
const OFFSET_ARGS: u32 = 16;

/// The rules of one system call.
#[derive(Debug, Default)]
struct CallRules {
    /// Tried in order; each matches when all its conditions hold.
    conditional: Vec<(Vec<ArgCondition>, Action)>,
    unconditional: Option<Action>,
}

/// What the filter does with each system call number.
#[derive(Debug)]
pub struct Policy {
    default: Action,
    /// For numbers that are no system call the profile knows.
    unknown: Action,
    calls: BTreeMap<u32, CallRules>,
    /// The highest number the profile names, if any.
    highest_named: Option<u32>,
    table_len: u32,
    /// Names the architecture has no system call for, sorted.
    unknown_names: Vec<String>,
}

impl Policy {
    /// Maps the profile's rules onto `arch`'s numbers. Names `arch` does not have (the
    /// profile may be for several architectures) are skipped, and listed.
    pub fn new(profile: &Resolved, arch: &Arch) -> Result<Policy, String> {
        let numbers: HashMap<&str, u32> = arch
            .table
            .iter()
            .enumerate()
            .filter(|(_, name)| !name.is_empty())
            .map(|(nr, name)| (*name, nr as u32))
            .collect();
        let default = profile.default_action;
        let mut calls: BTreeMap<u32, CallRules> = BTreeMap::new();
        let mut highest_named = None;
        let mut unknown_names = Vec::new();
        for rule in &profile.rules {
            if let Some(arg) = rule.args.iter().find(|a| a.index > 5) {
                return Err(format!("argument index {} out of range 0-5", arg.index));
            }
            for name in &rule.names {
                let Some(&nr) = numbers.get(name.as_ref()) else {
                    unknown_names.push(name.to_string());
                    continue;
                };
                highest_named = highest_named.max(Some(nr));
                if rule.action == default {
                    continue;
                }
                let call = calls.entry(nr).or_default();
                if rule.args.is_empty() {
                    match call.unconditional {
                        Some(action) if action != rule.action => {
                            return Err(format!(
                                "conflicting actions for {name}: {action} and {}",
                                rule.action
                            ));
                        }
                        _ => call.unconditional = Some(rule.action),
                    }
                } else if repeats_an_argument(&rule.args) {
                    for arg in &rule.args {
                        call.conditional.push((vec![*arg], rule.action));
                    }
                } else {
                    call.conditional.push((rule.args.clone(), rule.action));
                }
            }
        }
        Ok(Policy {
            default,
            unknown: if default.lets_calls_run() {
                default
            } else {
                Action::Errno(ENOSYS)
            },
            calls,
            highest_named,
            table_len: arch.table.len() as u32,
            unknown_names: {
                unknown_names.sort_unstable();
                unknown_names.dedup();
                unknown_names
            },
        })
    }

    /// What the filter does with call `nr` when its arguments are unknown: an action, or the
    /// index of its rules when they depend on arguments.
    fn outcome(&self, nr: u32, arch: &Arch) -> Outcome {
        if let Some(call) = self.calls.get(&nr) {
            let fallback = call.unconditional.unwrap_or(self.default);
            return match call.conditional.is_empty() {
                true => Outcome::Return(fallback),
                false => Outcome::Check(nr),
            };
        }
        let is_call = arch
            .table
            .get(nr as usize)
            .is_some_and(|name| !name.is_empty());
        match is_call && self.highest_named.is_some_and(|highest| nr <= highest) {
            true => Outcome::Return(self.default),
            false => Outcome::Return(self.unknown),
        }
    }

    /// The reference semantics the program implements, for tests: the action for a call
    /// made from a native process.
    #[cfg(test)]
    pub fn decide(&self, nr: u32, args: &[u64; 6], arch: &Arch) -> Action {
        if arch.foreign_abi_bit.is_some_and(|bit| nr & bit != 0) {
            return Action::KillProcess;
        }
        match self.outcome(nr, arch) {
            Outcome::Return(action) => action,
            Outcome::Check(nr) => {
                let call = &self.calls[&nr];
                call.conditional
                    .iter()
                    .find(|(conditions, _)| {
                        conditions
                            .iter()
                            .all(|c| c.matches(args[usize::from(c.index)]))
                    })
                    .map(|(_, action)| *action)
                    .or(call.unconditional)
                    .unwrap_or(self.default)
            }
        }
    }
}

fn repeats_an_argument(args: &[ArgCondition]) -> bool {
    args.iter()
        .enumerate()
        .any(|(i, a)| args[..i].iter().any(|b| b.index == a.index))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Return(Action),
    /// Test the arguments of this call.
    Check(u32),
}

/// A compiled filter.
#[derive(Debug)]
pub struct Program {
    pub insns: Vec<Insn>,
    /// Names in the profile that the architecture has no system call for, sorted.
    pub unknown_names: Vec<String>,
}

/// Compiles `profile` for `arch`.
pub fn compile(profile: &Resolved, arch: &Arch) -> Result<Program, String> {
    let mut policy = Policy::new(profile, arch)?;
    let insns = Emitter::new(&policy).program(arch)?;
    Ok(Program {
        insns,
        unknown_names: std::mem::take(&mut policy.unknown_names),
    })
}

/// Writes the program: architecture checks, the search tree, argument blocks, returns.
struct Emitter<'a> {
    policy: &'a Policy,
    asm: Asm,
    returns: BTreeMap<Action, Label>,
    checks: BTreeMap<u32, Label>,
}

impl<'a> Emitter<'a> {
    fn new(policy: &'a Policy) -> Emitter<'a> {
        Emitter {
            policy,
            asm: Asm::new(),
            returns: BTreeMap::new(),
            checks: BTreeMap::new(),
        }
    }

    fn program(mut self, arch: &Arch) -> Result<Vec<Insn>, String> {
        let kill = self.return_label(Action::KillProcess);
        self.asm.load(OFFSET_ARCH);
        self.asm
            .jump(Cmp::Eq, arch.audit_arch, Target::Next, Target::Label(kill));
        self.asm.load(OFFSET_NR);
        if let Some(bit) = arch.foreign_abi_bit {
            self.asm
                .jump(Cmp::Set, bit, Target::Label(kill), Target::Next);
        }
        let ranges = self.ranges(arch);
        self.tree(&ranges);
        let checks: Vec<(u32, Label)> = self.checks.iter().map(|(n, l)| (*n, *l)).collect();
        for (nr, label) in checks {
            self.asm.place(label);
            self.check_block(&self.policy.calls[&nr]);
        }
        for (action, label) in std::mem::take(&mut self.returns) {
            self.asm.place(label);
            self.asm.ret(action.ret());
        }
        self.asm.finish()
    }

    /// Numbers grouped into ranges of one outcome: (first number, outcome), in order; the
    /// last range runs to u32::MAX.
    fn ranges(&self, arch: &Arch) -> Vec<(u32, Outcome)> {
        let mut ranges: Vec<(u32, Outcome)> = Vec::new();
        let mut add = |nr: u32, outcome: Outcome| {
            if ranges.last().is_none_or(|(_, last)| *last != outcome) {
                ranges.push((nr, outcome));
            }
        };
        for nr in 0..self.policy.table_len {
            add(nr, self.policy.outcome(nr, arch));
        }
        add(self.policy.table_len, Outcome::Return(self.policy.unknown));
        ranges
    }

    /// A balanced binary search over `ranges` (at least two), on the number in A.
    fn tree(&mut self, ranges: &[(u32, Outcome)]) {
        if let [(_, only)] = ranges {
            let label = self.outcome_label(*only);
            self.asm.goto(label);
            return;
        }
        let (left, right) = ranges.split_at(ranges.len() / 2);
        let right_label = match right {
            [(_, only)] => self.outcome_label(*only),
            _ => self.asm.label(),
        };
        let left_target = match left {
            [(_, only)] => Target::Label(self.outcome_label(*only)),
            _ => Target::Next,
        };
        self.asm
            .jump(Cmp::Ge, right[0].0, Target::Label(right_label), left_target);
        if left.len() > 1 {
            self.tree(left);
        }
        if right.len() > 1 {
            self.asm.place(right_label);
            self.tree(right);
        }
    }

    /// Tests a call's conditional rules in order, then falls back.
    fn check_block(&mut self, call: &CallRules) {
        for (conditions, action) in &call.conditional {
            let next_rule = self.asm.label();
            let matched = self.return_label(*action);
            for (i, condition) in conditions.iter().enumerate() {
                let pass = (i + 1 == conditions.len()).then_some(matched);
                self.condition(condition, pass, next_rule);
            }
            self.asm.place(next_rule);
        }
        let fallback = self.return_label(call.unconditional.unwrap_or(self.policy.default));
        self.asm.goto(fallback);
    }

    /// Goes to `fail` unless the condition holds; then to `pass`, or on when that is None.
    fn condition(&mut self, c: &ArgCondition, pass: Option<Label>, fail: Label) {
        let end = pass.unwrap_or_else(|| self.asm.label());
        let (p, f) = (Target::Label(end), Target::Label(fail));
        let low = OFFSET_ARGS + 8 * u32::from(c.index);
        let high = low + 4;
        let (v_high, v_low) = halves(c.value);
        let asm = &mut self.asm;
        match c.op {
            Op::Eq => {
                asm.load(high);
                asm.jump(Cmp::Eq, v_high, Target::Next, f);
                asm.load(low);
                asm.jump(Cmp::Eq, v_low, p, f);
            }
            Op::Ne => {
                asm.load(high);
                asm.jump(Cmp::Eq, v_high, Target::Next, p);
                asm.load(low);
                asm.jump(Cmp::Eq, v_low, f, p);
            }
            Op::MaskedEq => {
                let (d_high, d_low) = halves(c.value_two);
                // A mask without high bits (clone's namespace flags) needs no high check.
                if v_high != 0 || d_high != 0 {
                    asm.load(high);
                    asm.and(v_high);
                    asm.jump(Cmp::Eq, d_high, Target::Next, f);
                }
                asm.load(low);
                asm.and(v_low);
                asm.jump(Cmp::Eq, d_low, p, f);
            }
            Op::Gt | Op::Ge => {
                asm.load(high);
                asm.jump(Cmp::Gt, v_high, p, Target::Next);
                asm.jump(Cmp::Eq, v_high, Target::Next, f);
                asm.load(low);
                let cmp = if c.op == Op::Gt { Cmp::Gt } else { Cmp::Ge };
                asm.jump(cmp, v_low, p, f);
            }
            Op::Lt | Op::Le => {
                asm.load(high);
                asm.jump(Cmp::Gt, v_high, f, Target::Next);
                asm.jump(Cmp::Eq, v_high, Target::Next, p);
                asm.load(low);
                // Lt fails when low >= v, Le when low > v.
                let cmp = if c.op == Op::Lt { Cmp::Ge } else { Cmp::Gt };
                asm.jump(cmp, v_low, f, p);
            }
        }
        if pass.is_none() {
            self.asm.place(end);
        }
    }

    fn outcome_label(&mut self, outcome: Outcome) -> Label {
        match outcome {
            Outcome::Return(action) => self.return_label(action),
            Outcome::Check(nr) => match self.checks.get(&nr) {
                Some(label) => *label,
                None => {
                    let label = self.asm.label();
                    self.checks.insert(nr, label);
                    label
                }
            },
        }
    }

    fn return_label(&mut self, action: Action) -> Label {
        match self.returns.get(&action) {
            Some(label) => *label,
            None => {
                let label = self.asm.label();
                self.returns.insert(action, label);
                label
            }
        }
    }
}

/// (high, low) 32-bit halves of a 64-bit value.
fn halves(value: u64) -> (u32, u32) {
    ((value >> 32) as u32, value as u32)
}
