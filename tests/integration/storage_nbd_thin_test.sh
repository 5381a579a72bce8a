#!/bin/bash
# `kasou nbd serve` on thin volumes of a pool, driven by qemu-io, qemu-img, nbdinfo, nbdcopy and
# fio: thin allocation seen through base:allocation, a snapshot that keeps its content while the
# origin is written, data that survives a restart of the server, and a full pool grown online by
# `kasou pool add` while its volume is served, after which the writes that met ENOSPC go on.
# Usage: storage_nbd_thin_test.sh KASOU_BINARY
set -euo pipefail

KASOU=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=nbd_test_lib.sh
source "$HERE/nbd_test_lib.sh"

truncate -s 512M member0.disk
K pool create tank --layout linear "$WORK/member0.disk" >/dev/null
K vol create tank/vol0 --size 64M >/dev/null
head -c 8M /dev/urandom > source.raw

start_server tank/vol0
step "a new thin volume reads as zeroes and is one hole"
qemu_io "" "$(uri vol0)" "read -P 0 0 64M"
map=$(nbdinfo --map "$(uri vol0)")
[[ "$(awk '{print $3}' <<<"$map" | sort -u | tr -d '\n')" == "3" ]] || die "new volume not a hole: $map"

step "qemu-img convert in and compare; qemu-io pattern writes allocate"
qemu-img convert -n -f raw -O raw source.raw "$(uri vol0)"
qemu-img compare -f raw -F raw source.raw "$(uri vol0)" >/dev/null || die "compare after convert in"
qemu_io "" "$(uri vol0)" "write -P 0xa1 16M 1M" "read -P 0xa1 16M 1M" "write -P 0xa2 -f 32M 64k"
map=$(nbdinfo --map "$(uri vol0)")
grep -qE '^ +0 +[0-9]+ +0 +data' <<<"$map" || die "converted start not allocated: $map"
grep -q 'hole,zero' <<<"$map" || die "no hole left in a sparsely written volume: $map"
stop_server

step "snapshot; writes to the origin leave the snapshot unchanged"
K vol snapshot tank/vol0 tank/snap0 >/dev/null
start_server tank/vol0 tank/snap0
nbdinfo "$(uri snap0)" | grep 'is_read_only: true' || die "snapshot export is writable"
qemu_io "" "$(uri vol0)" "write -P 0xb1 16M 1M" "write -z 32M 64k" "discard 0 4M"
qemu_io "" "$(uri vol0)" "read -P 0xb1 16M 1M" "read -P 0 32M 64k" "read -P 0 0 4M"
qemu_io "-r" "$(uri snap0)" "read -P 0xa1 16M 1M" "read -P 0xa2 32M 64k"
qemu-img convert -f raw -O raw "$(uri snap0)" snap.raw
cmp -n 8388608 snap.raw source.raw || die "snapshot lost the converted data"

step "nbdcopy and fio verify on the origin, while the snapshot is served"
nbdcopy "$(uri snap0)" "$(uri vol0)"
qemu-img compare -f raw -F raw "$(uri snap0)" "$(uri vol0)" >/dev/null || die "nbdcopy snapshot -> origin differs"
fio --name=verify --ioengine=nbd --uri="$(uri vol0)" --rw=randwrite --bs=4k --size=8M --offset=40M \
    --iodepth=16 --verify=crc32c --do_verify=1 --verify_fatal=1 --output=fio.log >/dev/null 2>&1 \
    || die "fio verify: $(cat fio.log)"
qemu_io "-r" "$(uri snap0)" "read -P 0xa1 16M 1M" "read -P 0 40M 8M"
stop_server

step "everything written is there after a restart"
start_server tank/vol0 tank/snap0
qemu_io "-r" "$(uri snap0)" "read -P 0xa1 16M 1M" "read -P 0xa2 32M 64k"
qemu-img compare -f raw -F raw "$(uri snap0)" snap.raw >/dev/null || die "snapshot changed across a restart"
stop_server

step "a full pool grows online: writes meet ENOSPC, pool add while served, writes go on"
truncate -s 24M small0.disk
truncate -s 64M small1.disk
K pool create small --layout linear "$WORK/small0.disk" >/dev/null
K vol create small/big --size 128M >/dev/null
start_server small/big
full=$(qemu-io -f raw -c "write -P 0xc1 0 48M" "$(uri big)" 2>&1 || true)
grep -qi "No space left on device" <<<"$full" || die "a 48M write into a 24M pool did not fail with ENOSPC: $full"
qemu_io "-r" "$(uri big)" "read -P 0xc1 0 1M"
added=$(K pool add small "$WORK/small1.disk" 2>&1) || die "pool add while served: $added"
qemu_io "" "$(uri big)" "write -P 0xc1 0 48M" "read -P 0xc1 0 48M"
grep -q "grown by 1 disk" server.log || die "the server did not report growing the pool"
stop_server
K pool check small >/dev/null || die "pool check after growing online"
[[ "$(K pool status small --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["members"]))')" == 2 ]] \
    || die "the registry does not list the added disk"
start_server small/big
qemu_io "-r" "$(uri big)" "read -P 0xc1 0 48M"
stop_server

echo "PASS"
