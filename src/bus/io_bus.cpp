#include "bus/io_bus.h"

#include <algorithm>

#include <fmt/format.h>

namespace kasou::bus {

ErrorOr<void> IoBus::insert(std::shared_ptr<BusDevice> device, u64 base, u64 size, std::string label)
{
    if (m_frozen)
        return make_error(ErrorKind::Internal, fmt::format("{} bus: cannot add {} after the machine has started", m_name, label));
    if (!device)
        return make_error(fmt::format("{} bus: no device given for {}", m_name, label));
    if (size == 0)
        return make_error(fmt::format("{} bus: {} has an empty range at {:#x}", m_name, label, base));
    if (base + size < base)
        return make_error(fmt::format("{} bus: range of {} at {:#x} (+{:#x}) overflows", m_name, label, base, size));
    auto position = std::lower_bound(m_ranges.begin(), m_ranges.end(), base,
        [](Range const& range, u64 value) { return range.base < value; });
    auto overlaps = [&](Range const& other) { return base < other.base + other.size && other.base < base + size; };
    auto refuse = [&](Range const& other) {
        return make_error(fmt::format("{} bus: {} at {:#x} (+{:#x}) overlaps {} at {:#x} (+{:#x})", m_name, label, base,
            size, other.label, other.base, other.size));
    };
    if (position != m_ranges.end() && overlaps(*position))
        return refuse(*position);
    if (position != m_ranges.begin() && overlaps(*std::prev(position)))
        return refuse(*std::prev(position));
    m_ranges.insert(position, Range { base, size, std::move(label), std::move(device) });
    return {};
}

IoBus::Range const* IoBus::find(u64 address, u64 length) const
{
    auto position = std::upper_bound(m_ranges.begin(), m_ranges.end(), address,
        [](u64 value, Range const& range) { return value < range.base; });
    if (position == m_ranges.begin())
        return nullptr;
    auto const& range = *std::prev(position);
    u64 offset = address - range.base;
    if (offset >= range.size || length > range.size - offset)
        return nullptr;
    return &range;
}

bool IoBus::read(u64 address, std::span<u8> data) const
{
    auto const* range = find(address, data.size());
    if (!range)
        return false;
    range->device->read(address - range->base, data);
    return true;
}

bool IoBus::write(u64 address, std::span<u8 const> data) const
{
    auto const* range = find(address, data.size());
    if (!range)
        return false;
    range->device->write(address - range->base, data);
    return true;
}

} // namespace kasou::bus
