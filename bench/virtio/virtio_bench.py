#!/usr/bin/env python3
"""virtio-blk side by side: kasou against QEMU (q35, KVM) on the same guest and the same image.

Both VMMs boot guests/virtio_smoke.elf in its benchmark mode (`bench=randread|randwrite qd=N
seconds=S`): 4 KiB requests at random 4 KiB-aligned offsets, issued by the guest's own virtio-pci
driver, which reports "iops: N" (timed with the TSC, measured against PIT channel 2). Two guest
drivers are measured:

  cpl3-poll  the request loop at CPL3 (`cpl=3 wait=poll`), polling the used ring. PVM hosts run
             CPL3 natively, so the guest's own cost is about what it is on VT-x and the figures
             show mostly what each VMM costs.
  cpl0-irq   the request loop at CPL0, halting until an MSI-X interrupt (`wait=irq`). On PVM the
             emulation of the guest's kernel-mode code dominates and costs both VMMs alike.

QEMU runs with each AIO back-end asked for (`--qemu-aio`, default both: its default `threads` and
`io_uring`). The runs alternate between the VMMs so that drift of the host hits all alike. For
every configuration the script prints the median IOPS the guest reported and the median host CPU
time of the VMM process (user + system, from wait4's rusage, so every thread of the VMM and the
KVM work done for it) per completed request, and the ratios kasou / QEMU.

The CPU time covers the whole VMM run: boot (QEMU's qboot firmware, a few tens of ms) and the
guest's 50 ms TSC measurement included, which at the default 5 s per run is a few per cent.

That figure includes the vCPU threads, i.e. the guest itself (with cpl3-poll, its polling: the vCPU
is busy all the time, so its CPU per request is the time a request takes) and, on PVM, the
emulation of its kernel-mode code. A second figure isolates the device side: the CPU time of every
thread but the vCPUs (kasou's "vcpuN", QEMU's "CPU N/KVM"), read from /proc/PID/task/*/schedstat
every 20 ms while the VMM runs (so a thread's last 20 ms may be missed).

usage: virtio_bench.py [--kasou PATH] [--guest PATH] [--drivers cpl3-poll,cpl0-irq]
                       [--modes randread,randwrite] [--depths 1,16] [--qemu-aio threads,io_uring]
                       [--seconds 5] [--runs 3] [--image-size 256M] [--qemu-only]
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QEMU = "qemu-system-x86_64"
QBOOT = "/usr/share/qemu/qboot.rom"
MEMORY = "128M"
# v = 0 through the debug-exit port: both VMMs end with status (0 << 1) | 1.
GUEST_SUCCESS_STATUS = 1


def kasou_command(kasou, guest, image, guest_options):
    return [kasou, "run", "--kernel", guest, "--disk", image, "--no-rng", "--memory", MEMORY, "--cmdline", guest_options]


def qemu_command(guest, image, guest_options, aio):
    # debug-threads=on names the vCPU threads "CPU N/KVM", which the device-side figure leaves out.
    return [QEMU, "-M", "q35,accel=kvm", "-name", "bench,debug-threads=on", "-bios", QBOOT, "-m", MEMORY,
            "-cpu", "host,+x2apic,-arch-capabilities", "-nodefaults", "-no-user-config", "-nographic",
            "-serial", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
            "-kernel", guest, "-append", guest_options,
            "-drive", f"if=none,id=d0,file={image},format=raw,aio={aio}",
            "-device", "virtio-blk-pci,drive=d0,disable-legacy=on"]


# The guest options of each driver (guests/README.md, virtio_smoke).
DRIVER_OPTIONS = {"cpl3-poll": "wait=poll cpl=3", "cpl0-irq": "wait=irq"}

VCPU_THREAD = re.compile(r"^(vcpu\d+|CPU \d+/KVM)$")


class DeviceThreadSampler(threading.Thread):
    """Samples the on-CPU time of a process's non-vCPU threads until stopped."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.seen = {}  # tid -> nanoseconds on CPU, last sample
        self.done = threading.Event()

    def sample(self):
        try:
            tids = os.listdir(f"/proc/{self.pid}/task")
        except OSError:
            return
        for tid in tids:
            try:
                with open(f"/proc/{self.pid}/task/{tid}/comm") as comm:
                    name = comm.read().strip()
                with open(f"/proc/{self.pid}/task/{tid}/schedstat") as schedstat:
                    runtime = int(schedstat.read().split()[0])
            except (OSError, ValueError, IndexError):
                continue
            if not VCPU_THREAD.match(name):
                self.seen[tid] = runtime

    def run(self):
        while not self.done.wait(0.02):
            self.sample()

    def seconds(self):
        return sum(self.seen.values()) / 1e9


def run_once(command, timeout):
    """Runs one VMM; returns (iops, requests, process cpu seconds, device-thread cpu seconds) or
    raises with its output."""
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)
        sampler = DeviceThreadSampler(process.pid)
        sampler.start()
        # Reaped here rather than by Popen.wait, so that wait4 returns the child's own rusage.
        watchdog = threading.Timer(timeout, process.kill)
        watchdog.start()
        _, status, usage = os.wait4(process.pid, 0)
        watchdog.cancel()
        sampler.done.set()
        sampler.join()
        process.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        text = output.read().decode(errors="replace")
    iops = re.search(r"^iops: (\d+)$", text, re.M)
    requests = re.search(r"^bench: (\d+) requests in", text, re.M)
    if process.returncode != GUEST_SUCCESS_STATUS or not iops or not requests:
        raise RuntimeError(f"{' '.join(command)}\nexit status {process.returncode}, output:\n{text}")
    return int(iops.group(1)), int(requests.group(1)), usage.ru_utime + usage.ru_stime, sampler.seconds()


def kasou_has_disks(kasou):
    if not kasou or not os.access(kasou, os.X_OK):
        return False
    help_text = subprocess.run([kasou, "run", "--help"], capture_output=True, text=True).stdout
    return "--disk" in help_text


def fill_image(path, size):
    """A raw image full of non-zero data, so that reads are not answered from holes."""
    chunk = bytes(range(256)) * 4096
    with open(path, "wb") as image:
        written = 0
        while written < size:
            image.write(chunk[: min(len(chunk), size - written)])
            written += len(chunk)


def parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)


def ratio(numerator, denominator):
    return f"{numerator / denominator:.2f}" if denominator > 0 else "n/a"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kasou", default=os.path.join(ROOT, "build", "release", "src", "cmd", "kasou"))
    parser.add_argument("--guest", default=os.path.join(ROOT, "build", "release", "guests", "virtio_smoke.elf"))
    parser.add_argument("--drivers", default="cpl3-poll,cpl0-irq")
    parser.add_argument("--modes", default="randread,randwrite")
    parser.add_argument("--depths", default="1,16")
    parser.add_argument("--qemu-aio", default="threads,io_uring")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--image-size", default="256M")
    parser.add_argument("--qemu-only", action="store_true", help="run only the QEMU half")
    args = parser.parse_args()

    drivers = args.drivers.split(",")
    for driver in drivers:
        if driver not in DRIVER_OPTIONS:
            sys.exit(f"virtio_bench: unknown driver {driver} (known: {', '.join(DRIVER_OPTIONS)})")
    aios = args.qemu_aio.split(",")
    if not os.path.exists(args.guest):
        sys.exit(f"virtio_bench: no guest at {args.guest} (cmake --build <dir> --target guest_virtio_smoke)")
    with_kasou = not args.qemu_only and kasou_has_disks(args.kasou)
    if not args.qemu_only and not with_kasou:
        print(f"virtio_bench: {args.kasou} has no 'run --disk' option: running the QEMU half only", flush=True)

    vmms = (["kasou"] if with_kasou else []) + [f"qemu aio={aio}" for aio in aios]
    timeout = args.seconds + 60
    tables = {driver: [] for driver in drivers}
    with tempfile.TemporaryDirectory() as directory:
        image = os.path.join(directory, "disk.img")
        fill_image(image, parse_size(args.image_size))
        for driver in drivers:
            for mode in args.modes.split(","):
                for depth in args.depths.split(","):
                    options = f"bench={mode} qd={depth} seconds={args.seconds} {DRIVER_OPTIONS[driver]}"
                    results = {vmm: [] for vmm in vmms}
                    for _ in range(args.runs):
                        for vmm in vmms:
                            command = (kasou_command(args.kasou, args.guest, image, options) if vmm == "kasou"
                                       else qemu_command(args.guest, image, options, vmm.split("=")[1]))
                            results[vmm].append(run_once(command, timeout))
                    medians = {vmm: (statistics.median(r[0] for r in results[vmm]),
                                     statistics.median(r[2] / r[1] * 1e6 for r in results[vmm]),
                                     statistics.median(r[3] / r[1] * 1e6 for r in results[vmm])) for vmm in vmms}
                    tables[driver].append((mode, depth, medians))

    print(f"virtio-blk, 4 KiB random I/O, {args.seconds} s a run, median of {args.runs} runs, "
          f"image {args.image_size} raw (host page cache)")
    for driver in drivers:
        print(f"\ndriver {driver} ({DRIVER_OPTIONS[driver]})")
        header = "| mode | qd | VMM | IOPS | CPU µs/req | device µs/req |"
        if with_kasou:
            header += " IOPS kasou/VMM | CPU/req kasou/VMM | device/req kasou/VMM |"
        print(header)
        print("|" + "---|" * (header.count("|") - 1))
        for mode, depth, medians in tables[driver]:
            for vmm in vmms:
                iops, cpu, device = medians[vmm]
                line = f"| {mode} | {depth} | {vmm} | {iops:.0f} | {cpu:.1f} | {device:.1f} |"
                if with_kasou:
                    kasou = medians["kasou"]
                    line += (" | | |" if vmm == "kasou" else
                             f" {ratio(kasou[0], iops)} | {ratio(kasou[1], cpu)} | {ratio(kasou[2], device)} |")
                print(line)


if __name__ == "__main__":
    main()
