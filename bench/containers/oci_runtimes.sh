#!/bin/bash
# Container start-up side by side: `run` of /bin/true in one busybox-static bundle with kasou, crun
# and runc, alternating, RUNS times each; prints the median wall time and median peak RSS of each
# runtime and kasou's ratios. As root. All three run in one private mount namespace with the empty
# cgroup v2 mount of the mixed layout (/sys/fs/cgroup/unified) hidden, since Debian's crun refuses
# that layout; kasou and runc work either way, and run the same way for a fair comparison.
# Usage: oci_runtimes.sh KASOU_BINARY [RUNS]
set -euo pipefail

if [[ ${1:-} == --inside ]]; then
    shift
    KASOU=$1 RUNS=$2 WORK=$3
    umount /sys/fs/cgroup/unified 2>/dev/null || true
    declare -A runtime=([kasou]="$KASOU oci" [crun]=crun [runc]=runc)
    for ((i = 0; i < RUNS; ++i)); do
        for name in kasou crun runc; do
            start=$EPOCHREALTIME
            /usr/bin/time -f %M -o "$WORK/rss" ${runtime[$name]} --root "$WORK/state-$name" run --bundle "$WORK/bundle" "b$i" >/dev/null
            end=$EPOCHREALTIME
            echo "$name $(( (${end/./} - ${start/./}) )) $(cat "$WORK/rss")" >> "$WORK/samples"
        done
    done
    exit 0
fi

KASOU=$(realpath "$1")
RUNS=${2:-50}
[[ $(id -u) == 0 ]] || { echo "needs root" >&2; exit 1; }
for tool in crun runc busybox; do command -v $tool >/dev/null || { echo "needs $tool (scripts/setup.sh)" >&2; exit 1; }; done
WORK=$(mktemp -d /run/kasou-oci-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/bundle/rootfs/bin"
cp "$(command -v busybox)" "$WORK/bundle/rootfs/bin/busybox"
ln -s busybox "$WORK/bundle/rootfs/bin/true"
(cd "$WORK/bundle" && "$KASOU" oci spec)
# The same configuration for all three: no terminal, /bin/true, a runtime-spec version crun 1.8 knows.
sed -i 's/"terminal": true/"terminal": false/; s/"sh"$/"true"/; s/"ociVersion": "1.2.0"/"ociVersion": "1.0.2"/' "$WORK/bundle/config.json"
unshare -m "$0" --inside "$KASOU" "$RUNS" "$WORK"

python3 - "$WORK/samples" "$RUNS" <<'PY'
import statistics, sys
samples = {}
for line in open(sys.argv[1]):
    name, micros, rss = line.split()
    samples.setdefault(name, ([], []))
    samples[name][0].append(int(micros) / 1000.0)
    samples[name][1].append(int(rss) / 1024.0)
print(f"container run of /bin/true, busybox-static bundle, {sys.argv[2]} runs each, alternating")
print(f"{'runtime':8} {'median ms':>10} {'min ms':>8} {'median peak RSS MiB':>20}")
median = {}
for name in ("kasou", "crun", "runc"):
    wall, rss = samples[name]
    median[name] = statistics.median(wall)
    print(f"{name:8} {median[name]:10.1f} {min(wall):8.1f} {statistics.median(rss):20.1f}")
for peer, goal in (("crun", 0.8), ("runc", 0.3)):
    ratio = median["kasou"] / median[peer]
    print(f"kasou / {peer}: {ratio:.2f}x median wall time (goal <= {goal}x)")
PY
