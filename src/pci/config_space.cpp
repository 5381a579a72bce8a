#include "pci/config_space.h"

#include <cstring>

namespace kasou::pci {

namespace {

// Type 0 header offsets (PCI 3.0, figure 6-1).
constexpr u16 VENDOR_ID = 0x00;
constexpr u16 DEVICE_ID = 0x02;
constexpr u16 STATUS = 0x06;
constexpr u16 REVISION = 0x08;
constexpr u16 PROGRAMMING_INTERFACE = 0x09;
constexpr u16 SUBCLASS = 0x0A;
constexpr u16 CLASS_CODE = 0x0B;
constexpr u16 HEADER_TYPE = 0x0E;
constexpr u16 BAR0 = 0x10;
constexpr u16 SUBSYSTEM_VENDOR_ID = 0x2C;
constexpr u16 SUBSYSTEM_ID = 0x2E;
constexpr u16 CAPABILITIES_POINTER = 0x34;
constexpr u16 INTERRUPT_LINE = 0x3C;
constexpr u16 STATUS_CAPABILITIES = 1u << 4;
constexpr u16 COMMAND_WRITABLE = 0x0406; // memory space, bus master, INTx disable
constexpr u32 BAR_MEMORY_64 = 0x4;

} // namespace

ConfigSpace::ConfigSpace(PciIdentity const& identity)
{
    put(VENDOR_ID, identity.vendor_id, 2);
    put(DEVICE_ID, identity.device_id, 2);
    put(REVISION, identity.revision, 1);
    put(PROGRAMMING_INTERFACE, identity.programming_interface, 1);
    put(SUBCLASS, identity.subclass, 1);
    put(CLASS_CODE, identity.class_code, 1);
    put(HEADER_TYPE, 0, 1);
    put(SUBSYSTEM_VENDOR_ID, identity.subsystem_vendor_id, 2);
    put(SUBSYSTEM_ID, identity.subsystem_id, 2);
    m_write_mask[COMMAND] = COMMAND_WRITABLE & 0xFF;
    m_write_mask[COMMAND + 1] = COMMAND_WRITABLE >> 8;
    m_write_mask[INTERRUPT_LINE] = 0xFF;
}

void ConfigSpace::put(u16 offset, u64 value, u8 size)
{
    for (u8 i = 0; i < size; ++i)
        m_bytes[offset + i] = static_cast<u8>(value >> (8 * i));
}

u32 ConfigSpace::read(u16 offset, u8 size) const
{
    if (size != 1 && size != 2 && size != 4)
        return 0xFFFF'FFFF;
    if (offset % size != 0 || offset + size > SIZE)
        return 0xFFFF'FFFF >> (32 - 8 * size);
    u32 value = 0;
    for (u8 i = 0; i < size; ++i)
        value |= u32 { m_bytes[offset + i] } << (8 * i);
    return value;
}

void ConfigSpace::write(u16 offset, u8 size, u32 value)
{
    if ((size != 1 && size != 2 && size != 4) || offset % size != 0 || offset + size > SIZE)
        return;
    for (u8 i = 0; i < size; ++i) {
        u8 byte = static_cast<u8>(value >> (8 * i));
        u8 mask = m_write_mask[offset + i];
        m_bytes[offset + i] = static_cast<u8>((m_bytes[offset + i] & ~mask) | (byte & mask));
    }
}

void ConfigSpace::set_memory_bar(u8 index, u64 size, u64 address, bool is_64bit)
{
    u16 offset = static_cast<u16>(BAR0 + 4 * index);
    u64 mask = ~(size - 1);
    put(offset, (address & mask & 0xFFFF'FFF0) | (is_64bit ? BAR_MEMORY_64 : 0), 4);
    u32 low_mask = static_cast<u32>(mask) & 0xFFFF'FFF0;
    std::memcpy(&m_write_mask[offset], &low_mask, 4);
    m_bar_sizes[index] = size;
    if (is_64bit) {
        put(offset + 4, address >> 32, 4);
        u32 high_mask = static_cast<u32>(mask >> 32);
        std::memcpy(&m_write_mask[offset + 4], &high_mask, 4);
    }
}

u64 ConfigSpace::bar_address(u8 index) const
{
    if (index >= BAR_COUNT || m_bar_sizes[index] == 0)
        return 0;
    u16 offset = static_cast<u16>(BAR0 + 4 * index);
    u32 low = read(offset, 4);
    u64 address = low & 0xFFFF'FFF0;
    if ((low & 0x6) == BAR_MEMORY_64 && index + 1 < BAR_COUNT)
        address |= u64 { read(offset + 4, 4) } << 32;
    return address;
}

u8 ConfigSpace::add_capability(u8 id, std::span<u8 const> body, std::span<u8 const> writable)
{
    u8 offset = static_cast<u8>(m_next_capability_offset);
    m_bytes[offset] = id;
    m_bytes[offset + 1] = 0;
    std::memcpy(&m_bytes[offset + 2], body.data(), body.size());
    if (!writable.empty())
        std::memcpy(&m_write_mask[offset + 2], writable.data(), body.size());
    if (m_last_capability == 0) {
        m_bytes[CAPABILITIES_POINTER] = offset;
        put(STATUS, read(STATUS, 2) | STATUS_CAPABILITIES, 2);
    } else {
        m_bytes[m_last_capability + 1] = offset;
    }
    m_last_capability = offset;
    m_next_capability_offset = static_cast<u16>((offset + 2 + body.size() + 3) & ~size_t { 3 });
    return offset;
}

} // namespace kasou::pci
