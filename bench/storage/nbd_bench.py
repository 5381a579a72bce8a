#!/usr/bin/env python3
"""kasou's NBD server against qemu-nbd, measured in one run on the same data.

Every workload runs against every target in turn, round after round (the order rotates each
round), so drift of the machine hits all targets alike; the table shows the median per target and
the ratios kasou / peer.

The images are read into the page cache first and fio runs with --invalidate=0, so every target
works on cached data: the comparison is of the servers, not of the disk.

Targets (fio --ioengine=nbd through a Unix socket, except the ceiling):
  kasou-raw     kasou nbd serve --file on the raw image
  qemu-raw      qemu-nbd -f raw on the same raw image (file.locking=off: kasou holds the image locked)
  qemu-qcow2    qemu-nbd -f qcow2 on a qcow2 copy of it
  file          fio straight on the raw image (io_uring): the ceiling
First writes (allocating): a fresh thin volume in a fresh pool served by kasou (when `kasou pool`
is available) against a fresh thin qcow2 served by qemu-nbd; then a second volume in the same pool
after the first was removed, whose first writes reuse the space it freed.

    bench/storage/nbd_bench.py --kasou build/release/src/cmd/kasou [--size 1G] [--runtime 5] [--rounds 3]
        [--only allocated|first-write]
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

WORKLOADS = [
    # name, fio rw, block size, queue depth
    ("4k randread QD1", "randread", "4k", 1),
    ("4k randread QD16", "randread", "4k", 16),
    ("4k randwrite QD1", "randwrite", "4k", 1),
    ("4k randwrite QD16", "randwrite", "4k", 16),
    ("1M seqread QD4", "read", "1M", 4),
    ("1M seqwrite QD4", "write", "1M", 4),
]
FIRST_WRITE_WORKLOADS = [
    ("4k first-write QD1", "randwrite", "4k", 1),
    ("4k first-write QD16", "randwrite", "4k", 16),
]


def run(command, **kwargs):
    return subprocess.run(command, check=True, **kwargs)


def wait_for_socket(path, process, what):
    for _ in range(200):
        if os.path.exists(path):
            return
        if process.poll() is not None:
            sys.exit(f"{what} exited at start")
        time.sleep(0.05)
    sys.exit(f"{what} did not create {path}")


class Server:
    """A background NBD server on a Unix socket, stopped with SIGTERM."""

    def __init__(self, name, command, socket_path, export):
        self.name = name
        self.socket = socket_path
        self.export = export
        self.process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
        wait_for_socket(socket_path, self.process, name)

    def uri(self):
        return f"nbd+unix:///{self.export}?socket={self.socket}"

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


def fio(target, rw, bs, qd, runtime, size, work):
    """Runs one fio job; returns (IOPS, MiB/s)."""
    output = os.path.join(work, "fio.json")
    command = ["fio", "--name=bench", f"--rw={rw}", f"--bs={bs}", f"--iodepth={qd}", f"--size={size}",
               "--time_based", f"--runtime={runtime}", "--ramp_time=1", "--randrepeat=0",
               # Keep the page cache: every target then works on cached data, whatever ran before.
               "--invalidate=0",
               "--output-format=json", f"--output={output}"]
    if isinstance(target, Server):
        command += ["--ioengine=nbd", f"--uri={target.uri()}"]
    else:
        command += ["--ioengine=io_uring", f"--filename={target}"]
    run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(output) as f:
        job = json.load(f)["jobs"][0]
    iops = job["read"]["iops"] + job["write"]["iops"]
    mibs = (job["read"]["bw_bytes"] + job["write"]["bw_bytes"]) / 2**20
    return iops, mibs


def measure(workloads, targets, args, work):
    """{workload: {target: [(iops, MiB/s) per round]}}, alternating targets within each round."""
    results = {w[0]: {t: [] for t in targets} for w in workloads}
    names = list(targets)
    for round_index in range(args.rounds):
        order = names[round_index % len(names):] + names[:round_index % len(names)]
        for name, rw, bs, qd in workloads:
            for target in order:
                result = fio(targets[target], rw, bs, qd, args.runtime, args.fio_size, work)
                print(f"  round {round_index + 1}: {name}, {target}: {result[0]:.0f} IOPS, {result[1]:.0f} MiB/s", file=sys.stderr, flush=True)
                results[name][target].append(result)
    return results


def print_table(title, results, targets, baseline, peers, use_bandwidth_for):
    print(f"\n{title}")
    header = ["workload"] + list(targets) + [f"{baseline}/{p}" for p in peers]
    rows = []
    for workload, per_target in results.items():
        bandwidth = workload.startswith(use_bandwidth_for)
        index = 1 if bandwidth else 0
        medians = {t: statistics.median(v[index] for v in values) for t, values in per_target.items()}
        unit = " MiB/s" if bandwidth else ""
        row = [workload] + [f"{medians[t]:.0f}{unit}" for t in targets]
        row += [f"{medians[baseline] / medians[p]:.2f}x" if medians[p] else "-" for p in peers]
        rows.append(row)
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line(row))


def kasou_has_pools(kasou):
    usage = subprocess.run([kasou, "--help"], capture_output=True, text=True).stdout
    return any(line.split()[:1] == ["vol"] for line in usage.splitlines())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kasou", required=True, help="path to the kasou binary")
    parser.add_argument("--size", default="1G", help="image size (default 1G)")
    parser.add_argument("--runtime", type=int, default=5, help="seconds per fio run (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is reported (default 3)")
    parser.add_argument("--dir", default=None, help="work directory (default: a new one under /var/tmp)")
    parser.add_argument("--only", choices=["allocated", "first-write"], default=None,
                        help="run one of the two parts: allocated data or first writes (default: both)")
    args = parser.parse_args()
    args.fio_size = args.size
    kasou = os.path.realpath(args.kasou)
    work = args.dir or tempfile.mkdtemp(prefix="kasou-nbd-bench.", dir="/var/tmp")
    os.makedirs(work, exist_ok=True)
    servers = []
    try:
        if args.only != "first-write":
            run_allocated(kasou, args, work, servers)
        if args.only != "allocated":
            run_first_writes(kasou, args, work, servers)
    finally:
        for server in servers:
            server.stop()
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)


def run_allocated(kasou, args, work, servers):
    """kasou, qemu-nbd raw and qcow2, and the file itself on the same data."""
    raw = os.path.join(work, "image.raw")
    qcow2 = os.path.join(work, "image.qcow2")
    print(f"preparing {args.size} of random data in {work}", flush=True)
    run(["fio", "--name=fill", "--rw=write", "--bs=1M", f"--size={args.size}", f"--filename={raw}",
         "--ioengine=psync", "--refill_buffers", "--output=/dev/null"], stdout=subprocess.DEVNULL)
    run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow2])
    for image in (raw, qcow2):  # start with both images in the page cache
        with open(image, "rb") as f:
            while f.read(1 << 24):
                pass

    sock = lambda name: os.path.join(work, name + ".sock")
    kasou_raw = Server("kasou", [kasou, "nbd", "serve", "--file", f"raw={raw}", "--unix", sock("kasou")], sock("kasou"), "raw")
    servers.append(kasou_raw)
    # kasou holds the image locked while it serves it; qemu-nbd opens the same file without taking
    # its own byte-range locks (file.locking=off), so both serve the same cached data.
    qemu_raw = Server("qemu-nbd raw", ["qemu-nbd", "-x", "raw", "-k", sock("qemu-raw"), "--shared=16", "--persistent", "--image-opts",
                                       f"driver=raw,file.driver=file,file.filename={raw},file.locking=off"], sock("qemu-raw"), "raw")
    servers.append(qemu_raw)
    qemu_qcow2 = Server("qemu-nbd qcow2", ["qemu-nbd", "-f", "qcow2", "-x", "qcow2", "-k", sock("qemu-qcow2"), "--shared=16", "--persistent", qcow2], sock("qemu-qcow2"), "qcow2")
    servers.append(qemu_qcow2)
    targets = {"kasou-raw": kasou_raw, "qemu-raw": qemu_raw, "qemu-qcow2": qemu_qcow2, "file": raw}
    results = measure(WORKLOADS, targets, args, work)
    print_table("Allocated data (IOPS, or MiB/s for 1M)", results, list(targets), "kasou-raw", ["qemu-raw", "qemu-qcow2"], "1M")
    for server in servers:
        server.stop()
    servers.clear()


def run_first_writes(kasou, args, work, servers):
    """A fresh thin volume in a fresh pool against a fresh thin qcow2, for every workload and round;
    then a second volume in the same pool, whose first writes land in the space the first one
    freed (chunks that held data must be zeroed and flushed before they are mapped)."""
    sock = lambda name: os.path.join(work, name + ".sock")
    if not kasou_has_pools(kasou):
        print("\nfirst writes on a thin volume: skipped, this kasou has no `pool` command")
        return
    state = os.path.join(work, "state")
    member = os.path.join(work, "member.disk")
    # Thin images 4x the data size, so a timed run never comes back to a block it wrote; the
    # pool only a little larger than one, so the second volume reuses what the first freed.
    thin_size = str(4 * parse_size(args.size))
    thin_qcow2 = os.path.join(work, "thin.qcow2")
    first = {}
    one = argparse.Namespace(**vars(args))
    one.rounds = 1
    one.fio_size = thin_size
    kasou_command = lambda volume: [kasou, "--state-dir", state, "nbd", "serve", f"bench/{volume}", "--unix", sock("kasou-thin")]

    def measure_one(workload, targets, round_index):
        # Alternate which goes first from one round to the next.
        if round_index % 2:
            targets = dict(reversed(list(targets.items())))
        for name, per_target in measure([workload], targets, one, work).items():
            for target, values in per_target.items():
                first.setdefault(name, {}).setdefault(target, []).extend(values)
        for server in servers:
            server.stop()
        servers.clear()

    for round_index in range(args.rounds):
        for workload in FIRST_WRITE_WORKLOADS:
            # A fresh pool and a fresh qcow2 for every run, so every write allocates new space.
            run(["truncate", "-s", str(int(thin_size) + (256 << 20)), member])
            run([kasou, "--state-dir", state, "pool", "create", "bench", "--layout", "linear", member], stdout=subprocess.DEVNULL)
            run([kasou, "--state-dir", state, "vol", "create", "bench/fresh", "--size", thin_size], stdout=subprocess.DEVNULL)
            if os.path.exists(thin_qcow2):
                os.unlink(thin_qcow2)
            run(["qemu-img", "create", "-q", "-f", "qcow2", thin_qcow2, thin_size])
            servers.append(Server("kasou thin", kasou_command("fresh"), sock("kasou-thin"), "fresh"))
            servers.append(Server("qemu-nbd thin qcow2", ["qemu-nbd", "-f", "qcow2", "-x", "thin", "-k", sock("qemu-thin"), "--shared=16", "--persistent", thin_qcow2], sock("qemu-thin"), "thin"))
            measure_one(workload, {"kasou-thin": servers[0], "qemu-thin-qcow2": servers[1]}, round_index)
            # The same pool again: a new volume over the space the removed one freed.
            run([kasou, "--state-dir", state, "vol", "rm", "bench/fresh"], stdout=subprocess.DEVNULL)
            run([kasou, "--state-dir", state, "vol", "create", "bench/again", "--size", thin_size], stdout=subprocess.DEVNULL)
            servers.append(Server("kasou thin over freed space", kasou_command("again"), sock("kasou-thin"), "again"))
            measure_one(workload, {"kasou-thin-reused": servers[0]}, round_index)
            run([kasou, "--state-dir", state, "pool", "destroy", "bench", "--force"], stdout=subprocess.DEVNULL)
            os.unlink(member)
    for title, kasou_target in (("First writes on empty thin images (IOPS)", "kasou-thin"),
                                ("First writes over space freed by a removed volume (IOPS)", "kasou-thin-reused")):
        order = [kasou_target, "qemu-thin-qcow2"]
        print_table(title, {w: {t: v[t] for t in order} for w, v in first.items()}, order, kasou_target, ["qemu-thin-qcow2"], "1M")


def parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    return int(text[:-1]) * units[text[-1].upper()] if text[-1].upper() in units else int(text)


if __name__ == "__main__":
    main()
