// pool_status and volume_statuses: a pool and its volumes as data, on in-memory member disks.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "pool_test_support.h"
#include "storage/pool/pool_status.h"

namespace kasou::storage::test {
namespace {

TEST(PoolStatus, DescribesSegmentsMembersAndSpace)
{
    FaultDisks disks;
    auto pool = MUST(ThinPool::create("tank", SegmentKind::Striped, 128 * KiB, disks.make(2, 16 * MiB), false));
    MUST(pool->grow(disks.make(2, 8 * MiB, "more"), false));
    MUST(pool->create_volume("disk0", 4 * MiB));
    auto status = pool_status(*pool);
    EXPECT_EQ(status.name, "tank");
    EXPECT_EQ(status.uuid, pool->uuid().to_string());
    EXPECT_EQ(status.volumes, 1u);
    EXPECT_EQ(status.chunk_size, CHUNK_SIZE);
    EXPECT_EQ(status.usage.size, pool->usage().size);
    ASSERT_EQ(status.segments.size(), 2u);
    EXPECT_EQ(status.segments[0].kind, SegmentKind::Striped);
    EXPECT_EQ(status.segments[0].stripe_size, 128 * KiB);
    EXPECT_EQ(status.segments[1].first_member, 2u);
    ASSERT_EQ(status.members.size(), 4u);
    EXPECT_EQ(status.members[3].index, 3u);
    EXPECT_EQ(status.members[3].segment, 1u);
    EXPECT_EQ(status.members[0].disk, "disk0");
    EXPECT_EQ(status.members[0].state, MemberState::Healthy);

    auto json = to_json(status);
    EXPECT_EQ(json.at("members").size(), 4u);
    EXPECT_EQ(json.at("members")[2].at("segment"), 1);
    EXPECT_EQ(json.at("segments")[0].at("layout"), "striped");
    EXPECT_EQ(json.at("metadata").at("chunk_size"), CHUNK_SIZE);
    EXPECT_EQ(json.at("used"), status.usage.data_used);
}

TEST(PoolStatus, AFailedMirrorMemberShowsAsFailed)
{
    FaultDisks disks;
    auto pool = MUST(ThinPool::create("safe", SegmentKind::Mirror, 0, disks.make(2, 16 * MiB), false));
    MUST(pool->create_volume("v", 1 * MiB));
    auto volume = MUST(pool->open_volume("v"));
    disks.disks[1]->set_failed(true);
    std::vector<u8> data(CHUNK_SIZE, 1);
    MUST(volume->write(0, data, false));
    MUST(pool->commit());
    auto status = pool_status(*pool);
    EXPECT_EQ(status.members[1].state, MemberState::Failed);
    EXPECT_EQ(to_json(status).at("members")[1].at("state"), "failed");
}

TEST(VolumeStatus, KindsOriginsAndAllocatedSpace)
{
    FaultDisks disks;
    auto pool = MUST(ThinPool::create("tank", SegmentKind::Linear, 0, disks.make(1, 32 * MiB), false));
    MUST(pool->create_volume("base", 4 * MiB));
    auto base = MUST(pool->open_volume("base"));
    std::vector<u8> data(3 * CHUNK_SIZE, 7);
    MUST(base->write(CHUNK_SIZE, data, false));
    MUST(pool->snapshot("base", "monday", false));
    MUST(pool->snapshot("monday", "test", true));

    auto statuses = MUST(volume_statuses(*pool));
    ASSERT_EQ(statuses.size(), 3u); // by name
    auto const& [b, m, t] = std::tie(statuses[0], statuses[1], statuses[2]);
    EXPECT_EQ(b.name, "base");
    EXPECT_EQ(b.kind, VolumeKind::Volume);
    EXPECT_EQ(b.allocated, 3 * CHUNK_SIZE);
    EXPECT_FALSE(b.origin);
    EXPECT_EQ(m.kind, VolumeKind::Snapshot);
    EXPECT_EQ(m.origin, "base");
    EXPECT_EQ(m.allocated, 3 * CHUNK_SIZE); // shared chunks count for each volume that maps them
    EXPECT_EQ(t.kind, VolumeKind::Clone);
    EXPECT_EQ(t.origin, "monday");
    EXPECT_EQ(t.path(), "tank/test");

    auto json = to_json(t);
    EXPECT_EQ(json.at("name"), "tank/test");
    EXPECT_EQ(json.at("type"), "clone");
    EXPECT_EQ(json.at("origin"), "tank/monday");
    EXPECT_EQ(json.at("size"), 4 * MiB);
    EXPECT_TRUE(to_json(b).at("origin").is_null());

    // An origin that is gone is no longer named.
    MUST(pool->remove("monday"));
    statuses = MUST(volume_statuses(*pool));
    ASSERT_EQ(statuses.size(), 2u);
    EXPECT_FALSE(statuses[1].origin);
    EXPECT_EQ(statuses[1].kind, VolumeKind::Clone);
}

TEST(VolumeStatus, SnapshotPathsStayInOnePool)
{
    auto paths = MUST(parse_snapshot_paths("tank/a", "tank/b"));
    EXPECT_EQ(paths.pool, "tank");
    EXPECT_EQ(paths.source, "a");
    EXPECT_EQ(paths.target, "b");
    auto apart = parse_snapshot_paths("tank/a", "other/b");
    ASSERT_FALSE(apart);
    EXPECT_NE(apart.error().to_string().find("different pools"), std::string::npos);
    EXPECT_FALSE(parse_snapshot_paths("tank", "tank/b"));
}

} // namespace
} // namespace kasou::storage::test
