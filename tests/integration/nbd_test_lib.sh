# Shared by the NBD integration scripts (sourced, not run): a work directory removed on exit, and
# helpers to run `kasou nbd serve` in the background and drive it with qemu-io.
# The sourcing script sets KASOU (the kasou binary) first; the state directory is $WORK/state.

WORK=$(mktemp -d /tmp/kasou-nbd-test.XXXXXX)
SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]]; then kill -KILL "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK"

K() { "$KASOU" --state-dir "$WORK/state" "$@"; }
step() { echo "--- $*"; }
die() { echo "FAIL: $*" >&2; [[ -f server.log ]] && sed 's/^/server: /' server.log >&2; exit 1; }

# start_server ARGS...: runs kasou nbd serve in the background on $WORK/nbd.sock (its pid also in
# $WORK/server.pid), waits for the socket.
start_server() {
    rm -f nbd.sock
    # Not through K: a function in the background would be a subshell, and $! its pid.
    "$KASOU" --state-dir "$WORK/state" --log-level info nbd serve --unix "$WORK/nbd.sock" "$@" 2>server.log &
    SERVER_PID=$!
    echo "$SERVER_PID" > server.pid
    for _ in $(seq 200); do
        [[ -S nbd.sock ]] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || die "server exited at start"
        sleep 0.05
    done
    die "server did not create its socket"
}

# stop_server: SIGTERM, expect exit status 0.
stop_server() {
    kill -TERM "$SERVER_PID"
    local status=0
    wait "$SERVER_PID" || status=$?
    SERVER_PID=""
    [[ $status -eq 0 ]] || die "server exited with status $status after SIGTERM"
}

uri() { echo "nbd+unix:///$1?socket=$WORK/nbd.sock"; }

# qemu_io FLAGS URI COMMANDS...: runs qemu-io (FLAGS such as -r, or ""), fails on any error or
# pattern mismatch.
qemu_io() {
    local flags=$1 target=$2; shift 2
    local args=()
    for c in "$@"; do args+=(-c "$c"); done
    local out
    # shellcheck disable=SC2086
    out=$(qemu-io $flags -f raw "${args[@]}" "$target" 2>&1) || die "qemu-io failed: $out"
    if grep -qiE "fail|error|mismatch" <<<"$out"; then die "qemu-io: $out"; fi
}
