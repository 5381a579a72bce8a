#!/bin/bash
# Runs virtio_smoke under QEMU with KVM on a fresh sparse raw disk image, through qemu_check.sh,
# and optionally checks what the guest wrote on its virtio-console.
#
# usage: qemu_virtio_check.sh [--console LINE_REGEX] IMAGE_SIZE QEMU_CHECK_ARGUMENTS ...
#   IMAGE_SIZE           size of the raw image, as truncate takes it (e.g. 64M)
#   --console LINE_REGEX a line the virtio-console output must match (an extended regex)
#   QEMU_CHECK_ARGUMENTS passed to qemu_check.sh, with @IMAGE@ replaced by the image's path and
#                        @CONSOLE@ by the path of the file that receives the virtio-console output.
set -u

console_pattern=
if [ "${1-}" = --console ]; then
    console_pattern=$2
    shift 2
fi
image_size=$1
shift

directory=$(mktemp -d)
trap 'rm -rf "$directory"' EXIT
truncate -s "$image_size" "$directory/disk.img" || exit 2

arguments=()
for argument in "$@"; do
    argument=${argument//@IMAGE@/$directory/disk.img}
    arguments+=("${argument//@CONSOLE@/$directory/console.txt}")
done
"$(dirname "$0")/../qemu_check.sh" "${arguments[@]}"
status=$?
[ "$status" = 0 ] || exit "$status"

if [ -n "$console_pattern" ]; then
    echo "virtio-console output:"
    cat "$directory/console.txt" 2>/dev/null
    if ! grep -qxE -- "$console_pattern" "$directory/console.txt" 2>/dev/null; then
        echo "qemu_virtio_check: no virtio-console line matches: $console_pattern"
        exit 1
    fi
fi
exit 0
