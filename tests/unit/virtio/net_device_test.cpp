#include <arpa/inet.h>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <linux/if_tun.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/sys_file.h"
#include "base/sys_process.h"
#include "base/sys_socket.h"
#include "test_driver.h"
#include "virtio/net/net_device.h"
#include "virtio/net/net_header.h"

using namespace kasou;
using namespace kasou::test;
using namespace kasou::virtio;
using namespace kasou::virtio::net;

namespace {

constexpr u16 TEST_ETHERTYPE = 0x88B5; // IEEE local experimental: nothing else on the link uses it

bool readable(int fd, int timeout_ms)
{
    pollfd ready { fd, POLLIN, 0 };
    return ::poll(&ready, 1, timeout_ms) == 1;
}

std::vector<u8> test_frame(MacAddress const& destination, MacAddress const& source, std::string const& text)
{
    std::vector<u8> frame(destination.begin(), destination.end());
    frame.insert(frame.end(), source.begin(), source.end());
    frame.push_back(TEST_ETHERTYPE >> 8);
    frame.push_back(TEST_ETHERTYPE & 0xFF);
    frame.insert(frame.end(), text.begin(), text.end());
    frame.resize(std::max<size_t>(frame.size(), 60), 0);
    return frame;
}

bool is_test_frame(std::span<u8 const> frame)
{
    return frame.size() >= 14 && frame[12] == (TEST_ETHERTYPE >> 8) && frame[13] == (TEST_ETHERTYPE & 0xFF);
}

// A NetDevice on a tap the test creates, brought up with IPv6 off (so the kernel sends nothing on
// its own), and an AF_PACKET socket on the same interface: the host side of the wire.
struct NetFixture : ::testing::Test {
    std::shared_ptr<NetDevice> device;
    Fd wire;
    int ifindex { 0 };
    memory::GuestMemory rx_memory = memory::GuestMemory::create(4 * MiB).value();
    memory::GuestMemory tx_memory = memory::GuestMemory::create(4 * MiB).value();
    TestDriver rx { rx_memory };
    TestDriver tx { tx_memory };
    SplitQueue rx_queue = SplitQueue::create(rx_memory, rx.layout(), false).value();
    SplitQueue tx_queue = SplitQueue::create(tx_memory, tx.layout(), false).value();
    std::array<SplitQueue*, 2> queues { &rx_queue, &tx_queue };
    MacAddress const guest_mac { 0x52, 0x54, 0x00, 0x6b, 0x73, 0x01 };

    void SetUp() override
    {
        if (::access("/dev/net/tun", F_OK) != 0)
            GTEST_SKIP() << "/dev/net/tun is absent";
        static int counter = 0;
        std::string name = fmt::format("kst{}x{}", ::getpid() % 100000, counter++);
        device = NetDevice::create({ name, guest_mac }).value();
        ASSERT_EQ(device->tap_name(), name);
        std::ofstream(fmt::format("/proc/sys/net/ipv6/conf/{}/disable_ipv6", name)) << "1\n";
        ASSERT_EQ(sys::spawn_and_wait({ "ip", "link", "set", "dev", name, "up" }).value(), 0);
        ifindex = static_cast<int>(::if_nametoindex(name.c_str()));
        ASSERT_GT(ifindex, 0);
        wire = sys::socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL)).value();
        sockaddr_ll address {};
        address.sll_family = AF_PACKET;
        address.sll_protocol = htons(ETH_P_ALL);
        address.sll_ifindex = ifindex;
        ASSERT_TRUE(sys::bind(wire.get(), reinterpret_cast<sockaddr const*>(&address), sizeof(address)));
        device->activate(F_VERSION_1 | F_MAC | F_STATUS);
    }

    void send_on_wire(std::vector<u8> const& frame)
    {
        sockaddr_ll address {};
        address.sll_family = AF_PACKET;
        address.sll_ifindex = ifindex;
        address.sll_halen = 6;
        std::memcpy(address.sll_addr, frame.data(), 6);
        ASSERT_EQ(::sendto(wire.get(), frame.data(), frame.size(), 0, reinterpret_cast<sockaddr const*>(&address), sizeof(address)),
            static_cast<ssize_t>(frame.size()));
    }

    // The next frame of ours the host side sees, or an empty vector after a second.
    std::vector<u8> receive_from_wire()
    {
        std::vector<u8> frame(2048);
        while (readable(wire.get(), 1000)) {
            ssize_t n = ::recv(wire.get(), frame.data(), frame.size(), 0);
            if (n > 0 && is_test_frame(std::span(frame.data(), static_cast<size_t>(n)))) {
                frame.resize(static_cast<size_t>(n));
                return frame;
            }
        }
        return {};
    }

    u64 add_receive_buffer(u16 descriptor, u32 size)
    {
        u64 address = rx.buffer(std::vector<u8>(size, 0xEE));
        rx.set_descriptor(descriptor, { address, size, WRITE, 0 });
        rx.make_available(descriptor);
        return address;
    }

    // Serves the device's host events until the receive queue has `count` used buffers.
    bool wait_for_used(u16 count)
    {
        for (int i = 0; i < 20 && rx.used_index() < count; ++i) {
            if (readable(device->host_event_fd(), 100) && !device->process_host_events(queues))
                return false;
        }
        return rx.used_index() >= count;
    }
};

} // namespace

TEST_F(NetFixture, TransmittedFramesReachTheTap)
{
    auto frame = test_frame({ 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, guest_mac, "kasou transmit");
    std::vector<u8> header(HEADER_BYTES, 0);
    u64 header_address = tx.buffer(header);
    u64 frame_address = tx.buffer(frame);
    tx.set_descriptor(0, { header_address, static_cast<u32>(HEADER_BYTES), NEXT, 1 });
    tx.set_descriptor(1, { frame_address, static_cast<u32>(frame.size()), 0, 0 });
    tx.make_available(0);
    ASSERT_TRUE(device->process(TRANSMITQ, tx_queue));
    EXPECT_EQ(tx.used_index(), 1);
    EXPECT_EQ(device->stats().tx_frames, 1u);
    EXPECT_EQ(receive_from_wire(), frame);
}

TEST_F(NetFixture, FramesFromTheTapFillReceiveBuffers)
{
    u64 buffer = add_receive_buffer(0, 2048);
    auto frame = test_frame(guest_mac, { 0x02, 0, 0, 0, 0, 1 }, "kasou receive");
    send_on_wire(frame);
    ASSERT_TRUE(wait_for_used(1));
    auto [head, length] = rx.used_element(0);
    EXPECT_EQ(head, 0u);
    ASSERT_EQ(length, HEADER_BYTES + frame.size());
    NetHeader header;
    ASSERT_TRUE(rx_memory.read(buffer, std::span(reinterpret_cast<u8*>(&header), HEADER_BYTES)));
    EXPECT_EQ(header.num_buffers, 1);
    EXPECT_EQ(header.gso_type, GSO_NONE);
    EXPECT_EQ(header.flags, 0) << "GUEST_CSUM was not negotiated";
    std::vector<u8> seen(frame.size());
    ASSERT_TRUE(rx_memory.read(buffer + HEADER_BYTES, seen));
    EXPECT_EQ(seen, frame);
}

TEST_F(NetFixture, WithoutBuffersTheTapIsNotPolledUntilTheDriverAddsSome)
{
    auto frame = test_frame(guest_mac, { 0x02, 0, 0, 0, 0, 2 }, "waits");
    send_on_wire(frame);
    ASSERT_TRUE(readable(device->host_event_fd(), 1000));
    ASSERT_TRUE(device->process_host_events(queues));
    EXPECT_EQ(rx.used_index(), 0);
    EXPECT_FALSE(readable(device->host_event_fd(), 0)) << "the I/O thread would spin";
    send_on_wire(frame);
    ASSERT_TRUE(readable(device->host_event_fd(), 1000)) << "a new frame is a new edge";
    ASSERT_TRUE(device->process_host_events(queues));
    EXPECT_FALSE(readable(device->host_event_fd(), 0));

    add_receive_buffer(0, 2048);
    add_receive_buffer(1, 2048);
    ASSERT_TRUE(device->process(RECEIVEQ, rx_queue));
    EXPECT_EQ(rx.used_index(), 2) << "both frames were kept";
    EXPECT_EQ(device->stats().rx_frames, 2u);
}

TEST_F(NetFixture, FrameLargerThanTheBufferIsDroppedNotTruncated)
{
    u64 small = add_receive_buffer(0, 100);
    auto big = test_frame(guest_mac, { 0x02, 0, 0, 0, 0, 3 }, std::string(200, 'b'));
    auto fits = test_frame(guest_mac, { 0x02, 0, 0, 0, 0, 3 }, "fits");
    send_on_wire(big);
    send_on_wire(fits);
    ASSERT_TRUE(wait_for_used(1));
    EXPECT_EQ(device->stats().rx_dropped, 1u);
    EXPECT_EQ(rx.used_element(0), (std::pair<u32, u32> { 0, static_cast<u32>(HEADER_BYTES + fits.size()) }))
        << "the buffer took the frame that fits";
    std::vector<u8> seen(fits.size());
    ASSERT_TRUE(rx_memory.read(small + HEADER_BYTES, seen));
    EXPECT_EQ(seen, fits);
}

// With MRG_RXBUF a frame spreads over as many buffers as it needs; the first header says how many,
// and the other buffers stay for the next frame.
TEST_F(NetFixture, MergeableBuffersTakeAFrameTogether)
{
    device->activate(F_VERSION_1 | F_MAC | F_STATUS | F_MRG_RXBUF);
    std::vector<u64> buffers;
    for (u16 i = 0; i < 4; ++i)
        buffers.push_back(add_receive_buffer(i, 512));
    auto frame = test_frame(guest_mac, { 0x02, 0, 0, 0, 0, 4 }, std::string(1100, 'm'));
    ASSERT_GT(HEADER_BYTES + frame.size(), 1024u);
    ASSERT_LE(HEADER_BYTES + frame.size(), 1536u);
    send_on_wire(frame);
    ASSERT_TRUE(wait_for_used(3));
    EXPECT_EQ(rx.used_index(), 3) << "the fourth buffer is left for the next frame";
    std::vector<u8> received;
    for (u16 i = 0; i < 3; ++i) {
        auto [head, length] = rx.used_element(i);
        EXPECT_EQ(head, i);
        EXPECT_EQ(length, i < 2 ? 512u : HEADER_BYTES + frame.size() - 1024);
        std::vector<u8> part(length);
        ASSERT_TRUE(rx_memory.read(buffers[i], part));
        received.insert(received.end(), part.begin(), part.end());
    }
    NetHeader header;
    std::memcpy(&header, received.data(), HEADER_BYTES);
    EXPECT_EQ(header.num_buffers, 3);
    EXPECT_EQ(std::vector<u8>(received.begin() + HEADER_BYTES, received.end()), frame);

    auto next = test_frame(guest_mac, { 0x02, 0, 0, 0, 0, 4 }, "next");
    send_on_wire(next);
    ASSERT_TRUE(wait_for_used(4));
    EXPECT_EQ(rx.used_element(3), (std::pair<u32, u32> { 3, static_cast<u32>(HEADER_BYTES + next.size()) }));
}

// A frame that needs more mergeable buffers than the driver offers waits for them (not dropped),
// and the driver sees none of its buffers used until all are.
TEST_F(NetFixture, MergeableFrameWaitsForEnoughBuffers)
{
    device->activate(F_VERSION_1 | F_MAC | F_STATUS | F_MRG_RXBUF);
    add_receive_buffer(0, 512);
    auto frame = test_frame(guest_mac, { 0x02, 0, 0, 0, 0, 5 }, std::string(1100, 'w'));
    send_on_wire(frame);
    ASSERT_TRUE(readable(device->host_event_fd(), 1000));
    ASSERT_TRUE(device->process_host_events(queues));
    EXPECT_EQ(rx.used_index(), 0);
    add_receive_buffer(1, 512);
    ASSERT_TRUE(device->process(RECEIVEQ, rx_queue));
    EXPECT_EQ(rx.used_index(), 0) << "two buffers do not hold it either";
    add_receive_buffer(2, 512);
    ASSERT_TRUE(device->process(RECEIVEQ, rx_queue));
    EXPECT_EQ(rx.used_index(), 3);
    EXPECT_EQ(device->stats().rx_dropped, 0u);
    EXPECT_EQ(device->stats().rx_frames, 1u);
}

TEST_F(NetFixture, ConfigSpaceHoldsTheMacAndLinkUp)
{
    u8 config[10] = {};
    device->read_config(0, config);
    EXPECT_EQ(MacAddress(std::to_array({ config[0], config[1], config[2], config[3], config[4], config[5] })), guest_mac);
    EXPECT_EQ(config[6], 1) << "VIRTIO_NET_S_LINK_UP";
    u64 features = device->device_features();
    EXPECT_TRUE(features & F_MAC);
    EXPECT_TRUE(features & F_STATUS);
    EXPECT_TRUE(features & F_GUEST_TSO4);
}

TEST_F(NetFixture, HostileTransmitChainIsADeviceError)
{
    NetHeader header { HDR_F_NEEDS_CSUM, GSO_TCPV4, 54, 1448, 34, 16, 0 };
    std::vector<u8> bytes(HEADER_BYTES + 100, 0);
    std::memcpy(bytes.data(), &header, HEADER_BYTES);
    tx.set_descriptor(0, { tx.buffer(bytes), static_cast<u32>(bytes.size()), 0, 0 });
    tx.make_available(0);
    auto result = device->process(TRANSMITQ, tx_queue);
    ASSERT_FALSE(result) << "TSO without HOST_TSO4 negotiated";
    EXPECT_NE(result.error().to_string().find("not negotiated"), std::string::npos);
    EXPECT_EQ(device->stats().tx_frames, 0u);
    EXPECT_TRUE(receive_from_wire().empty());
}

TEST(NetTap, AdoptsADescriptorOpenedElsewhereAndRefusesOthers)
{
    if (::access("/dev/net/tun", F_OK) != 0)
        GTEST_SKIP() << "/dev/net/tun is absent";
    auto open_tap = [](std::string const& name, short flags) {
        auto fd = sys::open("/dev/net/tun", O_RDWR).value();
        ifreq request {};
        std::memcpy(request.ifr_name, name.data(), name.size());
        request.ifr_flags = flags;
        EXPECT_TRUE(sys::ioctl(fd.get(), TUNSETIFF, &request, "TUNSETIFF"));
        return fd;
    };
    std::string name = fmt::format("ksa{}", ::getpid() % 100000);
    NetOptions options;
    options.tap_fd = open_tap(name, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
    auto device = NetDevice::create(std::move(options));
    ASSERT_TRUE(device) << device.error().to_string();
    EXPECT_EQ((*device)->tap_name(), name);

    NetOptions plain;
    plain.tap_fd = open_tap(name + "p", IFF_TAP | IFF_NO_PI);
    auto refused = NetDevice::create(std::move(plain));
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().to_string().find("IFF_VNET_HDR"), std::string::npos);

    int pair[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
    ::close(pair[1]);
    NetOptions socket;
    socket.tap_fd = Fd(pair[0]);
    auto not_tap = NetDevice::create(std::move(socket));
    ASSERT_FALSE(not_tap);
    EXPECT_NE(not_tap.error().to_string().find("is not a tap"), std::string::npos);
}
