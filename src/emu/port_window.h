#pragma once

#include <functional>
#include <memory>
#include <span>

#include "base/types.h"
#include "bus/bus_device.h"

namespace kasou::emu {

// A byte-wide port range of a device whose registers sit at several unrelated port ranges (the PIC
// pair at 0x20, 0xa0 and 0x4d0; the PIT at 0x40 and 0x61): it turns the bus's offsets back into
// port numbers, and splits wider accesses into bytes as the ISA bus does.
class PortWindow final : public bus::BusDevice {
public:
    using ReadFunction = std::function<u8(u16 port)>;
    using WriteFunction = std::function<void(u16 port, u8 value)>;

    PortWindow(u16 base, ReadFunction read, WriteFunction write)
        : m_base(base)
        , m_read(std::move(read))
        , m_write(std::move(write))
    {
    }

    void read(u64 offset, std::span<u8> data) override
    {
        for (size_t i = 0; i < data.size(); ++i)
            data[i] = m_read(static_cast<u16>(m_base + offset + i));
    }
    void write(u64 offset, std::span<u8 const> data) override
    {
        for (size_t i = 0; i < data.size(); ++i)
            m_write(static_cast<u16>(m_base + offset + i), data[i]);
    }

private:
    u16 m_base;
    ReadFunction m_read;
    WriteFunction m_write;
};

// The window at `base` onto a device with read_port(u16) and write_port(u16, u8); it keeps the
// device alive.
template<class Device>
std::shared_ptr<bus::BusDevice> port_window(std::shared_ptr<Device> device, u16 base)
{
    return std::make_shared<PortWindow>(
        base, [device](u16 port) { return device->read_port(port); }, [device](u16 port, u8 value) { device->write_port(port, value); });
}

} // namespace kasou::emu
