#!/bin/busybox sh
# /init of the Linux guest the nested tests boot under kasou: prints what the tests check, marks the
# boot timer, then does what kasou_action= on the kernel command line asks (default: poweroff).
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

echo "GUEST processors=$(grep -c '^processor' /proc/cpuinfo)"
echo "GUEST memtotal_kb=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)"
echo "GUEST cmdline=$(cat /proc/cmdline)"
echo "GUEST pci=$(ls /sys/bus/pci/devices 2>/dev/null | tr '\n' ' ')"
# kasou's boot timer: the marker 1 to port 0x440.
port_write 0x440 1 || echo "GUEST boot timer write failed"

action=poweroff
for word in $(cat /proc/cmdline); do
    case "$word" in kasou_action=*) action="${word#kasou_action=}" ;; esac
done
echo "GUEST action=$action"
case "$action" in
poweroff) poweroff -f ;;
reboot) reboot -f ;;
panic) echo c >/proc/sysrq-trigger ;;
shell) sh ;;
hang) while true; do sleep 3600; done ;;
esac
echo "GUEST action $action returned"
sleep 3600
