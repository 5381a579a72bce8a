// Lays arbitrary bytes over a virtqueue's rings and descriptors (the part of guest memory a hostile
// driver controls) and pops every chain the device would see: each must be refused with an error
// or come back with buffers inside guest RAM.

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "base/try.h"
#include "virtio/split_queue.h"

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    using namespace kasou;
    static auto memory = MUST(memory::GuestMemory::create(1 * MiB));
    if (size < 2)
        return 0;
    // The first byte picks the queue size (up to 16) and EVENT_IDX; the rest fills the first 4 KiB,
    // which holds the rings, and descriptors may point anywhere.
    u16 queue_size = static_cast<u16>(1u << (data[0] % 5));
    auto area = MUST(memory.span(0, 4 * KiB));
    std::memset(area.data(), 0, area.size());
    std::memcpy(area.data(), data + 1, std::min<size_t>(size - 1, area.size()));
    virtio::QueueLayout layout { queue_size, 0x0, 0x100, 0x200 };
    auto queue = virtio::SplitQueue::create(memory, layout, data[0] & 0x80);
    if (!queue)
        return 0;
    for (int i = 0; i < 2 * queue_size; ++i) {
        auto chain = queue->pop();
        if (!chain || !*chain)
            break;
        for (auto const& buffer : (*chain)->readable)
            if (!memory.contains(static_cast<u64>(buffer.data() - memory.regions()[0].mapping.data()), buffer.size()))
                __builtin_trap();
        (void)queue->push((*chain)->head, static_cast<u32>((*chain)->writable_bytes()));
        (void)queue->should_interrupt();
    }
    return 0;
}
