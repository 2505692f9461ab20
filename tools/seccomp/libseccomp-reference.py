#!/usr/bin/python3
"""Test tooling for the seccomp differential test (never part of the binary): builds the
filter runc builds for an OCI `linux.seccomp` with libseccomp (python3-seccomp), the way
runc's libcontainer/seccomp InitSeccomp and patchbpf do, and writes libseccomp's BPF program.

Usage: libseccomp-reference.py MACHINE BPF_OUT < linux.seccomp.json > stub.json
       libseccomp-reference.py known ABI < names.json > known.json
  MACHINE   SCMP_ARCH_X86_64 or SCMP_ARCH_AARCH64: the machine the filter is for (its native
            ABI is always in the filter, as libseccomp's native one is for runc)
  BPF_OUT   where libseccomp's program goes (seccomp_export_bpf)
Prints what runc's ENOSYS stub, prepended to that program, needs: whether there is one, and
the largest system call number the profile names on each ABI (GetSyscallFromNameByArch), or
{"error": ...} when libseccomp refuses a rule (runc then fails to start the container).
"""

import json
import seccomp
import sys

ARCHES = {
    "SCMP_ARCH_X86_64": seccomp.Arch.X86_64,
    "SCMP_ARCH_X86": seccomp.Arch.X86,
    "SCMP_ARCH_X32": seccomp.Arch.X32,
    "SCMP_ARCH_AARCH64": seccomp.Arch.AARCH64,
    "SCMP_ARCH_ARM": seccomp.Arch.ARM,
}
OPS = {
    "SCMP_CMP_EQ": seccomp.EQ, "SCMP_CMP_NE": seccomp.NE, "SCMP_CMP_LT": seccomp.LT,
    "SCMP_CMP_LE": seccomp.LE, "SCMP_CMP_GT": seccomp.GT, "SCMP_CMP_GE": seccomp.GE,
    "SCMP_CMP_MASKED_EQ": seccomp.MASKED_EQ,
}
EPERM, ENOSYS = 1, 38


def action(name, errno):
    """runc's getAction: ERRNO and TRACE without errnoRet take EPERM."""
    errno = EPERM if errno is None else errno
    return {
        "SCMP_ACT_KILL": (seccomp.KILL, "kill"),
        "SCMP_ACT_KILL_THREAD": (seccomp.KILL, "kill"),
        "SCMP_ACT_KILL_PROCESS": (seccomp.KILL_PROCESS, "kill_process"),
        "SCMP_ACT_TRAP": (seccomp.TRAP, "trap"),
        "SCMP_ACT_ALLOW": (seccomp.ALLOW, "allow"),
        "SCMP_ACT_LOG": (seccomp.LOG, "log"),
        "SCMP_ACT_ERRNO": (seccomp.ERRNO(errno), ("errno", errno)),
        "SCMP_ACT_TRACE": (seccomp.TRACE(errno), ("trace", errno)),
    }[name]


def known(abi):
    """The names (a JSON list on stdin) libseccomp has a system call for on `abi`."""
    names = json.load(sys.stdin)
    found = []
    for name in names:
        try:
            if seccomp.resolve_syscall(ARCHES[abi], name) >= 0:
                found.append(name)
        except Exception:
            pass
    print(json.dumps(found))


def main():
    if sys.argv[1] == "known":
        return known(sys.argv[2])
    machine, out = sys.argv[1], sys.argv[2]
    config = json.load(sys.stdin)
    default, default_key = action(config["defaultAction"], config.get("defaultErrnoRet"))
    f = seccomp.SyscallFilter(default)
    native = ARCHES[machine]
    if native != seccomp.Arch.NATIVE and not f.exist_arch(native):
        # Another machine than this one: its ABI stands in for the native one.
        f.add_arch(native)
        f.remove_arch(seccomp.Arch.NATIVE)
    abis = [machine]
    for name in config.get("architectures") or []:
        if name in ARCHES and name not in abis:
            abis.append(name)
            if not f.exist_arch(ARCHES[name]):
                f.add_arch(ARCHES[name])
    # runc's config has one entry per name.
    calls = [(name, s) for s in config.get("syscalls") or [] for name in s["names"]]
    try:
        for name, s in calls:
            act, key = action(s["action"], s.get("errnoRet"))
            if key == default_key:
                continue  # runc: callAct == defAct
            if seccomp.resolve_syscall(seccomp.Arch.NATIVE, name) == -1:
                continue  # unknown to libseccomp (__NR_SCMP_ERROR): runc ignores it
            args = s.get("args") or []
            conds = [seccomp.Arg(a["index"], OPS[a["op"]], a["value"], a.get("valueTwo", 0))
                     for a in args]
            counts = [0] * 6
            for a in args:
                counts[a["index"]] += 1
            if any(c > 1 for c in counts):
                for cond in conds:
                    f.add_rule(act, name, cond)
            else:
                f.add_rule(act, name, *conds)
    except Exception as err:  # libseccomp refused a rule
        print(json.dumps({"error": str(err)}))
        return
    with open(out, "wb") as bpf:
        f.export_bpf(bpf)
    # runc's generatePatch: no stub for ERRNO(ENOSYS) or an allowing default.
    stub = not (default_key == ("errno", ENOSYS) or default_key in ("allow", "log")
                or (isinstance(default_key, tuple) and default_key[0] == "trace"))
    largest = {}
    for abi in abis:
        numbers = []
        for name, _ in calls:
            try:
                numbers.append(seccomp.resolve_syscall(ARCHES[abi], name))
            except Exception:
                pass
        top = max([n for n in numbers if n >= 0], default=0)
        if top != 0:
            largest[abi] = top
    print(json.dumps({"stub": stub, "largest": largest}))


main()
