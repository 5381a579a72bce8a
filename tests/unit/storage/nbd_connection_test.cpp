#include <algorithm>
#include <set>

#include <gtest/gtest.h>

#include "io_test_support.h"
#include "nbd_test_client.h"
#include "storage/io/raw_file_device.h"
#include "storage/nbd/negotiation.h"

namespace kasou::storage::nbd {
namespace {

using storage::testing::ScratchFile;
using testing::TestClient;

class NbdConnectionTest : public ::testing::Test {
protected:
    NbdConnectionTest()
        : m_disk(4 * MiB)
        , m_other(1 * MiB)
    {
        m_exports.push_back({ .name = "disk", .device = MUST(RawFileDevice::open(m_disk.path(), {})) });
        m_exports.push_back({ .name = "other", .device = MUST(RawFileDevice::open(m_other.path(), {})) });
    }

    BlockDevice& disk() { return *m_exports[0].device; }

    ScratchFile m_disk;
    ScratchFile m_other;
    std::vector<Export> m_exports;
};

std::vector<u8> filled(size_t size, u8 value) { return std::vector<u8>(size, value); }

TEST_F(NbdConnectionTest, ListNamesEveryExport)
{
    TestClient client(m_exports);
    client.handshake();
    client.option(NBD_OPT_LIST);
    std::vector<std::string> names;
    for (;;) {
        auto reply = client.option_reply();
        EXPECT_EQ(reply.option, NBD_OPT_LIST);
        if (reply.type == NBD_REP_ACK)
            break;
        ASSERT_EQ(reply.type, NBD_REP_SERVER);
        ASSERT_GE(reply.data.size(), 4u);
        EXPECT_EQ(load_be32(reply.data.data()), reply.data.size() - 4);
        names.emplace_back(reply.data.begin() + 4, reply.data.end());
    }
    EXPECT_EQ(names, (std::vector<std::string> { "disk", "other" }));
}

TEST_F(NbdConnectionTest, InfoAnswersSizeFlagsAndBlockSizes)
{
    TestClient client(m_exports);
    client.handshake();
    client.option(NBD_OPT_INFO, TestClient::go_payload("other", { NBD_INFO_BLOCK_SIZE, NBD_INFO_NAME }));
    bool saw_export = false, saw_block_size = false, saw_name = false;
    for (;;) {
        auto reply = client.option_reply();
        if (reply.type == NBD_REP_ACK)
            break;
        ASSERT_EQ(reply.type, NBD_REP_INFO);
        u16 info = load_be16(reply.data.data());
        if (info == NBD_INFO_EXPORT) {
            saw_export = true;
            EXPECT_EQ(load_be64(reply.data.data() + 2), 1 * MiB);
            u16 flags = load_be16(reply.data.data() + 10);
            EXPECT_TRUE(flags & NBD_FLAG_HAS_FLAGS);
            EXPECT_TRUE(flags & NBD_FLAG_SEND_FLUSH);
            EXPECT_TRUE(flags & NBD_FLAG_SEND_FUA);
            EXPECT_TRUE(flags & NBD_FLAG_SEND_TRIM);
            EXPECT_TRUE(flags & NBD_FLAG_SEND_WRITE_ZEROES);
            EXPECT_TRUE(flags & NBD_FLAG_CAN_MULTI_CONN);
            EXPECT_FALSE(flags & NBD_FLAG_READ_ONLY);
        } else if (info == NBD_INFO_BLOCK_SIZE) {
            saw_block_size = true;
            EXPECT_EQ(load_be32(reply.data.data() + 2), 512u);
            EXPECT_EQ(load_be32(reply.data.data() + 6), 4096u);
            EXPECT_EQ(load_be32(reply.data.data() + 10), MAX_PAYLOAD);
        } else if (info == NBD_INFO_NAME) {
            saw_name = true;
            EXPECT_EQ(std::string(reply.data.begin() + 2, reply.data.end()), "other");
        }
    }
    EXPECT_TRUE(saw_export && saw_block_size && saw_name);
    // INFO leaves the client in negotiation: a GO still works afterwards.
    client.option(NBD_OPT_GO, TestClient::go_payload("other"));
    EXPECT_EQ(client.option_reply().type, NBD_REP_INFO);
    EXPECT_EQ(client.option_reply().type, NBD_REP_ACK);
}

TEST_F(NbdConnectionTest, UnknownOptionsAndExportsGetErrorRepliesAndNegotiationGoesOn)
{
    TestClient client(m_exports);
    client.handshake();
    client.option(0x4242, { 1, 2, 3 });
    EXPECT_EQ(client.option_reply().type, NBD_REP_ERR_UNSUP);
    client.option(NBD_OPT_GO, TestClient::go_payload("nope"));
    auto unknown = client.option_reply();
    EXPECT_EQ(unknown.type, NBD_REP_ERR_UNKNOWN);
    EXPECT_NE(std::string(unknown.data.begin(), unknown.data.end()).find("nope"), std::string::npos);
    // A GO payload whose lengths do not add up.
    auto malformed = TestClient::go_payload("disk");
    malformed.push_back(0);
    client.option(NBD_OPT_GO, malformed);
    EXPECT_EQ(client.option_reply().type, NBD_REP_ERR_INVALID);
    // Meta contexts need structured replies first.
    client.option(NBD_OPT_SET_META_CONTEXT, TestClient::meta_payload("disk", { "base:allocation" }));
    EXPECT_EQ(client.option_reply().type, NBD_REP_ERR_INVALID);
    client.option(NBD_OPT_GO, TestClient::go_payload("disk"));
    EXPECT_EQ(client.option_reply().type, NBD_REP_INFO);
    EXPECT_EQ(client.option_reply().type, NBD_REP_ACK);
    client.request(NBD_CMD_FLUSH, 1, 0, 0);
    EXPECT_EQ(client.simple_reply(), (std::pair<u32, u64> { 0, 1 }));
}

TEST_F(NbdConnectionTest, ListMetaContextOffersBaseAllocation)
{
    TestClient client(m_exports);
    client.handshake();
    client.option(NBD_OPT_LIST_META_CONTEXT, TestClient::meta_payload("disk", { "base:" }));
    auto context = client.option_reply();
    ASSERT_EQ(context.type, NBD_REP_META_CONTEXT);
    EXPECT_EQ(std::string(context.data.begin() + 4, context.data.end()), "base:allocation");
    EXPECT_EQ(client.option_reply().type, NBD_REP_ACK);
    client.option(NBD_OPT_LIST_META_CONTEXT, TestClient::meta_payload("disk", { "qemu:dirty-bitmap:x" }));
    EXPECT_EQ(client.option_reply().type, NBD_REP_ACK);
}

TEST_F(NbdConnectionTest, ExportNameWithZeroPadding)
{
    TestClient client(m_exports);
    client.handshake(NBD_FLAG_C_FIXED_NEWSTYLE);
    std::string name = "disk";
    client.option(NBD_OPT_EXPORT_NAME, std::vector<u8>(name.begin(), name.end()));
    auto reply = client.receive(8 + 2 + 124);
    ASSERT_EQ(reply.size(), 134u);
    EXPECT_EQ(load_be64(reply.data()), 4 * MiB);
    EXPECT_TRUE(std::all_of(reply.begin() + 10, reply.end(), [](u8 b) { return b == 0; }));
    client.request(NBD_CMD_READ, 5, 0, 512);
    EXPECT_EQ(client.simple_reply(), (std::pair<u32, u64> { 0, 5 }));
    EXPECT_EQ(client.receive(512), filled(512, 0));
}

TEST_F(NbdConnectionTest, SimpleRepliesWriteReadTrimZeroes)
{
    TestClient client(m_exports);
    client.connect("disk", false);
    client.request(NBD_CMD_WRITE, 1, 8192, 4096, filled(4096, 0xa5), NBD_CMD_FLAG_FUA);
    EXPECT_EQ(client.simple_reply(), (std::pair<u32, u64> { 0, 1 }));
    client.request(NBD_CMD_READ, 2, 8192, 4096);
    EXPECT_EQ(client.simple_reply(), (std::pair<u32, u64> { 0, 2 }));
    EXPECT_EQ(client.receive(4096), filled(4096, 0xa5));
    // What the client wrote is on the device.
    std::vector<u8> direct(4096);
    ASSERT_TRUE(disk().read(8192, direct));
    EXPECT_EQ(direct, filled(4096, 0xa5));

    client.request(NBD_CMD_TRIM, 3, 8192, 2048);
    EXPECT_EQ(client.simple_reply(), (std::pair<u32, u64> { 0, 3 }));
    client.request(NBD_CMD_WRITE_ZEROES, 4, 8192 + 2048, 1024, {}, NBD_CMD_FLAG_NO_HOLE);
    EXPECT_EQ(client.simple_reply(), (std::pair<u32, u64> { 0, 4 }));
    client.request(NBD_CMD_READ, 5, 8192, 4096);
    EXPECT_EQ(client.simple_reply(), (std::pair<u32, u64> { 0, 5 }));
    auto back = client.receive(4096);
    EXPECT_TRUE(std::all_of(back.begin(), back.begin() + 3072, [](u8 b) { return b == 0; }));
    EXPECT_TRUE(std::all_of(back.begin() + 3072, back.end(), [](u8 b) { return b == 0xa5; }));

    // Refused requests keep the connection: out of range, with its payload skipped.
    client.request(NBD_CMD_WRITE, 6, 4 * MiB - 100, 200, filled(200, 0xff));
    EXPECT_EQ(client.simple_reply(), (std::pair<u32, u64> { NBD_ENOSPC, 6 }));
    client.request(NBD_CMD_READ, 7, 4 * MiB, 1);
    EXPECT_EQ(client.simple_reply(), (std::pair<u32, u64> { NBD_EINVAL, 7 }));
    // Block status without a negotiated context.
    client.request(NBD_CMD_BLOCK_STATUS, 8, 0, 4096);
    EXPECT_EQ(client.simple_reply(), (std::pair<u32, u64> { NBD_EINVAL, 8 }));
    client.request(NBD_CMD_DISC, 9, 0, 0);
    EXPECT_TRUE(client.closed_by_server());
}

TEST_F(NbdConnectionTest, StructuredReadsBlockStatusAndErrors)
{
    ASSERT_TRUE(disk().write(1 * MiB, filled(64 * KiB, 0x3c), false));
    TestClient client(m_exports);
    client.connect("disk", true);

    client.request(NBD_CMD_READ, 11, 1 * MiB, 8192);
    auto data = client.chunk();
    EXPECT_EQ(data.cookie, 11u);
    EXPECT_EQ(data.type, NBD_REPLY_TYPE_OFFSET_DATA);
    EXPECT_TRUE(data.flags & NBD_REPLY_FLAG_DONE);
    ASSERT_EQ(data.payload.size(), 8u + 8192);
    EXPECT_EQ(load_be64(data.payload.data()), 1 * MiB);
    EXPECT_TRUE(std::all_of(data.payload.begin() + 8, data.payload.end(), [](u8 b) { return b == 0x3c; }));

    client.request(NBD_CMD_BLOCK_STATUS, 12, 0, 2 * MiB);
    auto status = client.chunk();
    EXPECT_EQ(status.cookie, 12u);
    EXPECT_EQ(status.type, NBD_REPLY_TYPE_BLOCK_STATUS);
    EXPECT_TRUE(status.flags & NBD_REPLY_FLAG_DONE);
    ASSERT_EQ(status.payload.size(), 4u + 3 * 8);
    auto descriptor = [&](int i) { return std::pair { load_be32(status.payload.data() + 4 + 8 * i), load_be32(status.payload.data() + 8 + 8 * i) }; };
    EXPECT_EQ(descriptor(0), (std::pair<u32, u32> { 1 * MiB, NBD_STATE_HOLE | NBD_STATE_ZERO }));
    EXPECT_EQ(descriptor(1), (std::pair<u32, u32> { 64 * KiB, 0 }));
    EXPECT_EQ(descriptor(2), (std::pair<u32, u32> { 1 * MiB - 64 * KiB, NBD_STATE_HOLE | NBD_STATE_ZERO }));

    client.request(NBD_CMD_BLOCK_STATUS, 13, 0, 2 * MiB, {}, NBD_CMD_FLAG_REQ_ONE);
    EXPECT_EQ(client.chunk().payload.size(), 4u + 8);

    client.request(NBD_CMD_READ, 14, 4 * MiB - 512, 1024);
    auto error = client.chunk();
    EXPECT_EQ(error.cookie, 14u);
    EXPECT_EQ(error.type, NBD_REPLY_TYPE_ERROR);
    EXPECT_TRUE(error.flags & NBD_REPLY_FLAG_DONE);
    ASSERT_GE(error.payload.size(), 6u);
    EXPECT_EQ(load_be32(error.payload.data()), NBD_EINVAL);
    EXPECT_EQ(load_be16(error.payload.data() + 4), error.payload.size() - 6);

    // Writes still get simple replies under structured replies.
    client.request(NBD_CMD_WRITE, 15, 0, 512, filled(512, 1));
    EXPECT_EQ(client.simple_reply(), (std::pair<u32, u64> { 0, 15 }));
}

TEST_F(NbdConnectionTest, PipelinedRequestsAllAnsweredWithTheirCookies)
{
    for (u64 i = 0; i < 32; ++i)
        ASSERT_TRUE(disk().write(2 * MiB + i * 4096, filled(4096, static_cast<u8>(i + 1)), false));
    TestClient client(m_exports, 4);
    client.connect("disk", false);
    // 32 writes and 32 reads of ranges the writes do not touch, sent before reading any reply.
    for (u64 i = 0; i < 32; ++i) {
        client.request(NBD_CMD_WRITE, 100 + i, i * 8192, 8192, filled(8192, static_cast<u8>(0x80 + i)));
        client.request(NBD_CMD_READ, 200 + i, 2 * MiB + i * 4096, 4096);
    }
    std::set<u64> cookies;
    for (int n = 0; n < 64; ++n) {
        auto [error, cookie] = client.simple_reply();
        ASSERT_EQ(error, 0u);
        cookies.insert(cookie);
        if (cookie >= 200) {
            ASSERT_EQ(client.receive(4096), filled(4096, static_cast<u8>(cookie - 200 + 1))) << "read " << cookie;
        }
    }
    EXPECT_EQ(cookies.size(), 64u);
    for (u64 i = 0; i < 32; ++i) {
        std::vector<u8> back(8192);
        ASSERT_TRUE(disk().read(i * 8192, back));
        EXPECT_EQ(back, filled(8192, static_cast<u8>(0x80 + i)));
    }
}

TEST_F(NbdConnectionTest, BadMagicClosesTheConnectionAfterAnsweringEarlierRequests)
{
    TestClient client(m_exports, 2);
    client.connect("disk", false);
    client.request(NBD_CMD_WRITE, 1, 0, 4096, filled(4096, 0x21));
    WireWriter garbage;
    garbage.u32_field(0xdeadbeef);
    garbage.bytes(filled(24, 0));
    client.send(garbage.data());
    EXPECT_EQ(client.simple_reply(), (std::pair<u32, u64> { 0, 1 }));
    EXPECT_TRUE(client.closed_by_server());
    std::vector<u8> back(4096);
    ASSERT_TRUE(disk().read(0, back));
    EXPECT_EQ(back, filled(4096, 0x21));
}

TEST_F(NbdConnectionTest, OversizedWriteAndUnknownCommandClose)
{
    {
        TestClient client(m_exports);
        client.connect("disk", false);
        client.request(NBD_CMD_WRITE, 1, 0, 0x7fffffff);
        EXPECT_TRUE(client.closed_by_server());
    }
    {
        TestClient client(m_exports);
        client.connect("disk", true);
        client.request(77, 1, 0, 512);
        EXPECT_TRUE(client.closed_by_server());
    }
}

TEST_F(NbdConnectionTest, HostileNegotiationCloses)
{
    {
        TestClient client(m_exports);
        client.handshake(0);
        EXPECT_TRUE(client.closed_by_server());
    }
    {
        TestClient client(m_exports);
        client.handshake();
        WireWriter huge;
        huge.u64_field(NBD_IHAVEOPT);
        huge.u32_field(NBD_OPT_GO);
        huge.u32_field(0xfffffff0);
        client.send(huge.data());
        EXPECT_TRUE(client.closed_by_server());
    }
    {
        TestClient client(m_exports);
        client.handshake();
        std::string name = "missing";
        client.option(NBD_OPT_EXPORT_NAME, std::vector<u8>(name.begin(), name.end()));
        EXPECT_TRUE(client.closed_by_server());
    }
}

} // namespace
} // namespace kasou::storage::nbd
