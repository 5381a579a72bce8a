#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/types.h"
#include "bus/bus_device.h"

namespace kasou::bus {

// Maps address ranges (port numbers or guest-physical MMIO addresses) to devices. Ranges are
// checked on insertion: zero-length, overflowing and overlapping ranges are refused. The bus is
// filled while the machine is built and frozen before the first vCPU runs; after freeze() no range
// can be added, so lookups from vCPU threads take no lock.
class IoBus {
public:
    explicit IoBus(std::string name)
        : m_name(std::move(name))
    {
    }

    ErrorOr<void> insert(std::shared_ptr<BusDevice> device, u64 base, u64 size, std::string label);
    void freeze() { m_frozen = true; }
    bool frozen() const { return m_frozen; }

    // Dispatch an access; false when no device covers the whole access.
    bool read(u64 address, std::span<u8> data) const;
    bool write(u64 address, std::span<u8 const> data) const;

    struct Range {
        u64 base { 0 };
        u64 size { 0 };
        std::string label;
        std::shared_ptr<BusDevice> device;
    };
    // The range that holds [address, address + length), if any.
    Range const* find(u64 address, u64 length = 1) const;
    std::vector<Range> const& ranges() const { return m_ranges; }

private:
    std::string m_name;
    std::vector<Range> m_ranges; // sorted by base, disjoint
    bool m_frozen { false };
};

} // namespace kasou::bus
