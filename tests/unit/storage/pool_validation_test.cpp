// A pool whose on-disk fields were crafted with valid checksums (a disk brought from elsewhere):
// each field class is refused on open with one error that names the field, and nothing crashes.

#include <cstring>
#include <functional>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/try.h"
#include "crafted_pool.h"

namespace kasou::storage {
namespace {

using test::CraftedPool;

// What validate_name says of name (the rule for names is its own).
std::string name_error(std::string_view name, std::string_view what)
{
    auto result = validate_name(name, what);
    EXPECT_FALSE(result) << name;
    return result ? "" : result.error().to_string();
}

class PoolValidation : public ::testing::Test {
protected:
    static void SetUpTestSuite() { s_base = new CraftedPool(MUST(CraftedPool::make())); }
    static void TearDownTestSuite()
    {
        delete s_base;
        s_base = nullptr;
    }

    // The error opening the base pool gives after change rewrote its superblock.
    static std::string with_superblock(std::function<void(Superblock&)> const& change)
    {
        CraftedPool crafted = *s_base;
        Superblock superblock = crafted.superblock();
        change(superblock);
        crafted.set_superblock(superblock);
        return crafted.open_error();
    }

    static u64 table_block() { return s_base->superblock().volume_table - 1; }
    // Blocks of the base pool's logical space: the mirror's member and the linear one.
    static u64 pool_blocks() { return (s_base->superblock().members[0].usable_size + s_base->superblock().members[2].usable_size) / BLOCK_SIZE; }

    static VolumeRecord* records(Block& block) { return reinterpret_cast<VolumeRecord*>(block.data() + sizeof(VolumeTableHeader)); }

    // The index of the volume named name in the (single) volume table block.
    static u32 record_index(std::string const& name)
    {
        Block block = MUST(s_base->read_block(table_block()));
        for (u32 i = 0; i < view_as<VolumeTableHeader>(block).count; ++i) {
            if (name_of(records(block)[i].name) == name)
                return i;
        }
        ADD_FAILURE() << "no volume " << name;
        return 0;
    }

    // The error opening the base pool gives after change rewrote the record of volume name.
    static std::string with_record(std::string const& name, std::function<void(VolumeRecord&)> const& change)
    {
        CraftedPool crafted = *s_base;
        Block block = MUST(crafted.read_block(table_block()));
        change(records(block)[record_index(name)]);
        MUST(crafted.write_block(table_block(), block, VOLUME_TABLE_MAGIC));
        return crafted.open_error();
    }

    static u64 root_of(std::string const& name)
    {
        Block block = MUST(s_base->read_block(table_block()));
        return records(block)[record_index(name)].root - 1;
    }

    static u64* entries(Block& block) { return reinterpret_cast<u64*>(block.data() + sizeof(NodeHeader)); }

    // The error opening the base pool gives after change rewrote node block number.
    static std::string with_node(u64 number, std::function<void(Block&)> const& change)
    {
        CraftedPool crafted = *s_base;
        Block block = MUST(crafted.read_block(number));
        change(block);
        MUST(crafted.write_block(number, block, NODE_MAGIC));
        return crafted.open_error();
    }

    static inline CraftedPool* s_base = nullptr;
};

TEST_F(PoolValidation, BasePoolOpensAndChecksClean)
{
    auto pool = MUST(s_base->open());
    EXPECT_EQ(pool->volumes().size(), 3u);
    EXPECT_TRUE(pool->check().empty());
    MUST(pool->close());
}

TEST_F(PoolValidation, SegmentNamingMemberPastTheTableIsRefused)
{
    EXPECT_EQ(with_superblock([](Superblock& s) { s.segments[1].first_member = 7; }),
        "pool superblock: segment 1 names member 7, but the pool has 3 members");
}

TEST_F(PoolValidation, SegmentWidthThatWrapsIsRefused)
{
    EXPECT_EQ(with_superblock([](Superblock& s) { s.segments[1].width = 0xffffffff; }),
        "pool superblock: segment 1 names 4294967295 members from member 2, but the pool has 3 members");
}

TEST_F(PoolValidation, MemberCountBeyondTheTableIsRefused)
{
    EXPECT_EQ(with_superblock([](Superblock& s) { s.member_count = 0xffffffff; }), "pool superblock: member count 4294967295 is not from 1 to 32");
    EXPECT_EQ(with_superblock([](Superblock& s) { s.segment_count = 0; }), "pool superblock: segment count 0 is not from 1 to 32");
}

TEST_F(PoolValidation, MemberSizeThatWrapsIsRefused)
{
    EXPECT_EQ(with_superblock([](Superblock& s) { s.members[2].usable_size = 0xffffffffffff0000; }),
        "pool superblock: member 2 uses 18446744073709486080 bytes, which overflows the member's size");
    EXPECT_EQ(with_superblock([](Superblock& s) { s.members[2].usable_size = 1000; }),
        "pool superblock: member 2 uses 1000 bytes, which is not a non-zero multiple of the 65536 byte chunk");
}

TEST_F(PoolValidation, StripedSegmentWhoseSizeOverflowsIsRefused)
{
    EXPECT_EQ(with_superblock([](Superblock& s) {
        s.segments[0].kind = SegmentKind::Striped;
        s.segments[0].stripe_size = 64 * KiB;
        s.members[0].usable_size = s.members[1].usable_size = u64 { 1 } << 63;
    }),
        "pool superblock: segment 0: 2 members of 9223372036854775808 bytes overflow the pool's size");
}

TEST_F(PoolValidation, PoolSizeThatOverflowsIsRefused)
{
    EXPECT_EQ(with_superblock([](Superblock& s) {
        s.members[0].usable_size = s.members[1].usable_size = u64 { 1 } << 63;
        s.members[2].usable_size = u64 { 1 } << 63;
    }),
        "pool superblock: segment 1 makes the pool's size overflow");
}

TEST_F(PoolValidation, TwoSegmentsOnOneMemberAreRefused)
{
    EXPECT_EQ(with_superblock([](Superblock& s) { s.segments[1].first_member = 1; }),
        "pool superblock: segment 1 uses member 1, which segment 0 already uses");
    EXPECT_EQ(with_superblock([](Superblock& s) {
        s.segment_count = 3;
        s.segments[2] = s.segments[1];
    }),
        "pool superblock: segment 2 uses member 2, which segment 1 already uses");
    EXPECT_EQ(with_superblock([](Superblock& s) { s.segment_count = 1; }), "pool superblock: member 2 belongs to no segment");
}

TEST_F(PoolValidation, StripeSizeZeroOrNotAPowerOfTwoIsRefused)
{
    for (u64 stripe : { u64 { 0 }, u64 { 3000 }, u64 { 96 * KiB }, u64 { 8 * MiB } }) {
        EXPECT_EQ(with_superblock([&](Superblock& s) {
            s.segments[0].kind = SegmentKind::Striped;
            s.segments[0].stripe_size = stripe;
        }),
            fmt::format("pool superblock: segment 0 (striped) has stripe size {}, which is not a power of two from 4096 to 4194304", stripe));
    }
    EXPECT_EQ(with_superblock([](Superblock& s) { s.segments[1].stripe_size = 4096; }),
        "pool superblock: segment 1 (linear) has stripe size 4096; only a striped segment has one");
}

TEST_F(PoolValidation, SegmentKindAndWidthAreChecked)
{
    EXPECT_EQ(with_superblock([](Superblock& s) { s.segments[1].kind = static_cast<SegmentKind>(9); }),
        "pool superblock: segment 1 has unknown kind 9");
    EXPECT_EQ(with_superblock([](Superblock& s) { s.segments[0].kind = SegmentKind::Linear; }),
        "pool superblock: segment 0 (linear) has width 2; a linear segment has 1 member");
    EXPECT_EQ(with_superblock([](Superblock& s) {
        s.segment_count = 1;
        s.segments[0].width = 3;
        s.members[2].usable_size = s.members[0].usable_size;
        s.segments[0].kind = SegmentKind::Striped;
        s.segments[0].stripe_size = 64 * KiB;
        s.segments[0].width = 1;
    }),
        "pool superblock: segment 0 (striped) has width 1; a striped segment has at least 2 members");
    EXPECT_EQ(with_superblock([](Superblock& s) { s.members[1].usable_size -= CHUNK_SIZE; }),
        fmt::format("pool superblock: segment 0: member 1 uses {} bytes but member 0 uses {}; the members of a segment use the same size",
            s_base->superblock().members[0].usable_size - CHUNK_SIZE, s_base->superblock().members[0].usable_size));
}

TEST_F(PoolValidation, MemberFieldsAreChecked)
{
    EXPECT_EQ(with_superblock([](Superblock& s) { s.members[1].state = static_cast<MemberState>(7); }), "pool superblock: member 1 has unknown state 7");
    EXPECT_EQ(with_superblock([](Superblock& s) { s.members[2].uuid = s.members[0].uuid; }),
        fmt::format("pool superblock: members 0 and 2 have the same uuid {}", s_base->superblock().members[0].uuid.to_string()));
}

TEST_F(PoolValidation, MemberAreaPastTheDiskIsRefused)
{
    EXPECT_EQ(with_superblock([](Superblock& s) { s.members[2].usable_size = 2 * MiB; }),
        fmt::format("member 2 (crafted2) has {} bytes, but the pool uses {} of it", CraftedPool::DISK_SIZE, MEMBER_HEADER_SIZE + 2 * MiB));
}

TEST_F(PoolValidation, SuperblockScalarsAreChecked)
{
    EXPECT_EQ(with_superblock([](Superblock& s) { s.volume_table = u64 { 1 } << 60; }),
        fmt::format("pool superblock: volume table block {} is outside the pool's {} blocks", (u64 { 1 } << 60) - 1, pool_blocks()));
    EXPECT_EQ(with_superblock([](Superblock& s) { s.next_volume_id = 0; }), "pool superblock: next volume id 0 is out of range");
    EXPECT_EQ(with_superblock([](Superblock& s) { s.generation = ~u64 { 0 }; }),
        "pool superblock: generation 18446744073709551615 leaves no room for the next commit");
    EXPECT_EQ(with_superblock([](Superblock& s) { copy_name(s.pool_name, "../etc"); }),
        "pool superblock: " + name_error("../etc", "pool"));
}

TEST_F(PoolValidation, LabelFieldsAreChecked)
{
    CraftedPool crafted = *s_base;
    MemberLabel label = crafted.label(0);
    copy_name(label.pool_name, "bad name");
    crafted.set_label(0, label);
    EXPECT_EQ(crafted.open_error(), "label of crafted0: " + name_error("bad name", "pool"));
    label = crafted.label(1);
    label.member_uuid = {};
    crafted.set_label(0, label);
    EXPECT_EQ(crafted.open_error(), "label of crafted0: the pool or member uuid is zero");
}

TEST_F(PoolValidation, VolumeRecordFieldsAreChecked)
{
    std::string where = fmt::format("volume table block {} entry {}", table_block(), record_index("data"));
    EXPECT_EQ(with_record("data", [](VolumeRecord& r) { r.id = 0; }),
        where + ": volume id 0 is not from 1 to the superblock's next volume id 4 - 1");
    EXPECT_EQ(with_record("data", [](VolumeRecord& r) { r.id = 4; }),
        where + ": volume id 4 is not from 1 to the superblock's next volume id 4 - 1");
    EXPECT_EQ(with_record("data", [](VolumeRecord& r) { r.size = 0; }),
        where + ": volume 'data': volume size 0 must be a non-zero multiple of 512 bytes");
    EXPECT_EQ(with_record("data", [](VolumeRecord& r) { r.size = ~u64 { 0 } - 511; }),
        where + fmt::format(": volume 'data': volume size {} is larger than the largest volume ({} bytes)", ~u64 { 0 } - 511, MAX_VOLUME_CHUNKS * CHUNK_SIZE));
    EXPECT_EQ(with_record("data", [](VolumeRecord& r) { r.flags = 0x80; }), where + ": volume 'data' has unknown flags 0x80");
    EXPECT_EQ(with_record("data", [](VolumeRecord& r) { r.origin_id = r.id; }),
        where + ": volume 'data' (id 1) names origin 1, which is not an earlier volume id");
    EXPECT_EQ(with_record("data", [](VolumeRecord& r) { copy_name(r.name, ""); }), where + ": " + name_error("", "volume"));
}

TEST_F(PoolValidation, AliasedVolumeNamesAreRefused)
{
    std::string where = fmt::format("volume table block {} entry {}", table_block(), record_index("empty"));
    EXPECT_EQ(with_record("empty", [](VolumeRecord& r) { copy_name(r.name, "data"); }),
        where + ": volume name 'data' appears twice in the volume table");
}

TEST_F(PoolValidation, VolumeTableHeaderIsChecked)
{
    CraftedPool crafted = *s_base;
    Block block = MUST(crafted.read_block(table_block()));
    view_as<VolumeTableHeader>(block).count = 0xffffffff;
    MUST(crafted.write_block(table_block(), block, VOLUME_TABLE_MAGIC));
    EXPECT_EQ(crafted.open_error(), fmt::format("volume table block {} has count 4294967295, but a block holds at most {} volumes", table_block(), VOLUMES_PER_TABLE_BLOCK));
    view_as<VolumeTableHeader>(block).count = 1;
    view_as<VolumeTableHeader>(block).next = table_block() + 1; // itself
    MUST(crafted.write_block(table_block(), block, VOLUME_TABLE_MAGIC));
    EXPECT_EQ(crafted.open_error(), fmt::format("volume table block {} is out of range or part of a loop", table_block()));
}

TEST_F(PoolValidation, TreeRootOutsideThePoolIsRefused)
{
    std::string where = fmt::format("volume table block {} entry {}", table_block(), record_index("data"));
    EXPECT_EQ(with_record("data", [](VolumeRecord& r) { r.root = ~u64 { 0 }; }),
        where + fmt::format(": volume 'data' has root node {}, outside the pool's {} blocks", ~u64 { 0 } - 1, pool_blocks()));
}

TEST_F(PoolValidation, NodePointersAndLoopsAreRefused)
{
    u64 root = root_of("data");
    EXPECT_EQ(with_node(root, [](Block& b) { entries(b)[5] = u64 { 1 } << 40; }),
        fmt::format("volume 'data': node pointer {} is outside the pool", (u64 { 1 } << 40) - 1));
    EXPECT_EQ(with_node(root, [&](Block& b) { entries(b)[5] = root + 1; }), fmt::format("volume 'data': node {} is reached at levels 2 and 1", root));
}

TEST_F(PoolValidation, LeafEntriesOutsideTheDataAreRefused)
{
    Block root = MUST(s_base->read_block(root_of("data")));
    Block middle = MUST(s_base->read_block(entries(root)[0] - 1));
    u64 leaf = entries(middle)[0] - 1;
    EXPECT_EQ(with_node(leaf, [](Block& b) { entries(b)[3] = u64 { 1 } << 40; }),
        fmt::format("volume 'data': node {} maps data chunk {} outside the pool", leaf, (u64 { 1 } << 40) - 1));
    EXPECT_EQ(with_node(leaf, [&](Block& b) { entries(b)[3] = leaf / BLOCKS_PER_CHUNK + 1; }),
        fmt::format("chunk {} is used both for metadata and for data", leaf / BLOCKS_PER_CHUNK));
}

} // namespace
} // namespace kasou::storage
