# Runs inside the nested test host (busybox sh): boots the Linux guest under kasou once per case and
# prints each run's output between "=== CASE name" and "=== STATUS name N" lines, for
# linux_boot_test.sh to check. /bin/kasou, /vmlinuz (bzImage), /vmlinux (the same kernel as ELF) and /guest.cpio.gz are
# placed by the harness.

# --log-level info: kasou reports the boot timer marker, the restart and the stop reason.
run_case() { # name, kernel, kasou arguments...
    name=$1
    kernel=$2
    shift 2
    echo "=== CASE $name"
    kasou --log-level info run --kernel "$kernel" --initrd /guest.cpio.gz "$@" </dev/null 2>&1
    echo "=== STATUS $name $?"
}

# Poweroff with the default command line, one vCPU.
run_case default_1cpu /vmlinuz --cpus 1 --memory 256M
# Poweroff, two vCPUs.
run_case poweroff_2cpu /vmlinuz --cpus 2 --memory 512M --cmdline "console=ttyS0 reboot=k panic=-1 quiet kasou_action=poweroff"
# The same kernel as an ELF vmlinux through its PVH note; the initrd is hvm_start_info's module 0.
run_case pvh_vmlinux /vmlinux --cpus 2 --memory 256M --cmdline "console=ttyS0 reboot=k panic=-1 quiet"
# reboot in the guest.
run_case reboot /vmlinuz --cpus 1 --memory 256M --cmdline "console=ttyS0 reboot=k panic=-1 quiet kasou_action=reboot"
# A kernel panic with panic=-1 reboots at once.
run_case panic /vmlinuz --cpus 1 --memory 256M --cmdline "console=ttyS0 reboot=k panic=-1 quiet kasou_action=panic"

# A shell on the serial console: commands typed into kasou's standard input run in the guest.
echo "=== CASE shell"
mkfifo /tmp/console_input
: >/tmp/shell.log
kasou --log-level info run --kernel /vmlinuz --initrd /guest.cpio.gz --cpus 1 --memory 256M \
    --cmdline "console=ttyS0 reboot=k panic=-1 quiet kasou_action=shell" </tmp/console_input >/tmp/shell.log 2>&1 &
pid=$!
exec 3>/tmp/console_input
waited=0
while ! grep -q '^GUEST action=shell' /tmp/shell.log && [ $waited -lt 120 ] && kill -0 $pid 2>/dev/null; do
    sleep 1
    waited=$((waited + 1))
done
sleep 2
echo 'echo "the guest shell says $((6 * 7))"' >&3
sleep 2
echo 'poweroff -f' >&3
wait $pid
status=$?
exec 3>&-
cat /tmp/shell.log
echo "=== STATUS shell $status"

# --on-reboot=restart: the guest reboots, kasou boots it again; SIGTERM ends it after the second boot.
echo "=== CASE restart_sigterm"
# Created first: the loop below reads it before the background kasou has opened it.
: >/tmp/restart.log
kasou --log-level info run --kernel /vmlinuz --initrd /guest.cpio.gz --cpus 1 --memory 256M --on-reboot=restart \
    --cmdline "console=ttyS0 reboot=k panic=-1 quiet kasou_action=reboot" </dev/null >/tmp/restart.log 2>&1 &
pid=$!
waited=0
while [ "$(grep -c '^GUEST action=reboot' /tmp/restart.log)" -lt 2 ] && [ $waited -lt 240 ] && kill -0 $pid 2>/dev/null; do
    sleep 1
    waited=$((waited + 1))
done
kill -TERM $pid
wait $pid
status=$?
cat /tmp/restart.log
sleep 1
echo "processes named kasou after it ended: $(ps -o comm | grep -c '^kasou$')"
echo "=== STATUS restart_sigterm $status"
