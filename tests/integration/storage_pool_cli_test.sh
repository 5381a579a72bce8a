#!/bin/bash
# `kasou pool` and `kasou vol` as a user drives them, on image files: the three layouts, raw
# import and export (with qemu-img compare as the judge), snapshots and clones, resize and rm,
# the pool lock and the claim on each member disk, a mirror that loses a disk and is repaired,
# import of a pool from its disks alone, and clear errors for bad input (one disk under two names,
# an unusable state directory, a pool too small to hold data); names beyond ASCII.
# Usage: storage_pool_cli_test.sh KASOU_BINARY
set -euo pipefail

KASOU=$(realpath "$1")
WORK=$(mktemp -d /tmp/kasou-pool-cli.XXXXXX)
HOLDER=""
LOOP=""
cleanup() {
    if [[ -n "$HOLDER" ]]; then kill -KILL "$HOLDER" 2>/dev/null || true; fi
    if [[ -n "$LOOP" ]]; then losetup -d "$LOOP" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK"
K() { "$KASOU" --state-dir "$WORK/state" "$@"; }
source "$(dirname "${BASH_SOURCE[0]}")/cli_test_lib.sh"

truncate -s 48M a.img b.img c.img d.img e.img f.img
# An image with data, a hole and a zero-filled block.
head -c 3M /dev/urandom > image.raw
head -c 1M /dev/zero >> image.raw
head -c 2M /dev/urandom >> image.raw
truncate -s 10M image.raw

step "help teaches"
K pool --help | grep "Examples:" || die "pool --help has no examples"
K vol --help | grep "kasou vol snapshot" || die "vol --help has no examples"
K pool create --help | grep -- "--layout" || die "pool create --help lacks --layout"

step "bad input is refused with the reason"
expect_fail "unknown layout 'raid5'" K pool create bad --layout raid5 a.img
expect_fail "stripe chunk size" K pool create bad --layout striped --chunk 3000 a.img b.img
expect_fail "a mirror has 2 or 3 copies" K pool create bad --layout mirror a.img b.img c.img d.img
expect_fail "no pool named 'nothere'" K pool status nothere
expect_fail "is not POOL/VOLUME" K vol create justaname --size 1M

step "one disk under two names is refused, and left untouched"
truncate -s 48M same.img
ln same.img same-link.img
ln -s same.img same-symlink.img
zero_head() { cmp -s -n 65536 "$1" /dev/zero || die "a refused command wrote $1"; }
expect_fail "disks a.img and a.img are the same disk" K pool create bad a.img a.img
expect_fail "disks same.img and ./same.img are the same disk" K pool create bad same.img ./same.img
expect_fail "disks same.img and same-link.img are the same disk" K pool create bad same.img same-link.img
expect_fail "disks same.img and $WORK/same-symlink.img are the same disk" K pool create bad --layout mirror same.img "$WORK/same-symlink.img"
expect_fail "are the same disk" K pool create bad --layout striped --force b.img same-link.img same.img
# A loop device is the file it is bound to (when this host lets us make one).
if LOOP=$(losetup -f --show same.img 2>/dev/null); then
    expect_fail "disks same.img and $LOOP are the same disk" K pool create bad same.img "$LOOP"
    losetup -d "$LOOP"; LOOP=""
fi
zero_head same.img
[[ ! -e state/pools.json ]] || ! grep -q '"bad"' state/pools.json || die "a refused pool was registered"

step "the state directory must be usable before anything is written"
status=0; out=$("$KASOU" --state-dir "" pool create bad same.img 2>&1) || status=$?
[[ $status -eq 2 ]] || die "--state-dir '' exited $status: $out"
grep -qF "the state directory is empty" <<<"$out" || die "--state-dir '' said: $out"
expect_fail "the state directory is empty" "$KASOU" --state-dir "" pool ls
touch not-a-dir
expect_fail "state directory $WORK/not-a-dir/state cannot be used" "$KASOU" --state-dir not-a-dir/state pool create bad same.img
zero_head same.img

step "a pool too small to hold data after its metadata is refused, naming the sizes"
truncate -s 700K tiny.img
expect_fail "pool tiny would be too small: its disks leave 589824 bytes after their headers, and a pool needs at least 720896" K pool create tiny tiny.img
zero_head tiny.img
truncate -s 640K tiny-a.img tiny-b.img
expect_fail "would be too small" K pool create tiny --layout mirror tiny-a.img tiny-b.img
zero_head tiny-a.img
truncate -s 768K just.img
K pool create just just.img >/dev/null
K vol create just/v --size 64K
head -c 64K /dev/urandom > chunk.raw
K vol import just/v chunk.raw || die "the smallest pool allowed cannot hold a chunk of data"
K pool destroy just --force

step "names beyond ASCII print as they are"
truncate -s 48M tänk.img
K pool create tänk tänk.img | grep -qF "created pool tänk" || die "pool tänk was not created"
K vol create tänk/ボリューム --size 1M
K vol ls tänk | grep -qF "tänk/ボリューム " || die "vol ls mangled the name: $(K vol ls tänk)"
K vol ls tänk --json | python3 -c 'import json,sys; v=json.load(sys.stdin); assert v[0]["name"] == "tänk/ボリューム", v'
expect_fail "pool tänk already has a volume 'ボリューム'" K vol create tänk/ボリューム --size 1M
expect_fail "pool tänk has no volume 'ünknown'" K vol export tänk/ünknown out.raw
expect_fail "contains the control character U+0007" K vol create "tänk/a$(printf '\a')b" --size 1M
expect_fail "contains ' '" K vol create "tänk/a b" --size 1M
expect_fail "is not valid UTF-8" K vol create "tänk/a$(printf '\xff')" --size 1M
expect_fail "disks tänk.img and ./tänk.img are the same disk" K pool create other tänk.img ./tänk.img
K pool destroy tänk --force
truncate -s 48M "$(printf 'bad\xff.img')"
expect_fail "is not valid UTF-8 (byte 0xff at offset 3), and the registry can record only UTF-8" K pool create bytes "$(printf 'bad\xff.img')"
zero_head "$(printf 'bad\xff.img')"

for layout in linear striped mirror; do
    step "$layout pool: import, export, snapshot, clone"
    case $layout in
        linear) disks="a.img b.img" ;;
        striped) disks="c.img d.img" ;;
        mirror) disks="e.img f.img" ;;
    esac
    K pool create "p$layout" --layout "$layout" --chunk 32K $disks >/dev/null
    K vol import "p$layout/img" image.raw 2>progress.txt
    [[ ! -s progress.txt ]] || die "a progress bar was drawn on a non-terminal: $(cat progress.txt)"
    K vol export "p$layout/img" out.raw
    qemu-img compare -q -f raw -F raw image.raw out.raw || die "exported image differs"
    allocated=$(K vol ls "p$layout" --json | python3 -c 'import json,sys; print([v for v in json.load(sys.stdin) if v["name"].endswith("/img")][0]["allocated"])')
    [[ $allocated -eq $((5 * 1024 * 1024)) ]] || die "import allocated $allocated bytes, expected 5 MiB (zeroes and holes take none)"
    K vol snapshot "p$layout/img" "p$layout/monday"
    head -c 10M /dev/urandom > other.raw
    K vol import "p$layout/img" other.raw
    K vol export "p$layout/monday" out.raw
    qemu-img compare -q -f raw -F raw image.raw out.raw || die "the snapshot changed when its origin was written"
    K vol export "p$layout/img" out.raw
    qemu-img compare -q -f raw -F raw other.raw out.raw || die "the origin does not hold what was written"
    K vol clone "p$layout/monday" "p$layout/test"
    K vol export "p$layout/test" out.raw
    qemu-img compare -q -f raw -F raw image.raw out.raw || die "the clone does not start as the snapshot"
    expect_fail "read-only snapshot" K vol import "p$layout/monday" other.raw
    K pool check "p$layout" | grep "is clean" || die "pool check is not clean"
done

step "listing, resize, rm"
K vol ls plinear | grep "plinear/monday .*snapshot" || die "vol ls does not show the snapshot"
K vol ls --json | python3 -c 'import json,sys; v=json.load(sys.stdin); assert len(v) == 9, len(v)'
K vol resize plinear/test --size 4M
K vol export plinear/test out.raw
[[ $(stat -c %s out.raw) -eq $((4 * 1024 * 1024)) ]] || die "resize did not shrink the volume"
cmp -n 4194304 image.raw out.raw || die "shrinking changed the data kept"
K vol rm plinear/test
K vol rm plinear/monday
expect_fail "has no volume 'test'" K vol export plinear/test out.raw
used=$(K pool status plinear --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["used"])')
[[ $used -le $((10 * 1024 * 1024)) ]] || die "removed volumes still use space ($used bytes)"

step "progress bar on a terminal"
terminal=$(script -qec "$KASOU --state-dir $WORK/state vol export plinear/img out.raw" /dev/null || true)
grep -qF "export [" <<<"$terminal" || die "no progress bar on a terminal: $terminal"

step "one process at a time"
K vol create plinear/served --size 8M
K vol export plinear/img before.raw
"$KASOU" --state-dir "$WORK/state" nbd serve plinear/served --unix "$WORK/nbd.sock" 2>/dev/null &
HOLDER=$!
for _ in $(seq 100); do [[ -S nbd.sock ]] && break; sleep 0.05; done
expect_fail "pool plinear is in use by pid $HOLDER" K vol ls plinear

step "a member of a running pool is refused by every writer, --force or not"
ln b.img b-link.img
in_use="is in use by a running pool: it is a member of pool 'plinear'"
expect_fail "disk a.img $in_use" K pool create --force stolen a.img
expect_fail "disk b-link.img $in_use" K pool create --force stolen --layout mirror e.img b-link.img
expect_fail "disk a.img $in_use" "$KASOU" --state-dir "$WORK/elsewhere" pool create --force stolen a.img
expect_fail "disk a.img $in_use" "$KASOU" --state-dir "$WORK/elsewhere" pool import a.img b.img
expect_fail "a.img is in use" "$KASOU" nbd serve --file "$WORK/a.img" --unix "$WORK/other.sock"
expect_fail "b-link.img is in use" "$KASOU" nbd serve --file b-link.img --read-only --unix "$WORK/other.sock"
expect_fail "a.img is in use" K vol export pmirror/img a.img
printf '\xf4' > hlt.bin # refused before the guest runs, so any kernel will do
expect_fail "--disk a.img: a.img is in use" "$KASOU" run --kernel hlt.bin --flat --disk a.img
expect_fail "--disk b.img: b.img is in use" "$KASOU" run --kernel hlt.bin --flat --disk b.img,ro
kill -TERM "$HOLDER"
status=0; wait "$HOLDER" || status=$?; HOLDER=""
[[ $status -eq 0 ]] || die "the server holding the pool did not stop cleanly on SIGTERM ($status)"
K vol ls plinear >/dev/null
K vol export plinear/img out.raw
qemu-img compare -q -f raw -F raw before.raw out.raw || die "a refused writer changed the served pool"
K pool check plinear | grep "is clean" || die "a refused writer left the served pool unclean"

step "a mirror loses a disk, keeps its data, and is repaired"
rm f.img
K pool status pmirror | grep "FAILED" || die "the missing disk is not shown as failed"
status=0; K pool check pmirror >check.txt || status=$?
[[ $status -eq 1 ]] || die "pool check of a degraded pool exited $status"
grep -q "degraded" check.txt || die "pool check did not say the pool is degraded"
K vol export pmirror/img out.raw
qemu-img compare -q -f raw -F raw other.raw out.raw || die "degraded mirror lost data"
truncate -s 48M spare.img
ln e.img e-link.img
expect_fail "disk e-link.img is already member 0 of pool pmirror" K pool repair pmirror --replace "$WORK/f.img" --with e-link.img
K pool repair pmirror --replace "$WORK/f.img" --with spare.img | grep "1 member(s) resynchronized" || die "repair did not resynchronize"
K pool check pmirror | grep "is clean" || die "repaired pool is not clean"
rm e.img
K vol export pmirror/monday out.raw
qemu-img compare -q -f raw -F raw image.raw out.raw || die "the repaired copy alone does not hold the data"

step "a pool is found again from its disks alone"
rm state/pools.json
expect_fail "no pool named 'pstriped'" K vol ls pstriped
ln c.img c-link.img
expect_fail "disks c.img and c-link.img are the same disk" K pool import c.img d.img c-link.img
K pool import c.img d.img | grep "imported pool pstriped" || die "import did not find pstriped"
K vol export pstriped/monday out.raw
qemu-img compare -q -f raw -F raw image.raw out.raw || die "imported pool lost its snapshot"

step "growing and destroying"
truncate -s 32M g.img
expect_fail "disk $WORK/d.img is already member 1 of pool pstriped" K pool add pstriped g.img ./d.img
expect_fail "are the same disk" K pool add pstriped g.img "$WORK/g.img"
K pool add pstriped g.img
K pool status pstriped | grep "segment 1: linear" || die "the added disk is not a new segment"
expect_fail "still has" K pool destroy pstriped
K pool destroy pstriped --force
expect_fail "not a kasou pool member" K pool import c.img d.img

step "a superblock crafted with a valid CRC-32C is refused by every command, without a crash"
# craft_superblock OFFSET VALUE DISKS...: sets the u32 at OFFSET of both superblock slots of each
# disk and recomputes the slot's CRC-32C, as anyone can.
craft_superblock() {
    python3 - "$@" <<'PY'
import struct, sys
table = []
for i in range(256):
    v = i
    for _ in range(8):
        v = (v >> 1) ^ 0x82F63B78 if v & 1 else v >> 1
    table.append(v)
def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF
offset, value = int(sys.argv[1]), int(sys.argv[2], 0)
for path in sys.argv[3:]:
    with open(path, 'r+b') as f:
        for slot in (0, 1):
            f.seek(4096 * (1 + slot))
            block = bytearray(f.read(4096))
            struct.pack_into('<I', block, offset, value)
            struct.pack_into('<I', block, 8, 0)
            struct.pack_into('<I', block, 8, crc32c(bytes(block)))
            f.seek(4096 * (1 + slot))
            f.write(block)
PY
}
# refused TEXT ARGS...: `kasou ARGS` exits non-zero, not by a signal, and says TEXT.
refused() {
    local text=$1; shift
    local out status=0
    out=$(timeout 60 "$KASOU" --state-dir "$WORK/state" "$@" 2>&1) || status=$?
    [[ $status -ne 0 ]] || die "'$*' accepted a crafted superblock"
    [[ $status -lt 124 ]] || die "'$*' ended with status $status (a signal or a hang): $out"
    grep -qF -- "$text" <<<"$out" || die "'$*' said '$out', expected '$text'"
}
# Superblock: header 16, generation 8, pool uuid 16, name 64, volume table 8, next volume id 8,
# member count at 120, segment count 124, 32 members of 32 bytes from 128, then 32 segments of
# 32 bytes from 1152 (kind, first member, width, ...): segment 1's first member is at 1188.
n=0
for craft in "1188 7 segment 1 names member 7, but the pool has 2 members" \
             "120 0x40000000 member count 1073741824 is not from 1 to 32"; do
    read -r offset value text <<<"$craft"
    n=$((n + 1))
    truncate -s 16M "h$n.img" "i$n.img"
    K pool create "pcrafted$n" "h$n.img" "i$n.img" >/dev/null
    K vol create "pcrafted$n/v" --size 1M >/dev/null
    craft_superblock "$offset" "$value" "h$n.img" "i$n.img"
    refused "pool superblock: $text" pool import "h$n.img" "i$n.img"
    refused "pool superblock: $text" pool check "pcrafted$n"
    refused "pool superblock: $text" pool status "pcrafted$n"
    refused "pool superblock: $text" vol ls "pcrafted$n"
    refused "pool superblock: $text" nbd serve "pcrafted$n/v" --unix "$WORK/crafted.sock"
done

echo "PASS"
