#include "vmm/stop_reason.h"

#include <fmt/format.h>

#include "devices/debug_exit.h"

namespace kasou::vmm {

int exit_status_of(StopKind kind)
{
    switch (kind) {
    case StopKind::PoweredOff:
        return 0;
    case StopKind::Reboot:
        return 4;
    case StopKind::TripleFault:
        return 6;
    case StopKind::Signal:
        return 8;
    case StopKind::VcpuFailure:
        return 10;
    case StopKind::Halted:
        return 12;
    case StopKind::GuestCrash:
        return 14;
    case StopKind::DebugExit:
        break;
    }
    return 1;
}

StopReason StopReason::make(StopKind kind, std::string message)
{
    return StopReason { kind, exit_status_of(kind), std::move(message) };
}

StopReason StopReason::debug_exit(unsigned value)
{
    int status = devices::DebugExit::exit_status(value);
    return StopReason { StopKind::DebugExit, status,
        fmt::format("guest wrote {:#x} to the debug-exit port (exit status {})", value, status) };
}

} // namespace kasou::vmm
