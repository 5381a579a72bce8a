#pragma once

#include <memory>

#include "storage/block_device.h"

namespace kasou::storage {

class ThinPool;

// A thin volume or snapshot of a ThinPool as a BlockDevice. It holds the pool alive and names the
// volume by id, so a volume renamed or resized in the pool is seen at once; once the pool is
// closed its calls fail. flush() and FUA writes commit the pool's metadata.
class ThinVolume final : public BlockDevice {
public:
    ThinVolume(std::shared_ptr<ThinPool> pool, u64 id, bool read_only);

    u64 size() const override;
    bool read_only() const override { return m_read_only; }

    ErrorOr<void> read(u64 offset, std::span<u8> buffer) override;
    ErrorOr<void> write(u64 offset, std::span<u8 const> data, bool fua) override;
    ErrorOr<void> flush() override;
    ErrorOr<void> discard(u64 offset, u64 length) override;
    ErrorOr<void> write_zeroes(u64 offset, u64 length, bool may_unmap) override;
    ErrorOr<std::vector<Extent>> block_status(u64 offset, u64 length) override;

private:
    ErrorOr<void> check_writable(char const* what) const;

    std::shared_ptr<ThinPool> m_pool;
    u64 m_id;
    bool m_read_only;
};

} // namespace kasou::storage
