#include <cstring>

#include <gtest/gtest.h>

#include "virtio/net/mac_address.h"
#include "virtio/net/net_header.h"

using namespace kasou;
using namespace kasou::virtio;
using namespace kasou::virtio::net;

namespace {

constexpr u64 ALL_TX = F_CSUM | F_HOST_TSO4 | F_HOST_TSO6 | F_HOST_ECN;

// A transmit chain: the header and `frame_bytes` of frame in one readable buffer.
struct Packet {
    std::vector<u8> bytes;
    DescriptorChain chain;

    Packet(NetHeader header, size_t frame_bytes)
        : bytes(HEADER_BYTES + frame_bytes, 0x5A)
    {
        std::memcpy(bytes.data(), &header, HEADER_BYTES);
        chain.readable.push_back(std::span(bytes));
    }
};

std::string parse_error(NetHeader header, size_t frame_bytes, u64 features)
{
    Packet packet(header, frame_bytes);
    auto parsed = TransmitPacket::parse(packet.chain, features);
    return parsed ? std::string() : parsed.error().to_string();
}

} // namespace

TEST(NetHeader, AcceptsPlainChecksummedAndSegmentedFrames)
{
    Packet plain({ 0, GSO_NONE, 0, 0, 0, 0, 0 }, 60);
    auto parsed = TransmitPacket::parse(plain.chain, 0);
    ASSERT_TRUE(parsed) << parsed.error().to_string();
    EXPECT_EQ(parsed->buffers.size(), 1u);
    EXPECT_EQ(parsed->buffers[0].size(), HEADER_BYTES + 60);

    EXPECT_EQ(parse_error({ HDR_F_NEEDS_CSUM, GSO_NONE, 0, 0, 34, 16, 0 }, 60, F_CSUM), "");
    EXPECT_EQ(parse_error({ HDR_F_NEEDS_CSUM, GSO_TCPV4, 54, 1448, 34, 16, 0 }, 3000, ALL_TX), "");
    EXPECT_EQ(parse_error({ HDR_F_NEEDS_CSUM, GSO_TCPV6 | GSO_ECN, 74, 1428, 54, 16, 0 }, 3000, ALL_TX), "");
}

TEST(NetHeader, RefusesWhatADriverMustNotSend)
{
    EXPECT_NE(parse_error({ HDR_F_NEEDS_CSUM, GSO_NONE, 0, 0, 34, 16, 0 }, 60, 0).find("CSUM was not negotiated"), std::string::npos);
    EXPECT_NE(parse_error({ HDR_F_NEEDS_CSUM, GSO_TCPV4, 54, 1448, 34, 16, 0 }, 3000, F_CSUM).find("not negotiated"), std::string::npos);
    EXPECT_NE(parse_error({ HDR_F_NEEDS_CSUM, GSO_UDP, 42, 1400, 34, 6, 0 }, 3000, ALL_TX).find("GSO type 0x3"), std::string::npos);
    EXPECT_NE(parse_error({ HDR_F_NEEDS_CSUM, GSO_TCPV4 | GSO_ECN, 54, 1448, 34, 16, 0 }, 3000, F_CSUM | F_HOST_TSO4).find("HOST_ECN"),
        std::string::npos);
    EXPECT_NE(parse_error({ 0, GSO_TCPV4, 54, 1448, 0, 0, 0 }, 3000, ALL_TX).find("without NEEDS_CSUM"), std::string::npos);
    EXPECT_NE(parse_error({ HDR_F_NEEDS_CSUM, GSO_TCPV4, 54, 0, 34, 16, 0 }, 3000, ALL_TX).find("segment size of 0"), std::string::npos);
    EXPECT_NE(parse_error({ 2, GSO_NONE, 0, 0, 0, 0, 0 }, 60, ALL_TX).find("flags 0x2"), std::string::npos) << "DATA_VALID is receive-only";
    EXPECT_NE(parse_error({ HDR_F_NEEDS_CSUM, GSO_NONE, 0, 0, 60, 16, 0 }, 60, ALL_TX).find("outside the 60-byte frame"), std::string::npos);
    EXPECT_NE(parse_error({ HDR_F_NEEDS_CSUM, GSO_NONE, 0, 0, 0xFFFF, 0xFFFF, 0 }, 60, ALL_TX).find("outside"), std::string::npos);
    EXPECT_NE(parse_error({ 0, GSO_NONE, 0, 0, 0, 0, 0 }, MAX_PACKET_BYTES, 0).find("exceeds"), std::string::npos);
}

TEST(NetHeader, RefusesShortAndMisdirectedChains)
{
    std::vector<u8> bytes(64);
    DescriptorChain short_chain;
    short_chain.readable.push_back(std::span(bytes).first(HEADER_BYTES - 1));
    auto parsed = TransmitPacket::parse(short_chain, 0);
    ASSERT_FALSE(parsed);
    EXPECT_NE(parsed.error().to_string().find("shorter than its 12-byte header"), std::string::npos);

    DescriptorChain writable;
    writable.readable.push_back(std::span(bytes).first(32));
    writable.writable.push_back(std::span(bytes).subspan(32));
    EXPECT_FALSE(TransmitPacket::parse(writable, 0));

    DescriptorChain header_split; // the header may span buffers
    header_split.readable.push_back(std::span(bytes).first(4));
    header_split.readable.push_back(std::span(bytes).subspan(4));
    EXPECT_TRUE(TransmitPacket::parse(header_split, 0));

    DescriptorChain receive_readable;
    receive_readable.readable.push_back(std::span(bytes));
    EXPECT_FALSE(check_receive_chain(receive_readable));
    DescriptorChain receive_small;
    receive_small.writable.push_back(std::span(bytes).first(8));
    EXPECT_FALSE(check_receive_chain(receive_small));
    DescriptorChain receive_good;
    receive_good.writable.push_back(std::span(bytes));
    EXPECT_TRUE(check_receive_chain(receive_good));
}

TEST(MacAddress, ParsesFormatsAndGenerates)
{
    auto mac = parse_mac("52:54:00:ab:CD:0f");
    ASSERT_TRUE(mac);
    EXPECT_EQ(*mac, (MacAddress { 0x52, 0x54, 0x00, 0xab, 0xcd, 0x0f }));
    EXPECT_EQ(format_mac(*mac), "52:54:00:ab:cd:0f");
    EXPECT_FALSE(parse_mac("52:54:00:ab:cd"));
    EXPECT_FALSE(parse_mac("52-54-00-ab-cd-0f"));
    EXPECT_FALSE(parse_mac("52:54:00:ab:cd:0g"));
    EXPECT_FALSE(parse_mac("52:54:00:ab:cd:+f"));
    auto multicast = parse_mac("01:00:5e:00:00:01");
    ASSERT_FALSE(multicast);
    EXPECT_NE(multicast.error().to_string().find("multicast"), std::string::npos);
    for (int i = 0; i < 8; ++i) {
        MacAddress random = random_mac();
        EXPECT_EQ(random[0] & 0x03, 0x02) << "locally administered unicast";
    }
}
