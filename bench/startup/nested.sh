#!/bin/bash
# bench/startup inside the nested test host (tests/nested/nested_host.sh), for machines without a
# usable /dev/kvm: kasou and `qemu-system-x86_64 -M microvm,accel=kvm` both run on the nested
# host's KVM (AMD SVM emulated by QEMU's TCG), alternating. Absolute times mean little under
# emulation; the ratios are the figure. Also times kasou with --irqchip kernel, and shows where one
# kasou run spends its time (strace -f -tt -T: the slowest system calls, and the first and last).
#
# Usage: bench/startup/nested.sh BUILD_DIR [RUNS]      (BUILD_DIR: e.g. build/release)
set -euo pipefail

BUILD=$(realpath "${1:?usage: nested.sh BUILD_DIR [RUNS]}")
RUNS=${2:-20}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kasou-startup.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

cat >"$WORK/run.sh" <<SCRIPT
cd /tmp
echo "== kasou (default irqchip: split) against QEMU microvm"
/bin/bench_startup /bin/kasou /guest.elf $RUNS /bin/qemu-system-x86_64
echo "== kasou --irqchip kernel against QEMU microvm"
KASOU_BENCH_ARGS="--irqchip kernel" /bin/bench_startup /bin/kasou /guest.elf $RUNS /bin/qemu-system-x86_64
for mode in split kernel; do
    echo "== one kasou run (--irqchip \$mode) under strace: slowest system calls"
    strace -f -tt -T -o /tmp/trace.\$mode /bin/kasou run --kernel /guest.elf --memory 256M --irqchip \$mode >/dev/null
    awk 'match(\$0, /<[0-9.]+>\$/) { print substr(\$0, RSTART + 1, RLENGTH - 2), \$0 }' /tmp/trace.\$mode | sort -rn | head -n 12
    echo "-- first and last:"
    head -n 1 /tmp/trace.\$mode
    tail -n 1 /tmp/trace.\$mode
done
SCRIPT

declare -a firmware=()
for file in /usr/share/qemu/qboot.rom /usr/share/qemu/bios-microvm.bin /usr/share/qemu/pvh.bin; do
    [ -e "$file" ] && firmware+=(--add "$(realpath "$file")=$file")
done
"$HERE/../../tests/nested/nested_host.sh" --kasou "$BUILD/src/cmd/kasou" \
    --binary "$BUILD/bench/startup/bench_startup=/bin/bench_startup" \
    --binary /usr/bin/qemu-system-x86_64=/bin/qemu-system-x86_64 --binary /usr/bin/strace=/bin/strace "${firmware[@]}" \
    --add "$BUILD/guests/pvh_hello.elf=/guest.elf" --smp 1 --memory 2048 --timeout 1200 --run "$WORK/run.sh"
