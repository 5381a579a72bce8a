// The NBD server's memory budget: the bound itself, and a connection held back by it.

#include <chrono>
#include <future>
#include <poll.h>
#include <thread>

#include <gtest/gtest.h>

#include "io_test_support.h"
#include "nbd_test_client.h"
#include "storage/io/raw_file_device.h"
#include "storage/nbd/memory_budget.h"
#include "storage/nbd/transmission.h"

namespace kasou::storage::nbd {
namespace {

using namespace std::chrono_literals;
using storage::testing::ScratchFile;
using testing::TestClient;

// Waits up to `timeout` for `condition`.
template <class Condition>
bool eventually(Condition condition, std::chrono::milliseconds timeout = 5000ms)
{
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!condition()) {
        if (std::chrono::steady_clock::now() > deadline)
            return false;
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

TEST(NbdMemoryBudget, ReservationsAddUpToTheLimitAndReleaseWhenDestroyed)
{
    MemoryBudget budget(10 * MiB);
    {
        auto a = MUST(budget.acquire(4 * MiB));
        auto b = MUST(budget.acquire(6 * MiB));
        EXPECT_EQ(budget.in_use(), 10 * MiB);
        auto moved = std::move(a);
        EXPECT_EQ(moved.bytes(), 4 * MiB);
        EXPECT_EQ(budget.in_use(), 10 * MiB);
        b.reset();
        EXPECT_EQ(budget.in_use(), 4 * MiB);
    }
    EXPECT_EQ(budget.in_use(), 0u);
}

TEST(NbdMemoryBudget, MoreThanTheWholeLimitIsRefusedAtOnce)
{
    MemoryBudget budget(1 * MiB);
    auto refused = budget.acquire(1 * MiB + 1);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code(), EOVERFLOW);
    EXPECT_EQ(budget.in_use(), 0u);
    EXPECT_EQ(budget.waiting(), 0u);
}

TEST(NbdMemoryBudget, ARequestThatDoesNotFitWaitsForARelease)
{
    MemoryBudget budget(8 * MiB);
    auto held = MUST(budget.acquire(6 * MiB));
    auto waiter = std::async(std::launch::async, [&] { return budget.acquire(4 * MiB); });
    ASSERT_TRUE(eventually([&] { return budget.waiting() == 1; }));
    EXPECT_EQ(waiter.wait_for(50ms), std::future_status::timeout);
    EXPECT_EQ(budget.in_use(), 6 * MiB);
    held.reset();
    auto granted = waiter.get();
    ASSERT_TRUE(granted);
    EXPECT_EQ(granted->bytes(), 4 * MiB);
    EXPECT_EQ(budget.in_use(), 4 * MiB);
}

TEST(NbdMemoryBudget, AStopRequestEndsTheWait)
{
    MemoryBudget budget(1 * MiB);
    auto held = MUST(budget.acquire(1 * MiB));
    std::stop_source stop;
    auto waiter = std::async(std::launch::async, [&] { return budget.acquire(1, stop.get_token()); });
    ASSERT_TRUE(eventually([&] { return budget.waiting() == 1; }));
    stop.request_stop();
    auto result = waiter.get();
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code(), ECANCELED);
    EXPECT_EQ(budget.in_use(), 1 * MiB);
}

TEST(NbdMemoryBudget, ManyThreadsNeverExceedTheLimit)
{
    MemoryBudget budget(3 * MiB);
    std::atomic<u64> peak { 0 };
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 200; ++i) {
                auto reservation = MUST(budget.acquire((1 + (t + i) % 3) * MiB));
                u64 now = budget.in_use();
                u64 seen = peak.load();
                while (now > seen && !peak.compare_exchange_weak(seen, now)) { }
            }
        });
    }
    for (auto& thread : threads)
        thread.join();
    EXPECT_LE(peak.load(), 3 * MiB);
    EXPECT_EQ(budget.in_use(), 0u);
}

class NbdBudgetConnectionTest : public ::testing::Test {
protected:
    NbdBudgetConnectionTest()
        : m_disk(8 * MiB)
    {
        m_exports.push_back({ .name = "disk", .device = MUST(RawFileDevice::open(m_disk.path(), {})) });
    }
    ScratchFile m_disk;
    std::vector<Export> m_exports;
};

// Back-pressure: with the budget taken (by other connections), a write waits — the connection
// reads nothing more — and is served once the memory comes back. Nothing is refused.
TEST_F(NbdBudgetConnectionTest, AWriteWaitsForMemoryAndIsServedWhenItIsReleased)
{
    TestClient client(m_exports, 1, 1 * MiB);
    client.connect("disk", false);
    auto held = MUST(client.budget().acquire(1 * MiB));
    // Small enough for the socket's buffer: the server reads none of it while it waits.
    client.request(NBD_CMD_WRITE, 1, 0, 128 * KiB, std::vector<u8>(128 * KiB, 0x5a));
    ASSERT_TRUE(eventually([&] { return client.budget().waiting() == 1; }));
    // A read sent behind it is not read from the socket either.
    client.request(NBD_CMD_READ, 2, 0, 4096);
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(client.budget().waiting(), 1u);
    held.reset();
    EXPECT_EQ(client.simple_reply(), (std::pair<u32, u64> { 0, 1 }));
    EXPECT_EQ(client.simple_reply(), (std::pair<u32, u64> { 0, 2 }));
    EXPECT_EQ(client.receive(4096), std::vector<u8>(4096, 0x5a));
    EXPECT_TRUE(eventually([&] { return client.budget().in_use() == 0; }));
}

// A request larger than the whole budget gets an error reply (the budget is also the advertised
// maximum block size), never a wait that could not end; a refused write's payload is skipped.
TEST_F(NbdBudgetConnectionTest, RequestsLargerThanTheBudgetAreRefusedNotHung)
{
    TestClient client(m_exports, 1, 1 * MiB);
    client.handshake();
    client.option(NBD_OPT_GO, TestClient::go_payload("disk", { NBD_INFO_BLOCK_SIZE }));
    u32 maximum = 0;
    for (;;) {
        auto reply = client.option_reply();
        if (reply.type == NBD_REP_INFO && load_be16(reply.data.data()) == NBD_INFO_BLOCK_SIZE)
            maximum = load_be32(reply.data.data() + 10);
        if (reply.type == NBD_REP_ACK)
            break;
    }
    EXPECT_EQ(maximum, 1 * MiB);
    client.request(NBD_CMD_READ, 1, 0, 2 * MiB);
    EXPECT_EQ(client.simple_reply(), (std::pair<u32, u64> { NBD_EINVAL, 1 }));
    client.request(NBD_CMD_WRITE, 2, 0, 2 * MiB, std::vector<u8>(2 * MiB, 0x11));
    EXPECT_EQ(client.simple_reply(), (std::pair<u32, u64> { NBD_EINVAL, 2 }));
    client.request(NBD_CMD_READ, 3, 0, 1 * MiB);
    EXPECT_EQ(client.simple_reply(), (std::pair<u32, u64> { 0, 3 }));
    EXPECT_EQ(client.receive(1 * MiB), std::vector<u8>(1 * MiB, 0));
}

// A read longer than one piece is charged one piece, however long it is: a client that pipelines
// long reads and never reads the replies pins at most a piece per worker.
TEST_F(NbdBudgetConnectionTest, LongReadsAreChargedOnePieceAndSentWhole)
{
    TestClient client(m_exports, 4, 64 * MiB);
    client.connect("disk", true);
    MUST(m_exports[0].device->write(3 * MiB, std::vector<u8>(4096, 0x77), false));
    for (u64 cookie = 1; cookie <= 4; ++cookie)
        client.request(NBD_CMD_READ, cookie, 0, 8 * MiB);
    ASSERT_TRUE(eventually([&] { return client.budget().in_use() > 0; }));
    std::this_thread::sleep_for(100ms);
    EXPECT_LE(client.budget().in_use(), 4 * Transmission::READ_PIECE);
    for (int i = 0; i < 4; ++i) {
        auto chunk = client.chunk();
        EXPECT_EQ(chunk.type, NBD_REPLY_TYPE_OFFSET_DATA);
        EXPECT_EQ(chunk.flags, NBD_REPLY_FLAG_DONE);
        ASSERT_EQ(chunk.payload.size(), 8 + 8 * MiB);
        EXPECT_EQ(chunk.payload[8 + 3 * MiB], 0x77);
        EXPECT_EQ(chunk.payload[8 + 3 * MiB - 1], 0);
    }
    EXPECT_TRUE(eventually([&] { return client.budget().in_use() == 0; }));
}

} // namespace
} // namespace kasou::storage::nbd
