#include "memory/guest_memory.h"

#include <algorithm>

#include <fmt/format.h>

#include "base/try.h"

namespace kasou::memory {

namespace {

// Lays out `size` bytes of RAM around the MMIO hole; `map(length, offset)` backs the region that
// holds bytes [offset, offset + length) of the whole.
template<class MapFunction>
ErrorOr<std::vector<Region>> lay_out(u64 size, MapFunction map)
{
    if (size == 0)
        return make_error("guest memory size must not be zero");
    if (size % 4096 != 0)
        return make_error(fmt::format("guest memory size {} is not a multiple of 4 KiB", size));
    std::vector<Region> regions;
    u64 low = std::min(size, GuestMemory::MMIO_HOLE_START);
    regions.push_back(Region { 0, TRY(map(low, 0)) });
    if (size > low)
        regions.push_back(Region { GuestMemory::MMIO_HOLE_END, TRY(map(size - low, low)) });
    return regions;
}

} // namespace

ErrorOr<GuestMemory> GuestMemory::create(u64 size)
{
    auto regions = TRY(lay_out(size, [](u64 length, u64) { return Mapping::anonymous(length); }));
    return GuestMemory(std::move(regions), size);
}

ErrorOr<GuestMemory> GuestMemory::map_file(int fd, u64 size)
{
    auto regions = TRY(lay_out(size, [fd](u64 length, u64 offset) { return Mapping::copy_on_write(fd, length, offset); }));
    return GuestMemory(std::move(regions), size);
}

ErrorOr<GuestMemory> GuestMemory::from_regions(std::vector<Region> regions)
{
    if (regions.empty())
        return make_error("guest memory needs at least one region");
    std::sort(regions.begin(), regions.end(), [](Region const& a, Region const& b) { return a.guest_physical < b.guest_physical; });
    u64 size = 0;
    for (size_t i = 0; i < regions.size(); ++i) {
        auto const& region = regions[i];
        if (region.size() == 0 || region.guest_physical + region.size() < region.guest_physical)
            return make_error(fmt::format("guest memory region at {:#x} of {:#x} bytes is empty or wraps around", region.guest_physical, region.size()));
        if (i > 0 && regions[i - 1].end() > region.guest_physical)
            return make_error(fmt::format("guest memory regions at {:#x} and {:#x} overlap", regions[i - 1].guest_physical, region.guest_physical));
        size += region.size();
    }
    return GuestMemory(std::move(regions), size);
}

bool GuestMemory::contains(u64 guest_physical, u64 length) const
{
    return span(guest_physical, length).has_value();
}

ErrorOr<std::span<u8>> GuestMemory::span(u64 guest_physical, u64 length) const
{
    for (auto const& region : m_regions) {
        if (guest_physical < region.guest_physical || guest_physical >= region.end())
            continue;
        u64 offset = guest_physical - region.guest_physical;
        if (length > region.size() - offset)
            break;
        return std::span<u8>(region.mapping.data() + offset, length);
    }
    return make_error(fmt::format("guest-physical range of {:#x} bytes at {:#x} is not inside guest RAM", length, guest_physical));
}

ErrorOr<void> GuestMemory::read(u64 guest_physical, std::span<u8> out) const
{
    auto bytes = TRY(span(guest_physical, out.size()));
    std::memcpy(out.data(), bytes.data(), out.size());
    return {};
}

ErrorOr<void> GuestMemory::write(u64 guest_physical, std::span<u8 const> data) const
{
    auto bytes = TRY(span(guest_physical, data.size()));
    std::memcpy(bytes.data(), data.data(), data.size());
    return {};
}

} // namespace kasou::memory
