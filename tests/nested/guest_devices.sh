# Runs in the Linux guest of the nested virtio test (/init with kasou_action=devices), after /init
# loaded Debian's virtio modules and moved its output to hvc0. Exercises each virtio device through
# the stock drivers and prints "GUEST key=value" lines for virtio_devices_test.sh to check:
#   virtio-blk    /dev/vda (2 request queues): ext4 made on the host; read its file, write two more, fstrim, sync, unmount
#                 /dev/vdb: attached read-only, a write must fail
#   virtio-rng    the kernel's current hw_random source; 64 bytes from /dev/hwrng
#   virtio-net    eth0 over the host's tap: ping the host
#   virtio-vsock  an echo to a host Unix socket (guest-initiated), and one from the host (port 52)
#   virtio-console the output on hvc0 (the kernel console), then a line typed into kasou's stdin

echo "GUEST consoles=$(awk '{ print $1 }' /proc/consoles | tr '\n' ' ')"
echo "GUEST virtio_ids=$(cat /sys/bus/virtio/devices/*/device | sort | tr '\n' ' ')"
echo "GUEST virtio_drivers=$(for d in /sys/bus/virtio/devices/*/driver; do basename "$(readlink "$d")"; done | sort | tr '\n' ' ')"

# The host-initiated vsock echo: listening before anything else, the host polls for it.
vsock_echo serve-vsock 52 >/vsock_server.log 2>&1 &
vsock_server=$!
sleep 1
echo "GUEST vsock_listening=52"

# --- virtio-blk -------------------------------------------------------------------------------
echo "GUEST vda_serial=$(cat /sys/block/vda/serial 2>/dev/null)"
echo "GUEST vda_queues=$(ls /sys/block/vda/mq 2>/dev/null | wc -l)"
echo "GUEST vda_discard_max=$(cat /sys/block/vda/queue/discard_max_bytes 2>/dev/null)"
echo "GUEST vdb_ro=$(cat /sys/block/vdb/ro 2>/dev/null)"
if dd if=/dev/zero of=/dev/vdb bs=4096 count=1 oflag=direct 2>/dev/null; then
    echo "GUEST vdb_write=succeeded"
else
    echo "GUEST vdb_write=refused"
fi
if mount -t ext4 /dev/vda /mnt; then
    echo "GUEST ext4_read=$(cat /mnt/hello.txt)"
    echo "written by the guest over virtio-blk" >/mnt/guest.txt
    dd if=/dev/urandom of=/mnt/random.bin bs=65536 count=32 2>/dev/null
    echo "GUEST random_md5=$(md5sum /mnt/random.bin | awk '{ print $1 }')"
    # Freed blocks for fstrim to discard.
    dd if=/dev/urandom of=/mnt/discard-me.bin bs=65536 count=16 2>/dev/null
    sync
    rm /mnt/discard-me.bin
    fstrim /mnt >/dev/null 2>&1 && echo "GUEST fstrim=ok" || echo "GUEST fstrim=failed"
    sync
    umount /mnt && echo "GUEST ext4_unmounted=yes"
else
    echo "GUEST ext4_read=mount failed"
fi

# --- virtio-rng -------------------------------------------------------------------------------
echo "GUEST rng_current=$(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)"
echo "GUEST hwrng_bytes=$(dd if=/dev/hwrng bs=64 count=1 2>/dev/null | wc -c)"

# --- virtio-net -------------------------------------------------------------------------------
echo "GUEST eth0_mac=$(cat /sys/class/net/eth0/address 2>/dev/null)"
echo "GUEST net_features=$(cat /sys/class/net/eth0/device/features 2>/dev/null)"
ip addr add 10.0.2.15/24 dev eth0
ip link set eth0 up
received=$(ping -c 3 -W 10 -s 1400 10.0.2.1 2>&1 | sed -n 's/.* \([0-9]*\) packets received.*/\1/p')
echo "GUEST ping_received=${received:-0}"

# --- virtio-vsock -----------------------------------------------------------------------------
echo "GUEST vsock_guest_to_host=$(vsock_echo connect-vsock 2 5000 'hello from the guest' 2>&1)"
waited=0
while kill -0 $vsock_server 2>/dev/null && [ $waited -lt 120 ]; do sleep 1; waited=$((waited + 1)); done
kill $vsock_server 2>/dev/null
echo "GUEST vsock_server_done=$(cat /vsock_server.log; [ $waited -lt 120 ] && echo yes || echo timeout)"

# --- virtio-console input ---------------------------------------------------------------------
echo "GUEST hvc0_waiting=yes"
line=""
read -t 120 line
echo "GUEST hvc0_input=$line"
