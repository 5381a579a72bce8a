#!/bin/bash
# `kasou pool` and `kasou vol` as a user drives them, on image files: the three layouts, raw
# import and export (with qemu-img compare as the judge), snapshots and clones, resize and rm,
# the pool lock, a mirror that loses a disk and is repaired, import of a pool from its disks
# alone, and clear errors for bad input.
# Usage: storage_pool_cli_test.sh KASOU_BINARY
set -euo pipefail

KASOU=$(realpath "$1")
WORK=$(mktemp -d /tmp/kasou-pool-cli.XXXXXX)
HOLDER=""
cleanup() {
    if [[ -n "$HOLDER" ]]; then kill -KILL "$HOLDER" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK"
K() { "$KASOU" --state-dir "$WORK/state" "$@"; }
step() { echo "--- $*"; }
die() { echo "FAIL: $*" >&2; exit 1; }
expect_fail() { # expect_fail TEXT COMMAND...: the command fails and says TEXT
    local text=$1; shift
    local out status=0
    out=$("$@" 2>&1) || status=$?
    [[ $status -ne 0 ]] || die "'$*' succeeded"
    grep -qF -- "$text" <<<"$out" || die "'$*' said '$out', expected '$text'"
}

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
expect_fail "given twice" K pool create bad a.img a.img

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
"$KASOU" --state-dir "$WORK/state" nbd serve plinear/served --unix "$WORK/nbd.sock" 2>/dev/null &
HOLDER=$!
for _ in $(seq 100); do [[ -S nbd.sock ]] && break; sleep 0.05; done
expect_fail "pool plinear is in use by pid $HOLDER" K vol ls plinear
kill -TERM "$HOLDER"
status=0; wait "$HOLDER" || status=$?; HOLDER=""
[[ $status -eq 0 ]] || die "the server holding the pool did not stop cleanly on SIGTERM ($status)"
K vol ls plinear >/dev/null

step "a mirror loses a disk, keeps its data, and is repaired"
rm f.img
K pool status pmirror | grep "FAILED" || die "the missing disk is not shown as failed"
status=0; K pool check pmirror >check.txt || status=$?
[[ $status -eq 1 ]] || die "pool check of a degraded pool exited $status"
grep -q "degraded" check.txt || die "pool check did not say the pool is degraded"
K vol export pmirror/img out.raw
qemu-img compare -q -f raw -F raw other.raw out.raw || die "degraded mirror lost data"
truncate -s 48M spare.img
K pool repair pmirror --replace "$WORK/f.img" --with spare.img | grep "1 member(s) resynchronized" || die "repair did not resynchronize"
K pool check pmirror | grep "is clean" || die "repaired pool is not clean"
rm e.img
K vol export pmirror/monday out.raw
qemu-img compare -q -f raw -F raw image.raw out.raw || die "the repaired copy alone does not hold the data"

step "a pool is found again from its disks alone"
rm state/pools.json
expect_fail "no pool named 'pstriped'" K vol ls pstriped
K pool import c.img d.img | grep "imported pool pstriped" || die "import did not find pstriped"
K vol export pstriped/monday out.raw
qemu-img compare -q -f raw -F raw image.raw out.raw || die "imported pool lost its snapshot"

step "growing and destroying"
truncate -s 32M g.img
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
