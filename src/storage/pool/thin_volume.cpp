#include "storage/pool/thin_volume.h"

#include <cerrno>

#include <fmt/format.h>

#include "base/try.h"
#include "storage/pool/thin_pool.h"

namespace kasou::storage {

ThinVolume::ThinVolume(std::shared_ptr<ThinPool> pool, u64 id, bool read_only)
    : m_pool(std::move(pool))
    , m_id(id)
    , m_read_only(read_only)
{
}

u64 ThinVolume::size() const
{
    return m_pool->volume_size(m_id);
}

ErrorOr<void> ThinVolume::check_writable(char const* what) const
{
    if (m_read_only)
        return make_errno_error(EROFS, fmt::format("{}: the snapshot is read-only", what));
    return {};
}

ErrorOr<void> ThinVolume::read(u64 offset, std::span<u8> buffer)
{
    return m_pool->read(m_id, offset, buffer);
}

ErrorOr<void> ThinVolume::write(u64 offset, std::span<u8 const> data, bool fua)
{
    TRY(check_writable("write"));
    return m_pool->write(m_id, offset, data, fua);
}

ErrorOr<void> ThinVolume::flush()
{
    return m_pool->flush();
}

ErrorOr<void> ThinVolume::discard(u64 offset, u64 length)
{
    TRY(check_writable("discard"));
    return m_pool->discard(m_id, offset, length);
}

ErrorOr<void> ThinVolume::write_zeroes(u64 offset, u64 length, bool may_unmap)
{
    TRY(check_writable("write zeroes"));
    return m_pool->write_zeroes(m_id, offset, length, may_unmap);
}

ErrorOr<std::vector<Extent>> ThinVolume::block_status(u64 offset, u64 length)
{
    return m_pool->block_status(m_id, offset, length);
}

} // namespace kasou::storage
