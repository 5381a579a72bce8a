#!/bin/sh
# kasou run --api-sock driven by curl over the Unix socket, the way Firecracker's getting-started
# guide drives Firecracker: started without --kernel, the machine is configured (boot source, a
# root drive, machine config), started with InstanceStart, paused and resumed with PATCH /vm, and
# read with GET /. The guest is guests/virtio_smoke in its soak mode (two vCPUs: the second prints
# a tick line every ~10 ms, the first writes and verifies disk blocks) which ends, passing, once a byte
# reaches its serial port. POSIX sh, so that it also runs in the nested test host's busybox.
#
#   vmm_api_test.sh KASOU VIRTIO_SMOKE_GUEST
set -eu

kasou=$1 guest=$2
work=$(mktemp -d)
sock=$work/api.sock
kasou_pid=""
cleanup() {
    [ -z "$kasou_pid" ] || kill "$kasou_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "vmm_api_test: FAIL: $*" >&2
    echo "--- kasou's output:" >&2
    tail -n 20 "$work/kasou.err" >&2 || true
    echo "--- the guest's console:" >&2
    tail -n 10 "$work/console" >&2 || true
    exit 1
}

# api METHOD PATH [BODY]: prints the response body, then the status code on its own line.
api() {
    if [ $# -ge 3 ]; then
        curl -sS --unix-socket "$sock" -X "$1" "http://localhost$2" -H 'Accept: application/json' \
            -H 'Content-Type: application/json' -d "$3" -w '\n%{http_code}\n'
    else
        curl -sS --unix-socket "$sock" -X "$1" "http://localhost$2" -H 'Accept: application/json' -w '\n%{http_code}\n'
    fi
}

# expect STATUS METHOD PATH [BODY]: the call must answer STATUS; its body goes to $work/last.
expect() {
    status=$1
    shift
    api "$@" >"$work/answer" || fail "curl $*"
    got=$(tail -n 1 "$work/answer")
    sed '$d' "$work/answer" >"$work/last"
    [ "$got" = "$status" ] || fail "$* answered $got, not $status: $(cat "$work/last")"
}

ticks() {
    grep -c 'soak: cpu 1 tick' "$work/console" || true
}

wait_for() { # CONDITION-COMMAND WHAT (within 300 s: the nested host may be slow)
    deadline=$(($(date +%s) + 300))
    until eval "$1"; do
        [ "$(date +%s)" -lt $deadline ] || fail "timed out waiting for $2"
        sleep 0.1
    done
}

dd if=/dev/zero of="$work/disk.img" bs=4096 count=16 2>/dev/null
mkfifo "$work/keys"
"$kasou" --log-level info run --api-sock "$sock" --id api-test <"$work/keys" >"$work/console" 2>"$work/kasou.err" &
kasou_pid=$!
exec 3>"$work/keys" # the guest's keyboard: held open until the end, so the console sees no end of input
wait_for '[ -S "$sock" ]' "the API socket"

expect 200 GET /
grep -q '"state":"Not started"' "$work/last" || fail "GET / before start: $(cat "$work/last")"
grep -q '"id":"api-test"' "$work/last" || fail "GET / names another id: $(cat "$work/last")"
expect 400 PATCH /vm '{"state": "Paused"}'
grep -q 'not running' "$work/last" || fail "PATCH /vm before start: $(cat "$work/last")"

# Firecracker's getting-started steps: boot source, root drive, machine config, start.
expect 204 PUT /boot-source "{\"kernel_image_path\": \"$guest\", \"boot_args\": \"console=ttyS0 soak=1 expect=blk\"}"
expect 204 PUT /drives/rootfs "{\"drive_id\": \"rootfs\", \"path_on_host\": \"$work/disk.img\", \"is_root_device\": true, \"is_read_only\": false}"
expect 204 PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 64}'
expect 400 PUT /machine-config '{"vcpu_count": 2}'
expect 200 GET /vm/config
grep -q '"vcpu_count":2' "$work/last" || fail "GET /vm/config: $(cat "$work/last")"
expect 204 PUT /actions '{"action_type": "InstanceStart"}'
wait_for '[ "$(ticks)" -ge 3 ]' "the guest's tick lines"

expect 200 GET /
grep -q '"state":"Running"' "$work/last" || fail "GET / after start: $(cat "$work/last")"
expect 400 PUT /actions '{"action_type": "InstanceStart"}'
expect 400 PUT /boot-source "{\"kernel_image_path\": \"$guest\"}"
grep -q 'already started' "$work/last" || fail "PUT /boot-source after start: $(cat "$work/last")"
expect 400 PUT /drives/other "{\"drive_id\": \"other\", \"path_on_host\": \"$work/disk.img\", \"is_root_device\": false}"

expect 204 PATCH /vm '{"state": "Paused"}'
expect 200 GET /
grep -q '"state":"Paused"' "$work/last" || fail "GET / while paused: $(cat "$work/last")"
paused_at=$(ticks)
sleep 1
[ "$(ticks)" = "$paused_at" ] || fail "the guest went on printing while paused ($paused_at, then $(ticks) ticks)"
expect 204 PATCH /vm '{"state": "Paused"}'
expect 204 PATCH /vm '{"state": "Resumed"}'
wait_for '[ "$(ticks)" -gt $((paused_at + 3)) ]' "ticks after resuming"
expect 200 GET /
grep -q '"state":"Running"' "$work/last" || fail "GET / after resume: $(cat "$work/last")"
# The soak guest keeps the keyboard interrupt masked: the keys reach the i8042 and wait there.
expect 204 PUT /actions '{"action_type": "SendCtrlAltDel"}'

# A key on the serial line ends the soak; the guest checks its last round and exits with 0.
printf 'q' >&3
status=0
wait "$kasou_pid" || status=$?
kasou_pid=""
exec 3>&-
grep -q 'soak: .*rounds' "$work/console" || fail "the guest did not finish its soak: $(tail -n 3 "$work/console")"
[ "$status" = 1 ] || fail "kasou ended with status $status, not 1 (the guest's debug exit 0)"
[ ! -e "$sock" ] || fail "the API socket $sock is still there after kasou ended"
echo "vmm_api_test: PASS (configured, started, paused for 1 s without a tick, resumed, guest completed)"
