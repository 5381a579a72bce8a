#!/bin/bash
# Sets up a Debian 12 machine (as root), builds kasou and boots the default guest: the SMP smoke
# test guest on 2 vCPUs, which prints what it checks on the serial console and powers off through
# the debug-exit port (kasou's exit status 1 means its checks passed). On a host without a usable
# /dev/kvm the same command runs inside the nested test host (tests/nested/nested_host.sh: QEMU's
# software CPU emulating AMD SVM, with kvm_amd loaded), which says so first.
set -eu
cd "$(dirname "$0")/.."
./scripts/setup.sh
cmake --preset release >/dev/null
cmake --build build/release --target kasou guests
kasou=$PWD/build/release/src/cmd/kasou
guest=$PWD/build/release/guests/pvh_smoke.elf
run=(run --kernel "$guest" --cpus 2 --memory 256M --cmdline "expect_cpus=2 expect_mem=256M")
if [ -c /dev/kvm ] && { exec 3<>/dev/kvm; } 2>/dev/null; then
    exec 3>&-
    exec "$kasou" --log-level info "${run[@]}"
fi
echo "boot.sh: this host has no usable /dev/kvm; booting the guest inside the nested test host"
script=$(mktemp)
trap 'rm -f "$script"' EXIT
printf 'kasou --log-level info' >"$script"
printf ' %q' "${run[@]}" >>"$script"
echo >>"$script"
status=0
bash tests/nested/nested_host.sh --kasou "$kasou" --add "$guest=$guest" --run "$script" --timeout 600 || status=$?
exit "$status"
