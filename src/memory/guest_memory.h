#pragma once

#include <cstring>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "base/error.h"
#include "base/mapping.h"
#include "base/types.h"

namespace kasou::memory {

// One contiguous run of guest RAM backed by one host mapping.
struct Region {
    u64 guest_physical { 0 };
    Mapping mapping;

    u64 size() const { return mapping.size(); }
    u64 end() const { return guest_physical + mapping.size(); }
};

// Guest RAM: the regions a VM's memory is made of, with the MMIO hole below 4 GiB left out.
// Every guest-physical access goes through span()/read()/write(), which refuse any range that is not
// wholly inside one region (a range that straddles two regions or touches the hole is refused too,
// since the host pointers of two regions are not contiguous). Regions never change after creation,
// so lookups take no lock; the guest's own concurrent writes to RAM are its business.
class GuestMemory {
public:
    // Guest-physical start of the hole that holds device MMIO, the IOAPIC and the LAPIC.
    static constexpr u64 MMIO_HOLE_START = 0xC000'0000;
    static constexpr u64 MMIO_HOLE_END = 0x1'0000'0000;

    // Lays out `size` bytes of RAM: [0, min(size, hole start)) and the rest from 4 GiB.
    // size must be a non-zero multiple of 4 KiB.
    static ErrorOr<GuestMemory> create(u64 size);
    // The same layout over a file of exactly `size` bytes that holds the regions one after the
    // other (a snapshot's memory file), mapped copy-on-write: pages are read when the guest first
    // touches them, and the file never changes.
    static ErrorOr<GuestMemory> map_file(int fd, u64 size);
    // Guest RAM made of regions mapped elsewhere (another process's RAM shared through file
    // descriptors, as vhost-user does). Regions may lie anywhere in the guest-physical space but
    // must not be empty, wrap around or overlap; at least one is needed.
    static ErrorOr<GuestMemory> from_regions(std::vector<Region> regions);

    std::vector<Region> const& regions() const { return m_regions; }
    u64 size() const { return m_size; }
    // One past the highest guest-physical RAM address.
    u64 end() const { return m_regions.back().end(); }

    // The host bytes behind [guest_physical, guest_physical + length), or an error naming the range.
    ErrorOr<std::span<u8>> span(u64 guest_physical, u64 length) const;
    bool contains(u64 guest_physical, u64 length) const;

    ErrorOr<void> read(u64 guest_physical, std::span<u8> out) const;
    ErrorOr<void> write(u64 guest_physical, std::span<u8 const> data) const;

    template<class T>
    ErrorOr<T> read_object(u64 guest_physical) const
    {
        static_assert(std::is_trivially_copyable_v<T>);
        T value;
        auto bytes = span(guest_physical, sizeof(T));
        if (!bytes)
            return tl::unexpected(bytes.error());
        std::memcpy(&value, bytes->data(), sizeof(T));
        return value;
    }

    template<class T>
    ErrorOr<void> write_object(u64 guest_physical, T const& value) const
    {
        static_assert(std::is_trivially_copyable_v<T>);
        return write(guest_physical, std::span(reinterpret_cast<u8 const*>(&value), sizeof(T)));
    }

private:
    explicit GuestMemory(std::vector<Region> regions, u64 size)
        : m_regions(std::move(regions))
        , m_size(size)
    {
    }

    std::vector<Region> m_regions;
    u64 m_size { 0 };
};

} // namespace kasou::memory
