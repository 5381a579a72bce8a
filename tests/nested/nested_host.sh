#!/bin/bash
# The nested test host: boots Debian's cloud kernel under QEMU's software CPU (TCG), which emulates
# AMD SVM with nested paging, loads kvm_amd there and runs a command that can use a real
# hardware-assisted /dev/kvm. Tests use it to run kasou on stock Linux guests on machines whose own
# KVM cannot run them.
#
#   nested_host.sh [options] --run SCRIPT     boot the host, run SCRIPT (sh) inside it, print what it
#                                             printed, exit with its status
#   nested_host.sh --print-kernel             fetch the kernel if needed, print the vmlinuz path
#
# Options:
#   --kasou BIN          put BIN at /bin/kasou in the host, with the shared libraries ldd lists
#   --add SRC=DEST       put file SRC at DEST in the host (repeatable)
#   --binary BIN=DEST    like --add, plus the shared libraries ldd lists for BIN (repeatable)
#   --host-module PATH   also load the kernel package's module kernel/PATH in the host, after KVM's
#                        (e.g. drivers/net/tun.ko; repeatable)
#   --timeout SECONDS    whole-run limit (default 600); the host is killed when it passes
#   --smp N              host CPUs (default 2)        --memory MIB   host RAM (default 2048)
#   --log FILE           keep the host's kernel console there (default: a temporary file, shown on failure)
#
# Exit status: the script's own, or 90 when the host could not be prepared or booted, 91 when it
# timed out, 92 when it ended without reporting the script's status. Each of those prints why.
#
# Needs: qemu-system-x86 (qemu-system-x86_64), busybox-static, cpio, gzip; installed with apt-get
# when missing and this runs as root. The kernel packages (linux-image-cloud-amd64 and the exact
# linux-image-*-cloud-amd64 it depends on) are fetched with `apt-get download` once into
# $KASOU_NESTED_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/kasou/nested); KASOU_NESTED_REFRESH=1
# fetches them again.
set -euo pipefail

STATUS_SETUP=90
STATUS_TIMEOUT=91
STATUS_NO_REPORT=92
STATUS_MARKER="KASOU-NESTED-STATUS"

fail() {
    echo "nested host: $*" >&2
    exit "$STATUS_SETUP"
}

CACHE="${KASOU_NESTED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kasou/nested}"
KASOU=""
SCRIPT=""
TIMEOUT=600
SMP=2
MEMORY=2048
LOG=""
PRINT_KERNEL=0
declare -a FILES=()    # SRC=DEST
declare -a BINARIES=() # SRC=DEST, with libraries
# Loaded in this order in the host; paths under the kernel package's lib/modules/*/kernel.
declare -a HOST_MODULES=(virt/lib/irqbypass.ko arch/x86/kvm/kvm.ko arch/x86/kvm/kvm-amd.ko)

while [ $# -gt 0 ]; do
    case "$1" in
    --kasou) KASOU="$2"; shift 2 ;;
    --add) FILES+=("$2"); shift 2 ;;
    --binary) BINARIES+=("$2"); shift 2 ;;
    --host-module) HOST_MODULES+=("$2"); shift 2 ;;
    --run) SCRIPT="$2"; shift 2 ;;
    --timeout) TIMEOUT="$2"; shift 2 ;;
    --smp) SMP="$2"; shift 2 ;;
    --memory) MEMORY="$2"; shift 2 ;;
    --log) LOG="$2"; shift 2 ;;
    --print-kernel) PRINT_KERNEL=1; shift ;;
    *) fail "unknown argument '$1' (see the comment at the top of $0)" ;;
    esac
done

# --- tools -----------------------------------------------------------------------------------
ensure_tools() {
    local missing=()
    command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
    [ -x /bin/busybox ] && /bin/busybox --list >/dev/null 2>&1 && ! ldd /bin/busybox >/dev/null 2>&1 || missing+=(busybox-static)
    command -v cpio >/dev/null || missing+=(cpio)
    command -v gzip >/dev/null || missing+=(gzip)
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
        fail "missing ${missing[*]}; install them (apt-get install ${missing[*]})"
    fi
    echo "nested host: installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2 ||
        fail "apt-get install ${missing[*]} failed"
}

# --- kernel ----------------------------------------------------------------------------------
# Sets KERNEL_DIR to the extracted package (boot/vmlinuz-*, lib/modules/*).
ensure_kernel() {
    mkdir -p "$CACHE" || fail "cannot create the cache directory $CACHE"
    exec 9>"$CACHE/.lock"
    flock 9
    if [ "${KASOU_NESTED_REFRESH:-0}" != 1 ] && [ -e "$CACHE/current/.complete" ]; then
        KERNEL_DIR="$CACHE/current"
        flock -u 9
        return 0
    fi
    command -v apt-get >/dev/null || fail "no apt-get to download linux-image-cloud-amd64 with"
    local work
    work=$(mktemp -d "$CACHE/download.XXXXXX")
    (
        cd "$work"
        # apt's sandbox user may not reach the cache; the download still works without it.
        apt-get download -q linux-image-cloud-amd64 >/dev/null 2>"$work/apt.log" ||
            { cat "$work/apt.log" >&2; exit 1; }
    ) || fail "apt-get download linux-image-cloud-amd64 failed (is the package index there? apt-get update)"
    local meta depends
    meta=$(ls "$work"/linux-image-cloud-amd64_*.deb)
    depends=$(dpkg-deb -f "$meta" Depends | tr ',' '\n' | grep -o 'linux-image-[0-9][^ ]*-cloud-amd64' | head -n1)
    [ -n "$depends" ] || fail "$meta names no linux-image-*-cloud-amd64 dependency"
    local version
    version=$(dpkg-deb -f "$meta" Depends | tr ',' '\n' | grep "$depends" | grep -o '(= [^)]*)' | tr -d '(=) ' || true)
    (
        cd "$work"
        apt-get download -q "$depends${version:+=$version}" >/dev/null 2>"$work/apt.log" ||
            { cat "$work/apt.log" >&2; exit 1; }
    ) || fail "apt-get download $depends failed"
    local target="$CACHE/$depends"
    rm -rf "$target"
    mkdir -p "$target"
    dpkg-deb -x "$work"/"$depends"_*.deb "$target" || fail "cannot unpack $depends"
    ls "$target"/boot/vmlinuz-* >/dev/null 2>&1 || fail "$depends has no boot/vmlinuz-*"
    touch "$target/.complete"
    ln -sfn "$depends" "$CACHE/current"
    rm -rf "$work"
    KERNEL_DIR="$CACHE/current"
    flock -u 9
}

ensure_tools
ensure_kernel
KERNEL=$(ls "$KERNEL_DIR"/boot/vmlinuz-* | head -n1)
if [ "$PRINT_KERNEL" = 1 ]; then
    echo "$KERNEL"
    exit 0
fi
[ -n "$SCRIPT" ] || fail "nothing to run: give --run SCRIPT"
[ -r "$SCRIPT" ] || fail "cannot read the script $SCRIPT"

# --- host initramfs --------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kasou-nested.XXXXXX")
cleanup() {
    [ -n "${QEMU_PID:-}" ] && kill -9 "$QEMU_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ROOT="$WORK/root"
mkdir -p "$ROOT"/{bin,sbin,proc,sys,dev,tmp,run,lib/modules,etc}

place() { # SRC DEST
    [ -e "$1" ] || fail "no such file: $1"
    mkdir -p "$ROOT/$(dirname "$2")"
    cp -L "$1" "$ROOT/$2" || fail "cannot copy $1"
}
place_with_libraries() { # SRC DEST
    place "$1" "$2"
    local library
    # ldd prints "name => /path (addr)" and "/lib64/ld-linux-x86-64.so.2 (addr)".
    for library in $(ldd "$1" 2>/dev/null | grep -o '/[^ ]*' || true); do
        [ -e "$ROOT/$library" ] || place "$library" "$library"
    done
}

place /bin/busybox /bin/busybox
: >"$ROOT/lib/modules/order"
for module in "${HOST_MODULES[@]}"; do
    found=$(ls "$KERNEL_DIR"/lib/modules/*/kernel/"$module"* 2>/dev/null | head -n1)
    [ -n "$found" ] || fail "the kernel package has no $module"
    case "$found" in
    *.xz) xz -dc "$found" >"$ROOT/lib/modules/$(basename "$module")" ;;
    *.zst) zstd -qdc "$found" >"$ROOT/lib/modules/$(basename "$module")" ;;
    *) cp "$found" "$ROOT/lib/modules/" ;;
    esac
    basename "$module" >>"$ROOT/lib/modules/order"
done
[ -n "$KASOU" ] && place_with_libraries "$KASOU" /bin/kasou
for entry in "${FILES[@]}"; do place "${entry%%=*}" "${entry#*=}"; done
for entry in "${BINARIES[@]}"; do place_with_libraries "${entry%%=*}" "${entry#*=}"; done
place "$SCRIPT" /test.sh

# /tmp stays the initramfs's own directory (no tmpfs over it): files placed under /tmp, such as a
# build tree that kvm_host.sh puts at its own path, must stay visible.
cat >"$ROOT/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec >/dev/ttyS1 2>&1 </dev/null
for module in \$(cat /lib/modules/order); do
    insmod /lib/modules/\$module || echo "nested host: insmod \$module failed"
done
if [ -c /dev/kvm ]; then
    cd /tmp
    sh /test.sh
    status=\$?
else
    echo "nested host: no /dev/kvm after loading kvm_amd (does this QEMU emulate SVM?)"
    status=$STATUS_SETUP
fi
echo "$STATUS_MARKER \$status"
sync
poweroff -f
EOF
chmod +x "$ROOT/init" "$ROOT/test.sh"
(cd "$ROOT" && find . | cpio -o -H newc --quiet | gzip -1 >"$WORK/host-initrd.gz") || fail "cannot build the host initramfs"

# --- boot ------------------------------------------------------------------------------------
CONSOLE="${LOG:-$WORK/console.log}"
RESULT="$WORK/result.log"
: >"$CONSOLE"
: >"$RESULT"
qemu-system-x86_64 -M q35,accel=tcg -cpu EPYC,+svm,+npt -smp "$SMP" -m "$MEMORY" \
    -nodefaults -no-user-config -nographic -display none \
    -serial "file:$CONSOLE" -serial "file:$RESULT" \
    -kernel "$KERNEL" -initrd "$WORK/host-initrd.gz" \
    -append "console=ttyS0 panic=-1 quiet" -no-reboot </dev/null >"$WORK/qemu.out" 2>&1 &
QEMU_PID=$!
deadline=$((SECONDS + TIMEOUT))
while kill -0 "$QEMU_PID" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
        kill -9 "$QEMU_PID" 2>/dev/null || true
        wait "$QEMU_PID" 2>/dev/null || true
        QEMU_PID=""
        grep -av "^$STATUS_MARKER" "$RESULT" | tr -d '\r' || true
        echo "nested host: timed out after ${TIMEOUT}s; the command had not finished. Last lines of the host console:" >&2
        tail -n 20 "$CONSOLE" >&2
        exit "$STATUS_TIMEOUT"
    fi
    sleep 0.2
done
wait "$QEMU_PID" 2>/dev/null || true
QEMU_PID=""

# The serial line ends lines with CR LF; the caller gets plain LF.
grep -av "^$STATUS_MARKER" "$RESULT" | tr -d '\r' || true
status=$(grep -a "^$STATUS_MARKER " "$RESULT" | tail -n1 | awk '{print $2}' | tr -d '\r')
if [ -z "$status" ]; then
    echo "nested host: ended without reporting the command's status. QEMU said:" >&2
    cat "$WORK/qemu.out" >&2
    echo "Last lines of the host console:" >&2
    tail -n 30 "$CONSOLE" >&2
    exit "$STATUS_NO_REPORT"
fi
exit "$status"
