#!/bin/bash
# Boots one test guest under QEMU with KVM and checks its exit status and console lines, so the
# guests are known to be right independently of kasou. Without a usable /dev/kvm the same guest
# runs under QEMU's software CPU (TCG) instead.
#
# usage: qemu_check.sh [--timeout SECONDS] STATUS [LINE_REGEX ...] -- QEMU_ARGUMENTS ...
#   STATUS      the expected exit status of qemu-system-x86_64: (v << 1) | 1 after a debug-exit
#               write of v, 0 after a shutdown with -no-reboot, 124 when the timeout stopped it.
#   LINE_REGEX  an extended regular expression that must match one whole console line.
# Exits 77 (CTest's skip code) without QEMU.
set -u

timeout_seconds=60
if [ "${1-}" = --timeout ]; then
    timeout_seconds=$2
    shift 2
fi
expected_status=$1
shift
patterns=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
    patterns+=("$1")
    shift
done
[ "${1-}" = -- ] || { echo "usage: $0 [--timeout SECONDS] STATUS [LINE_REGEX ...] -- QEMU_ARGUMENTS ..." >&2; exit 2; }
shift

if ! command -v qemu-system-x86_64 >/dev/null; then
    echo "skipped: needs qemu-system-x86_64"
    exit 77
fi
# -cpu host without arch-capabilities: PVM hosts refuse that MSR, and the guests need x2APIC.
cpu=(-cpu host,+x2apic,-arch-capabilities)
engine=kvm
if [ ! -c /dev/kvm ] || ! { exec 3<>/dev/kvm; } 2>/dev/null; then
    echo "qemu_check: no usable /dev/kvm; running under TCG"
    cpu=(-cpu max,+x2apic)
    engine=tcg
    arguments=()
    for argument in "$@"; do arguments+=("${argument//accel=kvm/accel=tcg}"); done
    set -- "${arguments[@]}"
fi
exec 3>&-

output=$(mktemp)
trap 'rm -f "$output"' EXIT
timeout "$timeout_seconds" qemu-system-x86_64 -nodefaults -no-user-config -nographic -serial stdio \
    "${cpu[@]}" -device isa-debug-exit,iobase=0xf4,iosize=4 "$@" \
    >"$output" 2>&1 </dev/null
status=$?
cat "$output"
if [ "$engine" = tcg ] && [ "$status" != "$expected_status" ] &&
    grep -q "TCG doesn't support requested feature: CPUID.01H:ECX.x2apic" "$output"; then
    echo "skipped: this QEMU's software CPU offers no x2APIC, which this guest needs"
    exit 77
fi

failed=0
if [ "$status" != "$expected_status" ]; then
    echo "qemu_check: exit status $status, expected $expected_status"
    failed=1
fi
for pattern in "${patterns[@]}"; do
    if ! grep -qxE -- "$pattern" "$output"; then
        echo "qemu_check: no line matches: $pattern"
        failed=1
    fi
done
exit $failed
