#!/bin/bash
# Guest instructions per second of kasou's software CPU against QEMU's (TCG), same guest, same run.
#
#   bench/emu/emu_bench.sh KASOU_BINARY CPL3_LOOP_ELF [ITERATIONS]
#
# The guest is guests/cpl3_loop: a 64-bit LCG loop of five instructions a step (imul, add, add,
# cmp, jne) run at CPL3 for ITERATIONS steps (default 20000000), after a short start-up at CPL0.
# Each side is timed over its whole run (start-up included, a few milliseconds for both) in CPU
# seconds (user + system, all threads: GNU time), best of three, so that other load on a shared
# host does not skew the ratio; the rate is 5 * ITERATIONS / seconds. Prints both rates and
# kasou's as a ratio of QEMU's.
set -euo pipefail

kasou=${1:?usage: $0 KASOU_BINARY CPL3_LOOP_ELF [ITERATIONS]}
guest=${2:?usage: $0 KASOU_BINARY CPL3_LOOP_ELF [ITERATIONS]}
iterations=${3:-20000000}
instructions=$((iterations * 5))

# CPU seconds (user + system) of the best of three runs of "$@", which must exit with status 1
# (the guest passed).
best_of_three() {
    local best="" times
    times=$(mktemp)
    for _ in 1 2 3; do
        local status=0
        /usr/bin/time -o "$times" -f "%U %S" "$@" >/dev/null 2>&1 </dev/null || status=$?
        if [ "$status" != 1 ]; then
            echo "emu_bench: '$*' ended with status $status, expected 1" >&2
            exit 1
        fi
        local elapsed
        elapsed=$(awk 'END { print $1 + $2 }' "$times")
        if [ -z "$best" ] || [ "$(echo "$elapsed < $best" | bc -l)" = 1 ]; then best=$elapsed; fi
    done
    rm -f "$times"
    echo "$best"
}

kasou_seconds=$(best_of_three "$kasou" run --accel emu --kernel "$guest" --memory 64M --cmdline "iterations=$iterations")
qemu_seconds=$(best_of_three qemu-system-x86_64 -M microvm,accel=tcg -cpu max,+x2apic -m 64M -nodefaults -no-user-config \
    -nographic -serial none -device isa-debug-exit,iobase=0xf4,iosize=4 -kernel "$guest" -append "iterations=$iterations")

kasou_rate=$(echo "$instructions / $kasou_seconds" | bc -l)
qemu_rate=$(echo "$instructions / $qemu_seconds" | bc -l)
printf 'cpl3_loop, %d iterations (%d guest instructions in the loop)\n' "$iterations" "$instructions"
printf 'kasou emu:  %8.3f CPU s  %8.1f M instructions/s\n' "$kasou_seconds" "$(echo "$kasou_rate / 1000000" | bc -l)"
printf 'qemu tcg:   %8.3f CPU s  %8.1f M instructions/s\n' "$qemu_seconds" "$(echo "$qemu_rate / 1000000" | bc -l)"
printf 'ratio kasou emu / qemu tcg: %.3f\n' "$(echo "$kasou_rate / $qemu_rate" | bc -l)"
