#include "pci/pci_bus.h"

#include <algorithm>
#include <mutex>

#include <fmt/format.h>

namespace kasou::pci {

namespace {

// The host bridge: Red Hat's generic PCIe host bridge ID (1b36:0008), class 06/00.
class HostBridge final : public PciDevice {
public:
    HostBridge()
        : m_config(PciIdentity { 0x1b36, 0x0008, 0, 0x06, 0x00, 0, 0x1af4, 0x1100 })
    {
    }
    ConfigSpace& config() override { return m_config; }
    void bar_read(u8, u64, std::span<u8> data) override { std::fill(data.begin(), data.end(), 0xFF); }
    void bar_write(u8, u64, std::span<u8 const>) override { }

private:
    ConfigSpace m_config;
};

u32 little_endian(std::span<u8 const> data)
{
    u32 value = 0;
    for (size_t i = 0; i < data.size() && i < 4; ++i)
        value |= u32 { data[i] } << (8 * i);
    return value;
}

void store_little_endian(std::span<u8> data, u32 value)
{
    for (size_t i = 0; i < data.size(); ++i)
        data[i] = i < 4 ? static_cast<u8>(value >> (8 * i)) : 0xFF;
}

} // namespace

// Configuration mechanism #1 (PCI 3.0, 3.2.2.3.2): 0xCF8 holds the address, 0xCFC-0xCFF the data.
class PciBus::ConfigPorts final : public bus::BusDevice {
public:
    explicit ConfigPorts(PciBus& bus)
        : m_bus(bus)
    {
    }
    void read(u64 offset, std::span<u8> data) override
    {
        if (offset == 0 && data.size() == 4) {
            std::shared_lock guard(m_bus.m_lock);
            store_little_endian(data, m_bus.m_config_address);
            return;
        }
        auto target = decode(offset, data.size());
        u32 value = target ? m_bus.config_read(target->device, target->function, target->offset, static_cast<u8>(data.size())) : 0xFFFF'FFFF;
        store_little_endian(data, value);
    }
    void write(u64 offset, std::span<u8 const> data) override
    {
        if (offset == 0 && data.size() == 4) {
            std::unique_lock guard(m_bus.m_lock);
            m_bus.m_config_address = little_endian(data);
            return;
        }
        if (auto target = decode(offset, data.size()))
            m_bus.config_write(target->device, target->function, target->offset, static_cast<u8>(data.size()), little_endian(data));
    }

private:
    struct Target {
        u8 device;
        u8 function;
        u16 offset;
    };
    // Splits the CF8 register for an access at data port `offset`; nothing when the register is
    // disabled or names another bus.
    std::optional<Target> decode(u64 offset, size_t size) const
    {
        std::shared_lock guard(m_bus.m_lock);
        u32 address = m_bus.m_config_address;
        if (offset < 4 || !(address & 0x8000'0000) || ((address >> 16) & 0xFF) != 0 || size > 4)
            return std::nullopt;
        return Target { static_cast<u8>((address >> 11) & 0x1F), static_cast<u8>((address >> 8) & 0x7),
            static_cast<u16>((address & 0xFC) + (offset - 4)) };
    }

    PciBus& m_bus;
};

class PciBus::Ecam final : public bus::BusDevice {
public:
    explicit Ecam(PciBus& bus)
        : m_bus(bus)
    {
    }
    void read(u64 offset, std::span<u8> data) override
    {
        u32 value = data.size() <= 4 ? m_bus.config_read(device(offset), function(offset), reg(offset), static_cast<u8>(data.size())) : 0xFFFF'FFFF;
        store_little_endian(data, value);
    }
    void write(u64 offset, std::span<u8 const> data) override
    {
        if (data.size() <= 4)
            m_bus.config_write(device(offset), function(offset), reg(offset), static_cast<u8>(data.size()), little_endian(data));
    }

private:
    static u8 device(u64 offset) { return static_cast<u8>((offset >> 15) & 0x1F); }
    static u8 function(u64 offset) { return static_cast<u8>((offset >> 12) & 0x7); }
    static u16 reg(u64 offset) { return static_cast<u16>(offset & 0xFFF); }
    PciBus& m_bus;
};

class PciBus::BarWindow final : public bus::BusDevice {
public:
    explicit BarWindow(PciBus& bus)
        : m_bus(bus)
    {
    }
    void read(u64 offset, std::span<u8> data) override
    {
        if (auto target = m_bus.find_bar(m_bus.m_window_base + offset, data.size()))
            target->device->bar_read(target->bar, target->offset, data);
        else
            std::fill(data.begin(), data.end(), 0xFF);
    }
    void write(u64 offset, std::span<u8 const> data) override
    {
        if (auto target = m_bus.find_bar(m_bus.m_window_base + offset, data.size()))
            target->device->bar_write(target->bar, target->offset, data);
    }

private:
    PciBus& m_bus;
};

PciBus::PciBus(u64 window_base, u64 window_size)
    : m_window_base(window_base)
    , m_window_size(window_size)
    , m_next_bar_address(window_base)
{
    m_devices[0] = std::make_shared<HostBridge>();
}

ErrorOr<u8> PciBus::add(std::shared_ptr<PciDevice> device)
{
    std::unique_lock guard(m_lock);
    auto slot = std::find(m_devices.begin(), m_devices.end(), nullptr);
    if (slot == m_devices.end())
        return make_error(ErrorKind::ResourceExhausted, "PCI bus 0 is full (32 devices)");
    auto& config = device->config();
    for (u8 bar = 0; bar < ConfigSpace::BAR_COUNT; ++bar) {
        u64 size = config.bar_size(bar);
        if (size == 0)
            continue;
        u64 address = (m_next_bar_address + size - 1) & ~(size - 1);
        if (address + size > m_window_base + m_window_size)
            return make_error(ErrorKind::ResourceExhausted, fmt::format("PCI BAR window is full: no room for a {}-byte BAR", size));
        bool is_64bit = config.read(static_cast<u16>(0x10 + 4 * bar), 4) & 0x4;
        config.set_memory_bar(bar, size, address, is_64bit);
        m_next_bar_address = address + size;
        if (is_64bit)
            ++bar;
    }
    *slot = std::move(device);
    return static_cast<u8>(slot - m_devices.begin());
}

u32 PciBus::config_read(u8 device, u8 function, u16 offset, u8 size)
{
    std::shared_lock guard(m_lock);
    if (device >= MAX_DEVICES || function != 0 || !m_devices[device])
        return 0xFFFF'FFFF >> (32 - 8 * std::min<u8>(size, 4));
    return m_devices[device]->config().read(offset, size);
}

void PciBus::config_write(u8 device, u8 function, u16 offset, u8 size, u32 value)
{
    std::unique_lock guard(m_lock);
    if (device >= MAX_DEVICES || function != 0 || !m_devices[device])
        return;
    m_devices[device]->config().write(offset, size, value);
    m_devices[device]->config_written(offset, size);
}

std::optional<PciBus::BarTarget> PciBus::find_bar(u64 address, u64 length)
{
    std::shared_lock guard(m_lock);
    for (auto const& device : m_devices) {
        if (!device || !device->config().memory_enabled())
            continue;
        for (u8 bar = 0; bar < ConfigSpace::BAR_COUNT; ++bar) {
            u64 base = device->config().bar_address(bar);
            u64 size = device->config().bar_size(bar);
            if (size != 0 && address >= base && address - base < size && length <= size - (address - base))
                return BarTarget { device, bar, address - base };
        }
    }
    return std::nullopt;
}

std::shared_ptr<bus::BusDevice> PciBus::config_ports() { return std::make_shared<ConfigPorts>(*this); }
std::shared_ptr<bus::BusDevice> PciBus::ecam() { return std::make_shared<Ecam>(*this); }
std::shared_ptr<bus::BusDevice> PciBus::bar_window() { return std::make_shared<BarWindow>(*this); }

} // namespace kasou::pci
