#pragma once

#include <array>
#include <functional>
#include <mutex>
#include <optional>
#include <span>

#include "base/error.h"
#include "base/types.h"
#include "bus/bus_device.h"

namespace kasou::emu {

// An MSI as a local APIC receives it: the address (0xFEExxxxx: destination, destination mode) and
// data (vector, delivery mode, trigger mode) words. Intel SDM vol. 3, 11.11.
struct MsiMessage {
    u64 address { 0 };
    u32 data { 0 };
    bool operator==(MsiMessage const&) const = default;
};

// An Intel 82093AA I/O APIC (datasheet, order 290566) with 24 input pins, as the MMIO device at
// 0xFEC00000: IOREGSEL at offset 0x00, IOWIN at 0x10, and the EOI register at 0x40 of the version
// 0x20 I/O APICs (ICH and later), which QEMU's q35 IOAPIC also reports. Registers: ID, version,
// arbitration ID, and the redirection table (vector, delivery mode, destination mode, delivery
// status, polarity, remote IRR, trigger mode, mask, destination), all masked at reset.
//
// It delivers each interrupt as the MSI the redirection entry translates to, through `deliver`, and
// reports each change of a pin's translation through `route` (nullopt while the pin is masked), so
// a host whose local APICs live elsewhere (KVM's split irqchip) can keep the routes it scans for
// level-triggered vectors in step. Inputs are active-high "asserted" levels: the board's wiring
// (and so the polarity bit, which is stored and read back) is abstracted away, as in QEMU and KVM.
// Level-triggered pins set remote IRR when delivered and deliver again only after an EOI for their
// vector (eoi(), from the local APIC, or the EOI register) or after being switched to edge;
// edge-triggered pins deliver on each rising edge while unmasked (edges on a masked pin are lost,
// as the datasheet says).
// Thread-safe: one lock; `deliver` and `route` run under it and must not call back into the IOAPIC.
class Ioapic final : public bus::BusDevice {
public:
    using DeliverFunction = std::function<void(u32 pin, MsiMessage message)>;
    using RouteFunction = std::function<void(u32 pin, std::optional<MsiMessage> message)>;

    static constexpr u64 BASE = 0xfec0'0000;
    static constexpr u64 SIZE = 0x1000;
    static constexpr u32 PIN_COUNT = 24;
    static constexpr u8 VERSION = 0x20;

    // Everything the IOAPIC holds, for snapshots: the register select, the ID, the redirection
    // table (remote IRR included) and the level of every input pin.
    struct State {
        u8 select { 0 };
        u8 id { 0 };
        std::array<u64, PIN_COUNT> table {};
        u32 lines { 0 };
        bool operator==(State const&) const = default;
    };

    Ioapic(DeliverFunction deliver, RouteFunction route);

    State state();
    // Refuses bits no guest write can set (checked first: nothing changes on an error); then
    // reports every pin's translation through `route`. Nothing is delivered: an interrupt in flight
    // at the snapshot is in remote IRR and in the local APIC state.
    ErrorOr<void> set_state(State const& state);

    void read(u64 offset, std::span<u8> data) override;
    void write(u64 offset, std::span<u8 const> data) override;

    // Drives a pin (pins >= PIN_COUNT are ignored).
    void set_irq(u32 pin, bool level);
    // A local APIC's EOI of a level-triggered `vector`: clears remote IRR of every pin that
    // delivered it and delivers again any such pin still asserted.
    void eoi(u8 vector);
    // The MSI pin's redirection entry translates to, nullopt while masked.
    std::optional<MsiMessage> route(u32 pin);
    u64 redirection_entry(u32 pin);

private:
    u32 read_register(u8 index) const;
    void write_register(u8 index, u32 value);
    void eoi_locked(u8 vector);
    void service(u32 pin);
    std::optional<MsiMessage> route_locked(u32 pin) const;

    std::mutex m_lock;
    DeliverFunction m_deliver;
    RouteFunction m_route;
    u8 m_select { 0 };
    u8 m_id { 0 };
    std::array<u64, PIN_COUNT> m_table {};
    u32 m_lines { 0 };
};

} // namespace kasou::emu
