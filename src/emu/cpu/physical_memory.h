#pragma once

#include <vector>

#include "base/types.h"

namespace kasou::emu::cpu {

// Guest-physical RAM as the software CPU sees it: a few runs of host memory, each at a
// guest-physical address. Anything else is MMIO and leaves the CPU as an exit. Slots are added
// while no vCPU runs and never change afterwards, so lookups take no lock.
class PhysicalMemory {
public:
    struct Slot {
        u64 guest_physical { 0 };
        u64 size { 0 };
        u8* host { nullptr };
    };

    void add(u64 guest_physical, u64 size, u8* host) { m_slots.push_back({ guest_physical, size, host }); }

    // The host byte behind `guest_physical`, with `available` bytes of the same slot from there;
    // nullptr when no RAM is there.
    u8* host_pointer(u64 guest_physical, u64* available = nullptr) const
    {
        for (auto const& slot : m_slots) {
            if (guest_physical - slot.guest_physical < slot.size) {
                if (available)
                    *available = slot.size - (guest_physical - slot.guest_physical);
                return slot.host + (guest_physical - slot.guest_physical);
            }
        }
        return nullptr;
    }

    std::vector<Slot> const& slots() const { return m_slots; }

private:
    std::vector<Slot> m_slots;
};

} // namespace kasou::emu::cpu
