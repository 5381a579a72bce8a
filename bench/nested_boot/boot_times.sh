# Runs inside the nested test host (busybox sh): boots the same kernel and initramfs three times
# under each VMM and prints one line per run: "RUN vmm seconds", the time from starting the VMM
# process to the guest's init printing its first line, read from /proc/uptime (10 ms steps).

COMMAND_LINE="console=ttyS0 reboot=k panic=-1 quiet"
QEMU_COMMON="-L /usr/share/qemu -L /usr/share/seabios -cpu host -smp 1 -m 256M -nodefaults -no-user-config -nographic -display none -serial stdio -no-reboot"

uptime_centiseconds() {
    read -r seconds _ </proc/uptime
    echo "${seconds%.*}${seconds#*.}"
}

# time_run NAME COMMAND...: prints "RUN NAME S.SS" once the guest's first /init line appears.
time_run() {
    name=$1
    shift
    rm -f /tmp/$name.reached
    start=$(uptime_centiseconds)
    "$@" </dev/null 2>/tmp/$name.err | while IFS= read -r line; do
        case "$line" in
        *"GUEST processors="*)
            now=$(uptime_centiseconds)
            elapsed=$((now - start))
            printf 'RUN %s %d.%02d\n' "$name" $((elapsed / 100)) $((elapsed % 100))
            touch /tmp/$name.reached
            ;;
        esac
    done
    grep -h "boot timer" /tmp/$name.err | sed "s/^/NOTE $name /"
    [ -e /tmp/$name.reached ] || { echo "FAILED $name did not reach the guest's /init:"; tail -n 5 /tmp/$name.err; }
}

for round in 1 2 3; do
    time_run kasou kasou --log-level info run --kernel /vmlinuz --initrd /guest.cpio.gz --memory 256M --cmdline "$COMMAND_LINE"
    time_run qemu-microvm qemu-system-x86_64 -M microvm,accel=kvm $QEMU_COMMON \
        -kernel /vmlinuz -initrd /guest.cpio.gz -append "$COMMAND_LINE"
    time_run qemu-q35 qemu-system-x86_64 -M q35,accel=kvm $QEMU_COMMON \
        -kernel /vmlinuz -initrd /guest.cpio.gz -append "$COMMAND_LINE"
done
