#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "test_driver.h"
#include "virtio/blk/blk_device.h"
#include "virtio/blk/blk_request.h"

using namespace kasou;
using namespace kasou::test;
using namespace kasou::virtio;
using namespace kasou::virtio::blk;

namespace {

// A disk in memory that counts flushes and records discards.
class MemoryDisk final : public storage::BlockDevice {
public:
    explicit MemoryDisk(u64 size, bool read_only = false)
        : bytes(size, 0)
        , m_read_only(read_only)
    {
    }
    u64 size() const override { return bytes.size(); }
    bool read_only() const override { return m_read_only; }
    ErrorOr<void> read(u64 offset, std::span<u8> buffer) override
    {
        if (offset == failing_offset)
            return make_errno_error(EIO, "read");
        std::memcpy(buffer.data(), bytes.data() + offset, buffer.size());
        return {};
    }
    ErrorOr<void> write(u64 offset, std::span<u8 const> data, bool) override
    {
        if (offset == failing_offset)
            return make_errno_error(EIO, "write");
        std::memcpy(bytes.data() + offset, data.data(), data.size());
        return {};
    }
    void transfer_batch(std::span<storage::BlockTransfer> transfers) override
    {
        events.push_back("batch of " + std::to_string(transfers.size()));
        BlockDevice::transfer_batch(transfers);
    }
    ErrorOr<void> flush() override
    {
        events.push_back("flush");
        ++flushes;
        return {};
    }
    ErrorOr<void> discard(u64 offset, u64 length) override
    {
        std::memset(bytes.data() + offset, 0, length);
        discarded += length;
        return {};
    }
    ErrorOr<void> write_zeroes(u64 offset, u64 length, bool) override
    {
        std::memset(bytes.data() + offset, 0, length);
        return {};
    }
    ErrorOr<std::vector<storage::Extent>> block_status(u64 offset, u64 length) override
    {
        return std::vector<storage::Extent> { { offset, length, true, false } };
    }

    std::vector<u8> bytes;
    u64 failing_offset { ~u64 { 0 } }; // reads and writes starting here fail with EIO
    std::vector<std::string> events;   // "batch of N" and "flush", in order
    int flushes { 0 };
    u64 discarded { 0 };

private:
    bool m_read_only;
};

std::vector<u8> header(u32 type, u64 sector)
{
    std::vector<u8> bytes(16, 0);
    std::memcpy(bytes.data(), &type, 4);
    std::memcpy(bytes.data() + 8, &sector, 8);
    return bytes;
}

struct BlkFixture : ::testing::Test {
    memory::GuestMemory memory = memory::GuestMemory::create(8 * MiB).value();
    TestDriver driver { memory };
    std::shared_ptr<MemoryDisk> disk = std::make_shared<MemoryDisk>(64 * KiB);
    SplitQueue queue = SplitQueue::create(memory, driver.layout(), false).value();
    u16 next_descriptor { 0 };

    // Submits a request: the header (and `out` data) device-readable, then `in_bytes` of
    // device-writable data and the status byte. Returns the address of the writable part.
    u64 submit(std::vector<u8> readable, u64 in_bytes)
    {
        u16 head = next_descriptor;
        u64 request = driver.buffer(readable);
        u64 response = driver.buffer(std::vector<u8>(in_bytes + 1, 0xEE));
        driver.set_descriptor(next_descriptor, { request, static_cast<u32>(readable.size()), NEXT, static_cast<u16>(next_descriptor + 1) });
        driver.set_descriptor(next_descriptor + 1, { response, static_cast<u32>(in_bytes + 1), WRITE, 0 });
        next_descriptor += 2;
        driver.make_available(head);
        return response;
    }

    u8 status_at(u64 response, u64 in_bytes) { return memory.read_object<u8>(response + in_bytes).value(); }
};

} // namespace

TEST_F(BlkFixture, WritesAndReadsBack)
{
    BlkDevice device(disk, {});
    auto request = header(TYPE_OUT, 2);
    std::vector<u8> data(1024);
    for (size_t i = 0; i < data.size(); ++i)
        data[i] = static_cast<u8>(i * 7);
    request.insert(request.end(), data.begin(), data.end());
    u64 write_status = submit(request, 0);
    u64 read_back = submit(header(TYPE_IN, 2), 1024);
    u64 flush = submit(header(TYPE_FLUSH, 0), 0);
    ASSERT_TRUE(device.process(0, queue));
    EXPECT_EQ(status_at(write_status, 0), STATUS_OK);
    EXPECT_EQ(std::memcmp(disk->bytes.data() + 1024, data.data(), data.size()), 0);
    EXPECT_EQ(status_at(read_back, 1024), STATUS_OK);
    std::vector<u8> seen(1024);
    ASSERT_TRUE(memory.read(read_back, seen));
    EXPECT_EQ(seen, data);
    EXPECT_EQ(driver.used_element(1), (std::pair<u32, u32> { 2, 1025 })) << "data plus status written";
    EXPECT_EQ(status_at(flush, 0), STATUS_OK);
    EXPECT_EQ(disk->flushes, 1);
}

TEST_F(BlkFixture, AnswersBadRequestsWithAStatus)
{
    BlkDevice device(disk, {});
    u64 past_end = submit(header(TYPE_IN, 127), 1024);     // last sector is 127: two sectors do not fit
    u64 partial = submit(header(TYPE_IN, 0), 100);          // not whole sectors
    u64 huge_sector = submit(header(TYPE_IN, ~u64 { 0 }), 512);
    u64 unknown = submit(header(99, 0), 0);
    ASSERT_TRUE(device.process(0, queue));
    EXPECT_EQ(status_at(past_end, 1024), STATUS_IOERR);
    EXPECT_EQ(status_at(partial, 100), STATUS_IOERR);
    EXPECT_EQ(status_at(huge_sector, 512), STATUS_IOERR);
    EXPECT_EQ(status_at(unknown, 0), STATUS_UNSUPPORTED);
    EXPECT_EQ(driver.used_index(), 4);
}

// Reads and writes of one pass go to the disk as one batch; a flush waits for the batch before it
// and is not part of one.
TEST_F(BlkFixture, BatchesReadsAndWritesAroundAFlush)
{
    BlkDevice device(disk, {});
    auto write = header(TYPE_OUT, 4);
    write.resize(16 + 512, 0x5A);
    u64 first = submit(write, 0);
    u64 second = submit(header(TYPE_IN, 0), 512);
    u64 third = submit(header(TYPE_IN, 8), 1024);
    u64 flush = submit(header(TYPE_FLUSH, 0), 0);
    u64 last = submit(header(TYPE_IN, 4), 512);
    ASSERT_TRUE(device.process(0, queue));
    EXPECT_EQ(disk->events, (std::vector<std::string> { "batch of 3", "flush", "batch of 1" }));
    for (auto [response, bytes] : { std::pair { first, 0 }, { second, 512 }, { third, 1024 }, { flush, 0 }, { last, 512 } })
        EXPECT_EQ(status_at(response, bytes), STATUS_OK);
    EXPECT_EQ(memory.read_object<u8>(last).value(), 0x5A) << "the read after the flush sees the write before it";
    EXPECT_EQ(driver.used_index(), 5);
}

// One failed transfer fails its own request only.
TEST_F(BlkFixture, AFailedTransferFailsOnlyItsRequest)
{
    BlkDevice device(disk, {});
    disk->failing_offset = 8 * 512;
    std::fill(disk->bytes.begin(), disk->bytes.end(), 0x33);
    u64 before = submit(header(TYPE_IN, 0), 512);
    u64 failing = submit(header(TYPE_IN, 8), 512);
    u64 after = submit(header(TYPE_IN, 16), 512);
    ASSERT_TRUE(device.process(0, queue));
    EXPECT_EQ(status_at(before, 512), STATUS_OK);
    EXPECT_EQ(status_at(failing, 512), STATUS_IOERR);
    EXPECT_EQ(status_at(after, 512), STATUS_OK);
    EXPECT_EQ(memory.read_object<u8>(after).value(), 0x33);
    EXPECT_EQ(driver.used_element(1), (std::pair<u32, u32> { 2, 1 })) << "a failed read reports only the status byte";
}

// Requests gathered before a chain the driver must never send are still answered.
TEST_F(BlkFixture, RequestsBeforeAMalformedChainAreAnswered)
{
    BlkDevice device(disk, {});
    u64 good = submit(header(TYPE_IN, 0), 512);
    u64 request = driver.buffer(header(TYPE_IN, 0));
    driver.set_descriptor(next_descriptor, { request, 16, 0, 0 }); // no writable status byte
    driver.make_available(next_descriptor);
    auto result = device.process(0, queue);
    ASSERT_FALSE(result);
    EXPECT_EQ(driver.used_index(), 1);
    EXPECT_EQ(status_at(good, 512), STATUS_OK);
}

TEST_F(BlkFixture, DiscardWriteZeroesAndGetId)
{
    BlkDevice device(disk, { false, "kasou-disk-serial", 1, 256 });
    std::fill(disk->bytes.begin(), disk->bytes.end(), 0xAB);
    auto discard = header(TYPE_DISCARD, 0);
    BlkRange range { 8, 8, 0 };
    discard.insert(discard.end(), reinterpret_cast<u8*>(&range), reinterpret_cast<u8*>(&range) + sizeof(range));
    u64 discard_status = submit(discard, 0);
    auto zeroes = header(TYPE_WRITE_ZEROES, 0);
    BlkRange zero_range { 32, 1, 1 };
    zeroes.insert(zeroes.end(), reinterpret_cast<u8*>(&zero_range), reinterpret_cast<u8*>(&zero_range) + sizeof(zero_range));
    u64 zero_status = submit(zeroes, 0);
    u64 id = submit(header(TYPE_GET_ID, 0), 20);
    ASSERT_TRUE(device.process(0, queue));
    EXPECT_EQ(status_at(discard_status, 0), STATUS_OK);
    EXPECT_EQ(disk->discarded, 4096u);
    EXPECT_EQ(disk->bytes[8 * 512], 0);
    EXPECT_EQ(disk->bytes[16 * 512], 0xAB);
    EXPECT_EQ(status_at(zero_status, 0), STATUS_OK);
    EXPECT_EQ(disk->bytes[32 * 512 + 511], 0);
    EXPECT_EQ(disk->bytes[33 * 512], 0xAB);
    std::string serial(20, '\0');
    ASSERT_TRUE(memory.read(id, std::span(reinterpret_cast<u8*>(serial.data()), 20)));
    EXPECT_EQ(serial.substr(0, 17), "kasou-disk-serial");
}

TEST_F(BlkFixture, ReadOnlyRefusesWrites)
{
    BlkDevice device(disk, { true, "", 1, 256 });
    EXPECT_TRUE(device.device_features() & F_RO);
    EXPECT_FALSE(device.device_features() & F_DISCARD);
    auto request = header(TYPE_OUT, 0);
    request.resize(16 + 512, 0x11);
    u64 status = submit(request, 0);
    ASSERT_TRUE(device.process(0, queue));
    EXPECT_EQ(status_at(status, 0), STATUS_IOERR);
    EXPECT_EQ(disk->bytes[0], 0);
}

TEST_F(BlkFixture, MalformedChainsAreDeviceErrors)
{
    BlkDevice device(disk, {});
    u64 request = driver.buffer(header(TYPE_IN, 0));
    driver.set_descriptor(0, { request, 16, 0, 0 }); // no writable status byte
    driver.make_available(0);
    auto result = device.process(0, queue);
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().to_string().find("status byte"), std::string::npos);
}

TEST_F(BlkFixture, ConfigDescribesTheDisk)
{
    BlkDevice device(disk, { false, "", 2, 128 });
    u64 capacity = 0;
    device.read_config(0, std::span(reinterpret_cast<u8*>(&capacity), 8));
    EXPECT_EQ(capacity, 128u);
    u16 queues = 0;
    device.read_config(0x22, std::span(reinterpret_cast<u8*>(&queues), 2));
    EXPECT_EQ(queues, 2);
    EXPECT_TRUE(device.device_features() & F_MQ);
    u8 beyond[4] = { 1, 1, 1, 1 };
    device.read_config(0x100, beyond);
    EXPECT_EQ(beyond[0], 0);
}
