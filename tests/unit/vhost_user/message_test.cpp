#include <cstring>

#include <gtest/gtest.h>

#include "base/event_fd.h"
#include "vhost_user/message.h"

using namespace kasou;
using namespace kasou::vhost_user;

namespace {

template<class T>
std::vector<u8> bytes_of(T const& value)
{
    std::vector<u8> bytes(sizeof(T));
    std::memcpy(bytes.data(), &value, sizeof(T));
    return bytes;
}

RawMessage raw(Request request, std::vector<u8> payload, size_t fds = 0, u32 flags = VERSION)
{
    RawMessage message;
    message.header = Header { .request = static_cast<u32>(request), .flags = flags, .size = static_cast<u32>(payload.size()) };
    message.payload = std::move(payload);
    for (size_t i = 0; i < fds; ++i)
        message.fds.push_back(Fd(::dup(EventFd::create().value().fd())));
    return message;
}

std::string failure(RawMessage message)
{
    auto parsed = parse_message(std::move(message));
    return parsed ? "" : parsed.error().to_string();
}

} // namespace

TEST(VhostUserMessage, ParsesTheRequestsOfABlockDevice)
{
    auto features = parse_message(raw(Request::SET_FEATURES, bytes_of(u64 { 0x1234 })));
    ASSERT_TRUE(features);
    EXPECT_EQ(std::get<u64>(features->body), 0x1234u);
    auto kick = parse_message(raw(Request::SET_VRING_KICK, bytes_of(u64 { 3 }), 1, VERSION | FLAG_NEED_REPLY));
    ASSERT_TRUE(kick);
    EXPECT_TRUE(kick->need_reply);
    EXPECT_EQ(std::get<VringFd>(kick->body).index, 3u);
    EXPECT_TRUE(std::get<VringFd>(kick->body).fd.valid());
    auto call = parse_message(raw(Request::SET_VRING_CALL, bytes_of(u64 { 2 | VRING_NOFD })));
    ASSERT_TRUE(call);
    EXPECT_FALSE(std::get<VringFd>(call->body).fd.valid());

    std::vector<u8> table = bytes_of(MemoryTableHeader { .count = 2, .padding = 0 });
    for (u64 i = 0; i < 2; ++i) {
        auto region = bytes_of(MemoryRegion { .guest_physical = i << 32, .size = 0x1000, .user_address = 0x7000'0000 + (i << 20), .mmap_offset = 0 });
        table.insert(table.end(), region.begin(), region.end());
    }
    auto memory = parse_message(raw(Request::SET_MEM_TABLE, table, 2));
    ASSERT_TRUE(memory);
    EXPECT_EQ(std::get<MemoryTable>(memory->body).regions.size(), 2u);
    EXPECT_EQ(std::get<MemoryTable>(memory->body).fds.size(), 2u);

    std::vector<u8> config = bytes_of(ConfigHeader { .offset = 0, .size = 60, .flags = 0 });
    config.resize(config.size() + 60);
    auto got = parse_message(raw(Request::GET_CONFIG, config));
    ASSERT_TRUE(got);
    EXPECT_EQ(std::get<ConfigRange>(got->body).size, 60u);
}

TEST(VhostUserMessage, RefusesEveryFieldOutOfShape)
{
    EXPECT_NE(failure(raw(Request::SET_FEATURES, bytes_of(u32 { 1 }))).find("payload of 4 bytes"), std::string::npos);
    EXPECT_NE(failure(raw(Request::SET_FEATURES, bytes_of(u64 { 1 }), 1)).find("1 descriptors passed"), std::string::npos);
    EXPECT_NE(failure(raw(Request::GET_FEATURES, {}, 0, 2)).find("protocol version 2"), std::string::npos);
    EXPECT_NE(failure(raw(Request::GET_FEATURES, {}, 0, VERSION | FLAG_REPLY)).find("flags"), std::string::npos);
    // A kick without its descriptor, a call with one it said it would not send, reserved bits.
    EXPECT_FALSE(parse_message(raw(Request::SET_VRING_KICK, bytes_of(u64 { 0 }), 0)));
    EXPECT_FALSE(parse_message(raw(Request::SET_VRING_CALL, bytes_of(u64 { VRING_NOFD }), 1)));
    EXPECT_NE(failure(raw(Request::SET_VRING_ERR, bytes_of(u64 { 1ull << 9 }), 1)).find("reserved bits"), std::string::npos);
    // Memory tables: no regions, too many, fewer descriptors than regions, a region that wraps.
    EXPECT_NE(failure(raw(Request::SET_MEM_TABLE, bytes_of(MemoryTableHeader { 0, 0 }))).find("0 memory regions"), std::string::npos);
    EXPECT_NE(failure(raw(Request::SET_MEM_TABLE, bytes_of(MemoryTableHeader { 9, 0 }))).find("9 memory regions"), std::string::npos);
    std::vector<u8> table = bytes_of(MemoryTableHeader { 1, 0 });
    auto region = bytes_of(MemoryRegion { .guest_physical = ~u64 { 0 } - 10, .size = 0x1000, .user_address = 0, .mmap_offset = 0 });
    table.insert(table.end(), region.begin(), region.end());
    EXPECT_NE(failure(raw(Request::SET_MEM_TABLE, table, 0)).find("0 descriptors passed"), std::string::npos);
    EXPECT_NE(failure(raw(Request::SET_MEM_TABLE, table, 1)).find("wraps around"), std::string::npos);
    // Config ranges beyond 256 bytes, or a size that disagrees with the payload.
    std::vector<u8> config = bytes_of(ConfigHeader { .offset = 250, .size = 10, .flags = 0 });
    config.resize(config.size() + 10);
    EXPECT_NE(failure(raw(Request::GET_CONFIG, config)).find("outside 256 bytes"), std::string::npos);
    config = bytes_of(ConfigHeader { .offset = 0, .size = 10, .flags = 0 });
    EXPECT_FALSE(parse_message(raw(Request::GET_CONFIG, config)));
    // Header size disagreeing with the payload read.
    auto lying = raw(Request::SET_FEATURES, bytes_of(u64 { 0 }));
    lying.header.size = 16;
    EXPECT_FALSE(parse_message(std::move(lying)));
}

TEST(VhostUserMessage, UnknownAndUnofferedRequestsAreNamedErrors)
{
    EXPECT_NE(failure(raw(static_cast<Request>(999), {})).find("request 999"), std::string::npos);
    EXPECT_NE(failure(raw(Request::SET_LOG_BASE, bytes_of(u64 { 0 }), 1)).find("SET_LOG_BASE"), std::string::npos);
    EXPECT_NE(failure(raw(static_cast<Request>(0), {})).find("request 0"), std::string::npos);
}
