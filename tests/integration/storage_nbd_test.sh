#!/bin/bash
# Interoperability of `kasou nbd serve` with real NBD clients: qemu-img, qemu-io, nbdinfo,
# nbdcopy, fio --ioengine=nbd, a hostile raw-socket client and SIGTERM with requests in flight.
# Usage: storage_nbd_test.sh KASOU_BINARY
set -euo pipefail

KASOU=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
RAW_CLIENT="$HERE/storage_nbd_raw_client.py"
# shellcheck source=nbd_test_lib.sh
source "$HERE/nbd_test_lib.sh"

# byte_values FILE BLOCK INDEX: the distinct byte values (hex, concatenated) of block INDEX.
byte_values() {
    dd if="$1" bs="$2" skip="$3" count=1 status=none | od -An -v -tx1 | tr -s ' ' '\n' | grep -v '^$' | sort -u | tr -d '\n'
}

truncate -s 64M disk.img
truncate -s 32M second.img
head -c 24M /dev/urandom > source.raw

start_server --file disk.img --file other="$WORK/second.img"

step "qemu-img info"
info=$(qemu-img info --output=json "$(uri disk.img)")
grep -q '"virtual-size": 67108864' <<<"$info" || die "qemu-img info: $info"
info=$(qemu-img info --output=json "$(uri other)")
grep -q '"virtual-size": 33554432' <<<"$info" || die "qemu-img info other: $info"

step "nbdinfo --list names both exports"
list=$(nbdinfo --list "nbd+unix:///?socket=$WORK/nbd.sock")
grep -q 'export="disk.img"' <<<"$list" || die "nbdinfo --list: $list"
grep -q 'export="other"' <<<"$list" || die "nbdinfo --list: $list"
grep -q 'can_multi_conn: true' <<<"$list" || die "nbdinfo --list: $list"

step "qemu-img convert in, compare"
qemu-img convert -n -f raw -O raw source.raw "$(uri disk.img)"
qemu-img compare -f raw -F raw source.raw "$(uri disk.img)" >/dev/null || die "compare after convert in"
cmp -n $((24 * 1024 * 1024)) source.raw disk.img || die "disk.img differs from source.raw"

step "qemu-img convert out to qcow2 and raw, compare"
qemu-img convert -f raw -O qcow2 "$(uri disk.img)" out.qcow2
qemu-img compare -f qcow2 -F raw out.qcow2 "$(uri disk.img)" >/dev/null || die "compare after convert out"
qemu-img convert -f raw -O raw "$(uri disk.img)" out.raw
cmp out.raw disk.img || die "convert out differs"

step "qemu-io pattern writes and reads, write -z, discard"
qemu_io "" "$(uri disk.img)" "write -P 0x5a 1M 256k" "read -P 0x5a 1M 256k" \
    "write -z 1M 64k" "read -P 0 1M 64k" "read -P 0x5a 1088k 192k" \
    "write -P 0x33 30M 1M" "discard 30M 512k" "read -P 0 30M 512k" "read -P 0x33 31232k 512k" \
    "write -P 0x77 -f 40M 4k" "flush" "read -P 0x77 40M 4k"
[[ "$(byte_values disk.img 4k 10240)" == "77" ]] \
    || die "the FUA write is not in the file"

step "nbdinfo --map reports holes and data (base:allocation)"
map=$(nbdinfo --map "$(uri other)")
[[ "$(awk '{print $3}' <<<"$map" | sort -u | tr -d '\n')" == "3" ]] || die "an empty image should be one hole: $map"
qemu_io "" "$(uri other)" "write -P 0x11 4M 1M"
map=$(nbdinfo --map "$(uri other)")
grep -qE '^ +4194304 +1048576 +0 +data' <<<"$map" || die "written range not reported as data: $map"
grep -qE '^ +0 +4194304 +3 +hole,zero' <<<"$map" || die "unwritten range not reported as a hole: $map"
qemu_io "" "$(uri other)" "discard 4M 1M"
map=$(nbdinfo --map "$(uri other)")
[[ "$(awk '{print $3}' <<<"$map" | sort -u | tr -d '\n')" == "3" ]] || die "discarded range still allocated: $map"

step "nbdcopy in and out"
nbdcopy source.raw "$(uri other)"
nbdcopy "$(uri other)" copy.raw
cmp -n $((24 * 1024 * 1024)) source.raw copy.raw || die "nbdcopy round trip differs"
[[ $(stat -c %s copy.raw) -eq $((32 * 1024 * 1024)) ]] || die "nbdcopy out has the wrong size"

step "fio --ioengine=nbd with verify, queue depth 16"
fio --name=verify --ioengine=nbd --uri="$(uri disk.img)" --rw=randwrite --bs=4k --size=16M \
    --iodepth=16 --verify=crc32c --do_verify=1 --verify_fatal=1 --output=fio-verify.log >/dev/null 2>&1 \
    || die "fio verify: $(cat fio-verify.log)"

step "several connections at once: 4 fio jobs with verify, and qemu-io on the other export"
fio --name=multi --ioengine=nbd --uri="$(uri disk.img)" --rw=randrw --bs=64k --size=8M \
    --numjobs=4 --offset_increment=8M --iodepth=8 --verify=md5 --do_verify=1 --verify_fatal=1 \
    --output=fio-multi.log >/dev/null 2>&1 &
FIO_PID=$!
for i in 1 2 3 4; do
    qemu_io "" "$(uri other)" "write -P 0x4$i $((i * 2))M 1M" "read -P 0x4$i $((i * 2))M 1M" &
done
wait %2 %3 %4 %5 || die "a concurrent qemu-io failed"
wait $FIO_PID || die "concurrent fio jobs: $(cat fio-multi.log)"

step "hostile raw-socket clients close only their own connection"
for case in bad-client-flags bad-option-magic huge-option unknown-option bad-request-magic \
    unknown-command oversized-write out-of-range truncated-write; do
    python3 "$RAW_CLIENT" "$WORK/nbd.sock" hostile "$case" || die "hostile case $case"
    qemu_io "" "$(uri disk.img)" "read -P 0x77 40M 4k"
done
grep -q "bad request magic" server.log || die "bad magic not logged"
grep -q "unknown command type" server.log || die "unknown command not logged"
kill -0 "$SERVER_PID" || die "the server died"

step "SIGTERM with requests in flight: all answered, clean exit"
python3 "$RAW_CLIENT" "$WORK/nbd.sock" inflight 48 "$WORK/server.pid" || die "in-flight writes"
status=0
wait "$SERVER_PID" || status=$?
SERVER_PID=""
[[ $status -eq 0 ]] || die "server exit status $status after SIGTERM"
for i in 0 17 47; do
    expected=$(printf '%02x' $((i % 251 + 1)))
    got=$(byte_values disk.img 256k $i)
    [[ "$got" == "$expected" ]] || die "in-flight write $i not on disk (got $got)"
done
[[ ! -e nbd.sock ]] || die "socket left behind"

step "read-only export refuses writes"
start_server --file disk.img --read-only
python3 "$RAW_CLIENT" "$WORK/nbd.sock" read-only || die "read-only export"
out=$(qemu-io -r -f raw -c "read -P 0x77 40M 4k" "$(uri disk.img)" 2>&1) || die "read from a read-only export: $out"
grep -q "Pattern verification failed" <<<"$out" && die "read from a read-only export: $out"
stop_server

step "io_uring engine"
start_server --file disk.img --engine uring
qemu_io "" "$(uri disk.img)" "write -P 0x99 8M 1M" "read -P 0x99 8M 1M"
fio --name=uring --ioengine=nbd --uri="$(uri disk.img)" --rw=randwrite --bs=4k --size=4M \
    --iodepth=16 --verify=crc32c --do_verify=1 --verify_fatal=1 --output=fio-uring.log >/dev/null 2>&1 \
    || die "fio verify with io_uring: $(cat fio-uring.log)"
stop_server

echo "PASS"
