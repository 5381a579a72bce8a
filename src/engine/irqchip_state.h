#pragma once

#include <array>

#include "base/types.h"

// The state of interrupt controllers and clocks an engine emulates itself (engine VMs with
// InterruptControllers::InKernel), in terms of the chips' datasheets rather than of any engine:
// plain values a snapshot stores and an engine converts to and from its own structures.
namespace kasou::engine {

// One 8259A: its registers and where it is in the ICW sequence.
struct PicChipState {
    u8 last_irr { 0 }; // input levels, for edge detection
    u8 irr { 0 }, imr { 0 }, isr { 0 };
    u8 priority_add { 0 }; // the input that ranks highest
    u8 irq_base { 0 };
    u8 read_reg_select { 0 }, poll { 0 }, special_mask { 0 };
    u8 init_state { 0 }, auto_eoi { 0 }, rotate_on_auto_eoi { 0 }, special_fully_nested_mode { 0 }, init4 { 0 };
    u8 elcr { 0 }, elcr_mask { 0 };
    bool operator==(PicChipState const&) const = default;
};

// An 82093AA IOAPIC with 24 pins.
struct IoapicChipState {
    u64 base_address { 0 };
    u32 ioregsel { 0 }, id { 0 }, irr { 0 };
    std::array<u64, 24> redirection {};
    bool operator==(IoapicChipState const&) const = default;
};

// One 8254 counter. load_age_ns is how long before the state was read the count was loaded, so
// the state moves between hosts whose clocks differ.
struct PitCounterState {
    u32 count { 0 };
    u16 latched_count { 0 };
    u8 count_latched { 0 }, status_latched { 0 }, status { 0 };
    u8 read_state { 0 }, write_state { 0 }, write_latch { 0 };
    u8 rw_mode { 0 }, mode { 0 }, bcd { 0 }, gate { 0 };
    i64 load_age_ns { 0 };
    bool operator==(PitCounterState const&) const = default;
};

struct KernelIrqchipState {
    PicChipState pic_primary;
    PicChipState pic_secondary;
    IoapicChipState ioapic;
    std::array<PitCounterState, 3> pit {};
    u32 pit_flags { 0 }; // bit 0: HPET legacy mode
    bool operator==(KernelIrqchipState const&) const = default;
};

// The paravirtual clock the engine gives the guest (KVM's kvmclock), in nanoseconds.
struct ClockState {
    u64 ns { 0 };
    bool operator==(ClockState const&) const = default;
};

} // namespace kasou::engine
