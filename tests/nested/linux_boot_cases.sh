# Runs inside the nested test host (busybox sh): boots the Linux guest under kasou once per case and
# prints each run's output between "=== CASE name" and "=== STATUS name N" lines, for
# linux_boot_test.sh to check. /bin/kasou, /vmlinuz (bzImage), /vmlinux (the same kernel as ELF) and /guest.cpio.gz are
# placed by the harness. Each case has a time limit (host_case_lib.sh); a booted guest takes seconds.
. /host_case_lib.sh
CASE_LIMIT=180

# --log-level info: kasou reports the boot timer marker, the restart and the stop reason.
run_case() { # name, kernel, kasou arguments...
    name=$1
    kernel=$2
    shift 2
    begin_case "$name"
    start_kasou run --kernel "$kernel" --initrd /guest.cpio.gz "$@" </dev/null 2>&1
    wait_kasou $CASE_LIMIT
    end_case
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
begin_case shell
mkfifo /tmp/console_input
# Opened read-write first, so kasou's open for reading does not wait for a writer.
exec 3<>/tmp/console_input
: >/tmp/shell.log
start_kasou run --kernel /vmlinuz --initrd /guest.cpio.gz --cpus 1 --memory 256M \
    --cmdline "console=ttyS0 reboot=k panic=-1 quiet kasou_action=shell" </tmp/console_input >/tmp/shell.log 2>&1
wait_for $CASE_LIMIT "grep -q '^GUEST action=shell' /tmp/shell.log"
# Typed again every 10 s until the answer shows: a slow guest may not have its shell reading yet.
attempts=0
until grep -q 'the guest shell says 42' /tmp/shell.log || [ $attempts -ge 6 ]; do
    echo 'echo "the guest shell says $((6 * 7))"' >&3
    attempts=$((attempts + 1))
    wait_for 10 "grep -q 'the guest shell says 42' /tmp/shell.log"
done
echo 'poweroff -f' >&3
wait_kasou 60
exec 3>&-
cat /tmp/shell.log
end_case "the command typed $attempts time(s)"

# --on-reboot=restart: the guest reboots, kasou boots it again; SIGTERM ends it after the second boot.
begin_case restart_sigterm
# Created first: the loop below reads it before the background kasou has opened it.
: >/tmp/restart.log
start_kasou run --kernel /vmlinuz --initrd /guest.cpio.gz --cpus 1 --memory 256M --on-reboot=restart \
    --cmdline "console=ttyS0 reboot=k panic=-1 quiet kasou_action=reboot" </dev/null >/tmp/restart.log 2>&1
wait_for $((2 * CASE_LIMIT)) '[ "$(grep -c "^GUEST action=reboot" /tmp/restart.log)" -ge 2 ]'
kill -TERM $pid
wait_kasou 60
cat /tmp/restart.log
sleep 1
echo "processes named kasou after it ended: $(ps -o comm | grep -c '^kasou$')"
end_case
