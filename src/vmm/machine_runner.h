#pragma once

#include "base/error.h"
#include "vmm/machine_config.h"
#include "vmm/stop_reason.h"

namespace kasou::vmm {

// What a guest's reboot request does to kasou (--on-reboot).
enum class RebootPolicy {
    Exit,    // kasou ends with the Reboot status (4)
    Restart, // a fresh machine is built from the same configuration and booted again
};

// Builds and runs machines from `config` until one ends other than by a reboot that `policy` turns
// into a restart. SIGINT and SIGTERM stay blocked for the whole time, so one that arrives while a
// machine is being built (the first or a restarted one) is taken by that machine's run() and ends it
// with the Signal status instead of killing kasou half-way. Returns the last stop, or the error
// that kept a machine from being built (nothing of that machine ran).
ErrorOr<StopReason> run_machines(MachineConfig const& config, RebootPolicy policy);

} // namespace kasou::vmm
