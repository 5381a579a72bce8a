#include <array>

#include <gtest/gtest.h>

#include "storage/nbd/protocol.h"
#include "storage/nbd/request_parser.h"

namespace kasou::storage::nbd {
namespace {

using Verdict = RequestCheck::Verdict;

constexpr RequestLimits LIMITS { .export_size = 1 * MiB, .read_only = false, .structured_replies = true, .base_allocation = true, .max_payload = 64 * 1024 };

Request make(u16 type, u64 offset, u32 length, u16 flags = 0)
{
    return { .magic = NBD_REQUEST_MAGIC, .flags = flags, .type = type, .cookie = 7, .offset = offset, .length = length };
}

TEST(NbdRequestParserTest, DecodesBigEndianFields)
{
    std::array<u8, 28> bytes {};
    store_be32(bytes.data(), NBD_REQUEST_MAGIC);
    store_be16(bytes.data() + 4, NBD_CMD_FLAG_FUA);
    store_be16(bytes.data() + 6, NBD_CMD_WRITE);
    store_be64(bytes.data() + 8, 0x0102030405060708);
    store_be64(bytes.data() + 16, 0x1000);
    store_be32(bytes.data() + 24, 512);
    auto request = decode_request(bytes);
    EXPECT_EQ(request.magic, NBD_REQUEST_MAGIC);
    EXPECT_EQ(request.flags, NBD_CMD_FLAG_FUA);
    EXPECT_EQ(request.type, NBD_CMD_WRITE);
    EXPECT_EQ(request.cookie, 0x0102030405060708u);
    EXPECT_EQ(request.offset, 0x1000u);
    EXPECT_EQ(request.length, 512u);
}

TEST(NbdRequestParserTest, AcceptsWellFormedRequests)
{
    auto write = check_request(make(NBD_CMD_WRITE, 4096, 4096, NBD_CMD_FLAG_FUA), LIMITS);
    EXPECT_EQ(write.verdict, Verdict::Execute);
    EXPECT_EQ(write.payload_length, 4096u);
    auto read = check_request(make(NBD_CMD_READ, 1 * MiB - 512, 512), LIMITS);
    EXPECT_EQ(read.verdict, Verdict::Execute);
    EXPECT_EQ(read.payload_length, 0u);
    EXPECT_EQ(check_request(make(NBD_CMD_FLUSH, 0, 0), LIMITS).verdict, Verdict::Execute);
    EXPECT_EQ(check_request(make(NBD_CMD_DISC, 0, 0), LIMITS).verdict, Verdict::Execute);
    EXPECT_EQ(check_request(make(NBD_CMD_WRITE_ZEROES, 0, 1 * MiB, NBD_CMD_FLAG_NO_HOLE), LIMITS).verdict, Verdict::Execute);
    EXPECT_EQ(check_request(make(NBD_CMD_BLOCK_STATUS, 0, 1 * MiB, NBD_CMD_FLAG_REQ_ONE), LIMITS).verdict, Verdict::Execute);
    // Trim and write-zeroes are not limited by the payload size: they carry none.
    EXPECT_EQ(check_request(make(NBD_CMD_TRIM, 0, 1 * MiB), LIMITS).verdict, Verdict::Execute);
}

TEST(NbdRequestParserTest, BadMagicDisconnects)
{
    auto request = make(NBD_CMD_READ, 0, 512);
    request.magic = 0x12345678;
    auto check = check_request(request, LIMITS);
    EXPECT_EQ(check.verdict, Verdict::Disconnect);
    EXPECT_NE(check.reason.find("magic"), std::string::npos);
}

TEST(NbdRequestParserTest, UnknownCommandDisconnects)
{
    auto check = check_request(make(0x4242, 0, 512), LIMITS);
    EXPECT_EQ(check.verdict, Verdict::Disconnect);
    EXPECT_NE(check.reason.find("16962"), std::string::npos);
}

TEST(NbdRequestParserTest, OversizedWriteDisconnectsOversizedReadIsRefused)
{
    EXPECT_EQ(check_request(make(NBD_CMD_WRITE, 0, 64 * 1024 + 1), LIMITS).verdict, Verdict::Disconnect);
    EXPECT_EQ(check_request(make(NBD_CMD_WRITE, 0, 0xffffffff), LIMITS).verdict, Verdict::Disconnect);
    auto read = check_request(make(NBD_CMD_READ, 0, 64 * 1024 + 1), LIMITS);
    EXPECT_EQ(read.verdict, Verdict::Reject);
    EXPECT_EQ(read.error, NBD_EINVAL);
}

TEST(NbdRequestParserTest, AWriteOverTheMaximumButWithinTheSkipLimitIsRefusedAndSkipped)
{
    auto limits = LIMITS;
    limits.max_skipped_payload = 1 * MiB;
    auto write = check_request(make(NBD_CMD_WRITE, 0, 64 * 1024 + 1), limits);
    EXPECT_EQ(write.verdict, Verdict::Reject);
    EXPECT_EQ(write.error, NBD_EINVAL);
    EXPECT_EQ(write.payload_length, 64 * 1024 + 1);
    EXPECT_NE(write.reason.find("65536-byte limit"), std::string::npos);
    EXPECT_EQ(check_request(make(NBD_CMD_WRITE, 0, 1 * MiB + 1), limits).verdict, Verdict::Disconnect);
}

TEST(NbdRequestParserTest, OutOfRangeIsRefusedAndTheWritePayloadSkipped)
{
    auto read = check_request(make(NBD_CMD_READ, 1 * MiB, 512), LIMITS);
    EXPECT_EQ(read.verdict, Verdict::Reject);
    EXPECT_EQ(read.error, NBD_EINVAL);
    auto write = check_request(make(NBD_CMD_WRITE, 1 * MiB - 256, 512), LIMITS);
    EXPECT_EQ(write.verdict, Verdict::Reject);
    EXPECT_EQ(write.error, NBD_ENOSPC);
    EXPECT_EQ(write.payload_length, 512u); // the connection must still consume it
    auto zeroes = check_request(make(NBD_CMD_WRITE_ZEROES, 2 * MiB, 512), LIMITS);
    EXPECT_EQ(zeroes.error, NBD_ENOSPC);
}

TEST(NbdRequestParserTest, OverflowingOffsetPlusLengthIsOutOfRange)
{
    RequestLimits huge = LIMITS;
    huge.export_size = ~u64(0) - 10;
    auto check = check_request(make(NBD_CMD_READ, ~u64(0) - 100, 4096), huge);
    EXPECT_EQ(check.verdict, Verdict::Reject);
    EXPECT_EQ(check.error, NBD_EINVAL);
    EXPECT_EQ(check_request(make(NBD_CMD_TRIM, ~u64(0), 1), LIMITS).verdict, Verdict::Reject);
}

TEST(NbdRequestParserTest, FlagsMustFitTheCommand)
{
    EXPECT_EQ(check_request(make(NBD_CMD_READ, 0, 512, NBD_CMD_FLAG_NO_HOLE), LIMITS).verdict, Verdict::Reject);
    EXPECT_EQ(check_request(make(NBD_CMD_WRITE, 0, 512, NBD_CMD_FLAG_REQ_ONE), LIMITS).payload_length, 512u);
    EXPECT_EQ(check_request(make(NBD_CMD_FLUSH, 0, 0, 0x8000), LIMITS).error, NBD_EINVAL);
}

TEST(NbdRequestParserTest, ReadOnlyExportsRefuseChangesWithEperm)
{
    RequestLimits read_only = LIMITS;
    read_only.read_only = true;
    EXPECT_EQ(check_request(make(NBD_CMD_WRITE, 0, 512), read_only).error, NBD_EPERM);
    EXPECT_EQ(check_request(make(NBD_CMD_TRIM, 0, 512), read_only).error, NBD_EPERM);
    EXPECT_EQ(check_request(make(NBD_CMD_WRITE_ZEROES, 0, 512), read_only).error, NBD_EPERM);
    EXPECT_EQ(check_request(make(NBD_CMD_READ, 0, 512), read_only).verdict, Verdict::Execute);
}

TEST(NbdRequestParserTest, BlockStatusNeedsTheNegotiatedContext)
{
    RequestLimits plain = LIMITS;
    plain.base_allocation = false;
    EXPECT_EQ(check_request(make(NBD_CMD_BLOCK_STATUS, 0, 512), plain).error, NBD_EINVAL);
    plain.base_allocation = true;
    plain.structured_replies = false;
    EXPECT_EQ(check_request(make(NBD_CMD_BLOCK_STATUS, 0, 512), plain).error, NBD_EINVAL);
}

TEST(NbdRequestParserTest, ZeroLengthAndUnadvertisedCommandsAreRefused)
{
    EXPECT_EQ(check_request(make(NBD_CMD_READ, 0, 0), LIMITS).error, NBD_EINVAL);
    EXPECT_EQ(check_request(make(NBD_CMD_CACHE, 0, 512), LIMITS).verdict, Verdict::Reject);
    EXPECT_EQ(check_request(make(NBD_CMD_RESIZE, 0, 0), LIMITS).verdict, Verdict::Reject);
}

} // namespace
} // namespace kasou::storage::nbd
