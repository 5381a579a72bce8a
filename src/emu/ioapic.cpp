#include "emu/ioapic.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

namespace kasou::emu {

namespace {

// 82093AA datasheet, 3.1 and 3.2: register offsets and indices.
constexpr u64 IOREGSEL = 0x00;
constexpr u64 IOWIN = 0x10;
constexpr u64 EOI = 0x40;
constexpr u8 IOAPICID = 0x00;
constexpr u8 IOAPICVER = 0x01;
constexpr u8 IOAPICARB = 0x02;
constexpr u8 IOREDTBL = 0x10;

// 3.2.4: redirection table entry fields.
constexpr u64 VECTOR = 0xff;
constexpr u64 DELIVERY_MODE = 0x700;
constexpr u64 DESTINATION_MODE = 1ull << 11;
constexpr u64 DELIVERY_STATUS = 1ull << 12;
constexpr u64 POLARITY = 1ull << 13;
constexpr u64 REMOTE_IRR = 1ull << 14;
constexpr u64 LEVEL_TRIGGERED = 1ull << 15;
constexpr u64 MASKED = 1ull << 16;
constexpr int DESTINATION_SHIFT = 56;
constexpr u64 READ_ONLY = DELIVERY_STATUS | REMOTE_IRR;
// Bits 17-55 are reserved; bits 48-55 carry the extended destination ID some guests use for
// x2APIC IDs above 255 (bits 11:5 of the MSI address), kept as written.
constexpr u64 WRITABLE = VECTOR | DELIVERY_MODE | DESTINATION_MODE | POLARITY | LEVEL_TRIGGERED | MASKED | (0xffull << 48)
    | (0xffull << DESTINATION_SHIFT);
constexpr int EXTENDED_DESTINATION_SHIFT = 48;

// Intel SDM vol. 3, 11.11.1 and 11.11.2: the MSI address and data layout.
constexpr u64 MSI_ADDRESS_BASE = 0xfee0'0000;
constexpr int MSI_DESTINATION_SHIFT = 12;
constexpr int MSI_EXTENDED_DESTINATION_SHIFT = 5;
constexpr int MSI_DESTINATION_MODE_SHIFT = 2;
constexpr int MSI_TRIGGER_SHIFT = 15;

} // namespace

Ioapic::Ioapic(DeliverFunction deliver, RouteFunction route)
    : m_deliver(std::move(deliver))
    , m_route(std::move(route))
{
    m_table.fill(MASKED);
}

void Ioapic::read(u64 offset, std::span<u8> data)
{
    u32 value = 0;
    {
        std::lock_guard guard(m_lock);
        if (offset == IOREGSEL)
            value = m_select;
        else if (offset == IOWIN)
            value = read_register(m_select);
    }
    std::memset(data.data(), 0, data.size());
    std::memcpy(data.data(), &value, std::min(data.size(), sizeof value));
}

void Ioapic::write(u64 offset, std::span<u8 const> data)
{
    u32 value = 0;
    std::memcpy(&value, data.data(), std::min(data.size(), sizeof value));
    std::lock_guard guard(m_lock);
    if (offset == IOREGSEL)
        m_select = static_cast<u8>(value);
    else if (offset == IOWIN)
        write_register(m_select, value);
    else if (offset == EOI)
        eoi_locked(static_cast<u8>(value));
}

u32 Ioapic::read_register(u8 index) const
{
    switch (index) {
    case IOAPICID:
    case IOAPICARB:
        return static_cast<u32>(m_id) << 24;
    case IOAPICVER:
        return ((PIN_COUNT - 1) << 16) | VERSION;
    default:
        if (index < IOREDTBL || index >= IOREDTBL + 2 * PIN_COUNT)
            return 0;
        u64 entry = m_table[(index - IOREDTBL) / 2];
        return static_cast<u32>(index & 1 ? entry >> 32 : entry);
    }
}

void Ioapic::write_register(u8 index, u32 value)
{
    if (index == IOAPICID) {
        m_id = (value >> 24) & 0x0f;
        return;
    }
    if (index < IOREDTBL || index >= IOREDTBL + 2 * PIN_COUNT)
        return;
    u32 pin = (index - IOREDTBL) / 2;
    u64 entry = m_table[pin];
    u64 written = index & 1 ? (entry & 0xffff'ffffull) | (static_cast<u64>(value) << 32) : (entry & ~0xffff'ffffull) | value;
    entry = (entry & READ_ONLY) | (written & WRITABLE);
    // An edge-triggered pin has no remote IRR: switching a pin to edge and back is how OSes
    // without the EOI register end a level interrupt when their local APIC does not broadcast EOIs.
    if (!(entry & LEVEL_TRIGGERED))
        entry &= ~REMOTE_IRR;
    auto before = route_locked(pin);
    m_table[pin] = entry;
    if (auto after = route_locked(pin); after != before)
        m_route(pin, after);
    // Unmasking a level pin that is still asserted delivers it.
    if (entry & LEVEL_TRIGGERED)
        service(pin);
}

std::optional<MsiMessage> Ioapic::route(u32 pin)
{
    if (pin >= PIN_COUNT)
        return std::nullopt;
    std::lock_guard guard(m_lock);
    return route_locked(pin);
}

u64 Ioapic::redirection_entry(u32 pin)
{
    std::lock_guard guard(m_lock);
    return pin < PIN_COUNT ? m_table[pin] : 0;
}

std::optional<MsiMessage> Ioapic::route_locked(u32 pin) const
{
    u64 entry = m_table[pin];
    if (entry & MASKED)
        return std::nullopt;
    MsiMessage message;
    message.address = MSI_ADDRESS_BASE | ((entry >> DESTINATION_SHIFT) << MSI_DESTINATION_SHIFT)
        | (((entry >> EXTENDED_DESTINATION_SHIFT) & 0x7f) << MSI_EXTENDED_DESTINATION_SHIFT)
        | (((entry & DESTINATION_MODE) ? 1ull : 0ull) << MSI_DESTINATION_MODE_SHIFT);
    message.data = static_cast<u32>(entry & (VECTOR | DELIVERY_MODE)) | ((entry & LEVEL_TRIGGERED) ? 1u << MSI_TRIGGER_SHIFT : 0u);
    return message;
}

void Ioapic::service(u32 pin)
{
    u64& entry = m_table[pin];
    if (!(m_lines & (1u << pin)) || (entry & MASKED))
        return;
    if (entry & LEVEL_TRIGGERED) {
        if (entry & REMOTE_IRR)
            return;
        entry |= REMOTE_IRR;
    }
    m_deliver(pin, *route_locked(pin));
}

void Ioapic::set_irq(u32 pin, bool level)
{
    if (pin >= PIN_COUNT)
        return;
    std::lock_guard guard(m_lock);
    u32 mask = 1u << pin;
    bool rising = level && !(m_lines & mask);
    m_lines = level ? (m_lines | mask) : (m_lines & ~mask);
    if (rising || (level && (m_table[pin] & LEVEL_TRIGGERED)))
        service(pin);
}

void Ioapic::eoi(u8 vector)
{
    std::lock_guard guard(m_lock);
    eoi_locked(vector);
}

void Ioapic::eoi_locked(u8 vector)
{
    for (u32 pin = 0; pin < PIN_COUNT; ++pin) {
        u64& entry = m_table[pin];
        if ((entry & VECTOR) != vector || !(entry & REMOTE_IRR))
            continue;
        entry &= ~REMOTE_IRR;
        service(pin);
    }
}

Ioapic::State Ioapic::state()
{
    std::lock_guard guard(m_lock);
    return State { m_select, m_id, m_table, m_lines };
}

ErrorOr<void> Ioapic::set_state(State const& state)
{
    if (state.id > 0x0f)
        return make_error(ErrorKind::InvalidInput, fmt::format("IOAPIC: ID {} (at most 15)", state.id));
    if (state.lines >> PIN_COUNT)
        return make_error(ErrorKind::InvalidInput, fmt::format("IOAPIC: input levels {:#x} name pins beyond {}", state.lines, PIN_COUNT - 1));
    for (u32 pin = 0; pin < PIN_COUNT; ++pin) {
        u64 entry = state.table[pin];
        if ((entry & ~(WRITABLE | READ_ONLY)) || ((entry & REMOTE_IRR) && !(entry & LEVEL_TRIGGERED)))
            return make_error(ErrorKind::InvalidInput, fmt::format("IOAPIC: redirection entry {} ({:#x}) has bits no guest can set", pin, entry));
    }
    std::lock_guard guard(m_lock);
    m_select = state.select;
    m_id = state.id;
    m_table = state.table;
    m_lines = state.lines;
    for (u32 pin = 0; pin < PIN_COUNT; ++pin)
        m_route(pin, route_locked(pin));
    return {};
}

} // namespace kasou::emu
