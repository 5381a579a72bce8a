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
    EXPECT_FALSE(layout.take_member_failed());

    disks.disks[0]->set_failed(true);
    std::vector<u8> back(data.size());
    for (int i = 0; i < 4; ++i) { // reads alternate: each copy is tried
        ASSERT_OK(layout.read(64 * KiB, back));
        EXPECT_EQ(back, data);
    }
    EXPECT_TRUE(layout.take_member_failed());
    EXPECT_EQ(layout.members()[0]->state, MemberState::Failed);
    auto newer = pattern(64 * KiB, 4);
    ASSERT_OK(layout.write(0, newer));
    ASSERT_OK(layout.flush());

    FaultDisks spare;
    auto replacement = spare.make(1, 2 * MiB, "spare");
    layout.replace_member_disk(0, std::move(replacement.front()), Uuid {});
    u64 reported = 0;
    ASSERT_OK(layout.resync_member(0, [&](u64 done, u64) { reported = done; }));
    EXPECT_EQ(reported, layout.size());
    EXPECT_EQ(layout.members()[0]->state, MemberState::Healthy);
    EXPECT_EQ(member_bytes(*spare.disks[0], MEMBER_HEADER_SIZE, 64 * KiB), newer);
    EXPECT_EQ(member_bytes(*spare.disks[0], MEMBER_HEADER_SIZE + 64 * KiB, data.size()), data);

    disks.disks[1]->set_failed(true);
    ASSERT_OK(layout.read(64 * KiB, back));
    EXPECT_EQ(back, data) << "the resynchronized copy serves alone";
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
