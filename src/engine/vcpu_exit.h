#pragma once

#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "base/types.h"

namespace kasou::engine {

enum class AccessDirection { Read, Write };

// Why Vcpu::run() returned. Each kind is a value; the spans in PortIo and Mmio point into the
// engine's own exit buffer and stay valid until the next run() of the same vCPU, which also
// completes a read with what the VMM put there.
namespace exit {

// IN / OUT (or INS / OUTS: `count` items of `size` bytes each, back to back in `data`).
struct PortIo {
    u16 port { 0 };
    u8 size { 0 };
    u32 count { 0 };
    AccessDirection direction { AccessDirection::Read };
    std::span<u8> data;
};

// A guest-physical access that hit no RAM; `data` is the access's size (1 to 8 bytes).
struct Mmio {
    u64 address { 0 };
    AccessDirection direction { AccessDirection::Read };
    std::span<u8> data;
};

// HLT with no interrupt controller in the engine to wait on.
struct Halt { };

// Shutdown: a triple fault (or a shutdown cycle) the engine could not handle.
struct Shutdown { };

// run() was cut short by kick() or a signal; nothing to handle, look at the VMM's flags again.
struct Interrupted { };

// The guest asked the platform for something through the engine (PSCI, a hypercall, a crash
// notifier).
struct SystemEvent {
    enum class Kind { PowerOff, Reset, Crash };
    Kind kind { Kind::PowerOff };
};

// The local APIC acknowledged a level-triggered vector that the VMM's IOAPIC routes (an engine VM
// with InterruptControllers::Split): the VMM's IOAPIC clears remote IRR for it.
struct IoapicEoi {
    u8 vector { 0 };
};

// The guest can take an external interrupt now (after Vcpu::request_interrupt_window(true)).
struct InterruptWindowOpen { };

// The engine could not go on with this vCPU. `description` is a complete sentence for the user
// ("KVM could not enter the guest (KVM_EXIT_FAIL_ENTRY, hardware reason 0x21)").
struct Failure {
    enum class Kind {
        EmulationFailure, // an instruction the engine cannot emulate
        InternalError,    // the engine's own error, `code` its sub-reason
        EntryFailure,     // the hardware refused to enter the guest, `code` its reason
        UnknownExit,      // an exit the engine's implementation does not know, `code` its number
        MalformedExit,    // an exit whose fields are out of range
        UnknownSystemEvent,
    };
    Kind kind { Kind::InternalError };
    u64 code { 0 };
    std::string description;
};

} // namespace exit

using VcpuExit = std::variant<exit::PortIo, exit::Mmio, exit::Halt, exit::Shutdown, exit::Interrupted, exit::SystemEvent,
    exit::IoapicEoi, exit::InterruptWindowOpen, exit::Failure>;

// "port I/O", "MMIO", "halt", ... for messages.
std::string_view exit_name(VcpuExit const& exit);

} // namespace kasou::engine
