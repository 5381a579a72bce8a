# Helpers for the shell tests that drive kasou's command line; sourced, not run.
step() { echo "--- $*"; }
die() { echo "FAIL: $*" >&2; exit 1; }
expect_fail() { # expect_fail TEXT COMMAND...: the command fails and says TEXT
    local text=$1; shift
    local out status=0
    out=$("$@" 2>&1) || status=$?
    [[ $status -ne 0 ]] || die "'$*' succeeded"
    grep -qF -- "$text" <<<"$out" || die "'$*' said '$out', expected '$text'"
}
