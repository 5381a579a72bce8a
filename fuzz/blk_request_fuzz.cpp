// Serves arbitrary virtio-blk request chains against a small in-memory disk: the first bytes of
// the input become the descriptor table and available ring, the rest the requests' contents. Every
// request must be answered or refused as a device error; the disk and guest RAM are never touched
// outside their bounds.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "base/try.h"
#include "virtio/blk/blk_device.h"

namespace {

class FuzzDisk final : public kasou::storage::BlockDevice {
public:
    kasou::u64 size() const override { return m_bytes.size(); }
    bool read_only() const override { return false; }
    kasou::ErrorOr<void> read(kasou::u64 offset, std::span<kasou::u8> buffer) override
    {
        if (offset > m_bytes.size() || buffer.size() > m_bytes.size() - offset)
            __builtin_trap();
        std::memcpy(buffer.data(), m_bytes.data() + offset, buffer.size());
        return {};
    }
    kasou::ErrorOr<void> write(kasou::u64 offset, std::span<kasou::u8 const> data, bool) override
    {
        if (offset > m_bytes.size() || data.size() > m_bytes.size() - offset)
            __builtin_trap();
        std::memcpy(m_bytes.data() + offset, data.data(), data.size());
        return {};
    }
    kasou::ErrorOr<void> flush() override { return {}; }
    kasou::ErrorOr<void> discard(kasou::u64 offset, kasou::u64 length) override { return write_zeroes(offset, length, true); }
    kasou::ErrorOr<void> write_zeroes(kasou::u64 offset, kasou::u64 length, bool) override
    {
        if (offset > m_bytes.size() || length > m_bytes.size() - offset)
            __builtin_trap();
        std::memset(m_bytes.data() + offset, 0, length);
        return {};
    }
    kasou::ErrorOr<std::vector<kasou::storage::Extent>> block_status(kasou::u64 offset, kasou::u64 length) override
    {
        return std::vector<kasou::storage::Extent> { { offset, length, true, false } };
    }

private:
    std::vector<kasou::u8> m_bytes = std::vector<kasou::u8>(64 * 1024);
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    using namespace kasou;
    static auto memory = MUST(memory::GuestMemory::create(1 * MiB));
    static auto disk = std::make_shared<FuzzDisk>();
    auto area = MUST(memory.span(0, 8 * KiB));
    std::memset(area.data(), 0, area.size());
    std::memcpy(area.data(), data, std::min<size_t>(size, area.size()));
    virtio::QueueLayout layout { 8, 0x0, 0x80, 0x100 };
    auto queue = MUST(virtio::SplitQueue::create(memory, layout, false));
    virtio::blk::BlkDevice device(disk, {});
    (void)device.process(0, queue);
    return 0;
}
