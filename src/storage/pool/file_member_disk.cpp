#include "storage/pool/file_member_disk.h"

#include <linux/magic.h>
#include <sys/statfs.h>

#include "base/try.h"

namespace kasou::storage {

namespace {

// Whether path lies on a file system whose SEEK_DATA reports holes faithfully (others may report
// everything as data, which is safe, or be unknown, which is not trusted).
bool reports_holes(std::string const& path)
{
    struct statfs info {};
    if (::statfs(path.c_str(), &info) != 0)
        return false;
    switch (static_cast<unsigned long>(info.f_type)) {
    case EXT4_SUPER_MAGIC:
    case XFS_SUPER_MAGIC:
    case BTRFS_SUPER_MAGIC:
    case TMPFS_MAGIC:
        return true;
    default:
        return false;
    }
}

} // namespace

ErrorOr<std::unique_ptr<FileMemberDisk>> FileMemberDisk::open(std::string const& path, IoEngineKind engine)
{
    RawFileOptions options;
    options.engine = engine;
    auto device = TRY(RawFileDevice::open(path, options));
    return std::unique_ptr<FileMemberDisk>(new FileMemberDisk(path, std::move(device), reports_holes(path)));
}

ErrorOr<void> FileMemberDisk::read(u64 offset, std::span<u8> buffer)
{
    return m_device->read(offset, buffer);
}

ErrorOr<void> FileMemberDisk::write(u64 offset, std::span<u8 const> data)
{
    return m_device->write(offset, data, false);
}

ErrorOr<void> FileMemberDisk::write_zeroes(u64 offset, u64 length)
{
    // Not unmapping: punching a hole in a reused chunk and filling it again cost several times
    // more than zeroing the range in place (measured with first writes over freed chunks).
    return m_device->write_zeroes(offset, length, false);
}

ErrorOr<void> FileMemberDisk::flush()
{
    return m_device->flush();
}

ErrorOr<void> FileMemberDisk::write_durable(u64 offset, std::span<u8 const> data)
{
    return m_device->write(offset, data, true);
}

bool FileMemberDisk::is_durable_hole(u64 offset, u64 length)
{
    return m_holes_reported && m_device->is_hole(offset, length);
}

} // namespace kasou::storage
