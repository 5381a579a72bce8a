#pragma once

#include <span>

#include "base/types.h"

namespace kasou::bus {

// A device reachable through an IoBus. It sees offsets from the start of the range it was inserted
// at, never absolute addresses. Calls may come from several vCPU threads at once: a device that
// keeps state guards it with its own lock.
class BusDevice {
public:
    virtual ~BusDevice() = default;
    // Fills data (1 to 8 bytes for port I/O and MMIO) with the value at offset.
    virtual void read(u64 offset, std::span<u8> data) = 0;
    virtual void write(u64 offset, std::span<u8 const> data) = 0;
};

} // namespace kasou::bus
