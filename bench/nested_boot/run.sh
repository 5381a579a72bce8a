#!/bin/bash
# bench/nested_boot: inside one nested test host (tests/nested/nested_host.sh), boots Debian's cloud
# kernel with a busybox initramfs under kasou, `qemu-system-x86_64 -M microvm,accel=kvm` and
# `-M q35,accel=kvm`, three times each, and prints the median time from process start to the
# guest's /init and kasou's ratio to each QEMU machine. Absolute times mean little under emulation;
# the ratios are the figure. Not run by the test suite.
#
# Usage: bench/nested_boot/run.sh KASOU_BINARY
set -euo pipefail

KASOU=${1:?usage: run.sh KASOU_BINARY}
HERE=$(cd "$(dirname "$0")" && pwd)
TESTS="$HERE/../../tests/nested"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kasou-nested-boot.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

KERNEL=$("$TESTS/nested_host.sh" --print-kernel)
mkdir -p "$WORK/guest/bin" "$WORK/guest/proc" "$WORK/guest/sys" "$WORK/guest/dev"
cp /bin/busybox "$WORK/guest/bin/busybox"
cc -static -O2 -o "$WORK/guest/bin/port_write" "$TESTS/port_write.c"
cp "$TESTS/guest_init.sh" "$WORK/guest/init"
chmod +x "$WORK/guest/init"
(cd "$WORK/guest" && find . | cpio -o -H newc --quiet | gzip -1 >"$WORK/guest.cpio.gz")

# QEMU's firmware: qboot for microvm, SeaBIOS and the linuxboot option ROM for q35.
declare -a firmware=()
for file in /usr/share/qemu/qboot.rom /usr/share/qemu/bios-microvm.bin /usr/share/seabios/bios-256k.bin \
    /usr/share/qemu/linuxboot_dma.bin /usr/share/qemu/kvmvapic.bin; do
    firmware+=(--add "$file=$file")
done

"$TESTS/nested_host.sh" --kasou "$KASOU" --binary /usr/bin/qemu-system-x86_64=/bin/qemu-system-x86_64 "${firmware[@]}" \
    --add "$KERNEL=/vmlinuz" --add "$WORK/guest.cpio.gz=/guest.cpio.gz" \
    --run "$HERE/boot_times.sh" --timeout 1200 --memory 3072 | tee "$WORK/output.txt"

median() { grep "^RUN $1 " "$WORK/output.txt" | awk '{ print $3 }' | sort -n | sed -n 2p; }
kasou=$(median kasou)
microvm=$(median qemu-microvm)
q35=$(median qemu-q35)
[ -n "$kasou" ] && [ -n "$microvm" ] && [ -n "$q35" ] || { echo "a VMM did not reach the guest's /init three times" >&2; exit 1; }
echo
echo "| VMM (inside the nested host) | median of 3, process start to guest /init | kasou / this |"
echo "|---|---|---|"
echo "| kasou | ${kasou} s | 1.00 |"
echo "| qemu-system-x86_64 -M microvm,accel=kvm | ${microvm} s | $(awk -v a="$kasou" -v b="$microvm" 'BEGIN { printf "%.2f", a / b }') |"
echo "| qemu-system-x86_64 -M q35,accel=kvm | ${q35} s | $(awk -v a="$kasou" -v b="$q35" 'BEGIN { printf "%.2f", a / b }') |"
