#!/usr/bin/env python3
"""kasou's vhost-user-blk export against qemu-storage-daemon's, measured in one run.

The front-end is QEMU with guest RAM in a shared memfd, on its software CPU (TCG: this machine has
no VT-x), and the guest is kasou's virtio_smoke test guest in its benchmark mode (bench=randread or
randwrite, qd=N, 4 KiB requests at xorshift offsets over 64 MiB, polling, the same stream under
every back-end). TCG makes the guest slow, so absolute IOPS are far below what a VT-x host gets;
the back-ends face the same guest, so the ratios compare the back-ends. Each back-end's CPU time
(user + system, from /proc) per request is shown too.

Back-ends (each over the same random data, in the page cache):
  kasou-vol   kasou pool serve: a thin volume of a pool on a raw image file
  qsd-raw     qemu-storage-daemon --export type=vhost-user-blk on a raw image
  qsd-qcow2   the same on a qcow2 copy of it
Every workload runs against every back-end in turn, round after round (the order rotates), and
the table shows medians and the ratios kasou / peer.

    bench/storage/vhost_user_bench.py --kasou build/release/src/cmd/kasou \
        --guest build/release/guests/virtio_smoke.elf [--seconds 3] [--rounds 3] [--queues 1]
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

WORKLOADS = [
    ("4k randread QD1", "randread", 1),
    ("4k randread QD16", "randread", 16),
    ("4k randwrite QD1", "randwrite", 1),
    ("4k randwrite QD16", "randwrite", 16),
]
SIZE = 256 << 20
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def wait_for(path, process):
    for _ in range(200):
        if os.path.exists(path):
            return
        if process.poll() is not None:
            sys.exit(f"back-end exited early with {process.returncode}")
        time.sleep(0.05)
    sys.exit(f"no socket {path}")


class Backend:
    def __init__(self, name, command, socket):
        self.name, self.command, self.socket = name, command, socket
        self.process = None

    def start(self):
        if os.path.exists(self.socket):
            os.unlink(self.socket)
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.socket, self.process)

    def stop(self):
        self.process.terminate()
        self.process.wait()


def run_guest(args, socket, rw, qd):
    command = ["qemu-system-x86_64", "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio", "-cpu", "max",
               "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-M", "q35,accel=tcg,memory-backend=mem",
               "-object", "memory-backend-memfd,id=mem,size=128M,share=on", "-m", "128M", "-bios", "/usr/share/qemu/qboot.rom",
               "-kernel", args.guest, "-append", f"wait=poll bench={rw} qd={qd} seconds={args.seconds}",
               "-chardev", f"socket,id=c0,path={socket}",
               "-device", f"vhost-user-blk-pci,chardev=c0,disable-legacy=on,num-queues={args.queues}"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=args.seconds + 120).stdout
    iops = re.search(r"^iops: (\d+)", out, re.M)
    requests = re.search(r"^bench: (\d+) requests", out, re.M)
    if not iops or not requests:
        sys.exit(f"no benchmark result from the guest:\n{out}")
    return int(iops.group(1)), int(requests.group(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kasou", required=True)
    parser.add_argument("--guest", required=True)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--queues", type=int, default=1)
    args = parser.parse_args()
    for tool in ("qemu-system-x86_64", "qemu-storage-daemon", "qemu-img"):
        if not shutil.which(tool):
            sys.exit(f"needs {tool}")
    kasou = os.path.abspath(args.kasou)
    args.guest = os.path.abspath(args.guest)
    work = tempfile.mkdtemp(prefix="kasou-vhost-bench.")
    try:
        state = f"{work}/state"
        data = f"{work}/data.raw"
        with open(data, "wb") as out:
            out.write(os.urandom(SIZE))
        subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", data, f"{work}/data.qcow2"], check=True)
        with open(f"{work}/pool.img", "wb") as out:
            out.truncate(4 * SIZE)
        k = [kasou, "--state-dir", state, "--log-level", "error"]
        subprocess.run(k + ["pool", "create", "tank", f"{work}/pool.img"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(k + ["vol", "import", "tank/data", data], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def qsd(fmt, image, socket):
            return ["qemu-storage-daemon", "--blockdev", f"driver=file,node-name=file0,filename={image}",
                    "--blockdev", f"driver={fmt},node-name=disk0,file=file0",
                    "--export", f"type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,addr.path={socket},writable=on,"
                    f"num-queues={args.queues}"]
        backends = [
            Backend("kasou-vol", k + ["pool", "serve", "tank", "--queues", str(args.queues), "--vhost-user", f"data={work}/kasou.sock"],
                    f"{work}/kasou.sock"),
            Backend("qsd-raw", qsd("raw", data, f"{work}/qsd-raw.sock"), f"{work}/qsd-raw.sock"),
            Backend("qsd-qcow2", qsd("qcow2", f"{work}/data.qcow2", f"{work}/qsd-qcow2.sock"), f"{work}/qsd-qcow2.sock"),
        ]
        iops = {w[0]: {b.name: [] for b in backends} for w in WORKLOADS}
        cpu = {w[0]: {b.name: [] for b in backends} for w in WORKLOADS}
        for round_index in range(args.rounds):
            order = backends[round_index % len(backends):] + backends[:round_index % len(backends)]
            for backend in order:
                backend.start()
                try:
                    for name, rw, qd in WORKLOADS:
                        before = cpu_seconds(backend.process.pid)
                        result, requests = run_guest(args, backend.socket, rw, qd)
                        used = cpu_seconds(backend.process.pid) - before
                        iops[name][backend.name].append(result)
                        cpu[name][backend.name].append(used * 1e6 / max(requests, 1))
                        print(f"  round {round_index + 1}: {name}, {backend.name}: {result} IOPS, {used * 1e6 / max(requests, 1):.1f} us CPU/request",
                              file=sys.stderr, flush=True)
                finally:
                    backend.stop()
        names = [b.name for b in backends]
        print(f"\nvhost-user-blk, guest virtio_smoke on QEMU TCG, {args.queues} queue(s): median IOPS (back-end CPU us per request)")
        header = ["workload"] + names + ["kasou/qsd-raw", "kasou/qsd-qcow2"]
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---" for _ in header) + "|")
        for name, _, _ in WORKLOADS:
            med = {n: statistics.median(iops[name][n]) for n in names}
            cpu_med = {n: statistics.median(cpu[name][n]) for n in names}
            cells = [f"{med[n]:.0f} ({cpu_med[n]:.1f})" for n in names]
            ratios = [f"{med['kasou-vol'] / med[p]:.2f}x" for p in ("qsd-raw", "qsd-qcow2")]
            print("| " + " | ".join([name] + cells + ratios) + " |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
