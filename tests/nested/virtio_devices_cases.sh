# Runs inside the nested test host (busybox sh): boots the Linux guest under kasou with every virtio
# device (two disks, one with a request queue per vCPU, a tap network, vsock, the console on hvc0, rng), plays the host's part of each
# exchange, then checks the guest's ext4 image. Prints the run between "=== CASE devices" and
# "=== STATUS devices N"; "HOST key=value" lines are what the host saw. /bin/kasou, /vmlinuz,
# /guest.cpio.gz, /disk.img, /ro.img, vsock_echo, e2fsck and debugfs are placed by the harness.

. /host_case_lib.sh

begin_case devices
vsock_echo serve-unix /tmp/v.sock_5000 >/tmp/unix_server.log 2>&1 &
mkfifo /tmp/console_input
# Opened read-write first, so kasou's open for reading does not wait for a writer.
exec 3<>/tmp/console_input
: >/tmp/devices.log
start_kasou run --kernel /vmlinuz --initrd /guest.cpio.gz --cpus 2 --memory 256M --console virtio \
    --disk /disk.img,serial=kasou-ext4,queues=2 --disk /ro.img,ro --net tap=kasoutap0,mac=52:54:00:12:34:56 \
    --vsock cid=3,uds=/tmp/v.sock --cmdline "console=hvc0 reboot=k panic=-1 quiet kasou_action=devices" \
    </tmp/console_input >/tmp/devices.log 2>&1

# kasou creates the tap when it starts; the host end gets 10.0.2.1.
if wait_for 60 '[ -e /sys/class/net/kasoutap0 ]'; then
    ip addr add 10.0.2.1/24 dev kasoutap0
    ip link set kasoutap0 up
else
    echo "HOST tap=missing"
fi

# The host-initiated vsock echo, once the guest listens on port 52.
if wait_for 300 'grep -q "^GUEST vsock_listening=52" /tmp/devices.log'; then
    tries=0
    until vsock_echo connect-unix /tmp/v.sock 52 "hello from the host" >/tmp/host_client.log 2>&1 || [ $tries -ge 30 ]; do
        sleep 2
        tries=$((tries + 1))
    done
fi
echo "HOST vsock_host_to_guest=$(cat /tmp/host_client.log 2>/dev/null)"

# A line typed on the console; the UART takes no input with --console virtio, so only hvc0 can
# deliver it.
wait_for 300 'grep -q "^GUEST hvc0_waiting=yes" /tmp/devices.log' && echo "typed into hvc0" >&3
wait_kasou 300
exec 3>&-
tr -d '\r' </tmp/devices.log
echo "HOST unix_server=$(cat /tmp/unix_server.log)"

# The image after the guest unmounted it.
e2fsck -fn /disk.img >/tmp/e2fsck.log 2>&1
echo "HOST e2fsck_status=$?"
cat /tmp/e2fsck.log
echo "HOST guest_file=$(debugfs -R 'cat /guest.txt' /disk.img 2>/dev/null)"
debugfs -R 'dump /random.bin /tmp/random.bin' /disk.img >/dev/null 2>&1
echo "HOST random_md5=$(md5sum /tmp/random.bin 2>/dev/null | awk '{ print $1 }')"
end_case
