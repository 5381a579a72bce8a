#!/bin/bash
# Debian's cloud kernel with its own virtio modules, under kasou inside the nested test host: every
# virtio device through the stock drivers (guest_devices.sh runs in the guest, virtio_devices_cases.sh
# in the host). Checks:
#   virtio-pci     the kernel binds virtio_blk, virtio_net, virtio_console, virtio_rng and the vsock
#                  transport to kasou's devices with no command-line options
#   virtio-blk     an ext4 image made here with mkfs.ext4 -d: the guest reads its file, writes a file
#                  and 2 MiB of random data, fstrims, syncs and unmounts; afterwards `e2fsck -fn` is
#                  clean and the host reads back exactly what the guest wrote; serial= reaches the
#                  guest, and queues=2 two request queues; a read-only disk refuses writes
#   virtio-net     the guest pings the host over the tap, MAC and offloads as negotiated
#   virtio-console console=hvc0 is the kernel console; a line typed into kasou's stdin reaches hvc0
#   virtio-vsock   echo guest→host (port 5000 → PATH_5000) and host→guest (CONNECT 52)
#   virtio-rng     the kernel's hw_random source, bytes from /dev/hwrng
# Usage: virtio_devices_test.sh KASOU_BINARY VSOCK_ECHO_BINARY (vsock_echo.c, built static)
set -euo pipefail

NESTED_DIR=$(cd "$(dirname "$0")" && pwd)
source "$NESTED_DIR/nested_test_lib.sh"
start_nested_test virtio-devices "$@"
VSOCK_ECHO=$HELPER

if ! command -v mkfs.ext4 >/dev/null || ! command -v debugfs >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q e2fsprogs >/dev/null
fi

KERNEL=$("$HARNESS" --print-kernel)
MODULES_DIR=$(ls -d "$(dirname "$KERNEL")"/../lib/modules/*/ | head -n1)
add_guest_modules "$MODULES_DIR" "$WORK/guest" virtio_pci virtio_blk virtio_net virtio_console virtio_rng \
    vmw_vsock_virtio_transport
build_guest_initramfs "$WORK/guest" "$WORK/guest.cpio.gz" "$VSOCK_ECHO=bin/vsock_echo" \
    "$NESTED_DIR/guest_devices.sh=guest_devices.sh"

# The guest's disks: ext4 holding one file, and a small raw disk attached read-only.
mkdir -p "$WORK/ext4-content"
echo "placed on the host by mkfs.ext4 -d" >"$WORK/ext4-content/hello.txt"
truncate -s 64M "$WORK/disk.img"
mkfs.ext4 -q -F -d "$WORK/ext4-content" "$WORK/disk.img"
truncate -s 1M "$WORK/ro.img"

E2FSCK=$(command -v e2fsck)
DEBUGFS=$(command -v debugfs)
run_in_nested_host --kasou "$KASOU" --host-module drivers/net/tun.ko --add "$KERNEL=/vmlinuz" \
    --add "$WORK/guest.cpio.gz=/guest.cpio.gz" --add "$WORK/disk.img=/disk.img" --add "$WORK/ro.img=/ro.img" \
    --add "$VSOCK_ECHO=/bin/vsock_echo" --binary "$E2FSCK=/bin/e2fsck" --binary "$DEBUGFS=/bin/debugfs" \
    --run "$NESTED_DIR/virtio_devices_cases.sh" --timeout 900

host_value() { # case, key: the value the nested host printed
    section "$1" | grep -a "^HOST $2=" | head -n1 | sed "s/^HOST $2=//"
}
feature_bit() { # features string (one '0'/'1' per bit), bit number
    echo "${1:$2:1}"
}

# Device IDs (virtio 1.2 section 5): 1 net, 2 block (twice), 3 console, 4 entropy, 19 vsock.
check "the kernel found every virtio device" equals "$(guest_value devices virtio_ids)" \
    "0x0001 0x0002 0x0002 0x0003 0x0004 0x0013 "
check "each device bound to Debian's driver" equals "$(guest_value devices virtio_drivers)" \
    "virtio_blk virtio_blk virtio_console virtio_net virtio_rng vmw_vsock_virtio_transport "

check "blk: the guest read the file made by mkfs.ext4 -d" equals "$(guest_value devices ext4_read)" \
    "placed on the host by mkfs.ext4 -d"
check "blk: serial= is the disk's serial" equals "$(guest_value devices vda_serial)" kasou-ext4
check "blk: queues=2 gives the guest two request queues" equals "$(guest_value devices vda_queues)" 2
check "blk: discard offered" at_least "$(guest_value devices vda_discard_max)" 1
check "blk: fstrim on the mounted filesystem" equals "$(guest_value devices fstrim)" ok
check "blk: unmounted cleanly" equals "$(guest_value devices ext4_unmounted)" yes
check "blk: e2fsck -fn finds the image clean" equals "$(host_value devices e2fsck_status)" 0
check "blk: the host reads the guest's file" equals "$(host_value devices guest_file)" "written by the guest over virtio-blk"
random_md5=$(guest_value devices random_md5)
check "blk: the guest wrote 2 MiB of random data" equals "${#random_md5}" 32
check "blk: the host reads back the same 2 MiB" equals "$(host_value devices random_md5)" "$random_md5"
check "blk: the read-only disk is read-only" equals "$(guest_value devices vdb_ro)" 1
check "blk: a write to the read-only disk fails" equals "$(guest_value devices vdb_write)" refused

check "rng: the kernel uses virtio_rng" equals "$(guest_value devices rng_current)" virtio_rng.0
check "rng: 64 bytes from /dev/hwrng" equals "$(guest_value devices hwrng_bytes)" 64

check "net: the MAC given on the command line" equals "$(guest_value devices eth0_mac)" 52:54:00:12:34:56
net_features=$(guest_value devices net_features)
check "net: checksum offload negotiated (VIRTIO_NET_F_CSUM)" equals "$(feature_bit "$net_features" 0)" 1
check "net: TSO negotiated (VIRTIO_NET_F_HOST_TSO4)" equals "$(feature_bit "$net_features" 11)" 1
check "net: mergeable receive buffers negotiated (VIRTIO_NET_F_MRG_RXBUF)" equals "$(feature_bit "$net_features" 15)" 1
check "net: 3 of 3 pings of 1400 bytes answered by the host" equals "$(guest_value devices ping_received)" 3

check "console: hvc0 is the kernel console" contains devices "GUEST consoles=.*hvc0"
check "console: a line typed into kasou reached hvc0" equals "$(guest_value devices hvc0_input)" "typed into hvc0"

check "vsock: guest to host echo through PATH_5000" equals "$(guest_value devices vsock_guest_to_host)" \
    "reply: hello from the guest"
check "vsock: host to guest echo through CONNECT 52" equals "$(host_value devices vsock_host_to_guest)" \
    "reply: hello from the host"
check "vsock: the guest's server saw its connection end" equals "$(guest_value devices vsock_server_done)" yes

check "the guest powered off: status 0" equals "$(status_of devices)" 0
finish
