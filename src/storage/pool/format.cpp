#include "storage/pool/format.h"

#include <algorithm>
#include <cstring>
#include <fcntl.h>

#include <fmt/format.h>

#include "base/checked.h"
#include "base/sys_file.h"
#include "base/utf8.h"
#include "base/try.h"
#include "storage/pool/crc32c.h"

namespace kasou::storage {

ErrorOr<Uuid> Uuid::random()
{
    Fd fd = TRY(sys::open("/dev/urandom", O_RDONLY));
    Uuid uuid;
    size_t n = TRY(sys::read(fd.get(), uuid.bytes.data(), uuid.bytes.size()));
    if (n != uuid.bytes.size())
        return make_error(ErrorKind::Io, "short read from /dev/urandom");
    return uuid;
}

std::string Uuid::to_string() const
{
    std::string text;
    for (size_t i = 0; i < bytes.size(); ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            text += '-';
        text += fmt::format("{:02x}", bytes[i]);
    }
    return text;
}

namespace {

u32 block_crc(Block const& block)
{
    Block copy = block;
    std::memset(copy.data() + offsetof(BlockHeader, crc), 0, sizeof(u32));
    return crc32c(copy);
}

} // namespace

void seal_block(Block& block, u64 magic)
{
    auto& header = view_as<BlockHeader>(block);
    header.magic = magic;
    header.version = FORMAT_VERSION;
    header.crc = 0;
    header.crc = block_crc(block);
}

ErrorOr<void> verify_block(Block const& block, u64 magic, std::string_view what)
{
    auto const& header = view_as<BlockHeader>(block);
    if (header.magic != magic)
        return make_error(ErrorKind::Corrupt, fmt::format("{}: bad magic (not written by kasou, or overwritten)", what));
    if (header.crc != block_crc(block))
        return make_error(ErrorKind::Corrupt, fmt::format("{}: checksum mismatch (torn or corrupted write)", what));
    if (header.version != FORMAT_VERSION)
        return make_error(ErrorKind::Unsupported, fmt::format("{}: format version {} is not supported (this kasou reads {})", what, header.version, FORMAT_VERSION));
    return {};
}

ErrorOr<void> validate_name(std::string_view name, std::string_view what)
{
    if (name.empty())
        return make_error(fmt::format("{} name is empty", what));
    for (size_t at = 0; at < name.size();) {
        size_t start = at;
        auto code = decode_utf8(name, at);
        if (!code)
            return make_error(fmt::format("{} name is not valid UTF-8 (byte {:#04x} at offset {})", what, static_cast<unsigned char>(name[start]), start));
        bool ascii_ok = (*code >= 'a' && *code <= 'z') || (*code >= 'A' && *code <= 'Z') || (*code >= '0' && *code <= '9') || *code == '_'
            || *code == '.' || *code == '-' || *code == '+';
        // Beyond ASCII any character but the C1 controls: a name may be written in any script.
        bool ok = *code < 0x80 ? ascii_ok : *code > 0x9f;
        if (!ok && (*code < 0x20 || (*code >= 0x7f && *code <= 0x9f)))
            return make_error(fmt::format("{} name contains the control character U+{:04X}; use letters, digits and _ . + -", what, static_cast<u32>(*code)));
        if (!ok)
            return make_error(fmt::format("{} name '{}' contains '{}'; use letters, digits and _ . + -", what, name, name.substr(start, at - start)));
    }
    if (name.size() >= NAME_LENGTH)
        return make_error(fmt::format("{} name '{}' is longer than {} bytes (UTF-8)", what, name, NAME_LENGTH - 1));
    if (name[0] == '.' || name[0] == '-')
        return make_error(fmt::format("{} name '{}' must not start with '{}'", what, name, name[0]));
    return {};
}

void copy_name(char (&out)[NAME_LENGTH], std::string_view name)
{
    std::memset(out, 0, NAME_LENGTH);
    std::memcpy(out, name.data(), std::min(name.size(), NAME_LENGTH - 1));
}

std::string name_of(char const (&field)[NAME_LENGTH])
{
    return std::string(field, strnlen(field, NAME_LENGTH));
}

namespace {

tl::unexpected<Error> superblock_error(std::string text)
{
    return make_error(ErrorKind::Corrupt, fmt::format("pool superblock: {}", text));
}

// The members' own fields, each on its own and against the others.
ErrorOr<void> validate_members(Superblock const& superblock)
{
    for (u32 i = 0; i < superblock.member_count; ++i) {
        auto const& member = superblock.members[i];
        auto state = static_cast<u32>(member.state);
        if (member.state != MemberState::Healthy && member.state != MemberState::Failed && member.state != MemberState::Rebuilding)
            return superblock_error(fmt::format("member {} has unknown state {}", i, state));
        if (member.state != MemberState::Rebuilding && superblock.rebuilt[i] != 0)
            return superblock_error(fmt::format("member {} is not being rebuilt but has {} bytes rebuilt", i, superblock.rebuilt[i]));
        if (superblock.rebuilt[i] > member.usable_size || superblock.rebuilt[i] % BLOCK_SIZE != 0)
            return superblock_error(fmt::format("member {} has {} bytes rebuilt, not a multiple of {} within its {} bytes", i, superblock.rebuilt[i],
                BLOCK_SIZE, member.usable_size));
        if (member.usable_size == 0 || member.usable_size % CHUNK_SIZE != 0)
            return superblock_error(fmt::format("member {} uses {} bytes, which is not a non-zero multiple of the {} byte chunk", i, member.usable_size, CHUNK_SIZE));
        if (!checked_add(MEMBER_HEADER_SIZE, member.usable_size))
            return superblock_error(fmt::format("member {} uses {} bytes, which overflows the member's size", i, member.usable_size));
        for (u32 j = 0; j < i; ++j) {
            if (superblock.members[j].uuid == member.uuid)
                return superblock_error(fmt::format("members {} and {} have the same uuid {}", j, i, member.uuid.to_string()));
        }
    }
    return {};
}

// One segment's kind, width and stripe size; its size in the logical space.
ErrorOr<u64> validate_segment(Superblock const& superblock, u32 index)
{
    auto const& segment = superblock.segments[index];
    u32 count = superblock.member_count;
    auto kind = static_cast<u32>(segment.kind);
    if (segment.kind != SegmentKind::Linear && segment.kind != SegmentKind::Striped && segment.kind != SegmentKind::Mirror)
        return superblock_error(fmt::format("segment {} has unknown kind {}", index, kind));
    if (segment.first_member >= count)
        return superblock_error(fmt::format("segment {} names member {}, but the pool has {} members", index, segment.first_member, count));
    if (segment.width == 0 || segment.width > count - segment.first_member)
        return superblock_error(fmt::format("segment {} names {} members from member {}, but the pool has {} members", index, segment.width, segment.first_member, count));
    char const* name = layout_name(segment.kind);
    switch (segment.kind) {
    case SegmentKind::Linear:
        if (segment.width != 1)
            return superblock_error(fmt::format("segment {} ({}) has width {}; a linear segment has 1 member", index, name, segment.width));
        break;
    case SegmentKind::Striped:
        if (segment.width < 2)
            return superblock_error(fmt::format("segment {} ({}) has width {}; a striped segment has at least 2 members", index, name, segment.width));
        if (segment.stripe_size < MIN_STRIPE_SIZE || segment.stripe_size > MAX_STRIPE_SIZE || !std::has_single_bit(segment.stripe_size))
            return superblock_error(fmt::format("segment {} ({}) has stripe size {}, which is not a power of two from {} to {}", index, name,
                segment.stripe_size, MIN_STRIPE_SIZE, MAX_STRIPE_SIZE));
        break;
    case SegmentKind::Mirror:
        if (segment.width < MIN_MIRROR_COPIES || segment.width > MAX_MIRROR_COPIES)
            return superblock_error(fmt::format("segment {} ({}) has width {}; a mirror has {} or {} copies", index, name, segment.width, MIN_MIRROR_COPIES, MAX_MIRROR_COPIES));
        break;
    }
    if (segment.kind != SegmentKind::Striped && segment.stripe_size != 0)
        return superblock_error(fmt::format("segment {} ({}) has stripe size {}; only a striped segment has one", index, name, segment.stripe_size));
    u64 per_member = superblock.members[segment.first_member].usable_size;
    for (u32 m = segment.first_member + 1; m < segment.first_member + segment.width; ++m) {
        if (superblock.members[m].usable_size != per_member)
            return superblock_error(fmt::format("segment {}: member {} uses {} bytes but member {} uses {}; the members of a segment use the same size",
                index, m, superblock.members[m].usable_size, segment.first_member, per_member));
    }
    for (u32 m = segment.first_member; m < segment.first_member + segment.width; ++m) {
        if (segment.kind != SegmentKind::Mirror && superblock.members[m].state == MemberState::Rebuilding)
            return superblock_error(fmt::format("member {} is being rebuilt, but only a mirror copy can be (segment {} is {})", m, index, name));
    }
    if (segment.kind == SegmentKind::Mirror)
        return per_member;
    if (segment.kind == SegmentKind::Striped && per_member % segment.stripe_size != 0)
        return superblock_error(fmt::format("segment {}: member {} uses {} bytes, which is not a multiple of the stripe size {}", index,
            segment.first_member, per_member, segment.stripe_size));
    auto size = checked_mul<u64>(per_member, segment.width);
    if (!size)
        return superblock_error(fmt::format("segment {}: {} members of {} bytes overflow the pool's size", index, segment.width, per_member));
    return *size;
}

} // namespace

ErrorOr<u64> validate_superblock(Superblock const& superblock)
{
    if (auto name = validate_name(name_of(superblock.pool_name), "pool"); !name)
        return superblock_error(name.error().to_string());
    if (superblock.member_count == 0 || superblock.member_count > MAX_MEMBERS)
        return superblock_error(fmt::format("member count {} is not from 1 to {}", superblock.member_count, MAX_MEMBERS));
    if (superblock.segment_count == 0 || superblock.segment_count > MAX_SEGMENTS)
        return superblock_error(fmt::format("segment count {} is not from 1 to {}", superblock.segment_count, MAX_SEGMENTS));
    TRY(validate_members(superblock));
    // The segments cover the member table in order, each member once: no two segments (and so no
    // two logical ranges) share a member's space.
    u32 next_member = 0;
    u64 pool_size = 0;
    for (u32 i = 0; i < superblock.segment_count; ++i) {
        u64 size = TRY(validate_segment(superblock, i));
        auto const& segment = superblock.segments[i];
        if (segment.first_member < next_member) {
            u32 owner = 0;
            while (superblock.segments[owner].first_member + superblock.segments[owner].width <= segment.first_member)
                ++owner;
            return superblock_error(fmt::format("segment {} uses member {}, which segment {} already uses", i, segment.first_member, owner));
        }
        if (segment.first_member > next_member)
            return superblock_error(fmt::format("member {} belongs to no segment (segment {} starts at member {})", next_member, i, segment.first_member));
        next_member += segment.width;
        auto total = checked_add(pool_size, size);
        if (!total)
            return superblock_error(fmt::format("segment {} makes the pool's size overflow", i));
        pool_size = *total;
    }
    if (next_member != superblock.member_count)
        return superblock_error(fmt::format("member {} belongs to no segment", next_member));
    if (superblock.volume_table != 0 && superblock.volume_table - 1 >= pool_size / BLOCK_SIZE)
        return superblock_error(fmt::format("volume table block {} is outside the pool's {} blocks", superblock.volume_table - 1, pool_size / BLOCK_SIZE));
    if (superblock.next_volume_id == 0 || superblock.next_volume_id == ~u64 { 0 })
        return superblock_error(fmt::format("next volume id {} is out of range", superblock.next_volume_id));
    if (superblock.generation == ~u64 { 0 })
        return superblock_error(fmt::format("generation {} leaves no room for the next commit", superblock.generation));
    return pool_size;
}

ErrorOr<void> validate_label(MemberLabel const& label, std::string_view disk_name)
{
    if (auto name = validate_name(name_of(label.pool_name), "pool"); !name)
        return make_error(ErrorKind::Corrupt, fmt::format("label of {}: {}", disk_name, name.error().to_string()));
    if (label.pool_uuid == Uuid {} || label.member_uuid == Uuid {})
        return make_error(ErrorKind::Corrupt, fmt::format("label of {}: the pool or member uuid is zero", disk_name));
    return {};
}

char const* layout_name(SegmentKind kind)
{
    switch (kind) {
    case SegmentKind::Linear:
        return "linear";
    case SegmentKind::Striped:
        return "striped";
    case SegmentKind::Mirror:
        return "mirror";
    }
    return "unknown";
}

} // namespace kasou::storage
