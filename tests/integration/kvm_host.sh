#!/bin/bash
# Runs an integration test program that needs /dev/kvm: directly when this host has a usable one,
# otherwise inside the nested test host (tests/nested/nested_host.sh), where QEMU's software CPU
# emulates AMD SVM and kvm_amd offers a real /dev/kvm. Hosts whose own KVM cannot bind (a PVM
# kernel that is itself a PVM guest, a CI runner without virtualization) still run every test.
#
#   kvm_host.sh PROGRAM KASOU GUEST_DIR [PROGRAM ARGUMENTS...]
#
# PROGRAM may also be a POSIX sh script (the nested host's shell is busybox's); the programs it
# calls besides kasou are named in KASOU_KVM_HOST_TOOLS.
#
# In the nested host the program, kasou and every test guest under GUEST_DIR sit at the same
# absolute paths as here, so the paths compiled into the program stay right; the tun module is
# loaded for tap devices. The exit status is the program's, or nested_host.sh's 90-92 when the
# nested host itself failed (see there).
set -euo pipefail

[ $# -ge 3 ] || { echo "usage: $0 PROGRAM KASOU GUEST_DIR [ARGUMENTS...]" >&2; exit 2; }
program=$(realpath "$1") kasou=$(realpath "$2") guests=$(realpath "$3")
shift 3

if [ -c /dev/kvm ] && { exec 3<>/dev/kvm; } 2>/dev/null; then
    exec 3>&-
    exec "$program" "$@"
fi

echo "kvm_host: no usable /dev/kvm on this host; running $(basename "$program") inside the nested test host"
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
declare -a files=()
for guest in "$guests"/*.elf "$guests"/*.bin; do
    [ -f "$guest" ] && files+=(--add "$guest=$guest")
done

# Programs from this host the test calls (KASOU_KVM_HOST_TOOLS="curl ..."), with their libraries,
# at the same paths inside.
tool_path=""
for tool in ${KASOU_KVM_HOST_TOOLS:-}; do
    path=$(command -v "$tool") || { echo "kvm_host: the test needs $tool, which is not installed" >&2; exit 2; }
    files+=(--binary "$path=$path")
    tool_path="$tool_path:$(dirname "$path")"
done

# The tests run in GoogleTest shards, one nested host each, with one CPU: with two, the emulated
# host hung now and then while starting a VM (once in about seven launches of a tiny guest, the
# whole host stuck, whatever ran inside); with one it has not. Should a host still stop making
# progress, a shard whose host passed its time limit (nested_host.sh's status 91) is started once
# more, so a hang costs one shard's time, not the run. Test failures are never retried.
shards=${KASOU_KVM_HOST_SHARDS:-5}
status=0
for ((index = 0; index < shards; index++)); do
    {
        echo 'cd /tmp'
        echo 'export KASOU_NESTED_TEST_HOST=1'
        [ -z "$tool_path" ] || printf 'export PATH="$PATH%s"\n' "$tool_path"
        echo "export GTEST_TOTAL_SHARDS=$shards GTEST_SHARD_INDEX=$index"
        [ -z "${KASOU_TEST_IRQCHIP:-}" ] || printf 'export KASOU_TEST_IRQCHIP=%q\n' "$KASOU_TEST_IRQCHIP"
        printf '%q ' "$program" "$@"
        echo
    } >"$work/run.sh"
    for attempt in 1 2; do
        shard_status=0
        bash "$here/../nested/nested_host.sh" --binary "$program=$program" --binary "$kasou=$kasou" "${files[@]}" \
            --host-module drivers/net/tun.ko --smp 1 --memory 4096 --timeout "${KASOU_KVM_HOST_TIMEOUT:-720}" \
            --run "$work/run.sh" || shard_status=$?
        [ "$shard_status" = 91 ] || break
        echo "kvm_host: shard $((index + 1)) of $shards: the nested host made no progress (attempt $attempt)"
    done
    echo "kvm_host: shard $((index + 1)) of $shards ended with status $shard_status"
    [ "$shard_status" = 0 ] || status=$shard_status
done
exit "$status"
