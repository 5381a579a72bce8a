#pragma once

#include <string>

namespace kasou::vmm {

// Why a machine stopped. Each kind has its own process exit status so a caller can tell them apart;
// the statuses are even, so they never collide with a debug-exit status ((v << 1) | 1 is odd).
enum class StopKind {
    PoweredOff,  // 0: the guest powered off (ACPI S5 or a KVM shutdown event)
    Reboot,      // 4: the guest asked for a reset (i8042, KVM reset event)
    TripleFault, // 6: the CPU shut down (KVM_EXIT_SHUTDOWN), usually a triple fault
    Signal,      // 8: kasou got SIGINT or SIGTERM and stopped the guest
    VcpuFailure, // 10: KVM could not run the guest (internal error, failed entry, unexpected exit)
    Halted,      // 12: a vCPU halted with nothing left to wake it
    GuestCrash,  // 14: the guest reported a crash (KVM crash event)
    DebugExit,   // (v << 1) | 1: the guest wrote v to the debug-exit port
};

struct StopReason {
    StopKind kind { StopKind::PoweredOff };
    int status { 0 }; // the process exit status for this stop
    std::string message;

    static StopReason make(StopKind kind, std::string message);
    static StopReason debug_exit(unsigned value);
};

// The exit status documented for a kind (DebugExit has its own per value).
int exit_status_of(StopKind kind);

// Exit status for errors found before any vCPU ran (bad options, bad kernel, no KVM).
constexpr int EXIT_CONFIGURATION_ERROR = 2;

} // namespace kasou::vmm
