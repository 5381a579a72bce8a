#pragma once

#include <memory>
#include <span>

#include "base/types.h"
#include "bus/bus_device.h"

namespace kasou::bus {

// Part of a device's register range inserted on its own, where another device owns the ports in
// between (the i8042's data port 0x60 and command port 0x64 around port 0x61, which belongs to the
// PIT): the device sees the offsets it would see at its whole range.
class OffsetWindow final : public BusDevice {
public:
    OffsetWindow(std::shared_ptr<BusDevice> device, u64 first_offset)
        : m_device(std::move(device))
        , m_first_offset(first_offset)
    {
    }

    void read(u64 offset, std::span<u8> data) override { m_device->read(m_first_offset + offset, data); }
    void write(u64 offset, std::span<u8 const> data) override { m_device->write(m_first_offset + offset, data); }

private:
    std::shared_ptr<BusDevice> m_device;
    u64 m_first_offset;
};

} // namespace kasou::bus
