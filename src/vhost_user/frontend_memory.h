#pragma once

#include <vector>

#include "base/error.h"
#include "base/fd.h"
#include "memory/guest_memory.h"
#include "vhost_user/protocol.h"

namespace kasou::vhost_user {

// The guest RAM a vhost-user front-end shared with SET_MEM_TABLE: each region mapped from the
// descriptor it came with (read-write, MAP_SHARED), reached through GuestMemory's checked accessors
// by guest-physical address, and found by the front-end's own virtual address for the ring
// addresses of SET_VRING_ADDR. map() refuses regions that overlap (in either address space), that
// lie past the end of their file (a mapping beyond it would fault on access), or whose offset is
// not page-aligned. Immutable once mapped.
class FrontendMemory {
public:
    static ErrorOr<FrontendMemory> map(std::vector<MemoryRegion> const& regions, std::vector<Fd> const& fds);

    memory::GuestMemory const& guest() const { return m_guest; }
    // The guest-physical address of [user_address, user_address + length) in the front-end's
    // address space; an error unless the range lies wholly inside one region.
    ErrorOr<u64> guest_physical(u64 user_address, u64 length) const;

private:
    FrontendMemory(memory::GuestMemory guest, std::vector<MemoryRegion> regions)
        : m_guest(std::move(guest))
        , m_regions(std::move(regions))
    {
    }

    memory::GuestMemory m_guest;
    std::vector<MemoryRegion> m_regions;
};

} // namespace kasou::vhost_user
