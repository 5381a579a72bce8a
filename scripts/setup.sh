#!/bin/sh
# Installs everything kasou needs to build, test and benchmark on Debian 12, as root.
# Idempotent and quiet: when every package is present it prints nothing and touches nothing.
set -eu

# Build tools and libraries (see the README for why each one is here).
BUILD="cmake ninja-build g++ gcc clang libclang-rt-14-dev pkg-config git
  libfmt-dev libspdlog-dev libcli11-dev nlohmann-json3-dev libexpected-dev liburing-dev libisal-dev
  libgtest-dev libboost-dev libseccomp-dev libzydis-dev"
# Peers used by the tests and the benchmarks (qemu-system-common: qemu-storage-daemon, the
# vhost-user-blk peer; qemu-system-data: qboot, the firmware of the vhost-user front-end tests).
PEERS="qemu-system-x86 qemu-system-common qemu-system-data qemu-utils fio libnbd-bin busybox-static cpio acpica-tools
  iproute2 procps util-linux python3 e2fsprogs curl crun runc time bc"

missing=""
for package in $BUILD $PEERS; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $package"
    fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "setup: missing packages:$missing; run this script as root to install them" >&2
    exit 1
fi
echo "setup: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
