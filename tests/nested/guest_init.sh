#!/bin/busybox sh
# /init of the Linux guest the nested tests boot under kasou: prints what the tests check, marks the
# boot timer, then does what kasou_action= on the kernel command line asks (default: poweroff).
# With /modules/order in the initramfs it first loads those kernel modules; with console=hvc0 the
# kernel has no console until virtio_console is loaded, so the output then goes to /dev/hvc0.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

if [ -e /modules/order ]; then
    for module in $(cat /modules/order); do
        insmod "/modules/$module" >>/modules/insmod.log 2>&1 || echo "insmod $module failed" >>/modules/insmod.log
    done
fi
case " $(cat /proc/cmdline) " in
*" console=hvc0 "*)
    waited=0
    while [ ! -c /dev/hvc0 ] && [ $waited -lt 20 ]; do sleep 1; waited=$((waited + 1)); done
    exec </dev/hvc0 >/dev/hvc0 2>&1
    ;;
esac
[ -s /modules/insmod.log ] && cat /modules/insmod.log

echo "GUEST processors=$(grep -c '^processor' /proc/cpuinfo)"
echo "GUEST memtotal_kb=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)"
echo "GUEST cmdline=$(cat /proc/cmdline)"
echo "GUEST pci=$(ls /sys/bus/pci/devices 2>/dev/null | tr '\n' ' ')"
# kasou's boot timer: the marker 1 to port 0x440 (port_write is in the initramfs of the tests that
# check it).
if [ -x /bin/port_write ]; then
    port_write 0x440 1 || echo "GUEST boot timer write failed"
fi

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
devices) sh /guest_devices.sh; poweroff -f ;;
hang) while true; do sleep 3600; done ;;
esac
echo "GUEST action $action returned"
sleep 3600
