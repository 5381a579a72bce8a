// Serves arbitrary virtio-blk request chains against a small in-memory disk: the first bytes of
// the input become the descriptor table and available ring, the rest the requests' contents. Every
// request must be answered or refused as a device error; the disk and guest RAM are never touched
// outside their bounds.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "base/try.h"
#include "fuzz_disk.h"
#include "virtio/blk/blk_device.h"

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    using namespace kasou;
    static auto memory = MUST(memory::GuestMemory::create(1 * MiB));
    static auto disk = std::make_shared<fuzz::FuzzDisk>();
    auto area = MUST(memory.span(0, 8 * KiB));
    std::memset(area.data(), 0, area.size());
    std::memcpy(area.data(), data, std::min<size_t>(size, area.size()));
    virtio::QueueLayout layout { 8, 0x0, 0x80, 0x100 };
    auto queue = MUST(virtio::SplitQueue::create(memory, layout, false));
    virtio::blk::BlkDevice device(disk, {});
    (void)device.process(0, queue);
    return 0;
}
