#!/bin/sh
# Installs what the tests need (on Debian or Ubuntu) and runs every check: formatting, clippy
# and the whole test suite, as root. This is the command README.md gives and CI runs.
set -eu
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "tests/run-all.sh: the tests start real containers and need root: run it with sudo" >&2
    exit 1
fi

# Host tools the tests run inside containers and around them; the image tests build their
# images with umoci and skopeo, serve them with docker-registry (over TLS too, with certificates
# made by openssl), and compress with gzip/zstd; the escape battery compiles its attack
# programs (tests/escape/attacks) with gcc, statically.
packages="gcc libc6-dev busybox-static iproute2 procps util-linux bsdutils attr tar gzip zstd umoci skopeo docker-registry openssl uidmap"
missing=""
for package in $packages; do
    dpkg -s "$package" >/dev/null 2>&1 || missing="$missing $package"
done
if [ -n "$missing" ]; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
fi

cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked

# The cgroup tests again, inside a pure cgroup v2 guest booted under QEMU (tests/vm/run.sh):
# this host's cgroups are v1. Skips, in one line, only where QEMU cannot run.
tests/vm/run.sh
