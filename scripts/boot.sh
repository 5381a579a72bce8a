#!/bin/sh
# Sets up a Debian 12 machine (as root), builds kasou and boots the default guest: the SMP smoke
# test guest on 2 vCPUs, which prints what it checks on the serial console and powers off through
# the debug-exit port (kasou's exit status 1 means its checks passed).
set -eu
cd "$(dirname "$0")/.."
./scripts/setup.sh
cmake --preset release >/dev/null
cmake --build build/release --target kasou guests
exec build/release/src/cmd/kasou --log-level info run --kernel build/release/guests/pvh_smoke.elf \
    --cpus 2 --memory 256M --cmdline "expect_cpus=2 expect_mem=256M"
