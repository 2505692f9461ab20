#!/bin/bash
# The guest suite: boots Debian's kernel under QEMU with nothing but cgroup v2 (the unified
# hierarchy, as systemd hosts have it) and runs the tests listed in tests/vm/guest-tests
# inside, as root, on the real cgroup2 files. The guest's console is printed here; the exit
# status is the suite's (0: every listed test passed). Skips, saying so in one line, only
# when this host cannot run QEMU at all.
#
# The guest has no network (-nic none) and its own kernel: the host's cgroups, network and
# boot configuration are not touched. Its files live in a temporary directory removed on
# every exit; the kernel extracted from Debian's package is kept in target/vm/ (a build
# cache, like the rest of target/), so that a run downloads it once.
#
# Environment: MC_VM_TIMEOUT (seconds for the whole guest run, default 900), MC_VM_KERNEL
# (a bzImage to boot instead of Debian's), MC_VM_ACCEL (tcg or kvm: skip the KVM probe),
# MC_VM_LIST (another list file).
set -euo pipefail
cd "$(dirname "$0")/../.."

say() { echo "tests/vm: $*"; }
skip() {
    echo "tests/vm: skipped: $*"
    exit 0
}
die() {
    echo "tests/vm: $*" >&2
    exit 1
}

timeout_s=${MC_VM_TIMEOUT:-900}
list=${MC_VM_LIST:-tests/vm/guest-tests}

[ "$(id -u)" = 0 ] || die "the guest's initramfs and the tests' build need root: run it with sudo"
[ "$(uname -m)" = x86_64 ] || skip "the guest runs x86_64 test binaries and this host is $(uname -m)"

# Debian's packages for what is missing; without QEMU (and no way to install it) the suite
# cannot run at all: the one case where it skips.
missing=""
command -v qemu-system-x86_64 >/dev/null || missing="$missing qemu-system-x86"
for package in busybox-static cpio binutils; do
    dpkg -s "$package" >/dev/null 2>&1 || missing="$missing $package"
done
if [ -n "$missing" ] && command -v apt-get >/dev/null; then
    say "installing$missing"
    apt-get update -qq >/dev/null || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
        say "could not install$missing"
fi
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is not installed and could not be"
qemu-system-x86_64 -version >/dev/null 2>&1 || skip "qemu-system-x86_64 does not run here"
for tool in cpio strip /bin/busybox; do
    command -v "$tool" >/dev/null || die "$tool is missing"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mc-vm.XXXXXX")
qemu_pid=""
tail_pid=""
cleanup() {
    local status=$?
    # Only the processes this script started, by their PIDs.
    if [ -n "$qemu_pid" ]; then
        kill -KILL "$qemu_pid" 2>/dev/null || true
        wait "$qemu_pid" 2>/dev/null || true
    fi
    if [ -n "$tail_pid" ]; then
        kill "$tail_pid" 2>/dev/null || true
        wait "$tail_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# The kernel: Debian's linux-image-<version>-amd64 (what linux-image-amd64 depends on),
# unpacked with dpkg-deb -x. Not installed: that would run update-initramfs and update-grub
# and change what the host boots; the guest needs only vmlinuz (cgroup2, devtmpfs, tmpfs
# and the serial console are built in; with an initramfs and no network it needs no disk or
# network driver) and two modules whose character devices the device-rule tests open:
# loop (/dev/loop-control, c 10:237) and fuse (/dev/fuse, c 10:229).
modules="drivers/block/loop.ko fs/fuse/fuse.ko"
kernel_image() {
    if [ -n "${MC_VM_KERNEL:-}" ]; then
        echo "$MC_VM_KERNEL"
        return
    fi
    local meta package version cache
    for meta in linux-image-amd64 linux-image-generic; do
        package=$(apt-cache depends "$meta" 2>/dev/null |
            sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n 1)
        [ -n "$package" ] && break
    done
    [ -n "$package" ] || die "no linux-image-amd64 in the package lists (apt-get update?)"
    version=$(apt-cache show "$package" | sed -n 's/^Version: //p' | head -n 1)
    cache=target/vm/${package}_$version
    if [ ! -f "$cache/vmlinuz" ] || [ ! -d "$cache/modules" ]; then
        say "fetching $package $version (not installed: unpacked into $cache)" >&2
        mkdir -p "$tmp/deb"
        (cd "$tmp/deb" && { apt-get download -qq "$package=$version" 2>/dev/null ||
            { apt-get update -qq && apt-get download -qq "$package=$version"; }; }) >&2 ||
            die "apt-get download $package failed"
        dpkg-deb -x "$tmp/deb"/*.deb "$tmp/deb/x"
        rm -rf target/vm
        mkdir -p "$cache"
        cp "$tmp/deb/x/boot/vmlinuz-"* "$cache/vmlinuz"
        cp "$tmp/deb/x/boot/config-"* "$cache/config"
        mkdir -p "$cache/modules"
        for module in $modules; do
            cp "$tmp/deb/x/lib/modules/"*/kernel/"$module" "$cache/modules/" ||
                die "the kernel package has no $module"
        done
        rm -rf "$tmp/deb"
    fi
    echo "$cache/vmlinuz"
}
kernel=$(kernel_image)

# The binaries: static (.cargo/config.toml), so the guest needs no libraries. The integration
# tests find the runner at the path cargo baked into them (CARGO_BIN_EXE_mini-container):
# it goes to that same path in the guest.
say "building the tests"
cargo test --locked --no-run --message-format=json >"$tmp/build.json" 2>"$tmp/build.err" || {
    cat "$tmp/build.err" >&2
    die "cargo test --no-run failed"
}
artifact() { # NAME TEST: the executable of that target, built as a test (true) or not
    grep '"reason":"compiler-artifact"' "$tmp/build.json" |
        grep "\"target\":{[^}]*\"name\":\"$1\"" |
        grep "\"profile\":{[^}]*\"test\":$2" |
        sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | head -n 1 || true
}
runner=$(artifact mini-container false)
[ -n "$runner" ] || die "cargo built no mini-container binary"
# CARGO_TARGET_TMPDIR, baked into the tests as well: <target directory>/tmp.
target_dir=$(cargo metadata --locked --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
[ -n "$target_dir" ] || die "cargo metadata gave no target directory"

root=$tmp/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,root,tests}
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
# A few of the host's own tools where the tests expect util-linux's or Debian's, not
# busybox's: dash as /bin/sh (busybox's sh execs the last command of `sh -c`), unshare
# (--propagation unchanged), script (a pty), setpriv, procps' ps (-p) and uidmap's set-user-ID
# newuidmap and newgidmap; with their libraries.
for tool in /bin/dash:/bin/sh /usr/bin/unshare:/bin/unshare /usr/bin/script:/bin/script /bin/ps:/bin/ps \
    /usr/bin/setpriv:/bin/setpriv /usr/bin/newuidmap:/usr/bin/newuidmap /usr/bin/newgidmap:/usr/bin/newgidmap; do
    from=${tool%%:*}
    to=${tool#*:}
    [ -x "$from" ] || continue
    rm -f "$root$to"
    cp -L --preserve=mode "$from" "$root$to"
    for library in $(ldd "$from" | grep -o '/[^ ]*'); do
        mkdir -p "$root$(dirname "$library")"
        cp -L "$library" "$root$library"
    done
done
mkdir -p "$root"/{mnt,media,opt,srv,home,var/tmp,usr/local/bin,lib/modules}
chmod 1777 "$root/tmp"
if [ -d "$(dirname "$kernel")/modules" ]; then
    cp "$(dirname "$kernel")"/modules/*.ko "$root/lib/modules/"
fi
cp tests/vm/init "$root/init"
chmod 755 "$root/init"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
printf '127.0.0.1 localhost mc-vm-guest\n' >"$root/etc/hosts"
: >"$root/etc/resolv.conf"
: >"$root/etc/subuid"
: >"$root/etc/subgid"
mkdir -p "$root$(dirname "$runner")"
strip --strip-debug -o "$root$runner" "$runner"

# The escape battery compiles its attack programs with cc at run time: they are compiled
# here, and the guest's cc (tests/vm/cc) hands out the ones built here.
attacks=tests/escape/attacks
mkdir -p "$root/usr/lib/mc-vm/attacks" "$root$PWD/$attacks" "$root$target_dir/tmp"
cp -r "$attacks/." "$root$PWD/$attacks/"
for source in "$attacks"/*.c; do
    [ -e "$source" ] || continue
    cc -static -O1 -Wall -Werror -o "$root/usr/lib/mc-vm/attacks/$(basename "$source" .c)" \
        "$source" "$attacks/lib/report.c" "-I$attacks/lib"
done
cp tests/vm/cc "$root/usr/bin/cc"
chmod 755 "$root/usr/bin/cc"

: >"$root/tests/list"
while read -r name args; do
    case "$name" in '' | '#'*) continue ;; esac
    binary=$(artifact "$name" true)
    [ -n "$binary" ] || die "$list: no test target named $name"
    [ -e "$root/tests/$name" ] || strip --strip-debug -o "$root/tests/$name" "$binary"
    echo "$name $args" >>"$root/tests/list"
done <"$list"

(cd "$root" && find . | cpio -o -H newc --quiet) >"$tmp/initramfs.cpio"
say "initramfs: $(du -m "$tmp/initramfs.cpio" | cut -f1) MiB, kernel: $kernel"

running() { # PID: alive and not a zombie
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    case "${stat##*) }" in Z* | X*) return 1 ;; esac
}

# Boots the guest in the background, console to $tmp/console; sets qemu_pid.
boot() { # ACCEL INITRAMFS EXTRA-KERNEL-ARGS
    local accel=(-accel tcg,thread=multi)
    [ "$1" = kvm ] && accel=(-accel kvm -cpu host)
    : >"$tmp/console"
    qemu-system-x86_64 "${accel[@]}" -nodefaults -no-user-config -display none -monitor none \
        -serial "file:$tmp/console" -nic none -no-reboot -m 2G -smp 2 \
        -kernel "$kernel" -initrd "$2" \
        -append "console=ttyS0 panic=-1 quiet loglevel=3 cgroup_no_v1=all $3" \
        </dev/null >"$tmp/qemu.log" 2>&1 &
    qemu_pid=$!
}

# Waits for qemu to end, up to SECONDS; kills it by its PID after that.
wait_guest() {
    local deadline=$((SECONDS + $1))
    while running "$qemu_pid"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            kill -KILL "$qemu_pid" 2>/dev/null || true
            wait "$qemu_pid" 2>/dev/null || true
            qemu_pid=""
            return 1
        fi
        sleep 1
    done
    wait "$qemu_pid" 2>/dev/null || true
    qemu_pid=""
}

# KVM only when a trivial guest boots with it within 10 s: nested KVM can hang.
accel=${MC_VM_ACCEL:-}
if [ -z "$accel" ]; then
    accel=tcg
    if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
        mkdir -p "$tmp/probe/bin"
        cp /bin/busybox "$tmp/probe/bin/busybox"
        printf '#!/bin/busybox sh\n/bin/busybox echo MC-VM-PROBE-OK\n/bin/busybox poweroff -f\n' >"$tmp/probe/init"
        chmod 755 "$tmp/probe/init"
        (cd "$tmp/probe" && find . | cpio -o -H newc --quiet) >"$tmp/probe.cpio"
        boot kvm "$tmp/probe.cpio" ""
        if wait_guest 10 && grep -q MC-VM-PROBE-OK "$tmp/console"; then
            accel=kvm
        fi
    fi
fi

say "booting the guest ($accel, 2 CPUs, 2 GiB, no network; timeout ${timeout_s} s)"
started=$SECONDS
boot "$accel" "$tmp/initramfs.cpio" ""
# The live view: ends once qemu has (after printing the rest).
tail -n +1 -f --pid="$qemu_pid" "$tmp/console" &
tail_pid=$!
timed_out=""
wait_guest "$timeout_s" || timed_out=yes
wait "$tail_pid" 2>/dev/null || true
tail_pid=""
echo

status=$(tr -d '\r' <"$tmp/console" | sed -n 's/^MC-VM-EXIT \([0-9]*\)$/\1/p' | tail -n 1)
elapsed=$((SECONDS - started))
if [ -n "$timed_out" ]; then
    die "the guest did not finish within ${timeout_s} s: killed"
fi
if [ -z "$status" ]; then
    cat "$tmp/qemu.log" >&2
    die "the guest ended without a result (no MC-VM-EXIT line) after ${elapsed} s"
fi
tr -d '\r' <"$tmp/console" | grep '^MC-VM-DONE' | sed 's/^/tests\/vm: /' || true
say "guest suite: status $status, ${elapsed} s from boot to power-off ($accel)"
exit "$status"
