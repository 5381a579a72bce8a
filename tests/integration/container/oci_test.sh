#!/bin/bash
# `kasou oci` runs real containers from a busybox-static bundle, as root: every config field checked
# from inside the container, the lifecycle and its errors, limits actually hit, seccomp denials,
# hooks in order, cleanup after a failed create and after kill -9 of `kasou oci create`.
# Usage: oci_test.sh KASOU_BINARY
set -euo pipefail

KASOU=$(realpath "$1")
[[ $(id -u) == 0 ]] || { echo "SKIP: needs root"; exit 0; }
BUSYBOX=$(command -v busybox || true)
[[ -x /bin/busybox ]] && BUSYBOX=/bin/busybox
file -L "$BUSYBOX" 2>/dev/null | grep -q "statically linked" || { echo "SKIP: needs busybox-static"; exit 0; }
WORK=$(mktemp -d /tmp/kasou-oci.XXXXXX)
ROOT=$WORK/state
cleanup() {
    for id in $("$KASOU" oci --root "$ROOT" list -q 2>/dev/null); do "$KASOU" oci --root "$ROOT" delete --force "$id" >/dev/null 2>&1 || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
K() { "$KASOU" oci --root "$ROOT" "$@"; }
source "$(dirname "${BASH_SOURCE[0]}")/../cli_test_lib.sh"
cgroup_dir() { # the container's memory cgroup directory (v1 / mixed) or its one v2 directory
    if [[ -d /sys/fs/cgroup/memory ]]; then echo "/sys/fs/cgroup/memory/kasou/$1"; else echo "/sys/fs/cgroup/kasou/$1"; fi
}

# A bundle: busybox-static and its applets, config.json from `kasou oci spec` edited with jq-less python.
ROOTFS=$WORK/bundle/rootfs
mkdir -p "$ROOTFS"/{bin,proc,sys,dev,tmp,etc,log}
cp "$BUSYBOX" "$ROOTFS/bin/busybox"
for applet in $("$BUSYBOX" --list); do [[ -e $ROOTFS/bin/$applet ]] || ln -s busybox "$ROOTFS/bin/$applet"; done
echo "root:x:0:0:root:/:/bin/sh" > "$ROOTFS/etc/passwd"
(cd "$WORK/bundle" && "$KASOU" oci spec)
BASE=$WORK/base.json
cp "$WORK/bundle/config.json" "$BASE"
# edit PYTHON-EXPRESSIONS...: writes bundle/config.json from the base with `c` (the config) changed.
edit() {
    python3 - "$BASE" "$WORK/bundle/config.json" "$WORK" "$@" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); work = sys.argv[3]
c["process"]["terminal"] = False
c["mounts"].append({"destination": "/log", "type": "bind", "source": work + "/log", "options": ["rbind", "rw"]})
for statement in sys.argv[4:]:
    exec(statement)
json.dump(c, open(sys.argv[2], "w"), indent=1)
PY
}
mkdir -p "$WORK/log"
B=(--bundle "$WORK/bundle")

step "spec writes a config.json that kasou accepts; features lists the namespaces"
expect_fail "exists already" bash -c "cd '$WORK/bundle' && '$KASOU' oci spec"
K features | grep -q '"time"' || die "features lacks the time namespace"

step "run: process fields observed from inside the container"
edit 'c["process"]["args"] = ["sh", "-c", "hostname; id; grep -E \"^Cap(Bnd|Eff|Amb)\" /proc/self/status; ulimit -n; umask; pwd; echo $FOO; cat /proc/self/oom_score_adj; grep NoNewPrivs /proc/self/status; cat /proc/sys/kernel/domainname; grep -c \" / \" /proc/self/mounts; touch /rootfile 2>&1; echo $$"]' \
     'c["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [10, 20], "umask": 63}' \
     'c["process"]["cwd"] = "/tmp"' 'c["process"]["env"].append("FOO=bar baz")' 'c["process"]["oomScoreAdj"] = 123' \
     'c["hostname"] = "box1"' 'c["domainname"] = "example.org"' \
     'c["process"]["capabilities"] = {k: ["CAP_KILL", "CAP_NET_RAW"] for k in ["bounding", "effective", "permitted", "inheritable", "ambient"]}' \
     'c["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654}]' \
     'c["mounts"][1]["options"].append("rw"); c["mounts"].insert(1, {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["mode=1777"]})'
out=$(K run "${B[@]}" fields 2>&1) || die "run failed: $out"
echo "$out"
grep -qx "box1" <<<"$out" || die "hostname"
grep -q "uid=1000 gid=1000 groups=10,20" <<<"$out" || die "user and additional gids"
# CAP_KILL (5) and CAP_NET_RAW (13): 0x2020
grep -q "CapBnd:.*0000000000002020" <<<"$out" || die "bounding set"
grep -q "CapEff:.*0000000000002020" <<<"$out" || die "effective set"
grep -q "CapAmb:.*0000000000002020" <<<"$out" || die "ambient set"
grep -qx "321" <<<"$out" || die "RLIMIT_NOFILE soft limit"
grep -qx "0077" <<<"$out" || die "umask"
grep -qx "/tmp" <<<"$out" || die "cwd"
grep -qx "bar baz" <<<"$out" || die "env"
grep -qx "123" <<<"$out" || die "oomScoreAdj"
grep -q "NoNewPrivs:.*1" <<<"$out" || die "noNewPrivileges"
grep -qx "example.org" <<<"$out" || die "domainname"
grep -q "Read-only file system" <<<"$out" || die "root.readonly"
grep -qx "1" <<<"$out" || die "the container's pid is 1 in its pid namespace"
[[ -z $(K list -q) ]] || die "run left a container behind"

step "mounts, masked and read-only paths, devices, sysctl"
edit 'c["process"]["args"] = ["sh", "-c", "wc -c < /etc/passwd; echo 1 > /proc/sys/kernel/ns_last_pid 2>&1; ls -l /dev/null /dev/zero /dev/kasou0; grep -E \" /(tmp|dev/shm|dev/mqueue|dev/pts|sys|sys/fs/cgroup/memory) \" /proc/self/mounts | cut -d\" \" -f2,3; cat /proc/sys/net/ipv4/ip_forward"]' \
     'c["mounts"].append({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid"]})' \
     'c["linux"]["devices"] = [{"type": "c", "path": "/dev/kasou0", "major": 1, "minor": 3, "fileMode": 438}]' \
     'c["linux"]["resources"]["devices"].append({"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"})' \
     'c["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}' 'c["linux"]["maskedPaths"].append("/etc/passwd")'
out=$(K run "${B[@]}" mounts 2>&1) || die "run failed: $out"
echo "$out"
grep -qx "0" <<<"$out" || die "/etc/passwd is not masked"
grep -q "Read-only file system" <<<"$out" || die "/proc/sys is not read-only"
grep -q "crw-rw-rw-.*1,.*3.*/dev/kasou0" <<<"$out" || die "linux.devices"
grep -q "/dev/mqueue mqueue" <<<"$out" || die "mqueue mount"
grep -q "/dev/pts devpts" <<<"$out" || die "devpts mount"
grep -q "/sys sysfs" <<<"$out" || die "sysfs mount"
if [[ -d /sys/fs/cgroup/memory ]]; then grep -q "/sys/fs/cgroup/memory cgroup" <<<"$out" || die "cgroup mount"; fi
grep -qx "1" <<<"$out" || die "sysctl net.ipv4.ip_forward in the container's network namespace"
[[ $(cat /proc/sys/net/ipv4/ip_forward) == 0 ]] || echo "note: host forwards IPv4 too"

step "lifecycle: create, state, start, kill, delete; errors on the wrong state"
edit 'c["process"]["args"] = ["sleep", "100"]'
K create "${B[@]}" --pid-file "$WORK/pid" life
pid=$(cat "$WORK/pid")
[[ $(K state life | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["status"], s["pid"])') == "created $pid" ]] || die "state after create"
expect_fail 'container "life" already exists' K create "${B[@]}" life
[[ -d $(cgroup_dir life) ]] || die "second create removed the first one's cgroup"
expect_fail "cannot pause container \"life\": it is created" K pause life
K start life
[[ $(K state life | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])') == running ]] || die "state after start"
expect_fail "cannot start container \"life\": it is running" K start life
tr '\0' ' ' < /proc/$pid/cmdline | grep -q "sleep 100" || die "the init runs the program"
grep -q "^PPid:" /proc/$pid/status
K ps --format json life | grep -q "$pid" || die "ps lists the init"
K pause life
[[ $(K state life | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])') == paused ]] || die "state after pause"
K resume life
echo '{"pids": {"limit": 7}}' | K update --resources - life
grep -qx 7 /sys/fs/cgroup/pids/kasou/life/pids.max 2>/dev/null || grep -qx 7 /sys/fs/cgroup/kasou/life/pids.max || die "update pids"
K events --stats life | grep -q '"type":"stats"' || die "events --stats"
out=$(K exec life sh -c 'hostname; echo $$; cat /proc/self/cgroup | grep -c kasou/life')
[[ $(sed -n 2p <<<"$out") -gt 1 && $(sed -n 3p <<<"$out") -ge 1 ]] || die "exec: not in the container's pid namespace and cgroup: $out"
status=0; K exec life sh -c 'exit 3' || status=$?
[[ $status == 3 ]] || die "exec exit status $status"
echo '{"user": {"uid": 5, "gid": 6}, "args": ["id"], "cwd": "/", "env": ["PATH=/bin"]}' > "$WORK/process.json"
K exec --process "$WORK/process.json" life | grep -q "uid=5 gid=6" || die "exec --process"
K exec --detach --pid-file "$WORK/exec.pid" life sleep 30
tr "\\0" " " < /proc/$(cat "$WORK/exec.pid")/cmdline | grep -q "sleep 30" || die "exec --detach --pid-file"
expect_fail "nosuch not found" K exec life nosuch
expect_fail "is running: stop it first" K delete life
K kill life KILL
for _ in $(seq 100); do [[ $(K state life | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])') == stopped ]] && break; sleep 0.05; done
K delete life
expect_fail 'container "life" does not exist' K state life
[[ ! -d $(cgroup_dir life) ]] || die "delete left the cgroup"
K run "${B[@]}" --detach forced
K delete --force forced
[[ ! -d $(cgroup_dir forced) && ! -d $ROOT/forced ]] || die "delete --force left something"

step "limits hit: a memory hog is killed, a fork bomb stops at pids.max"
edit 'c["process"]["args"] = ["sh", "-c", "s=x; while true; do s=$s$s; done"]' 'c["linux"]["resources"]["memory"] = {"limit": 33554432, "swap": 33554432}'
status=0; K run "${B[@]}" hog >/dev/null 2>&1 || status=$?
[[ $status == 137 ]] || die "memory hog exited with $status, expected 137 (SIGKILL by the OOM killer)"
# The bomb's shell dies when fork fails; its children stay, and the counting uses builtins only.
edit 'c["process"]["args"] = ["sh", "-c", "sh -c \"i=0; while [ \\$i -lt 30 ]; do sleep 3 & i=\\$((i+1)); done\" 2>/dev/null; set -- /proc/[0-9]*; echo $#"]' 'c["linux"]["resources"]["pids"] = {"limit": 10}'
out=$(K run "${B[@]}" bomb 2>&1) || die "fork bomb: $out"
[[ $out -le 10 && $out -ge 8 ]] || die "fork bomb: $out processes with pids.max 10"

step "org.kasou.cores: the container's cpuset is the core group"
edit 'c["annotations"] = {"org.kasou.cores": "0"}' 'c["process"]["args"] = ["sh", "-c", "grep Cpus_allowed_list /proc/self/status"]'
K run "${B[@]}" cores | grep -q "Cpus_allowed_list:.*0$" || die "org.kasou.cores"
edit 'c["annotations"] = {"org.kasou.cores": "0-999"}'
expect_fail "cpuset.cpus = 0-999" K run "${B[@]}" cores
edit 'c["annotations"] = {"org.kasou.cores": "auto"}'
expect_fail "annotations.org.kasou.cores: \"auto\"" K run "${B[@]}" cores

step "seccomp: errno, and kill"
edit 'c["process"]["args"] = ["sh", "-c", "mkdir /tmp/x; echo mkdir=$?"]' \
     'c["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}' \
     'c["mounts"].insert(1, {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"})'
out=$(K run "${B[@]}" seccomp 2>&1)
grep -q "Permission denied" <<<"$out" && grep -q "mkdir=1" <<<"$out" || die "seccomp errno: $out"
edit 'c["process"]["args"] = ["sh", "-c", "mkdir /tmp/x"]' \
     'c["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"}]}' \
     'c["mounts"].insert(1, {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"})'
status=0; K run "${B[@]}" seccomp-kill >/dev/null 2>&1 || status=$?
[[ $status == 159 ]] || die "seccomp kill: status $status, expected 159 (SIGSYS)"

step "hooks run in order, with the state on standard input"
rm -f "$WORK/log/hooks"
hook() { echo "{\"path\": \"/bin/sh\", \"args\": [\"sh\", \"-c\", \"read -r s; echo $1 \$s >> $2/hooks\"]}"; }
edit "c['hooks'] = {'createRuntime': [$(hook createRuntime "$WORK/log")], 'createContainer': [$(hook createContainer "$WORK/log")], 'startContainer': [$(hook startContainer /log)], 'poststart': [$(hook poststart "$WORK/log")], 'poststop': [$(hook poststop "$WORK/log")], 'prestart': [$(hook prestart "$WORK/log")]}" \
     'c["process"]["args"] = ["sh", "-c", "echo program >> /log/hooks"]'
K run "${B[@]}" hooked
# poststart and the program run at the same time; everything else has one order.
order=$(cut -d' ' -f1 "$WORK/log/hooks" | tr '\n' ' ')
[[ $order == "prestart createRuntime createContainer startContainer "* && $order == *" poststop " && $order == *program* && $order == *poststart* ]] \
    || die "hook order: $order"
grep "^createRuntime" "$WORK/log/hooks" | grep -q '"id":"hooked"' || die "hook state"
edit 'c["hooks"] = {"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "5"], "timeout": 1}]}'
expect_fail "did not finish within its timeout of 1 s" K run "${B[@]}" slowhook
[[ ! -d $ROOT/slowhook && ! -d $(cgroup_dir slowhook) ]] || die "a failed hook left state behind"

step "bad input: one clear error, non-zero status, nothing left behind; --log in JSON"
edit 'c["linux"]["namespaces"].append({"type": "bogus"})'
expect_fail 'linux.namespaces[' K --log "$WORK/log.json" --log-format json run "${B[@]}" bad
python3 -c "import json,sys; l=[json.loads(x) for x in open('$WORK/log.json')]; assert l[-1]['level']=='error' and 'unknown namespace' in l[-1]['msg'], l"
edit 'c["root"]["path"] = "/nonexistent"'
expect_fail "root.path /nonexistent" K run "${B[@]}" bad
edit 'c["linux"]["resources"]["cpu"] = {"cpus": "99"}'
expect_fail "cpuset.cpus = 99" K run "${B[@]}" bad
edit 'c["process"]["args"] = ["nosuchprogram"]'
expect_fail "nosuchprogram not found in the container's PATH" K run "${B[@]}" bad
[[ ! -d $ROOT/bad && ! -d $(cgroup_dir bad) ]] || die "a failed create left state or a cgroup"
expect_fail "--systemd-cgroup: not supported" K --systemd-cgroup list
expect_fail "--preserve-fds" K create --preserve-fds 1 "${B[@]}" x

step "kill -9 of create leaves nothing delete --force cannot remove"
edit 'c["hooks"] = {"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"]}]}'
"$KASOU" oci --root "$ROOT" create "${B[@]}" killed & creator=$!
for _ in $(seq 100); do pgrep -f "sleep 30" >/dev/null && break; sleep 0.05; done
kill -9 $creator; wait $creator 2>/dev/null || true
pkill -f "^sleep 30$" 2>/dev/null || true
[[ -d $ROOT/killed ]] || die "create was not under way"
K delete --force killed
[[ ! -d $ROOT/killed && ! -d $(cgroup_dir killed) ]] || die "delete --force after kill -9 left something"

step "process.terminal: the pty master arrives on --console-socket"
cat > "$WORK/console.py" <<'PY'
import os, socket, sys
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(sys.argv[1]); server.listen(1)
open(sys.argv[2], "w").close()
connection, _ = server.accept()
message, fds, _, _ = socket.recv_fds(connection, 1024, 1)
print("name", message.decode())
output = b""
while True:
    try:
        chunk = os.read(fds[0], 4096)
    except OSError:
        break
    if not chunk:
        break
    output += chunk
print(output.decode(errors="replace"))
PY
python3 "$WORK/console.py" "$WORK/console.sock" "$WORK/console.ready" > "$WORK/console.out" & listener=$!
for _ in $(seq 100); do [[ -e $WORK/console.ready ]] && break; sleep 0.05; done
edit 'c["process"]["terminal"] = True' 'c["process"]["args"] = ["sh", "-c", "tty; echo on-the-terminal"]'
K run "${B[@]}" --console-socket "$WORK/console.sock" tty
wait $listener
grep -q "name /dev/pts/" "$WORK/console.out" && grep -q "on-the-terminal" "$WORK/console.out" && grep -q "^/dev/pts/" "$WORK/console.out" \
    || die "terminal: $(cat "$WORK/console.out")"
edit 'c["process"]["terminal"] = True'
expect_fail "--console-socket is required" K run "${B[@]}" tty

step "kasou-runc: runc's command line through a link named kasou-runc"
ln -s "$KASOU" "$WORK/kasou-runc"
edit
"$WORK/kasou-runc" --root "$ROOT" --log "$WORK/runc.log" --log-format json run "${B[@]}" --detach viarunc
"$WORK/kasou-runc" --root "$ROOT" list | grep -q viarunc || die "list through kasou-runc"
"$WORK/kasou-runc" --root "$ROOT" delete --force viarunc
echo "PASS"
