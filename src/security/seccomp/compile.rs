//! Compiles a resolved profile into a seccomp BPF program for one machine and the ABIs it
//! runs, with the semantics runc gives Docker's profiles (libseccomp's filter behind runc's
//! ENOSYS stub).
//!
//! The program checks `seccomp_data.arch` and jumps to one search tree per architecture
//! value: x86_64 and x32 share one (x32 numbers carry bit 30), i386, aarch64 and arm have
//! their own. A tree is a balanced binary search over ranges of numbers that share an outcome,
//! so a call costs about log2(ranges) comparisons; a call with argument conditions jumps to a
//! block that tests them, 64-bit values as two 32-bit halves (the low half only on 32-bit
//! ABIs, as libseccomp compares them). An architecture the profile does not list is killed
//! (libseccomp's default bad-architecture action, SCMP_ACT_KILL).
//!
//! Semantics:
//! - a call with an unconditional rule takes it; otherwise its conditional rules are tried in
//!   profile order, then the default action; a rule whose action is the default action is left
//!   out (as runc leaves it out), and so cannot shadow the call's other rules;
//! - a rule with two conditions on the same argument matches if any condition holds (runc
//!   splits it into one rule per condition);
//! - on i386, a rule for a socket or System V IPC call also applies to socketcall(2) or
//!   ipc(2) with that call's number in argument 0 (libseccomp's multiplexing), its own
//!   condition on argument 0 dropped: the multiplexed arguments are in memory;
//! - with a default that denies (not ALLOW, LOG or TRACE, nor ERRNO(ENOSYS) already), numbers
//!   above the highest one the profile names for an ABI answer ENOSYS, so that programs fall
//!   back from system calls newer than the profile (runc's stub); other unnamed numbers get
//!   the default action.
//!
//! Shared with build.rs (which precompiles the default profile): std only.

use super::bpf::{Asm, Cmp, Insn, Label, Target};
use super::profile::{Action, ArgCondition, ENOSYS, Op, Resolved};
use super::syscalls::{Abi, Arch, X32_ABI, X32_BIT};
use std::collections::{BTreeMap, BTreeSet, HashMap};

// Offsets in `struct seccomp_data`; arguments are 64-bit, little-endian.
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;
const OFFSET_ARGS: u32 = 16;

/// What libseccomp does with an architecture the filter does not cover.
pub const BAD_ARCH: Action = Action::KillThread;

/// The rules of one system call.
#[derive(Debug, Default)]
struct CallRules {
    /// Tried in order; each matches when all its conditions hold.
    conditional: Vec<(Vec<ArgCondition>, Action)>,
    unconditional: Option<Action>,
}

/// What the filter does with each system call number of one ABI.
#[derive(Debug)]
pub struct Policy {
    abi: &'static Abi,
    default: Action,
    calls: BTreeMap<u32, CallRules>,
    /// Numbers above this answer ENOSYS (runc's stub), when the default denies.
    enosys_above: Option<u32>,
    /// Names the ABI has no system call for, sorted.
    unknown_names: Vec<String>,
}

impl Policy {
    /// Maps the profile's rules onto `abi`'s numbers. Names `abi` does not have (the profile
    /// may be for several architectures) are skipped, and listed.
    pub fn new(profile: &Resolved, abi: &'static Abi) -> Result<Policy, String> {
        let numbers: HashMap<&str, u32> = abi.table.iter().map(|(nr, name)| (*name, *nr)).collect();
        let default = profile.default_action;
        let mut calls: BTreeMap<u32, CallRules> = BTreeMap::new();
        let mut highest_named = None;
        let mut unknown_names = Vec::new();
        for rule in &profile.rules {
            if let Some(arg) = rule.args.iter().find(|a| a.index > 5) {
                return Err(format!("argument index {} out of range 0-5", arg.index));
            }
            for name in &rule.names {
                let muxed = match abi.multiplexes {
                    true => MULTIPLEXED.iter().find(|(n, _, _)| n == name),
                    false => None,
                };
                let direct = numbers.get(name.as_ref()).copied();
                if direct.is_none() && muxed.is_none() {
                    unknown_names.push(name.to_string());
                    continue;
                }
                // runc takes the highest number libseccomp resolves the name to, which is
                // the multiplexer for multiplexed calls.
                let named = muxed.map(|(_, mux, _)| numbers[mux]).or(direct);
                highest_named = highest_named.max(named);
                if rule.action == default {
                    continue;
                }
                if let Some((_, mux, call)) = muxed {
                    // libseccomp also filters the call through its multiplexer: the rule,
                    // with its condition on argument 0 replaced by the call's number.
                    let rules = calls.entry(numbers[mux]).or_default();
                    let via = |args: &[ArgCondition]| -> Vec<ArgCondition> {
                        let mut args: Vec<ArgCondition> =
                            args.iter().filter(|a| a.index != 0).copied().collect();
                        args.insert(
                            0,
                            ArgCondition {
                                index: 0,
                                op: Op::Eq,
                                value: *call,
                                value_two: 0,
                            },
                        );
                        args
                    };
                    match repeats_an_argument(&rule.args) {
                        true => rules
                            .conditional
                            .extend(rule.args.iter().map(|arg| (via(&[*arg]), rule.action))),
                        false => rules.conditional.push((via(&rule.args), rule.action)),
                    }
                }
                let Some(nr) = direct else {
                    continue;
                };
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
        let stub = !default.lets_calls_run() && default != Action::Errno(ENOSYS);
        unknown_names.sort_unstable();
        unknown_names.dedup();
        Ok(Policy {
            abi,
            default,
            calls,
            enosys_above: highest_named.filter(|_| stub),
            unknown_names,
        })
    }

    /// What the filter does with call `nr` of this ABI when its arguments are unknown: an
    /// action, or its rules when they depend on arguments.
    fn outcome(&self, nr: u32) -> Outcome {
        if let Some(call) = self.calls.get(&nr) {
            return match (call.unconditional, call.conditional.is_empty()) {
                (Some(action), _) => Outcome::Return(action),
                (None, true) => Outcome::Return(self.default),
                (None, false) => Outcome::Check(self.abi.scmp_name, nr),
            };
        }
        match self.enosys_above {
            Some(highest) if nr > highest => Outcome::Return(Action::Errno(ENOSYS)),
            _ => Outcome::Return(self.default),
        }
    }

    /// The reference semantics of call `nr` with `args`, for tests.
    #[cfg(test)]
    fn decide(&self, nr: u32, args: &[u64; 6]) -> Action {
        match self.outcome(nr) {
            Outcome::Return(action) => action,
            Outcome::Check(_, nr) => {
                let call = &self.calls[&nr];
                call.conditional
                    .iter()
                    .find(|(conditions, _)| {
                        conditions.iter().all(|c| {
                            let arg = args[usize::from(c.index)];
                            matches(c, arg, self.abi.args_32bit)
                        })
                    })
                    .map(|(_, action)| *action)
                    .unwrap_or(self.default)
            }
        }
    }
}

/// Whether `arg` satisfies the condition; on a 32-bit ABI both sides are cut to 32 bits.
#[cfg(test)]
pub fn matches(c: &ArgCondition, arg: u64, args_32bit: bool) -> bool {
    let cut = |v: u64| if args_32bit { v & 0xffff_ffff } else { v };
    let (arg, value, value_two) = (cut(arg), cut(c.value), cut(c.value_two));
    match c.op {
        Op::Eq => arg == value,
        Op::Ne => arg != value,
        Op::Lt => arg < value,
        Op::Le => arg <= value,
        Op::Gt => arg > value,
        Op::Ge => arg >= value,
        Op::MaskedEq => arg & value == value_two,
    }
}

/// The calls libseccomp also filters through i386's socketcall(2) and ipc(2): name,
/// multiplexer, and the call's number there (SYS_* of linux/net.h, the IPC call numbers).
const MULTIPLEXED: [(&str, &str, u64); 32] = [
    ("socket", "socketcall", 1),
    ("bind", "socketcall", 2),
    ("connect", "socketcall", 3),
    ("listen", "socketcall", 4),
    ("accept", "socketcall", 5),
    ("getsockname", "socketcall", 6),
    ("getpeername", "socketcall", 7),
    ("socketpair", "socketcall", 8),
    ("send", "socketcall", 9),
    ("recv", "socketcall", 10),
    ("sendto", "socketcall", 11),
    ("recvfrom", "socketcall", 12),
    ("shutdown", "socketcall", 13),
    ("setsockopt", "socketcall", 14),
    ("getsockopt", "socketcall", 15),
    ("sendmsg", "socketcall", 16),
    ("recvmsg", "socketcall", 17),
    ("accept4", "socketcall", 18),
    ("recvmmsg", "socketcall", 19),
    ("sendmmsg", "socketcall", 20),
    ("semop", "ipc", 1),
    ("semget", "ipc", 2),
    ("semctl", "ipc", 3),
    ("semtimedop", "ipc", 4),
    ("msgsnd", "ipc", 11),
    ("msgrcv", "ipc", 12),
    ("msgget", "ipc", 13),
    ("msgctl", "ipc", 14),
    ("shmat", "ipc", 21),
    ("shmdt", "ipc", 22),
    ("shmget", "ipc", 23),
    ("shmctl", "ipc", 24),
];

fn repeats_an_argument(args: &[ArgCondition]) -> bool {
    args.iter()
        .enumerate()
        .any(|(i, a)| args[..i].iter().any(|b| b.index == a.index))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Return(Action),
    /// Test the arguments of this call of this ABI (by libseccomp name).
    Check(&'static str, u32),
}

/// The ABIs behind one `seccomp_data.arch` value.
#[derive(Debug)]
pub struct Family {
    pub audit_arch: u32,
    main: Policy,
    /// x32, behind x86_64's value, when the profile lists it.
    x32: Option<Policy>,
    /// x86_64 without x32: numbers from X32_BIT up are a foreign ABI.
    rejects_x32: bool,
}

impl Family {
    /// What the filter does with call `nr` when its arguments are unknown. On x86_64, numbers
    /// with the x32 bit go to x32 (or are killed, the skip value -1 excepted, as libseccomp
    /// does without x32); bit 31 alone is past every table.
    fn outcome(&self, nr: u32) -> Outcome {
        if nr & X32_BIT != 0 {
            if let Some(x32) = &self.x32 {
                return x32.outcome(nr);
            }
            if self.rejects_x32 {
                return match nr {
                    u32::MAX => Outcome::Return(self.main.default),
                    _ => Outcome::Return(BAD_ARCH),
                };
            }
        } else if nr >= X32_BIT && self.main.enosys_above.is_none() {
            // Without runc's stub, libseccomp decides: the merged x86_64/x32 table gives
            // the default, x86_64 alone kills.
            return match self.rejects_x32 {
                true => Outcome::Return(BAD_ARCH),
                false => Outcome::Return(self.main.default),
            };
        }
        self.main.outcome(nr)
    }

    fn policy(&self, scmp_name: &str) -> &Policy {
        match &self.x32 {
            Some(x32) if x32.abi.scmp_name == scmp_name => x32,
            _ => &self.main,
        }
    }

    /// The numbers at which the outcome may change.
    fn breakpoints(&self) -> BTreeSet<u32> {
        let mut points = BTreeSet::from([0, X32_BIT, 0x8000_0000, 0xc000_0000, u32::MAX]);
        for policy in std::iter::once(&self.main).chain(&self.x32) {
            for nr in policy.calls.keys() {
                points.insert(*nr);
                points.insert(nr.saturating_add(1));
            }
            if let Some(highest) = policy.enosys_above {
                points.insert(highest.saturating_add(1));
            }
        }
        points
    }

    /// The reference semantics of call `nr` with `args`, for tests.
    #[cfg(test)]
    pub fn decide(&self, nr: u32, args: &[u64; 6]) -> Action {
        match self.outcome(nr) {
            Outcome::Return(action) => action,
            Outcome::Check(abi, _) => self.policy(abi).decide(nr, args),
        }
    }
}

/// The filter's decisions for every ABI of a machine.
#[derive(Debug)]
pub struct Plan {
    pub families: Vec<Family>,
}

impl Plan {
    /// The ABIs filtered: the machine's own, and the others the profile lists.
    pub fn new(profile: &Resolved, arch: &Arch) -> Result<Plan, String> {
        let listed = |abi: &Abi| profile.architectures.iter().any(|a| a == abi.scmp_name);
        let is_x32 = |abi: &Abi| abi.scmp_name == X32_ABI.scmp_name;
        let x32_listed = arch.others.iter().any(|abi| is_x32(abi) && listed(abi));
        let mut families: Vec<Family> = Vec::new();
        for abi in arch.abis() {
            if abi.scmp_name != arch.native.scmp_name && !listed(abi) {
                continue;
            }
            if is_x32(abi) {
                continue; // behind x86_64's family
            }
            let x32 = match abi.audit_arch == X32_ABI.audit_arch && x32_listed {
                true => Some(Policy::new(profile, &X32_ABI)?),
                false => None,
            };
            families.push(Family {
                audit_arch: abi.audit_arch,
                main: Policy::new(profile, abi)?,
                rejects_x32: abi.audit_arch == X32_ABI.audit_arch && !x32_listed,
                x32,
            });
        }
        Ok(Plan { families })
    }

    /// The reference semantics of a call, for tests: the action for `nr` with `args` made
    /// from a process of the ABI whose `seccomp_data.arch` is `audit_arch`.
    #[cfg(test)]
    pub fn decide(&self, audit_arch: u32, nr: u32, args: &[u64; 6]) -> Action {
        match self.families.iter().find(|f| f.audit_arch == audit_arch) {
            Some(family) => family.decide(nr, args),
            None => BAD_ARCH,
        }
    }
}

/// A compiled filter.
#[derive(Debug)]
pub struct Program {
    pub insns: Vec<Insn>,
    /// Names in the profile that the native ABI has no system call for, sorted.
    pub unknown_names: Vec<String>,
}

/// Compiles `profile` for `arch`.
pub fn compile(profile: &Resolved, arch: &Arch) -> Result<Program, String> {
    let mut plan = Plan::new(profile, arch)?;
    let insns = Emitter::new(&plan).program()?;
    Ok(Program {
        insns,
        unknown_names: std::mem::take(&mut plan.families[0].main.unknown_names),
    })
}

/// Writes the program: architecture checks, the search trees, argument blocks, returns.
struct Emitter<'a> {
    plan: &'a Plan,
    asm: Asm,
    returns: BTreeMap<Action, Label>,
    /// Argument blocks to write: (family, ABI, number) -> label.
    checks: BTreeMap<(usize, &'static str, u32), Label>,
}

impl<'a> Emitter<'a> {
    fn new(plan: &'a Plan) -> Emitter<'a> {
        Emitter {
            plan,
            asm: Asm::new(),
            returns: BTreeMap::new(),
            checks: BTreeMap::new(),
        }
    }

    fn program(mut self) -> Result<Vec<Insn>, String> {
        let families = &self.plan.families;
        let labels: Vec<Label> = families.iter().map(|_| self.asm.label()).collect();
        self.asm.load(OFFSET_ARCH);
        for (family, label) in families.iter().zip(&labels) {
            self.asm.jump(
                Cmp::Eq,
                family.audit_arch,
                Target::Label(*label),
                Target::Next,
            );
        }
        self.asm.ret(BAD_ARCH.ret());
        for (index, (family, label)) in families.iter().zip(&labels).enumerate() {
            self.asm.place(*label);
            self.asm.load(OFFSET_NR);
            let ranges = ranges(family);
            // Numbers from the x32 bit up first go their own way, so that native calls cost
            // one comparison there and a search of the native ranges only.
            match ranges.iter().position(|range| range.start >= X32_BIT) {
                Some(high) if high > 0 => {
                    let (low, high) = ranges.split_at(high);
                    let high_label = self.asm.label();
                    let to_high = Target::Label(high_label);
                    self.asm.jump(Cmp::Ge, X32_BIT, to_high, Target::Next);
                    self.section(index, low);
                    self.asm.place(high_label);
                    self.section(index, high);
                }
                _ => self.section(index, &ranges),
            }
        }
        self.asm.finish()
    }

    /// A search tree, then the argument blocks and returns it jumps to, so that its jumps
    /// stay short (a conditional jump reaches 255 instructions; longer ones cost a `ja`).
    fn section(&mut self, family: usize, ranges: &[Range]) {
        self.tree(family, ranges);
        let families = &self.plan.families;
        for ((index, abi, nr), label) in std::mem::take(&mut self.checks) {
            self.asm.place(label);
            let policy = families[index].policy(abi);
            self.check_block(policy, &policy.calls[&nr]);
        }
        for (action, label) in std::mem::take(&mut self.returns) {
            self.asm.place(label);
            self.asm.ret(action.ret());
        }
    }

    /// A binary search over `ranges` (at least one), on the number in A, balanced by the
    /// ranges' weights (how many system calls each holds), so that an average call takes
    /// the fewest comparisons.
    fn tree(&mut self, family: usize, ranges: &[Range]) {
        if let [only] = ranges {
            let label = self.outcome_label(family, only.outcome);
            self.asm.goto(label);
            return;
        }
        let (left, right) = ranges.split_at(balanced_split(ranges));
        let right_label = match right {
            [only] => self.outcome_label(family, only.outcome),
            _ => self.asm.label(),
        };
        let left_target = match left {
            [only] => Target::Label(self.outcome_label(family, only.outcome)),
            _ => Target::Next,
        };
        self.asm.jump(
            Cmp::Ge,
            right[0].start,
            Target::Label(right_label),
            left_target,
        );
        if left.len() > 1 {
            self.tree(family, left);
        }
        if right.len() > 1 {
            self.asm.place(right_label);
            self.tree(family, right);
        }
    }

    /// Tests a call's conditional rules in order, then falls back to the default.
    fn check_block(&mut self, policy: &Policy, call: &CallRules) {
        for (conditions, action) in &call.conditional {
            let next_rule = self.asm.label();
            let matched = self.return_label(*action);
            for (i, condition) in conditions.iter().enumerate() {
                let pass = (i + 1 == conditions.len()).then_some(matched);
                self.condition(condition, policy.abi.args_32bit, pass, next_rule);
            }
            self.asm.place(next_rule);
        }
        let fallback = self.return_label(policy.default);
        self.asm.goto(fallback);
    }

    /// Goes to `fail` unless the condition holds; then to `pass`, or on when that is None.
    /// On a 32-bit ABI only the low words count.
    fn condition(&mut self, c: &ArgCondition, low_only: bool, pass: Option<Label>, fail: Label) {
        let end = pass.unwrap_or_else(|| self.asm.label());
        let (p, f) = (Target::Label(end), Target::Label(fail));
        let low = OFFSET_ARGS + 8 * u32::from(c.index);
        let high = low + 4;
        let (v_high, v_low) = halves(c.value);
        let asm = &mut self.asm;
        match (c.op, low_only) {
            (Op::Eq, false) => {
                asm.load(high);
                asm.jump(Cmp::Eq, v_high, Target::Next, f);
                asm.load(low);
                asm.jump(Cmp::Eq, v_low, p, f);
            }
            (Op::Ne, false) => {
                asm.load(high);
                asm.jump(Cmp::Eq, v_high, Target::Next, p);
                asm.load(low);
                asm.jump(Cmp::Eq, v_low, f, p);
            }
            (Op::MaskedEq, _) => {
                let (d_high, d_low) = halves(c.value_two);
                // A mask without high bits (clone's namespace flags) needs no high check.
                if !low_only && (v_high != 0 || d_high != 0) {
                    asm.load(high);
                    asm.and(v_high);
                    asm.jump(Cmp::Eq, d_high, Target::Next, f);
                }
                asm.load(low);
                asm.and(v_low);
                asm.jump(Cmp::Eq, d_low, p, f);
            }
            (Op::Gt | Op::Ge, false) => {
                asm.load(high);
                asm.jump(Cmp::Gt, v_high, p, Target::Next);
                asm.jump(Cmp::Eq, v_high, Target::Next, f);
                asm.load(low);
                let cmp = if c.op == Op::Gt { Cmp::Gt } else { Cmp::Ge };
                asm.jump(cmp, v_low, p, f);
            }
            (Op::Lt | Op::Le, false) => {
                asm.load(high);
                asm.jump(Cmp::Gt, v_high, f, Target::Next);
                asm.jump(Cmp::Eq, v_high, Target::Next, p);
                asm.load(low);
                // Lt fails when low >= v, Le when low > v.
                let cmp = if c.op == Op::Lt { Cmp::Ge } else { Cmp::Gt };
                asm.jump(cmp, v_low, f, p);
            }
            (op, true) => {
                asm.load(low);
                let (cmp, holds) = match op {
                    Op::Eq => (Cmp::Eq, true),
                    Op::Ne => (Cmp::Eq, false),
                    Op::Gt => (Cmp::Gt, true),
                    Op::Ge => (Cmp::Ge, true),
                    Op::Lt => (Cmp::Ge, false),
                    Op::Le => (Cmp::Gt, false),
                    Op::MaskedEq => unreachable!("handled above"),
                };
                match holds {
                    true => asm.jump(cmp, v_low, p, f),
                    false => asm.jump(cmp, v_low, f, p),
                }
            }
        }
        if pass.is_none() {
            self.asm.place(end);
        }
    }

    fn outcome_label(&mut self, family: usize, outcome: Outcome) -> Label {
        match outcome {
            Outcome::Return(action) => self.return_label(action),
            Outcome::Check(abi, nr) => {
                let next = self.asm.label();
                *self.checks.entry((family, abi, nr)).or_insert(next)
            }
        }
    }

    fn return_label(&mut self, action: Action) -> Label {
        let next = self.asm.label();
        *self.returns.entry(action).or_insert(next)
    }
}

/// Numbers from `start` to the next range's start, which share an outcome.
#[derive(Debug, Clone, Copy)]
struct Range {
    start: u32,
    outcome: Outcome,
    /// How many system calls of the family's tables it holds (at least 1).
    weight: usize,
}

/// A family's numbers grouped into ranges of one outcome, in order; the last range runs to
/// u32::MAX.
fn ranges(family: &Family) -> Vec<Range> {
    let mut ranges: Vec<Range> = Vec::new();
    for nr in family.breakpoints() {
        let outcome = family.outcome(nr);
        if ranges.last().is_none_or(|last| last.outcome != outcome) {
            ranges.push(Range {
                start: nr,
                outcome,
                weight: 0,
            });
        }
    }
    let tables = std::iter::once(&family.main).chain(&family.x32);
    for (nr, _) in tables.flat_map(|policy| policy.abi.table) {
        let at = ranges.partition_point(|range| range.start <= *nr) - 1;
        ranges[at].weight += 1;
    }
    for range in &mut ranges {
        range.weight = range.weight.max(1);
    }
    ranges
}

/// Where to split `ranges` (at least two) so that both sides weigh about the same.
fn balanced_split(ranges: &[Range]) -> usize {
    let total: usize = ranges.iter().map(|r| r.weight).sum();
    let mut left = 0;
    let mut best = (usize::MAX, 1);
    for (i, range) in ranges[..ranges.len() - 1].iter().enumerate() {
        left += range.weight;
        let imbalance = left.abs_diff(total - left);
        if imbalance < best.0 {
            best = (imbalance, i + 1);
        }
    }
    best.1
}

/// (high, low) 32-bit halves of a 64-bit value.
fn halves(value: u64) -> (u32, u32) {
    ((value >> 32) as u32, value as u32)
}
