#pragma once

#include <array>
#include <memory>
#include <optional>
#include <shared_mutex>

#include "base/error.h"
#include "bus/bus_device.h"
#include "pci/pci_device.h"

namespace kasou::pci {

// PCI bus 0 of a machine: a host bridge at device 0 and up to 31 functions, reached by the guest
// through configuration mechanism #1 (ports 0xCF8-0xCFF), through ECAM (memory-mapped, 4 KiB per
// function) and, for BARs, through one MMIO window that this bus dispatches by the BARs' current
// addresses, so a driver may move BARs without the VMM's buses changing.
//
// Devices are added while the machine is built; afterwards the device table does not change.
// Configuration accesses take the bus lock exclusively, BAR dispatch takes it shared.
class PciBus {
public:
    static constexpr u8 MAX_DEVICES = 32;
    static constexpr u64 CONFIG_PORT = 0xCF8;
    static constexpr u64 CONFIG_PORT_COUNT = 8;
    static constexpr u64 ECAM_BUS_SIZE = 1ull << 20; // 32 devices x 8 functions x 4 KiB

    PciBus(u64 window_base, u64 window_size);

    // Places a device at the next free slot, assigns its BARs from the window (sizes taken from
    // the device's ConfigSpace, already declared), and returns its device number.
    ErrorOr<u8> add(std::shared_ptr<PciDevice> device);

    // Bus-facing adapters, to insert into the port-I/O and MMIO buses.
    std::shared_ptr<bus::BusDevice> config_ports();
    std::shared_ptr<bus::BusDevice> ecam();
    std::shared_ptr<bus::BusDevice> bar_window();
    u64 window_base() const { return m_window_base; }
    u64 window_size() const { return m_window_size; }

    u32 config_read(u8 device, u8 function, u16 offset, u8 size);
    void config_write(u8 device, u8 function, u16 offset, u8 size, u32 value);
    // The device, BAR and offset that an access of `length` bytes at absolute `address` reaches,
    // if a device has memory decoding on and a BAR holding the whole access.
    struct BarTarget {
        std::shared_ptr<PciDevice> device;
        u8 bar { 0 };
        u64 offset { 0 };
    };
    std::optional<BarTarget> find_bar(u64 address, u64 length);

private:
    class ConfigPorts;
    class Ecam;
    class BarWindow;

    std::shared_mutex m_lock;
    std::array<std::shared_ptr<PciDevice>, MAX_DEVICES> m_devices;
    u64 m_window_base;
    u64 m_window_size;
    u64 m_next_bar_address;
    u32 m_config_address { 0 }; // the CF8 register
};

} // namespace kasou::pci
