#!/bin/bash
# Boots Debian's cloud kernel under kasou inside the nested test host (hardware-assisted KVM on
# QEMU's emulated AMD SVM) and checks what the guest saw and how each run ended:
#   default_1cpu     1 vCPU, default command line: processors, MemTotal, cmdline, boot timer, status 0,
#                    COM1 and the RTC found through the DSDT
#   poweroff_2cpu    2 vCPUs, given command line: the same, status 0 through ACPI S5
#   reboot           `reboot -f` in the guest: status 4
#   panic            a kernel panic with panic=-1: status 4
#   pvh_vmlinux      the same kernel as an ELF vmlinux through its PVH note, initrd as module 0: status 0
#   shell            a shell on the serial console runs what is typed into kasou's standard input
#   restart_sigterm  --on-reboot=restart boots the guest twice, SIGTERM then ends kasou: status 8,
#                    no kasou process left
# Usage: linux_boot_test.sh KASOU_BINARY PORT_WRITE_BINARY (port_write.c, built static)
set -euo pipefail

NESTED_DIR=$(cd "$(dirname "$0")" && pwd)
source "$NESTED_DIR/nested_test_lib.sh"
start_nested_test linux-boot "$@"
PORT_WRITE=$HELPER

# The guest: busybox and /init in a gzip'd cpio archive.
KERNEL=$("$HARNESS" --print-kernel)
build_guest_initramfs "$WORK/guest" "$WORK/guest.cpio.gz" "$PORT_WRITE=bin/port_write"

# The same kernel as an uncompressed ELF vmlinux, for the PVH entry: the bzImage's payload
# (payload_offset at 0x248 and payload_length at 0x24C, counted from the end of the setup sectors).
u32_at() { od -An -tu4 -j "$2" -N4 "$1" | tr -d ' '; }
setup_sectors=$(od -An -tu1 -j $((0x1F1)) -N1 "$KERNEL" | tr -d ' ')
payload_start=$(( (setup_sectors + 1) * 512 + $(u32_at "$KERNEL" $((0x248))) ))
payload_length=$(u32_at "$KERNEL" $((0x24C)))
dd if="$KERNEL" of="$WORK/payload" iflag=skip_bytes,count_bytes bs=1M skip="$payload_start" count="$payload_length" status=none
case "$(od -An -tx1 -N4 "$WORK/payload" | tr -d ' ')" in
02214c18) decompress="lz4 -dc" package=lz4 ;;
fd377a58) decompress="xz -dc" package=xz-utils ;;
28b52ffd) decompress="zstd -dc" package=zstd ;;
1f8b*) decompress="gzip -dc" package=gzip ;;
*) echo "FAILED: the kernel's payload is in a compression format this test does not know"; exit 1 ;;
esac
command -v "${decompress%% *}" >/dev/null || apt-get install -y -q "$package" >/dev/null
$decompress "$WORK/payload" >"$WORK/vmlinux" 2>/dev/null || true
[ "$(od -An -c -N4 "$WORK/vmlinux" | tr -d ' ')" = '177ELF' ] || { echo "FAILED: could not unpack vmlinux from $KERNEL"; exit 1; }

run_in_nested_host --kasou "$KASOU" --add "$KERNEL=/vmlinuz" --add "$WORK/vmlinux=/vmlinux" \
    --add "$WORK/guest.cpio.gz=/guest.cpio.gz" --run "$NESTED_DIR/linux_boot_cases.sh" --timeout 1200

memtotal_within() { # case, MiB of guest RAM: MemTotal is below it and above 3/4 of it
    local kb
    kb=$(guest_value "$1" memtotal_kb)
    [ -n "$kb" ] && [ "$kb" -lt $(($2 * 1024)) ] && [ "$kb" -gt $(($2 * 1024 * 3 / 4)) ]
}

check "1 vCPU: guest sees 1 processor" equals "$(guest_value default_1cpu processors)" 1
check "1 vCPU: MemTotal fits 256 MiB" memtotal_within default_1cpu 256
check "default command line reaches the guest" equals "$(guest_value default_1cpu cmdline)" "console=ttyS0 reboot=k panic=-1"
check "1 vCPU: boot timer marker" contains default_1cpu "boot timer: guest marker 1 at"
check "1 vCPU: powered off through ACPI S5" contains default_1cpu "guest powered off (ACPI S5)"
check "1 vCPU: status 0" equals "$(status_of default_1cpu)" 0
check "1 vCPU: COM1 found through ACPI" contains default_1cpu "00:00: ttyS0 at I/O 0x3f8"
check "1 vCPU: the CMOS RTC found through ACPI" contains default_1cpu "rtc_cmos 00:01: registered as rtc0"
check "1 vCPU: CPUID leaf 0xD agrees with the XSAVE features Linux enables" equals "$(count_of default_1cpu "XSAVE consistency problem")" 0
check "1 vCPU: the PCI host bridge found through ACPI" contains default_1cpu "ACPI: PCI Root Bridge"
check "1 vCPU: bus 0 holds the host bridge and virtio-rng" equals "$(guest_value default_1cpu pci)" "0000:00:00.0 0000:00:01.0 "

check "2 vCPUs: guest sees 2 processors" equals "$(guest_value poweroff_2cpu processors)" 2
check "2 vCPUs: MemTotal fits 512 MiB" memtotal_within poweroff_2cpu 512
check "2 vCPUs: given command line reaches the guest" equals "$(guest_value poweroff_2cpu cmdline)" \
    "console=ttyS0 reboot=k panic=-1 quiet kasou_action=poweroff"
check "2 vCPUs: boot timer marker" contains poweroff_2cpu "boot timer: guest marker 1 at"
check "2 vCPUs: status 0" equals "$(status_of poweroff_2cpu)" 0

check "PVH vmlinux: the initrd's /init ran" equals "$(guest_value pvh_vmlinux processors)" 2
check "PVH vmlinux: command line" equals "$(guest_value pvh_vmlinux cmdline)" "console=ttyS0 reboot=k panic=-1 quiet"
check "PVH vmlinux: status 0" equals "$(status_of pvh_vmlinux)" 0

check "reboot: guest ran reboot" equals "$(guest_value reboot action)" reboot
check "reboot: status 4" equals "$(status_of reboot)" 4

check "panic: the kernel panicked" contains panic "Kernel panic"
check "panic: status 4 (panic=-1 reboots)" equals "$(status_of panic)" 4

check "shell: a command typed on the console ran in the guest" contains shell "the guest shell says 42"
check "shell: poweroff from the shell, status 0" equals "$(status_of shell)" 0

check "restart: the guest booted at least twice" at_least "$(count_of restart_sigterm '^GUEST action=reboot')" 2
check "restart: kasou said it restarted" contains restart_sigterm "restarting the guest (--on-reboot=restart)"
check "SIGTERM: stopped by SIGTERM" contains restart_sigterm "stopped by SIGTERM"
check "SIGTERM: status 8" equals "$(status_of restart_sigterm)" 8
check "SIGTERM: no kasou process left" contains restart_sigterm "processes named kasou after it ended: 0"

finish
