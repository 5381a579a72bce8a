#include "vhost_user/frontend_memory.h"

#include <sys/mman.h>
#include <sys/stat.h>

#include <fmt/format.h>

#include "base/sys_file.h"
#include "base/try.h"

namespace kasou::vhost_user {

namespace {

constexpr u64 PAGE_SIZE = 4096;

} // namespace

ErrorOr<FrontendMemory> FrontendMemory::map(std::vector<MemoryRegion> const& regions, std::vector<Fd> const& fds)
{
    if (regions.size() != fds.size() || regions.empty() || regions.size() > MAX_MEMORY_REGIONS)
        return make_error(fmt::format("vhost-user memory table: {} regions with {} descriptors", regions.size(), fds.size()));
    std::vector<memory::Region> mapped;
    for (size_t i = 0; i < regions.size(); ++i) {
        auto const& region = regions[i];
        auto where = fmt::format("vhost-user memory region {} (guest {:#x}, {:#x} bytes)", i, region.guest_physical, region.size);
        if (region.mmap_offset % PAGE_SIZE != 0)
            return make_error(fmt::format("{}: offset {:#x} in its file is not page-aligned", where, region.mmap_offset));
        if (region.size == 0 || region.mmap_offset + region.size < region.mmap_offset || region.user_address + region.size < region.user_address)
            return make_error(fmt::format("{}: empty or wraps around", where));
        struct stat status {};
        TRY(sys::fstat(fds[i].get(), status).map_error([&](Error const& error) { return error.with_prefix(where); }));
        if (!S_ISREG(status.st_mode))
            return make_error(fmt::format("{}: its descriptor is not a shared-memory file", where));
        if (static_cast<u64>(status.st_size) < region.mmap_offset + region.size)
            return make_error(fmt::format("{}: reaches past the end of its {}-byte file", where, status.st_size));
        for (size_t j = 0; j < i; ++j) {
            auto const& other = regions[j];
            if (region.user_address < other.user_address + other.size && other.user_address < region.user_address + region.size)
                return make_error(fmt::format("{}: overlaps region {} in the front-end's address space", where, j));
        }
        auto mapping = TRY(Mapping::of_fd(fds[i].get(), region.size, PROT_READ | PROT_WRITE, region.mmap_offset)
                               .map_error([&](Error const& error) { return error.with_prefix(where); }));
        mapped.push_back(memory::Region { region.guest_physical, std::move(mapping) });
    }
    auto guest = TRY(memory::GuestMemory::from_regions(std::move(mapped)).map_error([](Error const& error) { return error.with_prefix("vhost-user memory table"); }));
    return FrontendMemory(std::move(guest), regions);
}

ErrorOr<u64> FrontendMemory::guest_physical(u64 user_address, u64 length) const
{
    for (auto const& region : m_regions) {
        if (user_address < region.user_address || user_address - region.user_address >= region.size)
            continue;
        u64 offset = user_address - region.user_address;
        if (length > region.size - offset)
            break;
        return region.guest_physical + offset;
    }
    return make_error(fmt::format("vhost-user: front-end address range of {:#x} bytes at {:#x} is not inside its shared memory", length, user_address));
}

} // namespace kasou::vhost_user
