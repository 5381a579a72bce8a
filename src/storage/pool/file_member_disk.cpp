#include "storage/pool/file_member_disk.h"

#include <cerrno>
#include <linux/magic.h>
#include <sys/statfs.h>

#include <fmt/format.h>

#include "base/try.h"
#include "storage/pool/member_label.h"

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
    auto device = RawFileDevice::open(path, options);
    if (!device && device.error().code() == EBUSY)
        return tl::unexpected(explain_busy(path, device.error()));
    if (!device)
        return tl::unexpected(device.error());
    return std::unique_ptr<FileMemberDisk>(new FileMemberDisk(path, std::move(*device), reports_holes(path)));
}

Error FileMemberDisk::explain_busy(std::string const& path, Error const& busy)
{
    // Only the label is read, without claiming the disk: its holder may be writing the rest.
    auto device = RawFileDevice::open(path, { .read_only = true, .lock = false });
    if (!device)
        return busy;
    FileMemberDisk disk(path, std::move(*device), false);
    auto label = read_member_label(disk);
    if (!label)
        return busy;
    return Error::from_errno(EBUSY, fmt::format("disk {} is in use by a running pool: it is a member of pool '{}', which another process "
                                                "(kasou nbd serve, kasou run, ...) holds open; stop that process first (--force does not override this)",
                                        path, name_of(label->pool_name)));
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
