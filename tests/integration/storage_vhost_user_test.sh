#!/bin/bash
# kasou's vhost-user-blk export with QEMU as the front-end (software CPU, guest RAM in a shared
# memfd): virtio_smoke in one VM writes a fixed pattern through `kasou pool serve`, the serving
# process is restarted, and virtio_smoke in a second VM reads it back through an export added at
# run time with `kasou vol export --vhost-user`. Also: a front-end that disconnects and comes back
# is served again on the same socket, unexport removes the socket, and clear errors when nobody
# serves the pool or the socket is taken.
# Usage: storage_vhost_user_test.sh KASOU_BINARY VIRTIO_SMOKE_GUEST
set -euo pipefail

KASOU=$(realpath "$1")
GUEST=$(realpath "$2")
command -v qemu-system-x86_64 >/dev/null || { echo "skipped: needs qemu-system-x86_64"; exit 77; }
QBOOT=/usr/share/qemu/qboot.rom
[[ -f $QBOOT ]] || { echo "skipped: needs $QBOOT"; exit 77; }
WORK=$(mktemp -d /tmp/kasou-vhost-user.XXXXXX)
SERVER=""
cleanup() {
    if [[ -n "$SERVER" ]]; then kill -KILL "$SERVER" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK"
K() { "$KASOU" --state-dir "$WORK/state" "$@"; }
step() { echo "--- $*"; }
die() { echo "FAIL: $*" >&2; [[ -f serve.log ]] && cat serve.log >&2; exit 1; }
expect_fail() { # expect_fail TEXT COMMAND...: the command fails and says TEXT
    local text=$1; shift
    local out status=0
    out=$("$@" 2>&1) || status=$?
    [[ $status -ne 0 ]] || die "'$*' succeeded"
    grep -qF -- "$text" <<<"$out" || die "'$*' said '$out', expected '$text'"
}
serve() { # serve ARGS...: starts `kasou pool serve tank ARGS` and waits for its control socket
    "$KASOU" --state-dir "$WORK/state" pool serve tank "$@" >>serve.log 2>&1 &
    SERVER=$!
    for _ in $(seq 100); do [[ -S state/locks/tank.sock ]] && return 0; sleep 0.05; done
    die "pool serve did not start"
}
stop_server() {
    kill -TERM "$SERVER"
    wait "$SERVER" || die "pool serve exited with $?"
    SERVER=""
}
vm() { # vm SOCKET CMDLINE [DEVICE_OPTIONS]: virtio_smoke on QEMU with the vhost-user-blk disk
    local out status=0
    out=$(timeout 120 qemu-system-x86_64 -nodefaults -no-user-config -nographic -serial stdio -cpu max \
        -device isa-debug-exit,iobase=0xf4,iosize=4 -M q35,accel=tcg,memory-backend=mem \
        -object memory-backend-memfd,id=mem,size=128M,share=on -m 128M -bios "$QBOOT" -kernel "$GUEST" \
        -append "wait=poll expect=blk $2" -chardev "socket,id=c0,path=$1" \
        -device "vhost-user-blk-pci,chardev=c0,disable-legacy=on${3-}" </dev/null 2>&1) || status=$?
    echo "$out"
    [[ $status -eq 1 ]] || die "the VM exited with $status"
    grep -qx "virtio_smoke: all checks passed" <<<"$out" || die "virtio_smoke's checks did not pass"
}

truncate -s 256M disk.img
K pool create tank disk.img >/dev/null
K vol create tank/data --size 64M

step "nobody serves the pool yet"
expect_fail "start 'kasou pool serve tank' first" K vol export tank/data --vhost-user "$WORK/a.sock"

step "a VM writes through the export named at start, with two queues"
serve --vhost-user "data=a.sock" --queues 2
[[ -S a.sock ]] || die "no socket a.sock"
[[ $(stat -c %a a.sock) == 600 ]] || die "a.sock is not mode 0600"
out=$(vm "$WORK/a.sock" "blk_seed=4242" ",num-queues=2")
grep -qx 'virtio-blk: wrote 3 blocks of 4096 bytes at sectors 0, 65536, 131064 (indirect descriptors)' <<<"$out" || die "no writes"
grep -qx 'virtio-blk: serial "data"' <<<"$out" || die "serial is not the volume's name"

step "the same socket serves the next front-end"
vm "$WORK/a.sock" "blk_seed=4242 blk_verify=1" >/dev/null

step "a socket already exported is refused"
expect_fail "already a vhost-user export" K vol export tank/data --vhost-user "$WORK/a.sock"
expect_fail "has no volume 'nothing'" K vol export tank/nothing --vhost-user "$WORK/n.sock"

step "restart of the serving process; an export added at run time reads the data back"
stop_server
[[ ! -e a.sock ]] || die "a.sock left behind after the server stopped"
serve
K vol export tank/data --vhost-user b.sock
[[ -S b.sock ]] || die "no socket b.sock"
out=$(vm "$WORK/b.sock" "blk_seed=4242 blk_verify=1")
grep -qx 'virtio-blk: read back 3 blocks, all match' <<<"$out" || die "data not read back"

step "unexport removes the socket"
K vol unexport tank/data --vhost-user b.sock
[[ ! -e b.sock ]] || die "b.sock still there after unexport"
expect_fail "has no vhost-user export" K vol unexport tank/data
stop_server
echo "PASS"
