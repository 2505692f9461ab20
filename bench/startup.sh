#!/bin/sh
# Start-up time of `mini-container run true` against the floor (unshare with the same
# namespaces and a fresh /proc) and, when installed, crun and bwrap; prints each one's ratio
# to the floor. Needs root and hyperfine (apt-get install hyperfine crun bubblewrap
# busybox-static). Usage: sudo bench/startup.sh [extra hyperfine args]
set -eu
: "${RUNS:=300}"
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench/startup.sh: needs root" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "bench/startup.sh: install hyperfine" >&2; exit 1; }

cargo build --release --locked --quiet
bin=$(ls -d "$PWD"/target/*/release/mini-container | head -n 1)
work=$(mktemp -d /tmp/mc-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM

set -- --warmup 20 --runs "$RUNS" -N --export-json "$work/results.json" "$@"
set -- "$@" -n floor "unshare --fork --pid --uts --ipc --mount --mount-proc true"
set -- "$@" -n mini-container "$bin --root $work/root run true"

if command -v busybox >/dev/null; then
    # A busybox root filesystem: mini-container --rootfs and crun both run `true` in it.
    mkdir -p "$work/bundle/rootfs/bin"
    cp "$(command -v busybox)" "$work/bundle/rootfs/bin/busybox"
    ln -s busybox "$work/bundle/rootfs/bin/true"
    set -- "$@" -n "mini-container --rootfs" "$bin --root $work/root run --rootfs $work/bundle/rootfs true"
fi
if command -v crun >/dev/null && command -v busybox >/dev/null; then
    (cd "$work/bundle" && crun spec)
    sed -i -e 's/"terminal": true/"terminal": false/' -e 's/"sh"/"true"/' "$work/bundle/config.json"
    set -- "$@" -n crun "crun --root $work/crun run --bundle $work/bundle mc-bench"
fi
if command -v bwrap >/dev/null; then
    set -- "$@" -n bwrap "bwrap --unshare-pid --unshare-uts --unshare-ipc --dev-bind / / --proc /proc true"
fi

# crun refuses the cgroup "hybrid" layout when the v2 tree has controllers: run every
# command in a mount namespace of the benchmark's own without that tree.
if grep -qs . /sys/fs/cgroup/unified/cgroup.controllers && command -v crun >/dev/null; then
    unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified && exec "$@"' sh hyperfine "$@"
else
    hyperfine "$@"
fi

python3 - "$work/results.json" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
floor = next(r for r in results if r["command"] == "floor")["mean"]
print("\nmean start-up time, and ratio to the floor:")
for r in results:
    print(f"  {r['command']:<24} {r['mean'] * 1000:7.2f} ms  {r['mean'] / floor:5.2f}x")
PY
