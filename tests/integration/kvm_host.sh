#!/bin/bash
# Runs an integration test program that needs /dev/kvm: directly when this host has a usable one,
# otherwise inside the nested test host (tests/nested/nested_host.sh), where QEMU's software CPU
# emulates AMD SVM and kvm_amd offers a real /dev/kvm. Hosts whose own KVM cannot bind (a PVM
# kernel that is itself a PVM guest, a CI runner without virtualization) still run every test.
#
#   kvm_host.sh PROGRAM KASOU GUEST_DIR [PROGRAM ARGUMENTS...]
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
{
    echo 'cd /tmp'
    echo 'export KASOU_NESTED_TEST_HOST=1'
    printf '%q ' "$program" "$@"
    echo
} >"$work/run.sh"

declare -a files=()
for guest in "$guests"/*.elf "$guests"/*.bin; do
    [ -f "$guest" ] && files+=(--add "$guest=$guest")
done
status=0
bash "$here/../nested/nested_host.sh" --binary "$program=$program" --binary "$kasou=$kasou" "${files[@]}" \
    --host-module drivers/net/tun.ko --memory 4096 --timeout "${KASOU_KVM_HOST_TIMEOUT:-1500}" --run "$work/run.sh" || status=$?
exit "$status"
