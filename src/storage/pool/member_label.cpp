#include "storage/pool/member_label.h"

#include <fmt/format.h>

#include "base/try.h"

namespace kasou::storage {

ErrorOr<void> write_member_label(MemberDisk& disk, Uuid const& pool_uuid, Uuid const& member_uuid, std::string const& pool_name)
{
    Block block {};
    auto& label = view_as<MemberLabel>(block);
    label.pool_uuid = pool_uuid;
    label.member_uuid = member_uuid;
    copy_name(label.pool_name, pool_name);
    seal_block(block, LABEL_MAGIC);
    Block empty {};
    TRY(disk.write(SUPERBLOCK_OFFSET, empty));
    TRY(disk.write(SUPERBLOCK_OFFSET + BLOCK_SIZE, empty));
    TRY(disk.write(LABEL_OFFSET, block));
    return disk.flush();
}

ErrorOr<MemberLabel> read_member_label(MemberDisk& disk)
{
    if (disk.size() < MEMBER_HEADER_SIZE)
        return make_error(fmt::format("{} is too small to be a pool member", disk.name()));
    Block block {};
    TRY(disk.read(LABEL_OFFSET, block));
    if (auto result = verify_block(block, LABEL_MAGIC, fmt::format("label of {}", disk.name())); !result)
        return tl::unexpected(result.error().with_prefix(fmt::format("{} is not a kasou pool member", disk.name())));
    auto const& label = view_as<MemberLabel>(block);
    TRY(validate_label(label, disk.name()));
    return label;
}

std::optional<Superblock> read_newest_superblock(MemberDisk& disk, Uuid const& pool_uuid)
{
    std::optional<Superblock> newest;
    for (u32 slot = 0; slot < 2; ++slot) {
        Block block {};
        if (!disk.read(SUPERBLOCK_OFFSET + slot * BLOCK_SIZE, block))
            continue;
        if (!verify_block(block, SUPERBLOCK_MAGIC, "superblock"))
            continue;
        auto const& superblock = view_as<Superblock>(block);
        if (superblock.pool_uuid != pool_uuid)
            continue;
        if (!newest || superblock.generation > newest->generation)
            newest = superblock;
    }
    return newest;
}

ErrorOr<void> check_disk_unused(MemberDisk& disk, bool force)
{
    if (force)
        return {};
    auto label = read_member_label(disk);
    if (!label)
        return {};
    if (!read_newest_superblock(disk, label->pool_uuid))
        return {};
    return make_error(ErrorKind::Busy, fmt::format("{} belongs to pool '{}' ({}); destroy that pool first, or pass --force to overwrite it",
        disk.name(), name_of(label->pool_name), label->pool_uuid.to_string()));
}

} // namespace kasou::storage
