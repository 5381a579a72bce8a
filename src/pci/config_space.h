#pragma once

#include <array>
#include <span>

#include "base/types.h"

namespace kasou::pci {

// Identity of a PCI function as its type 0 header shows it (PCI Local Bus 3.0, 6.2.1).
struct PciIdentity {
    u16 vendor_id { 0 };
    u16 device_id { 0 };
    u8 revision { 0 };
    u8 class_code { 0 };
    u8 subclass { 0 };
    u8 programming_interface { 0 };
    u16 subsystem_vendor_id { 0 };
    u16 subsystem_id { 0 };
};

// The 4 KiB configuration space of one PCI Express function with a type 0 header, as the
// function's driver reads and writes it through CF8/CFC or ECAM. Each byte has a write mask, so
// read-only fields stay read-only and a BAR written with all ones reads back its size mask, which is
// how drivers size BARs (PCI 3.0, 6.2.5.1). Capabilities are linked in the order they are added.
// Not thread-safe: its owner serializes access.
class ConfigSpace {
public:
    static constexpr u16 SIZE = 4096;
    static constexpr u8 BAR_COUNT = 6;
    static constexpr u16 COMMAND = 0x04;
    static constexpr u16 COMMAND_MEMORY = 1u << 1;
    static constexpr u16 COMMAND_BUS_MASTER = 1u << 2;

    explicit ConfigSpace(PciIdentity const& identity);

    // Reads `size` (1, 2 or 4) bytes; misaligned or out-of-range accesses read as all ones.
    u32 read(u16 offset, u8 size) const;
    // Writes through the write masks; misaligned or out-of-range writes are ignored.
    void write(u16 offset, u8 size, u32 value);

    // Declares memory BAR `index` (and `index + 1` for its upper half when 64-bit) of `size` bytes,
    // a power of two of at least 16, placed at `address`.
    void set_memory_bar(u8 index, u64 size, u64 address, bool is_64bit);
    // The BAR's current address, or 0 when the BAR is unused.
    u64 bar_address(u8 index) const;
    u64 bar_size(u8 index) const { return m_bar_sizes[index]; }
    bool memory_enabled() const { return read(COMMAND, 2) & COMMAND_MEMORY; }

    // Appends a capability with `body` after its ID and next-pointer bytes; returns its offset.
    // `writable` marks bytes of body the driver may change (same length as body, or empty).
    u8 add_capability(u8 id, std::span<u8 const> body, std::span<u8 const> writable = {});

    // Direct access for the function's own model (not the driver): raw bytes, no masks.
    u8* raw(u16 offset) { return m_bytes.data() + offset; }
    u8 const* raw(u16 offset) const { return m_bytes.data() + offset; }

private:
    void put(u16 offset, u64 value, u8 size);

    std::array<u8, SIZE> m_bytes {};
    std::array<u8, SIZE> m_write_mask {};
    std::array<u64, BAR_COUNT> m_bar_sizes {};
    u8 m_last_capability { 0 };
    u16 m_next_capability_offset { 0x40 };
};

} // namespace kasou::pci
