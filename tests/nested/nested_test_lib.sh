# Shared by the nested tests (sourced by bash): counting checks, reading the per-case output the
# scripts run inside the nested host print ("=== CASE name" ... "=== STATUS name N", the guest's
# "GUEST key=value" lines), and building the guest's busybox initramfs.
# The sourcing script sets NESTED_DIR (this folder) first, then calls start_nested_test.

HARNESS="$NESTED_DIR/nested_host.sh"

# start_nested_test NAME KASOU_BINARY HELPER_BINARY: the test's two arguments as KASOU and HELPER
# (a static helper for the guest), WORK (a scratch directory, removed at exit) and OUTPUT (where the
# nested host's output goes).
start_nested_test() {
    if [ $# -ne 3 ]; then
        echo "usage: $(basename "$0") KASOU_BINARY HELPER_BINARY (see the comment at its top)" >&2
        exit 2
    fi
    KASOU=$2
    HELPER=$3
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/kasou-$1.XXXXXX")
    trap 'rm -rf "$WORK"' EXIT
    OUTPUT="$WORK/output.txt"
}

# run_in_nested_host HARNESS_ARGUMENTS...: the run's output to $OUTPUT, with host_case_lib.sh placed
# for the case script; a failed run ends the test with the case summary, that output and the end
# of the host's console.
run_in_nested_host() {
    local status=0
    "$HARNESS" "$@" --add "$NESTED_DIR/host_case_lib.sh=/host_case_lib.sh" --log "$WORK/host-console.log" \
        >"$OUTPUT" 2>&1 || status=$?
    if [ $status -ne 0 ]; then
        echo "FAILED: the nested host run ended with status $status"
        case_summary
        cat "$OUTPUT"
        echo "--- end of the nested host's console ---"
        tail -n 40 "$WORK/host-console.log"
        exit 1
    fi
}

# The cases that started, how each ended and how long it took, and any the case script killed;
# printed before the full output on a failure, so a log shown only in part still names the case
# that went wrong.
case_summary() {
    echo "--- cases ---"
    grep -a -E '^(=== (CASE|STATUS) |HOST killed)' "$OUTPUT" || echo "(no case started)"
    echo "---"
}

failures=0
check() { # description, command...
    local description=$1
    shift
    if "$@"; then
        echo "ok: $description"
    else
        echo "FAILED: $description"
        failures=$((failures + 1))
    fi
}

section() { # case name: its output
    awk -v name="$1" '$0 == "=== CASE " name { on = 1; next } $0 ~ "^=== STATUS " name " " { on = 0 } on' "$OUTPUT"
}
status_of() {
    grep -a "^=== STATUS $1 " "$OUTPUT" | awk '{ print $4 }'
}
guest_value() { # case, key: the value the guest printed
    section "$1" | grep -a "^GUEST $2=" | head -n1 | sed "s/^GUEST $2=//" | tr -d '\r'
}
equals() { [ "$1" = "$2" ] || { echo "  expected '$2', got '$1'"; return 1; }; }
# grep reads all of its input (no -q): with pipefail, a grep that stops at the first match could
# make the writer die of SIGPIPE and the whole check fail although the text is there.
contains() { section "$1" | grep -a -- "$2" >/dev/null || { echo "  '$2' not in the output of $1"; return 1; }; }
count_of() { section "$1" | grep -ac -- "$2" || true; }
at_least() { [ "$1" -ge "$2" ] || { echo "  expected at least $2, got $1"; return 1; }; }

# Ends the test: the case summary, the nested host's output on failure, and the status.
finish() {
    case_summary
    if [ "$failures" -ne 0 ]; then
        echo "$failures check(s) failed"
        echo "--- nested host output ---"
        cat "$OUTPUT"
        echo "$failures check(s) failed"
        exit 1
    fi
    echo "all checks passed"
}

# build_guest_initramfs DIR ARCHIVE [SRC=DEST ...]: busybox, guest_init.sh as /init and the given
# files, as a gzip'd cpio archive.
build_guest_initramfs() {
    local dir=$1 archive=$2 entry
    shift 2
    mkdir -p "$dir/bin" "$dir/proc" "$dir/sys" "$dir/dev" "$dir/mnt"
    cp /bin/busybox "$dir/bin/busybox"
    cp "$NESTED_DIR/guest_init.sh" "$dir/init"
    chmod +x "$dir/init"
    for entry in "$@"; do
        mkdir -p "$dir/$(dirname "${entry#*=}")"
        cp "${entry%%=*}" "$dir/${entry#*=}"
    done
    (cd "$dir" && find . | cpio -o -H newc --quiet | gzip -1 >"$archive")
}

# add_guest_modules MODULES_DIR DIR NAME...: copies the kernel modules NAME... and everything they
# depend on (read from each module's .modinfo "depends=", so no depmod is needed) into DIR/modules,
# and writes DIR/modules/order with the file names in an order insmod can follow.
add_guest_modules() {
    local modules_dir=$1 dir=$2 name
    shift 2
    mkdir -p "$dir/modules"
    : >"$dir/modules/order"
    for name in "$@"; do add_guest_module "$modules_dir" "$dir" "$name"; done
}
add_guest_module() { # MODULES_DIR DIR NAME: NAME after its dependencies, once
    local modules_dir=$1 dir=$2 name=${3//-/_} file depends dependency
    grep -qx "$name" "$dir/modules/loaded-names" 2>/dev/null && return 0
    # Module names use '_' where file names may use '-'.
    file=$(find "$modules_dir/kernel" \( -name "$name.ko" -o -name "${name//_/-}.ko" \) -print -quit)
    if [ -z "$file" ]; then
        # Built into the kernel: nothing to load.
        grep -q "/${name//_/[-_]}\.ko\$" "$modules_dir/modules.builtin" && return 0
        echo "FAILED: the kernel has no module $name"
        exit 1
    fi
    depends=$(tr '\0' '\n' <"$file" | sed -n 's/^depends=//p')
    for dependency in ${depends//,/ }; do add_guest_module "$modules_dir" "$dir" "$dependency"; done
    cp "$file" "$dir/modules/"
    basename "$file" >>"$dir/modules/order"
    echo "$name" >>"$dir/modules/loaded-names"
}
