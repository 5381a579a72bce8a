#pragma once

#include <span>

#include "base/types.h"
#include "pci/config_space.h"

namespace kasou::pci {

// A PCI function on kasou's bus. Its configuration space is read and written only through the
// PciBus, which serializes those calls; BAR accesses may come from several vCPU threads at once
// and the function guards its own state.
class PciDevice {
public:
    virtual ~PciDevice() = default;

    virtual ConfigSpace& config() = 0;
    // Called by the bus after the driver wrote configuration space (e.g. the MSI-X control word).
    virtual void config_written(u16 offset, u8 size) { (void)offset, (void)size; }
    virtual void bar_read(u8 bar, u64 offset, std::span<u8> data) = 0;
    virtual void bar_write(u8 bar, u64 offset, std::span<u8 const> data) = 0;
};

} // namespace kasou::pci
