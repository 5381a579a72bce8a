#include "storage/pool/volume_transfer.h"

#include <algorithm>
#include <fcntl.h>

#include <fmt/format.h>

#include "base/sys_file.h"
#include "base/try.h"
#include "storage/io/raw_file_device.h"
#include "storage/pool/thin_pool.h"

namespace kasou::storage {

namespace {

constexpr u64 TRANSFER_SIZE = 1 * MiB;

bool all_zero(std::span<u8 const> data)
{
    return std::all_of(data.begin(), data.end(), [](u8 byte) { return byte == 0; });
}

} // namespace

ErrorOr<void> import_image(PoolHandle& pool, std::string const& volume, std::string const& path, ProgressFunction const& progress)
{
    RawFileOptions options;
    options.read_only = true;
    auto image = TRY(RawFileDevice::open(path, options));
    u64 size = image->size();
    if (size == 0)
        return make_error(fmt::format("{} is empty: nothing to import", path));
    auto existing = pool.pool().volume_info(volume);
    if (!existing)
        TRY(pool.pool().create_volume(volume, (size + 511) / 512 * 512));
    else if (existing->size < size)
        return make_error(ErrorKind::NoSpace, fmt::format("volume {} has {} bytes, smaller than {} ({} bytes); resize it first", volume, existing->size, path, size));
    auto device = TRY(pool.volume(volume));
    if (device->read_only())
        return make_error(ErrorKind::PermissionDenied, fmt::format("{} is a read-only snapshot; import into a volume or a clone", volume));
    std::vector<u8> buffer(TRANSFER_SIZE);
    for (u64 done = 0; done < size;) {
        u64 length = std::min(TRANSFER_SIZE, size - done);
        auto part = std::span(buffer).first(length);
        TRY(image->read(done, part));
        // Chunk by chunk: a zero chunk is not written (an existing volume gets it zeroed, which
        // allocates nothing either).
        for (u64 at = 0; at < length; at += CHUNK_SIZE) {
            auto piece = part.subspan(at, std::min(CHUNK_SIZE, length - at));
            if (!all_zero(piece))
                TRY(device->write(done + at, piece, false));
            else if (existing)
                TRY(device->write_zeroes(done + at, piece.size(), true));
        }
        done += length;
        if (progress)
            progress(done, size);
    }
    return device->flush();
}

ErrorOr<void> export_image(PoolHandle& pool, std::string const& volume, std::string const& path, ProgressFunction const& progress)
{
    auto device = TRY(pool.volume(volume));
    u64 size = device->size();
    // Claimed before it is truncated: a file another process holds (a member of a pool it serves,
    // this pool's own member) is refused untouched.
    Fd fd = TRY(sys::open(path, O_RDWR | O_CREAT, 0644));
    TRY(RawFileDevice::claim(fd.get(), path, false));
    TRY(sys::ftruncate(fd.get(), 0));
    TRY(sys::ftruncate(fd.get(), size));
    auto image = TRY(RawFileDevice::adopt(std::move(fd), path, RawFileOptions {}));
    std::vector<u8> buffer(TRANSFER_SIZE);
    auto extents = TRY(device->block_status(0, size));
    u64 total_done = 0;
    for (auto const& extent : extents) {
        if (extent.allocated) {
            for (u64 done = 0; done < extent.length;) {
                u64 length = std::min(TRANSFER_SIZE, extent.length - done);
                auto part = std::span(buffer).first(length);
                TRY(device->read(extent.offset + done, part));
                TRY(image->write(extent.offset + done, part, false));
                done += length;
                if (progress)
                    progress(total_done + done, size);
            }
        }
        total_done += extent.length;
        if (progress)
            progress(total_done, size);
    }
    return image->flush();
}

} // namespace kasou::storage
