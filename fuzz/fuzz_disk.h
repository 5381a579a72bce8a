#pragma once

// A 64 KiB disk in memory for the fuzz targets that serve virtio-blk requests: it traps on any
// access outside itself, so a device that forgets a bounds check is caught at once.

#include <cstring>
#include <span>
#include <vector>

#include "storage/block_device.h"

namespace kasou::fuzz {

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

} // namespace kasou::fuzz
