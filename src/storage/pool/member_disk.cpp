#include "storage/pool/member_disk.h"

#include <algorithm>
#include <array>

#include "base/try.h"

namespace kasou::storage {

std::optional<DiskIdentity> MemberDisk::identity() const
{
    return std::nullopt;
}

ErrorOr<void> MemberDisk::write_zeroes(u64 offset, u64 length)
{
    static std::array<u8, 64 * KiB> const zeroes {};
    for (u64 done = 0; done < length;) {
        u64 part = std::min<u64>(zeroes.size(), length - done);
        TRY(write(offset + done, std::span(zeroes.data(), part)));
        done += part;
    }
    return {};
}

ErrorOr<void> MemberDisk::write_durable(u64 offset, std::span<u8 const> data)
{
    TRY(write(offset, data));
    return flush();
}

bool MemberDisk::is_durable_hole(u64, u64)
{
    return false;
}

} // namespace kasou::storage
