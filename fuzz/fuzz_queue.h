#pragma once

// Shared by the device fuzz targets: lays the input over the first 8 KiB of a small guest RAM
// (descriptor table at 0, available ring at 0x80, used ring at 0x100, all for an 8-entry queue;
// descriptors may point anywhere in the 1 MiB), the part of guest memory a hostile driver controls.

#include <algorithm>
#include <cstring>

#include "base/try.h"
#include "virtio/split_queue.h"

namespace kasou::fuzz {

inline memory::GuestMemory const& fuzz_memory()
{
    static auto memory = MUST(memory::GuestMemory::create(1 * MiB));
    return memory;
}

inline virtio::SplitQueue queue_from(u8 const* data, size_t size)
{
    auto const& memory = fuzz_memory();
    auto area = MUST(memory.span(0, 8 * KiB));
    std::memset(area.data(), 0, area.size());
    std::memcpy(area.data(), data, std::min<size_t>(size, area.size()));
    return MUST(virtio::SplitQueue::create(memory, virtio::QueueLayout { 8, 0x0, 0x80, 0x100 }, false));
}

// Whether [data, data + size) lies in the fuzz guest RAM.
inline bool in_ram(void const* data, size_t size)
{
    auto const& region = fuzz_memory().regions()[0];
    auto const* start = region.mapping.data();
    auto const* pointer = static_cast<u8 const*>(data);
    return pointer >= start && size <= region.size() && static_cast<size_t>(pointer - start) <= region.size() - size;
}

} // namespace kasou::fuzz
