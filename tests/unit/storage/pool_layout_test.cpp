#include <gtest/gtest.h>

#include "base/try.h"
#include "pool_test_support.h"
#include "storage/pool/pool_layout.h"

namespace kasou::storage {
namespace {

using test::FaultDisks;
using test::pattern;

PoolLayout make_layout(SegmentKind kind, u64 stripe, std::vector<std::unique_ptr<MemberDisk>> disks)
{
    std::vector<u64> sizes;
    for (auto const& disk : disks)
        sizes.push_back(disk->size());
    std::vector<std::unique_ptr<PoolMember>> members;
    for (auto& disk : disks) {
        auto member = std::make_unique<PoolMember>();
        member->usable_size = MUST(PoolLayout::plan_segment(kind, kind == SegmentKind::Linear ? std::vector<u64> { disk->size() } : sizes, stripe));
        member->disk = std::move(disk);
        members.push_back(std::move(member));
    }
    PoolLayout layout;
    MUST(layout.add_segment(kind, stripe, std::move(members)));
    return layout;
}

std::vector<u8> member_bytes(FaultMemberDisk& disk, u64 offset, u64 length)
{
    std::vector<u8> data(length);
    MUST(disk.read(offset, data));
    return data;
}

TEST(PoolLayout, LinearConcatenatesMembers)
{
    FaultDisks disks;
    auto layout = make_layout(SegmentKind::Linear, 0, disks.make(2, 1 * MiB + 64 * KiB + 1000));
    EXPECT_EQ(layout.size(), 2 * MiB) << "each member gives its size less the header, rounded to chunks";
    auto data = pattern(128 * KiB, 1);
    ASSERT_OK(layout.write(1 * MiB - 64 * KiB, data));
    EXPECT_EQ(member_bytes(*disks.disks[0], MEMBER_HEADER_SIZE + 1 * MiB - 64 * KiB, 64 * KiB), std::vector<u8>(data.begin(), data.begin() + 64 * KiB));
    EXPECT_EQ(member_bytes(*disks.disks[1], MEMBER_HEADER_SIZE, 64 * KiB), std::vector<u8>(data.begin() + 64 * KiB, data.end()));
    std::vector<u8> back(data.size());
    ASSERT_OK(layout.read(1 * MiB - 64 * KiB, back));
    EXPECT_EQ(back, data);
    EXPECT_FALSE(layout.read(2 * MiB - 10, back));
}

TEST(PoolLayout, StripedAlternatesMembersEveryStripe)
{
    FaultDisks disks;
    auto layout = make_layout(SegmentKind::Striped, 16 * KiB, disks.make(2, 2 * MiB));
    auto data = pattern(64 * KiB, 2);
    ASSERT_OK(layout.write(0, data));
    auto stripe = [&](int i) { return std::vector<u8>(data.begin() + i * 16 * KiB, data.begin() + (i + 1) * 16 * KiB); };
    EXPECT_EQ(member_bytes(*disks.disks[0], MEMBER_HEADER_SIZE, 16 * KiB), stripe(0));
    EXPECT_EQ(member_bytes(*disks.disks[1], MEMBER_HEADER_SIZE, 16 * KiB), stripe(1));
    EXPECT_EQ(member_bytes(*disks.disks[0], MEMBER_HEADER_SIZE + 16 * KiB, 16 * KiB), stripe(2));
    EXPECT_EQ(member_bytes(*disks.disks[1], MEMBER_HEADER_SIZE + 16 * KiB, 16 * KiB), stripe(3));
    std::vector<u8> back(data.size());
    ASSERT_OK(layout.read(0, back));
    EXPECT_EQ(back, data);
}

TEST(PoolLayout, BadLayoutsAreExplained)
{
    EXPECT_FALSE(PoolLayout::plan_segment(SegmentKind::Mirror, { 4 * MiB, 4 * MiB, 4 * MiB, 4 * MiB }, 0));
    EXPECT_FALSE(PoolLayout::plan_segment(SegmentKind::Striped, { 4 * MiB, 4 * MiB }, 3000));
    EXPECT_FALSE(PoolLayout::plan_segment(SegmentKind::Striped, { 4 * MiB }, 64 * KiB));
    auto small = PoolLayout::plan_segment(SegmentKind::Linear, { 100 * KiB }, 0);
    ASSERT_FALSE(small);
    EXPECT_NE(small.error().to_string().find("too small"), std::string::npos);
    EXPECT_EQ(MUST(PoolLayout::plan_segment(SegmentKind::Mirror, { 4 * MiB, 8 * MiB }, 0)), 4 * MiB - MEMBER_HEADER_SIZE);
}

TEST(PoolLayout, MirrorSurvivesAFailedMemberAndResynchronizes)
{
    FaultDisks disks;
    auto layout = make_layout(SegmentKind::Mirror, 0, disks.make(2, 2 * MiB));
    auto data = pattern(256 * KiB, 3);
    ASSERT_OK(layout.write(64 * KiB, data));
    EXPECT_EQ(member_bytes(*disks.disks[0], MEMBER_HEADER_SIZE + 64 * KiB, data.size()), data);
    EXPECT_EQ(member_bytes(*disks.disks[1], MEMBER_HEADER_SIZE + 64 * KiB, data.size()), data);
    EXPECT_FALSE(layout.take_members_changed());

    disks.disks[0]->set_failed(true);
    std::vector<u8> back(data.size());
    for (int i = 0; i < 4; ++i) { // reads alternate: each copy is tried
        ASSERT_OK(layout.read(64 * KiB, back));
        EXPECT_EQ(back, data);
    }
    EXPECT_TRUE(layout.take_members_changed());
    EXPECT_EQ(layout.members()[0]->state, MemberState::Failed);
    auto newer = pattern(64 * KiB, 4);
    ASSERT_OK(layout.write(0, newer));
    ASSERT_OK(layout.flush());

    FaultDisks spare;
    auto replacement = spare.make(1, 2 * MiB, "spare");
    layout.replace_member_disk(0, std::move(replacement.front()), Uuid {});
    ASSERT_OK(layout.start_rebuild(0));
    EXPECT_EQ(layout.members()[0]->state, MemberState::Rebuilding);
    u64 steps = 0;
    while (!MUST(layout.rebuild_step(0, 256 * KiB)))
        ++steps;
    EXPECT_EQ(steps + 1, (layout.size() + 256 * KiB - 1) / (256 * KiB)) << "copied in ranges";
    ASSERT_OK(layout.finish_rebuild(0));
    EXPECT_EQ(layout.members()[0]->state, MemberState::Healthy);
    EXPECT_EQ(member_bytes(*spare.disks[0], MEMBER_HEADER_SIZE, 64 * KiB), newer);
    EXPECT_EQ(member_bytes(*spare.disks[0], MEMBER_HEADER_SIZE + 64 * KiB, data.size()), data);

    disks.disks[1]->set_failed(true);
    ASSERT_OK(layout.read(64 * KiB, back));
    EXPECT_EQ(back, data) << "the resynchronized copy serves alone";
}

TEST(PoolLayout, ACopyBeingRebuiltIsWrittenButNeverRead)
{
    FaultDisks disks;
    auto layout = make_layout(SegmentKind::Mirror, 0, disks.make(2, 2 * MiB));
    auto old = pattern(layout.size(), 5);
    ASSERT_OK(layout.write(0, old));
    disks.disks[1]->set_failed(true);
    ASSERT_OK(layout.write(0, pattern(4096, 6))); // fails copy 1
    disks.disks[1]->set_failed(false);
    ASSERT_OK(layout.start_rebuild(1));
    ASSERT_FALSE(MUST(layout.rebuild_step(1, 512 * KiB)));
    EXPECT_EQ(layout.members()[1]->rebuilt, 512 * KiB);
    // Behind and ahead of the rebuild position: both copies take the write.
    auto behind = pattern(8192, 7);
    auto ahead = pattern(8192, 8);
    ASSERT_OK(layout.write(64 * KiB, behind));
    ASSERT_OK(layout.write(1 * MiB, ahead));
    EXPECT_EQ(member_bytes(*disks.disks[1], MEMBER_HEADER_SIZE + 64 * KiB, behind.size()), behind);
    EXPECT_EQ(member_bytes(*disks.disks[1], MEMBER_HEADER_SIZE + 1 * MiB, ahead.size()), ahead);
    // Reads come from the healthy copy only, whatever the turn: never the stale part of copy 1.
    for (int i = 0; i < 4; ++i) {
        std::vector<u8> back(4096);
        ASSERT_OK(layout.read(0, back));
        EXPECT_EQ(back, pattern(4096, 6));
    }
    while (!MUST(layout.rebuild_step(1, 512 * KiB))) { }
    ASSERT_OK(layout.finish_rebuild(1));
    EXPECT_EQ(member_bytes(*disks.disks[1], MEMBER_HEADER_SIZE, layout.size()), member_bytes(*disks.disks[0], MEMBER_HEADER_SIZE, layout.size()));
}

TEST(PoolLayout, ResyncCopiesOnlyTheRegionsTheBitmapMarks)
{
    FaultDisks disks;
    auto layout = make_layout(SegmentKind::Mirror, 0, disks.make(2, 3 * MIN_INTENT_REGION + MEMBER_HEADER_SIZE));
    ASSERT_OK(layout.write_intents());
    ASSERT_OK(layout.write(MIN_INTENT_REGION + 4096, pattern(4096, 9)));
    // Copy 1 misses that write (a crash between the two copies' writes) and holds junk elsewhere
    // too, in regions nothing wrote: only the marked region is copied.
    ASSERT_OK(disks.disks[1]->write(MEMBER_HEADER_SIZE + MIN_INTENT_REGION + 4096, std::vector<u8>(4096, 0)));
    ASSERT_OK(disks.disks[1]->write(MEMBER_HEADER_SIZE + 4096, std::vector<u8>(4096, 0xEE)));
    EXPECT_EQ(MUST(layout.resync_intents()), 1u);
    EXPECT_EQ(member_bytes(*disks.disks[1], MEMBER_HEADER_SIZE + MIN_INTENT_REGION + 4096, 4096), pattern(4096, 9));
    EXPECT_EQ(member_bytes(*disks.disks[1], MEMBER_HEADER_SIZE + 4096, 4096), std::vector<u8>(4096, 0xEE));
    EXPECT_EQ(MUST(layout.resync_intents()), 0u) << "the bitmaps were cleared";
    // A settle after a flush clears the bits of regions written before it began.
    ASSERT_OK(layout.write(0, pattern(4096, 10)));
    layout.begin_settle_intents();
    ASSERT_OK(layout.flush());
    ASSERT_OK(layout.finish_settle_intents());
    EXPECT_EQ(MUST(layout.resync_intents()), 0u);
}

TEST(PoolLayout, MirrorWithNoCopyLeftFails)
{
    FaultDisks disks;
    auto layout = make_layout(SegmentKind::Mirror, 0, disks.make(2, 2 * MiB));
    disks.disks[0]->set_failed(true);
    disks.disks[1]->set_failed(true);
    std::vector<u8> buffer(4096);
    auto result = layout.write(0, buffer);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code(), EIO);
}

} // namespace
} // namespace kasou::storage
