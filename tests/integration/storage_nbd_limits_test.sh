#!/bin/bash
# Clients that try to hold `kasou nbd serve` hostage, against a real server: pipelined long reads
# whose replies are never read (memory stays within --max-memory, others are still served), a
# flood of connections that never finish the handshake (closed at --handshake-timeout, a good
# client gets in), large writes (their buffers are given back), clients that never read replies
# (--send-timeout), idle connections (--idle-timeout).
# Usage: storage_nbd_limits_test.sh KASOU_BINARY [CASE...]
# (cases: reads writes send-timeout handshake handshake-default idle options; all by default)
set -euo pipefail

KASOU=$(realpath "$1")
shift
CASES=("$@")
[[ ${#CASES[@]} -gt 0 ]] || CASES=(reads writes send-timeout handshake handshake-default idle options)
HERE=$(cd "$(dirname "$0")" && pwd)
FLOOD="$HERE/storage_nbd_flood_client.py"
# shellcheck source=nbd_test_lib.sh
source "$HERE/nbd_test_lib.sh"

# status_kib FIELD: VmRSS, VmHWM, ... of the server, in KiB.
status_kib() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$SERVER_PID/status"; }

truncate -s 64M disk.img
qemu-io -f raw -c "write -P 0x42 1M 64k" disk.img >/dev/null

case_reads() {
step "pipelined 32 MiB reads never read: memory stays within --max-memory, others are served"
start_server --file disk.img --max-memory 64M --send-timeout 600
coproc FLOODER { python3 "$FLOOD" "$WORK/nbd.sock" read-flood 6 8; }
flood_pid=$FLOODER_PID
read -r -t 30 line <&"${FLOODER[0]}" || die "the read flood did not start"
[[ $line == ready ]] || die "read flood: $line"
sleep 2 # let every worker of the flooding connections take its requests
for _ in 1 2 3; do
    timeout 10 qemu-io -f raw -c "read -P 0x42 1M 64k" -c "read 30M 32M" "$(uri disk.img)" >qemu-io.log 2>&1 \
        || die "a good client was not served during the read flood: $(cat qemu-io.log)"
    grep -qiE "fail|error" qemu-io.log && die "qemu-io during the flood: $(cat qemu-io.log)"
    nbdinfo "$(uri disk.img)" >/dev/null || die "nbdinfo during the read flood"
done
hwm=$(status_kib VmHWM)
echo "server VmHWM with 6 x 8 reads of 32 MiB in flight: $((hwm / 1024)) MiB"
# Budget 64 MiB, plus the binary, thread stacks and kept buffers: well under 96 MiB. Without the
# bound each worker of each connection holds a 32 MiB buffer (over 700 MiB here).
((hwm < 96 * 1024)) || die "VmHWM $((hwm / 1024)) MiB exceeds the 64 MiB budget by more than 32 MiB"
exec {FLOODER[1]}>&-
wait "$flood_pid" || die "read flood"
stop_server
}

case_writes() {
step "32 MiB writes are given back when done, while the connection stays open"
start_server --file disk.img --workers 4
before=$(status_kib VmRSS)
coproc WRITER { python3 "$FLOOD" "$WORK/nbd.sock" large-writes 8; }
writer_pid=$WRITER_PID
read -r -t 60 line <&"${WRITER[0]}" || die "the large writes did not finish"
[[ $line == done ]] || die "large writes: $line"
sleep 0.5 # the last worker unmaps its buffer after sending the reply
after=$(status_kib VmRSS)
hwm=$(status_kib VmHWM)
exec {WRITER[1]}>&-
wait "$writer_pid" || die "large writes"
echo "server VmRSS before $((before / 1024)) MiB, peak $((hwm / 1024)) MiB, after $((after / 1024)) MiB"
((hwm > before + 32 * 1024)) || die "the writes never raised the RSS: the test measures nothing"
((after < before + 16 * 1024)) || die "VmRSS stays $(((after - before) / 1024)) MiB above its start after the writes"
stop_server
}

case_handshake() {
step "256+ connections that never finish the handshake: a good client gets in, they are closed"
start_server --file disk.img --handshake-timeout 2
coproc HANDSHAKERS { python3 "$FLOOD" "$WORK/nbd.sock" handshake-flood 300 6; }
flood_pid=$HANDSHAKERS_PID # bash unsets HANDSHAKERS_PID when the coprocess ends
read -r -t 30 line <&"${HANDSHAKERS[0]}" || die "the handshake flood did not start"
[[ $line == ready ]] || die "handshake flood: $line"
started=$SECONDS
until qemu-io -r -f raw -c "read -P 0x42 1M 64k" "$(uri disk.img)" >qemu-io.log 2>&1; do
    ((SECONDS - started < 5)) || die "a good client was locked out by the handshake flood: $(cat qemu-io.log)"
    sleep 0.2
done
echo "good client served after $((SECONDS - started)) s"
wait "$flood_pid" || die "the server kept connections that never finished the handshake"
grep -q "did not finish the handshake within 2000 ms" server.log || die "handshake timeout not logged"
stop_server
}

case_handshake-default() {
step "the default handshake timeout is 10 s"
start_server --file disk.img
python3 - "$WORK/nbd.sock" <<'PY' || die "default handshake timeout"
import socket, sys, time
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect(sys.argv[1])
start = time.monotonic()
sock.settimeout(15)
while sock.recv(4096):
    pass
elapsed = time.monotonic() - start
print(f"closed after {elapsed:.1f} s")
sys.exit(0 if 9.5 <= elapsed <= 12 else 1)
PY
stop_server
}

case_idle() {
step "--idle-timeout closes an idle connection, not a busy one"
start_server --file disk.img --idle-timeout 2
python3 "$FLOOD" "$WORK/nbd.sock" idle-not-before 2 || die "idle timeout (not before)"
python3 "$FLOOD" "$WORK/nbd.sock" idle 2 || die "idle timeout"
grep -q "sent no request for 2000 ms" server.log || die "idle timeout not logged"
stop_server
}

case_send-timeout() {
step "a client that never reads its replies is cut off after --send-timeout; SIGTERM is not held up"
start_server --file disk.img --send-timeout "${SEND_TIMEOUT:-2}"
coproc FLOODER { python3 "$FLOOD" "$WORK/nbd.sock" read-flood 2 8; }
flood_pid=$FLOODER_PID
read -r -t 30 line <&"${FLOODER[0]}" || die "the read flood did not start"
[[ $line == ready ]] || die "read flood: $line"
for _ in $(seq 300); do
    [[ $(grep -c "it does not read its replies" server.log) -ge 2 ]] && break
    sleep 0.1
done
[[ $(grep -c "it does not read its replies" server.log) -ge 2 ]] || die "the non-reading connections were not cut off"
qemu_io "-r" "$(uri disk.img)" "read -P 0x42 1M 64k"
started=$SECONDS
stop_server
((SECONDS - started < 3)) || die "stopping took $((SECONDS - started)) s"
exec {FLOODER[1]}>&-
wait "$flood_pid" || die "read flood"
}

case_options() {
step "bad limits are refused with one clear error"
out=$("$KASOU" nbd serve --file disk.img --unix "$WORK/x.sock" --max-memory 100k 2>&1) && die "--max-memory 100k accepted"
grep -q "max memory" <<<"$out" || die "--max-memory 100k: $out"
out=$("$KASOU" nbd serve --file disk.img --unix "$WORK/x.sock" --max-memory lots 2>&1) && die "--max-memory lots accepted"
grep -q "max-memory" <<<"$out" || die "--max-memory lots: $out"
}

for c in "${CASES[@]}"; do "case_$c"; done
echo "PASS"
