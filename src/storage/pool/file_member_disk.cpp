#include "storage/pool/file_member_disk.h"

#include "base/try.h"

namespace kasou::storage {

ErrorOr<std::unique_ptr<FileMemberDisk>> FileMemberDisk::open(std::string const& path, IoEngineKind engine)
{
    RawFileOptions options;
    options.engine = engine;
    auto device = TRY(RawFileDevice::open(path, options));
    return std::unique_ptr<FileMemberDisk>(new FileMemberDisk(path, std::move(device)));
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
    return m_device->is_hole(offset, length);
}

} // namespace kasou::storage
