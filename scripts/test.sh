#!/bin/sh
# Sets up a Debian 12 machine (as root) and runs kasou's whole test suite:
#   1. Release build: unit, integration (/dev/kvm, storage clients) and nested-host tests;
#   2. the unit tests again under AddressSanitizer and UndefinedBehaviorSanitizer;
#   3. every libFuzzer target for a short run, seeded with the test guests.
# Options: --skip-nested leaves out the tests that boot the emulated nested host (CTest label
# "nested"; also KASOU_SKIP_NESTED=1). KASOU_FUZZ_SECONDS sets each fuzz run's length (default 15).
# Ends with one line "N passed, M failed" counting every test of every stage; the exit status is
# 0 only when nothing failed.
set -u
cd "$(dirname "$0")/.."

skip_nested=${KASOU_SKIP_NESTED:-0}
for argument in "$@"; do
    case "$argument" in
    --skip-nested) skip_nested=1 ;;
    *) echo "test.sh: unknown option $argument (known: --skip-nested)" >&2; exit 2 ;;
    esac
done
fuzz_seconds=${KASOU_FUZZ_SECONDS:-15}
jobs=$(nproc)
passed=0
failed=0

stage() { printf '\n== %s\n' "$*"; }

fail() {
    echo "test.sh: $1" >&2
    failed=$((failed + 1))
}

# run_ctest BUILD_DIR [ctest options]: runs the tests and adds their counts to the totals.
run_ctest() {
    build_dir=$1
    shift
    log=$(mktemp)
    ctest --test-dir "$build_dir" --output-on-failure -j "$jobs" "$@" 2>&1 | tee "$log"
    summary=$(grep -E "tests passed, [0-9]+ tests? failed out of [0-9]+" "$log" | tail -1)
    if [ -n "$summary" ]; then
        total=$(echo "$summary" | sed -E 's/.* out of ([0-9]+).*/\1/')
        bad=$(echo "$summary" | sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/')
        passed=$((passed + total - bad))
        failed=$((failed + bad))
    else
        fail "ctest in $build_dir ran no test"
    fi
    rm -f "$log"
}

stage "setup"
./scripts/setup.sh || { echo "test.sh: setup failed" >&2; exit 1; }

stage "release build and tests"
if cmake --preset release >/dev/null && cmake --build build/release -j "$jobs"; then
    if [ "$skip_nested" = 1 ]; then
        run_ctest build/release -LE nested
    else
        run_ctest build/release
    fi
else
    fail "release build failed"
fi

stage "unit tests under AddressSanitizer and UndefinedBehaviorSanitizer"
if cmake --preset asan >/dev/null && cmake --build build/asan -j "$jobs" --target unit_tests; then
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run_ctest build/asan -L unit
else
    fail "sanitizer build failed"
fi

stage "fuzz targets, $fuzz_seconds s each"
if cmake --preset fuzz >/dev/null && cmake --build build/fuzz -j "$jobs"; then
    for target in build/fuzz/fuzz/fuzz_*; do
        [ -x "$target" ] || continue
        name=$(basename "$target")
        corpus=$(mktemp -d)
        # Seeds: the test guests and any seed files a target ships in fuzz/seeds/NAME/.
        for seed in build/release/guests/*.elf build/release/guests/*.bin fuzz/seeds/"${name#fuzz_}"/*; do
            [ -f "$seed" ] && cp "$seed" "$corpus/"
        done
        mkdir -p build/fuzz/crashes
        if "$target" -max_total_time="$fuzz_seconds" -rss_limit_mb=2048 -artifact_prefix=build/fuzz/crashes/ "$corpus" \
            >"$corpus.log" 2>&1; then
            echo "$name: ok ($(grep -Eo 'Done [0-9]+ runs' "$corpus.log" | tail -1))"
            passed=$((passed + 1))
        else
            tail -40 "$corpus.log"
            fail "$name found a crash (the input is in build/fuzz/crashes/)"
        fi
        rm -rf "$corpus" "$corpus.log"
    done
else
    fail "fuzz build failed"
fi

echo
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
