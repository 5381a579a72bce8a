# Sourced by the case scripts that run inside the nested test host (busybox sh), from
# /host_case_lib.sh where run_in_nested_host places it. Every wait is bounded, so a kasou that hangs
# costs one case its time limit, and the case's output says so, instead of the whole run stalling
# until the harness kills the host with nothing to show.
#
# The case protocol the host-side checks read: "=== CASE name", the run's output, then
# "=== STATUS name N (S s[; note])" with the case's wall time. A kasou killed for running too long gets the
# line "HOST killed: still running after N s" and the status 137 (SIGKILL).

# begin_case NAME / end_case [NOTE]: the lines around a case; end_case reports $status, the wall
# time and the note.
begin_case() {
    case_name=$1
    case_start=$(date +%s)
    echo "=== CASE $case_name"
}
end_case() {
    echo "=== STATUS $case_name $status ($(($(date +%s) - case_start)) s${1:+; $1})"
}

# start_kasou ARGUMENTS...: kasou with those arguments in the background, its pid in $pid. Standard
# input and output are whatever the caller redirects around the call. (A background command's
# standard input would be /dev/null without an explicit redirection: hence the copy on fd 4.)
start_kasou() {
    exec 4<&0
    kasou --log-level info "$@" <&4 3>&- 4<&- &
    pid=$!
    exec 4<&-
}

# wait_kasou SECONDS: waits until kasou ($pid) ends and sets $status to its exit status; if it is
# still running after SECONDS, it is killed. A watchdog does the killing: polling with `kill -0`
# cannot tell an exited child that is not yet reaped from a running one.
wait_kasou() {
    (
        sleep "$1"
        echo "HOST killed: still running after $1 s"
        kill -KILL "$pid"
    ) 2>/dev/null &
    watchdog=$!
    wait "$pid"
    status=$?
    kill "$watchdog" 2>/dev/null
    wait "$watchdog" 2>/dev/null
    return 0
}

# wait_for SECONDS CONDITION: true once the shell condition holds, false if it still does not after
# SECONDS (checked once a second) or kasou ($pid) has ended.
wait_for() {
    waited=0
    while ! eval "$2"; do
        [ "$waited" -ge "$1" ] && return 1
        kill -0 "$pid" 2>/dev/null || { eval "$2"; return; }
        sleep 1
        waited=$((waited + 1))
    done
}
