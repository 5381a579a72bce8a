// The space map on its own: allocation and the reserve, reference counts, the release of chunks
// and metadata blocks only once a commit has landed, writes in place, and the zeroed reserve.

#include <gtest/gtest.h>

#include "base/try.h"
#include "storage/pool/space_map.h"

namespace kasou::storage {
namespace {

using Zeroes = SpaceMap::Zeroes;

SpaceMap make_map(u64 chunks)
{
    SpaceMap map("tank");
    map.grow(chunks);
    MUST(map.finish_load([](u64) { return false; }));
    return map;
}

TEST(SpaceMap, AllocatesUntilTheReserveAndThenRefusesWithEnospc)
{
    auto map = make_map(4);
    EXPECT_EQ(map.free_chunks(), 4u);
    ASSERT_TRUE(map.allocate_data_chunk(2));
    ASSERT_TRUE(map.allocate_data_chunk(2));
    auto refused = map.allocate_data_chunk(2);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code(), ENOSPC);
    EXPECT_NE(refused.error().to_string().find("pool tank is full"), std::string::npos);
    EXPECT_EQ(map.free_chunks(), 2u);
    EXPECT_TRUE(map.allocate_data_chunk(0)) << "a commit may use the reserve";
}

TEST(SpaceMap, ReleasedChunksAreFreeOnlyOnceTheCommitLanded)
{
    auto map = make_map(8);
    u64 chunk = MUST(map.allocate_data_chunk(0)).chunk;
    map.land_commit(map.gather_commit()); // the chunk is part of the committed state now
    map.unref(chunk);
    EXPECT_EQ(map.free_chunks(), 7u) << "the committed state still maps it";
    EXPECT_TRUE(map.is_pending(chunk));
    auto set = map.gather_commit();
    ASSERT_EQ(set.released_chunks, std::vector<u64> { chunk });
    EXPECT_EQ(map.free_chunks(), 7u);
    map.land_commit(set);
    EXPECT_EQ(map.free_chunks(), 8u);
    EXPECT_FALSE(map.is_pending(chunk));
}

TEST(SpaceMap, AChunkNeverCommittedIsFreeAtOnce)
{
    auto map = make_map(8);
    u64 chunk = MUST(map.allocate_data_chunk(0)).chunk;
    map.unref(chunk);
    EXPECT_EQ(map.free_chunks(), 8u);
    EXPECT_TRUE(map.gather_commit().released_chunks.empty());
}

TEST(SpaceMap, SharedOrRecountedChunksAreNotWrittenInPlaceUntilTheirCommitLanded)
{
    auto map = make_map(8);
    u64 chunk = MUST(map.allocate_data_chunk(0)).chunk;
    EXPECT_TRUE(map.writable_in_place(chunk)) << "fresh and owned once";
    map.ref(chunk);
    EXPECT_FALSE(map.writable_in_place(chunk)) << "shared";
    map.unref(chunk);
    map.land_commit(map.gather_commit());
    map.ref(chunk);
    map.unref(chunk);
    EXPECT_FALSE(map.writable_in_place(chunk)) << "the committed state may share it";
    auto set = map.gather_commit();
    EXPECT_FALSE(map.writable_in_place(chunk)) << "the commit in flight may share it";
    map.land_commit(set);
    EXPECT_TRUE(map.writable_in_place(chunk));
}

TEST(SpaceMap, MetadataBlocksComeSixteenToAChunkAndReturnAfterTheCommit)
{
    auto map = make_map(4);
    u64 block = MUST(map.allocate_metadata_block(0));
    EXPECT_TRUE(map.is_metadata(block / BLOCKS_PER_CHUNK));
    EXPECT_EQ(map.free_metadata_blocks(), BLOCKS_PER_CHUNK - 1);
    EXPECT_EQ(map.metadata_chunks(), 1u);
    map.release_metadata_block(block, false);
    EXPECT_EQ(map.free_metadata_blocks(), BLOCKS_PER_CHUNK - 1);
    map.land_commit(map.gather_commit());
    EXPECT_EQ(map.free_metadata_blocks(), BLOCKS_PER_CHUNK);
}

TEST(SpaceMap, LoadCountsReferencesAndRefusesAChunkOfBothKinds)
{
    SpaceMap map("tank");
    map.grow(4);
    map.load_ref(1);
    map.load_ref(1);
    map.mark_metadata(2 * BLOCKS_PER_CHUNK + 3);
    MUST(map.finish_load([](u64 block) { return block == 2 * BLOCKS_PER_CHUNK + 3; }));
    EXPECT_EQ(map.refs(1), 2u);
    EXPECT_EQ(map.free_chunks(), 2u);
    EXPECT_EQ(map.free_metadata_blocks(), BLOCKS_PER_CHUNK - 1);

    SpaceMap bad("tank");
    bad.grow(4);
    bad.load_ref(2);
    bad.mark_metadata(2 * BLOCKS_PER_CHUNK);
    auto refused = bad.finish_load([](u64) { return false; });
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().to_string().find("chunk 2 is used both for metadata and for data"), std::string::npos);
}

TEST(SpaceMap, ZeroedChunksAreHandedOutFirstAndChunksBeingZeroedLast)
{
    auto map = make_map(4);
    auto picked = map.pick_chunks_to_zero(2);
    ASSERT_EQ(picked, (std::vector<u64> { 0, 1 }));
    EXPECT_TRUE(map.pick_chunks_to_zero(1) == std::vector<u64> { 2 });
    map.zeroing_failed({ 2 });
    map.zeroing_done({ 1 });
    EXPECT_EQ(map.zeroed_chunks(), 1u);
    auto first = MUST(map.allocate_data_chunk(0));
    EXPECT_EQ(first.chunk, 1u);
    EXPECT_EQ(first.zeroes, Zeroes::Durable);
    EXPECT_EQ(map.zeroed_chunks(), 0u);
    // Chunk 0 is still being zeroed: the others go first, and it goes last, as not durable.
    EXPECT_EQ(MUST(map.allocate_data_chunk(0)).zeroes, Zeroes::Unknown);
    EXPECT_EQ(MUST(map.allocate_data_chunk(0)).zeroes, Zeroes::Unknown);
    auto last = MUST(map.allocate_data_chunk(0));
    EXPECT_EQ(last.chunk, 0u);
    EXPECT_EQ(last.zeroes, Zeroes::NotDurable);
    map.zeroing_done({ 0 });
    EXPECT_EQ(map.zeroed_chunks(), 0u) << "a chunk handed out while being zeroed is not zeroed";
}

TEST(SpaceMap, TheZeroerLeavesChunksInUseOrPendingAlone)
{
    auto map = make_map(3);
    u64 used = MUST(map.allocate_data_chunk(0)).chunk;
    map.land_commit(map.gather_commit());
    u64 pending = MUST(map.allocate_data_chunk(0)).chunk;
    map.land_commit(map.gather_commit());
    map.unref(pending);
    auto picked = map.pick_chunks_to_zero(3);
    ASSERT_EQ(picked.size(), 1u);
    EXPECT_NE(picked[0], used);
    EXPECT_NE(picked[0], pending);
}

} // namespace
} // namespace kasou::storage
