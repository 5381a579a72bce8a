#include <gtest/gtest.h>

#include "test_driver.h"
#include "virtio/split_queue.h"

using namespace kasou;
using namespace kasou::test;
using kasou::virtio::SplitQueue;

namespace {

struct SplitQueueTest : ::testing::Test {
    memory::GuestMemory memory = memory::GuestMemory::create(4 * MiB).value();
    TestDriver driver { memory };

    SplitQueue queue(bool event_index = false) { return SplitQueue::create(memory, driver.layout(), event_index).value(); }

    std::string pop_error(SplitQueue& q)
    {
        auto result = q.pop();
        EXPECT_FALSE(result.has_value());
        return result ? std::string() : result.error().to_string();
    }
};

} // namespace

TEST_F(SplitQueueTest, PopsAChainAndPushesItBack)
{
    auto q = queue();
    u64 request = driver.buffer({ 1, 2, 3, 4 });
    u64 response = driver.buffer(std::vector<u8>(8, 0));
    driver.set_descriptor(3, { request, 4, NEXT, 5 });
    driver.set_descriptor(5, { response, 8, WRITE, 0 });
    EXPECT_FALSE(q.pop().value().has_value()) << "nothing available yet";
    driver.make_available(3);

    auto chain = q.pop().value();
    ASSERT_TRUE(chain.has_value());
    EXPECT_EQ(chain->head, 3);
    ASSERT_EQ(chain->readable.size(), 1u);
    ASSERT_EQ(chain->writable.size(), 1u);
    EXPECT_EQ(chain->readable[0][2], 3);
    EXPECT_EQ(chain->readable_bytes(), 4u);
    EXPECT_EQ(chain->writable_bytes(), 8u);
    u8 const answer[3] = { 9, 8, 7 };
    EXPECT_EQ(chain->write(2, answer), 3u);
    EXPECT_EQ(memory.read_object<u8>(response + 3).value(), 8);

    ASSERT_TRUE(q.push(chain->head, 5));
    EXPECT_EQ(driver.used_index(), 1);
    EXPECT_EQ(driver.used_element(0), (std::pair<u32, u32> { 3, 5 }));
    EXPECT_FALSE(q.pop().value().has_value());
}

TEST_F(SplitQueueTest, FollowsIndirectTables)
{
    auto q = queue();
    u64 data = driver.buffer({ 0xaa, 0xbb });
    u64 out = driver.buffer(std::vector<u8>(4));
    u64 table = driver.buffer(std::vector<u8>(32));
    driver.set_descriptor(0, { data, 2, NEXT, 1 }, table);
    driver.set_descriptor(1, { out, 4, WRITE, 0 }, table);
    driver.set_descriptor(0, { table, 32, INDIRECT, 0 });
    driver.make_available(0);
    auto chain = q.pop().value();
    ASSERT_TRUE(chain.has_value());
    EXPECT_EQ(chain->readable_bytes(), 2u);
    EXPECT_EQ(chain->writable_bytes(), 4u);
    u8 copy[2] = {};
    EXPECT_EQ(chain->read(0, copy), 2u);
    EXPECT_EQ(copy[1], 0xbb);
}

TEST_F(SplitQueueTest, RefusesAddressesOutsideRam)
{
    auto q = queue();
    driver.set_descriptor(0, { 8 * MiB, 16, 0, 0 });
    driver.make_available(0);
    EXPECT_NE(pop_error(q).find("not inside guest RAM"), std::string::npos);
    // A failed pop leaves the queue where it was, so the error repeats rather than skipping.
    EXPECT_FALSE(q.pop());
}

TEST_F(SplitQueueTest, RefusesLengthsRunningPastRam)
{
    auto q = queue();
    driver.set_descriptor(0, { 4 * MiB - 8, 0xFFFFFFFF, 0, 0 });
    driver.make_available(0);
    EXPECT_NE(pop_error(q).find("not inside guest RAM"), std::string::npos);
}

TEST_F(SplitQueueTest, DetectsLoops)
{
    auto q = queue();
    u64 data = driver.buffer({ 1 });
    driver.set_descriptor(0, { data, 1, NEXT, 1 });
    driver.set_descriptor(1, { data, 1, NEXT, 0 });
    driver.make_available(0);
    EXPECT_NE(pop_error(q).find("longer than the queue size"), std::string::npos);
}

TEST_F(SplitQueueTest, DetectsLoopsInsideIndirectTables)
{
    auto q = queue();
    u64 data = driver.buffer({ 1 });
    u64 table = driver.buffer(std::vector<u8>(16));
    driver.set_descriptor(0, { data, 1, NEXT, 0 }, table);
    driver.set_descriptor(0, { table, 16, INDIRECT, 0 });
    driver.make_available(0);
    EXPECT_NE(pop_error(q).find("longer than the queue size"), std::string::npos);
}

TEST_F(SplitQueueTest, RefusesOutOfRangeIndexes)
{
    auto q = queue();
    u64 data = driver.buffer({ 1 });
    driver.set_descriptor(0, { data, 1, NEXT, 99 });
    driver.make_available(0);
    EXPECT_NE(pop_error(q).find("descriptor index 99 is outside"), std::string::npos);
}

TEST_F(SplitQueueTest, RefusesHeadsBeyondTheTable)
{
    auto q = queue();
    driver.make_available(40);
    EXPECT_NE(pop_error(q).find("descriptor index 40 is outside the descriptor table of 16 entries"), std::string::npos);
}

TEST_F(SplitQueueTest, RefusesAnAvailableIndexBeyondTheQueueSize)
{
    auto q = queue();
    driver.set_available_index(17);
    EXPECT_NE(pop_error(q).find("17 buffers available in a queue of size 16"), std::string::npos);
}

TEST_F(SplitQueueTest, RefusesReadableAfterWritable)
{
    auto q = queue();
    u64 a = driver.buffer({ 1 });
    u64 b = driver.buffer({ 2 });
    driver.set_descriptor(0, { a, 1, NEXT | WRITE, 1 });
    driver.set_descriptor(1, { b, 1, 0, 0 });
    driver.make_available(0);
    EXPECT_NE(pop_error(q).find("device-readable buffer follows a device-writable"), std::string::npos);
}

TEST_F(SplitQueueTest, RefusesMalformedIndirectDescriptors)
{
    u64 table = driver.buffer(std::vector<u8>(64));
    u64 inner = driver.buffer(std::vector<u8>(16));
    driver.set_descriptor(0, { inner, 16, INDIRECT, 0 }, table);
    struct Case {
        TestDescriptor descriptor;
        char const* message;
    };
    for (auto const& [descriptor, message] : {
             Case { { table, 16, INDIRECT, 0 }, "inside an indirect table" },
             Case { { table, 16, INDIRECT | NEXT, 1 }, "also has the NEXT flag" },
             Case { { table, 24, INDIRECT, 0 }, "not a multiple of 16" },
             Case { { table, 0, INDIRECT, 0 }, "not a multiple of 16" },
             Case { { 64 * MiB, 16, INDIRECT, 0 }, "indirect table" },
         }) {
        auto q = SplitQueue::create(memory, driver.layout(), false).value();
        driver.set_descriptor(0, descriptor);
        driver.set_available_index(0);
        driver.make_available(0);
        EXPECT_NE(pop_error(q).find(message), std::string::npos) << message;
    }
}

TEST_F(SplitQueueTest, SkipsZeroLengthBuffers)
{
    auto q = queue();
    u64 data = driver.buffer({ 5 });
    driver.set_descriptor(0, { 0xFFFF'FFFF'0000, 0, NEXT, 1 });
    driver.set_descriptor(1, { data, 1, 0, 0 });
    driver.make_available(0);
    auto chain = q.pop().value();
    ASSERT_TRUE(chain.has_value());
    EXPECT_EQ(chain->readable.size(), 1u);
}

TEST_F(SplitQueueTest, PushRefusesForeignHeads)
{
    auto q = queue();
    EXPECT_FALSE(q.push(16, 0));
}

TEST_F(SplitQueueTest, CreateChecksTheLayout)
{
    auto layout = driver.layout();
    layout.size = 12;
    EXPECT_FALSE(SplitQueue::create(memory, layout, false));
    layout = driver.layout();
    layout.descriptor_table += 8;
    EXPECT_NE(SplitQueue::create(memory, layout, false).error().to_string().find("not aligned"), std::string::npos);
    layout = driver.layout();
    layout.used_ring = 4 * MiB - 16;
    EXPECT_NE(SplitQueue::create(memory, layout, false).error().to_string().find("used ring"), std::string::npos);
}

TEST_F(SplitQueueTest, NoInterruptFlagSuppressesInterrupts)
{
    auto q = queue(false);
    EXPECT_FALSE(q.should_interrupt()) << "nothing pushed";
    ASSERT_TRUE(q.push(0, 0));
    EXPECT_TRUE(q.should_interrupt());
    EXPECT_FALSE(q.should_interrupt()) << "already signalled";
    driver.set_available_flags(1);
    ASSERT_TRUE(q.push(1, 0));
    EXPECT_FALSE(q.should_interrupt());
}

TEST_F(SplitQueueTest, EventIndexInterruptsOnlyWhenTheDriverAsked)
{
    auto q = queue(true);
    driver.set_used_event(1); // interrupt once the used index passes 1
    ASSERT_TRUE(q.push(0, 0)); // used idx 1
    EXPECT_FALSE(q.should_interrupt());
    ASSERT_TRUE(q.push(1, 0)); // used idx 2: crossed used_event
    EXPECT_TRUE(q.should_interrupt());
    driver.set_used_event(10);
    ASSERT_TRUE(q.push(2, 0));
    EXPECT_FALSE(q.should_interrupt());

    driver.make_available(0);
    driver.set_descriptor(0, { driver.buffer({ 1 }), 1, 0, 0 });
    ASSERT_TRUE(q.pop().value().has_value());
    q.request_notification();
    EXPECT_EQ(driver.avail_event(), 1) << "notify when the next buffer is added";
}

TEST_F(SplitQueueTest, WithoutEventIndexNotificationsAreSuppressedByTheUsedFlag)
{
    auto q = queue(false);
    EXPECT_EQ(driver.used_flags(), 0) << "notifications wanted from the start";
    q.suppress_notifications();
    EXPECT_EQ(driver.used_flags(), 1) << "VIRTQ_USED_F_NO_NOTIFY";
    q.request_notification();
    EXPECT_EQ(driver.used_flags(), 0);
}

TEST_F(SplitQueueTest, WithEventIndexSuppressingLeavesTheUsedFlagAlone)
{
    auto q = queue(true);
    driver.make_available(0);
    driver.set_descriptor(0, { driver.buffer({ 1 }), 1, 0, 0 });
    q.request_notification();
    ASSERT_TRUE(q.pop().value().has_value());
    q.suppress_notifications();
    EXPECT_EQ(driver.used_flags(), 0);
    EXPECT_EQ(driver.avail_event(), 0) << "behind the index the driver passes next: it does not notify";
}

// push_many() publishes its elements with one used-index update, and none when a head is bad.
TEST_F(SplitQueueTest, PushManyReturnsAllOrNothing)
{
    auto q = queue();
    SplitQueue::UsedElement good[] = { { 1, 10 }, { 2, 20 }, { 3, 30 } };
    ASSERT_TRUE(q.push_many(good));
    EXPECT_EQ(driver.used_index(), 3);
    EXPECT_EQ(driver.used_element(2), (std::pair<u32, u32> { 3, 30 }));
    SplitQueue::UsedElement bad[] = { { 4, 40 }, { driver.layout().size, 50 } };
    EXPECT_FALSE(q.push_many(bad));
    EXPECT_EQ(driver.used_index(), 3) << "nothing of a refused batch is published";
}
