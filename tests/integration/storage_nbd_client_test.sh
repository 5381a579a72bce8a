#!/bin/bash
# The NBD client disk (`--disk nbd:URI`) against qemu-nbd and `kasou nbd serve` over TCP and Unix
# sockets, checked with qemu-io and nbdcopy; then pool volumes shared through `kasou pool serve`:
# auto-start, two users at once, one server for racing users, exit after the last user, a server
# started by hand stays, a crashed server is restarted by the next user.
# The disk user is nbd_disk_probe, which opens disks exactly as `kasou run` does, without a VM.
# Usage: storage_nbd_client_test.sh KASOU_BINARY NBD_DISK_PROBE
set -euo pipefail

KASOU=$(realpath "$1")
PROBE=$(realpath "$2")
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=nbd_test_lib.sh
source "$HERE/nbd_test_lib.sh"

probe() { "$PROBE" "$KASOU" "$WORK/state" "$@"; }
QEMU_PID=""
stop_qemu() { [[ -n "$QEMU_PID" ]] && kill "$QEMU_PID" 2>/dev/null && wait "$QEMU_PID" 2>/dev/null; QEMU_PID=""; return 0; }
wait_for() { for _ in $(seq 200); do eval "$1" && return 0; sleep 0.05; done; die "timed out waiting for: $1"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

truncate -s 16M q.img
step "qemu-nbd over a Unix socket: written through the client, read back by qemu-io"
qemu-nbd -f raw -k "$WORK/q.sock" -x disk --persistent q.img & QEMU_PID=$!
wait_for "[[ -S q.sock ]]"
probe "nbd:nbd+unix:///disk?socket=$WORK/q.sock" write 1048576 262144 5a fua 2097152 4096 77 zero 1048576 65536 flush \
    read 1114112 196608 5a || die "client writes to qemu-nbd"
qemu_io -r "nbd+unix:///disk?socket=$WORK/q.sock" "read -P 0x5a 1088k 192k" "read -P 0 1M 64k" "read -P 0x77 2M 4k"
stop_qemu

step "qemu-nbd over TCP, read-only: reads work, writes fail with a clear error"
port=$(free_port)
qemu-nbd -f raw -r -b 127.0.0.1 -p "$port" -x disk --persistent q.img & QEMU_PID=$!
wait_for "probe nbd:nbd://127.0.0.1:$port/disk size >/dev/null 2>&1"
probe "nbd:nbd://127.0.0.1:$port/disk" read 2097152 4096 77 || die "read from read-only qemu-nbd"
if out=$(probe "nbd:nbd://127.0.0.1:$port/disk" write 0 4096 11 2>&1); then die "a write to a read-only export succeeded"; fi
grep -q "read-only" <<<"$out" || die "no read-only error: $out"
stop_qemu

step "kasou nbd serve over TCP: nbdcopy sees what the client wrote"
truncate -s 8M k.img
port=$(free_port)
"$KASOU" nbd serve --file disk=k.img --tcp "127.0.0.1:$port" 2>server.log & SERVER_PID=$!
wait_for "probe nbd:nbd://127.0.0.1:$port/disk size >/dev/null 2>&1"
probe "nbd:nbd://127.0.0.1:$port/disk" write 0 8388608 3c zero 4096 4096 || die "client writes to kasou nbd serve"
nbdcopy "nbd://127.0.0.1:$port/disk" copy.raw
stop_server
cmp copy.raw k.img || die "nbdcopy read differs from the file"
[[ "$(od -An -tx1 -j 4096 -N 1 k.img | tr -d ' ')" == "00" && "$(od -An -tx1 -j 8192 -N 1 k.img | tr -d ' ')" == "3c" ]] \
    || die "write and zeroes not in the file"

step "pool volumes: the first user starts the pool's server, a second user shares it"
truncate -s 256M member.img
K pool create tank --layout linear "$WORK/member.img" >/dev/null
K vol create tank/a --size 16M
K vol create tank/b --size 16M
probe vol:tank/a write 0 65536 a1 wait "$WORK/go" read 0 65536 a1 >first.err 2>&1 & FIRST=$!
wait_for "[[ -S state/locks/tank.nbd.sock ]]"
server_pid=$(cat state/locks/tank.lock)
probe vol:tank/b write 0 65536 b2 read 0 65536 b2 >second.err 2>&1 || die "second user: $(cat second.err)"
grep -q "starting its server" second.err && die "the second user started another server"
kill -0 "$server_pid" || die "the server left while the first user still uses it"
touch go
wait "$FIRST" || die "first user: $(cat first.err)"
grep -q "starting its server" first.err || die "the first user did not start the server"
step "after the last user the auto-started server is gone and the pool is free"
# (Its pid may linger as a zombie where init does not reap; the socket and the pool lock tell.)
[[ ! -e state/locks/tank.nbd.sock ]] || die "the auto-started server outlived its last user"
K vol export tank/a a.raw
[[ "$(od -An -tx1 -N 1 a.raw | tr -d ' ')" == "a1" ]] || die "tank/a does not hold the first user's write"

step "two users racing start one server"
rm -f go
probe vol:tank/a wait "$WORK/go" read 0 65536 a1 >race1.err 2>&1 & R1=$!
probe vol:tank/b wait "$WORK/go" read 0 65536 b2 >race2.err 2>&1 & R2=$!
wait_for "[[ -S state/locks/tank.nbd.sock ]]"
touch go
wait "$R1" || die "racer 1: $(cat race1.err)"
wait "$R2" || die "racer 2: $(cat race2.err)"
[[ $(cat race1.err race2.err | grep -c "starting its server") == 1 ]] || die "racing users started $(cat race1.err race2.err)"

step "a server started by hand stays after its users leave"
"$KASOU" --state-dir "$WORK/state" pool serve tank 2>hand.log & HAND=$!
wait_for "[[ -S state/locks/tank.nbd.sock ]]"
probe vol:tank/b read 0 65536 b2 >hand_user.err 2>&1 || die "user of the hand-started server: $(cat hand_user.err)"
grep -q "starting its server" hand_user.err && die "a server was started although one runs"
sleep 0.5
kill -0 "$HAND" || die "the hand-started server left with its last user"
kill -TERM "$HAND"; wait "$HAND" || die "the hand-started server failed: $(cat hand.log)"

step "a crashed server: its user gets I/O errors, the next user starts a new one"
rm -f go
probe vol:tank/a read 0 4096 a1 wait "$WORK/go" read 0 4096 a1 >crash.err 2>&1 & VICTIM=$!
wait_for "[[ -S state/locks/tank.nbd.sock ]]"
wait_for "grep -q 'structured replies' crash.err"
kill -KILL "$(cat state/locks/tank.lock)"
touch go
if wait "$VICTIM"; then die "reads after the server crashed succeeded"; fi
grep -q "connection" crash.err || die "no clear error after the crash: $(cat crash.err)"
probe vol:tank/a read 0 65536 a1 >after.err 2>&1 || die "after the crash: $(cat after.err)"
grep -q "starting its server" after.err || die "no new server after the crash"
K pool check tank >/dev/null || die "pool check after the crash"
echo "PASS"
