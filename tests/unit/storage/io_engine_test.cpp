#include <fcntl.h>
#include <numeric>
#include <vector>

#include <gtest/gtest.h>

#include "base/sys_file.h"
#include "io_test_support.h"
#include "storage/io/io_engine.h"
#include "storage/io/io_engine_pool.h"

namespace kasou::storage {
namespace {

using testing::ScratchFile;

class IoEngineTest : public ::testing::TestWithParam<IoEngineKind> {
protected:
    std::unique_ptr<IoEngine> make(u32 depth) { return MUST(create_io_engine(GetParam(), depth)); }
};

std::vector<u8> pattern(size_t size, u8 seed)
{
    std::vector<u8> bytes(size);
    for (size_t i = 0; i < size; ++i)
        bytes[i] = static_cast<u8>(seed + i * 7);
    return bytes;
}

TEST_P(IoEngineTest, SynchronousWriteThenReadBack)
{
    ScratchFile file(1 * MiB);
    Fd fd = MUST(sys::open(file.path(), O_RDWR));
    auto engine = make(4);
    EXPECT_EQ(engine->kind(), GetParam());
    auto data = pattern(12345, 3);
    ASSERT_TRUE(engine->write(fd.get(), 4096 + 17, data, false));
    ASSERT_TRUE(engine->flush(fd.get()));
    std::vector<u8> back(data.size());
    ASSERT_TRUE(engine->read(fd.get(), 4096 + 17, back));
    EXPECT_EQ(back, data);
    // The bytes really are in the file, where they were asked to go.
    std::vector<u8> direct(data.size());
    ASSERT_TRUE(sys::pread_exact(fd.get(), direct.data(), direct.size(), 4096 + 17));
    EXPECT_EQ(direct, data);
}

TEST_P(IoEngineTest, FuaWriteLandsInTheFile)
{
    ScratchFile file(64 * KiB);
    Fd fd = MUST(sys::open(file.path(), O_RDWR));
    auto engine = make(1);
    auto data = pattern(4096, 9);
    ASSERT_TRUE(engine->write(fd.get(), 8192, data, true));
    std::vector<u8> direct(4096);
    ASSERT_TRUE(sys::pread_exact(fd.get(), direct.data(), direct.size(), 8192));
    EXPECT_EQ(direct, data);
}

TEST_P(IoEngineTest, BatchLargerThanQueueDepthCompletesEveryRequest)
{
    ScratchFile file(4 * MiB);
    Fd fd = MUST(sys::open(file.path(), O_RDWR));
    auto engine = make(4);
    constexpr size_t count = 37;
    std::vector<std::vector<u8>> blocks;
    std::vector<IoRequest> writes;
    for (size_t i = 0; i < count; ++i) {
        blocks.push_back(pattern(8192, static_cast<u8>(i)));
        writes.push_back({ .opcode = IoOpcode::Write, .fd = fd.get(), .offset = i * 65536, .buffer = blocks.back().data(), .length = 8192 });
    }
    ASSERT_TRUE(engine->run(writes));
    EXPECT_EQ(engine->in_flight(), 0u);
    std::vector<std::vector<u8>> back(count, std::vector<u8>(8192));
    std::vector<IoRequest> reads;
    for (size_t i = 0; i < count; ++i)
        reads.push_back({ .opcode = IoOpcode::Read, .fd = fd.get(), .offset = i * 65536, .buffer = back[i].data(), .length = 8192 });
    ASSERT_TRUE(engine->run(reads));
    for (size_t i = 0; i < count; ++i)
        EXPECT_EQ(back[i], blocks[i]) << "block " << i;
}

TEST_P(IoEngineTest, AsynchronousCompletionsCarryUserData)
{
    ScratchFile file(1 * MiB);
    Fd fd = MUST(sys::open(file.path(), O_RDWR));
    auto engine = make(8);
    std::vector<u8> buffers(8 * 4096, 0xab);
    for (u64 i = 0; i < 8; ++i)
        ASSERT_TRUE(engine->enqueue({ .opcode = IoOpcode::Write, .fd = fd.get(), .offset = i * 4096, .buffer = buffers.data() + i * 4096, .length = 4096, .user_data = 100 + i }));
    EXPECT_EQ(engine->in_flight(), 8u);
    // A full queue refuses more.
    auto refused = engine->enqueue({ .opcode = IoOpcode::Flush, .fd = fd.get() });
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code(), EBUSY);
    std::vector<IoCompletion> completions;
    while (completions.size() < 8)
        ASSERT_TRUE(engine->submit(1, completions));
    EXPECT_EQ(engine->in_flight(), 0u);
    std::vector<u64> seen;
    for (auto const& completion : completions) {
        EXPECT_EQ(completion.error, 0);
        seen.push_back(completion.user_data);
    }
    std::sort(seen.begin(), seen.end());
    std::vector<u64> expected(8);
    std::iota(expected.begin(), expected.end(), 100);
    EXPECT_EQ(seen, expected);
}

TEST_P(IoEngineTest, ReadPastEndOfFileIsAnIoError)
{
    ScratchFile file(10000);
    Fd fd = MUST(sys::open(file.path(), O_RDWR));
    auto engine = make(2);
    std::vector<u8> buffer(8192);
    auto result = engine->read(fd.get(), 4096, buffer);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code(), EIO);
    EXPECT_EQ(engine->in_flight(), 0u);
}

// run_each() reports each request's own outcome: a failure in the middle of a batch leaves the
// others done.
TEST_P(IoEngineTest, RunEachReportsEveryRequestsOwnOutcome)
{
    ScratchFile file(8192);
    Fd fd = MUST(sys::open(file.path(), O_RDWR));
    auto engine = make(2);
    auto data = pattern(4096, 5);
    std::vector<u8> past_end(4096);
    std::vector<u8> head(4096);
    std::vector<IoRequest> batch {
        { .opcode = IoOpcode::Write, .fd = fd.get(), .offset = 4096, .buffer = data.data(), .length = 4096 },
        { .opcode = IoOpcode::Read, .fd = fd.get(), .offset = 6144, .buffer = past_end.data(), .length = 4096 },
        { .opcode = IoOpcode::Read, .fd = fd.get(), .offset = 0, .buffer = head.data(), .length = 4096 },
    };
    std::vector<int> errors(batch.size(), -1);
    ASSERT_TRUE(engine->run_each(batch, errors));
    EXPECT_EQ(errors, (std::vector<int> { 0, EIO, 0 }));
    std::vector<u8> direct(4096);
    ASSERT_TRUE(sys::pread_exact(fd.get(), direct.data(), direct.size(), 4096));
    EXPECT_EQ(direct, data);
    EXPECT_EQ(engine->in_flight(), 0u);
    std::vector<int> too_few(1);
    EXPECT_FALSE(engine->run_each(batch, too_few));
}

TEST_P(IoEngineTest, ErrorsOfTheKernelComeBackAsErrno)
{
    ScratchFile file(4096);
    Fd fd = MUST(sys::open(file.path(), O_RDONLY));
    auto engine = make(2);
    std::vector<u8> data(512, 1);
    auto result = engine->write(fd.get(), 0, data, false);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code(), EBADF);
}

TEST_P(IoEngineTest, PoolHandsOutOneEnginePerConcurrentLease)
{
    IoEnginePool pool(GetParam(), 4);
    auto first = MUST(pool.lease());
    auto second = MUST(pool.lease());
    EXPECT_NE(&*first, &*second);
    IoEngine* reused = &*second;
    { auto done = std::move(second); }
    auto third = MUST(pool.lease());
    EXPECT_EQ(&*third, reused);
}

INSTANTIATE_TEST_SUITE_P(Engines, IoEngineTest, ::testing::Values(IoEngineKind::Sync, IoEngineKind::Uring),
    [](auto const& info) { return std::string(io_engine_kind_name(info.param)); });

TEST(IoEngineKindTest, ParsesNames)
{
    EXPECT_EQ(MUST(parse_io_engine_kind("sync")), IoEngineKind::Sync);
    EXPECT_EQ(MUST(parse_io_engine_kind("io_uring")), IoEngineKind::Uring);
    auto bad = parse_io_engine_kind("aio");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().to_string().find("aio"), std::string::npos);
}

} // namespace
} // namespace kasou::storage
