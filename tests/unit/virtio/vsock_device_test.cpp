#include <cstring>
#include <filesystem>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/sys_path.h"
#include "base/sys_socket.h"
#include "test_driver.h"
#include "virtio/vsock/vsock_device.h"

using namespace kasou;
using namespace kasou::test;
using namespace kasou::virtio;
using namespace kasou::virtio::vsock;

namespace {

constexpr u64 GUEST_CID = 3;
constexpr u32 RX_BUFFER = 4096;

bool readable(int fd, int timeout_ms)
{
    pollfd ready { fd, POLLIN, 0 };
    return ::poll(&ready, 1, timeout_ms) == 1;
}

sockaddr_un unix_address(std::string const& path)
{
    sockaddr_un address {};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, path.data(), path.size());
    return address;
}

Fd listen_unix(std::string const& path)
{
    auto socket = sys::socket(AF_UNIX, SOCK_STREAM, 0).value();
    auto address = unix_address(path);
    EXPECT_TRUE(sys::bind(socket.get(), reinterpret_cast<sockaddr const*>(&address), sizeof(address)));
    EXPECT_TRUE(sys::listen(socket.get(), 4));
    return socket;
}

Fd connect_unix(std::string const& path)
{
    auto socket = sys::socket(AF_UNIX, SOCK_STREAM, 0).value();
    auto address = unix_address(path);
    EXPECT_TRUE(sys::connect(socket.get(), reinterpret_cast<sockaddr const*>(&address), sizeof(address)));
    return socket;
}

// Reads what the peer sent within a second (up to `size` bytes); "" on end of stream.
std::string read_some(int fd, int timeout_ms = 1000)
{
    constexpr size_t size = 256;
    if (!readable(fd, timeout_ms))
        return "<timeout>";
    std::string text(size, '\0');
    ssize_t n = ::recv(fd, text.data(), size, 0);
    text.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return text;
}

struct Received {
    VsockHeader header;
    std::string payload;
};

// The guest's side: a driver with an rx and a tx queue (each in its own memory, as TestDriver lays
// out one queue), a socket directory, and the device under test.
struct VsockFixture : ::testing::Test {
    std::string directory = sys::make_temp_dir("/tmp/kasou-vsock-XXXXXX").value();
    std::string uds = directory + "/v.sock";
    std::shared_ptr<VsockDevice> device = VsockDevice::create({ GUEST_CID, uds }).value();
    memory::GuestMemory rx_memory = memory::GuestMemory::create(4 * MiB).value();
    memory::GuestMemory tx_memory = memory::GuestMemory::create(8 * MiB).value();
    TestDriver rx { rx_memory };
    TestDriver tx { tx_memory };
    SplitQueue rx_queue = SplitQueue::create(rx_memory, rx.layout(), false).value();
    SplitQueue tx_queue = SplitQueue::create(tx_memory, tx.layout(), false).value();
    std::array<SplitQueue*, 3> queues { &rx_queue, &tx_queue, nullptr };
    std::array<u64, 16> rx_address {};
    u16 rx_seen { 0 };
    u16 tx_next { 0 };

    void SetUp() override
    {
        for (u16 i = 0; i < 8; ++i) {
            rx_address[i] = rx.buffer(std::vector<u8>(HEADER_BYTES + RX_BUFFER));
            rx.set_descriptor(i, { rx_address[i], static_cast<u32>(HEADER_BYTES + RX_BUFFER), WRITE, 0 });
            rx.make_available(i);
        }
    }
    void TearDown() override
    {
        device.reset();
        std::filesystem::remove_all(directory);
    }

    static VsockHeader header(u16 op, u32 guest_port, u32 host_port, u32 length = 0, u32 buf_alloc = 65536, u32 fwd_cnt = 0)
    {
        return VsockHeader { GUEST_CID, HOST_CID, guest_port, host_port, length, TYPE_STREAM, op, 0, buf_alloc, fwd_cnt };
    }

    // The guest sends one packet: header and payload in one device-readable buffer.
    ErrorOr<void> send(VsockHeader const& packet, std::string const& payload = "")
    {
        std::vector<u8> bytes(HEADER_BYTES + payload.size());
        std::memcpy(bytes.data(), &packet, HEADER_BYTES);
        std::memcpy(bytes.data() + HEADER_BYTES, payload.data(), payload.size());
        u16 descriptor = tx_next++ % tx.layout().size;
        tx.set_descriptor(descriptor, { tx.buffer(bytes), static_cast<u32>(bytes.size()), 0, 0 });
        tx.make_available(descriptor);
        return device->process(TXQ, tx_queue);
    }

    // The guest sends `count` packets (at most the queue size) made by make(n), header only, in one
    // pass over the tx queue; their buffers are reused, so any number of passes fits in memory.
    template <class Make>
    ErrorOr<void> send_many(u32 count, Make make)
    {
        if (flood_buffer == 0)
            flood_buffer = tx.buffer(std::vector<u8>(HEADER_BYTES * tx.layout().size));
        for (u32 n = 0; n < count; ++n) {
            VsockHeader packet = make(n);
            u64 address = flood_buffer + HEADER_BYTES * n;
            (void)tx_memory.write(address, std::span(reinterpret_cast<u8 const*>(&packet), HEADER_BYTES));
            u16 descriptor = tx_next++ % tx.layout().size;
            tx.set_descriptor(descriptor, { address, static_cast<u32>(HEADER_BYTES), 0, 0 });
            tx.make_available(descriptor);
        }
        return device->process(TXQ, tx_queue);
    }
    u64 flood_buffer { 0 };

    // Serves host events until a packet arrives on the rx queue (or `rounds` tenths of a second
    // pass), then returns every packet the device put there, giving their buffers back to it.
    std::vector<Received> receive(int rounds = 10)
    {
        for (int i = 0; i < rounds && rx.used_index() == rx_seen; ++i) {
            if (readable(device->host_event_fd(), 100)) {
                EXPECT_TRUE(device->process_host_events(queues));
            }
        }
        std::vector<Received> packets;
        for (; rx_seen != rx.used_index(); ++rx_seen) {
            auto [head, length] = rx.used_element(rx_seen);
            Received packet;
            EXPECT_GE(length, HEADER_BYTES);
            EXPECT_TRUE(rx_memory.read(rx_address[head], std::span(reinterpret_cast<u8*>(&packet.header), HEADER_BYTES)));
            packet.payload.resize(length - HEADER_BYTES);
            EXPECT_TRUE(rx_memory.read(rx_address[head] + HEADER_BYTES, std::span(reinterpret_cast<u8*>(packet.payload.data()), packet.payload.size())));
            EXPECT_EQ(packet.header.len, packet.payload.size());
            EXPECT_EQ(packet.header.src_cid, HOST_CID);
            EXPECT_EQ(packet.header.dst_cid, GUEST_CID);
            packets.push_back(packet);
            rx.make_available(static_cast<u16>(head));
        }
        (void)device->process(RXQ, rx_queue);
        return packets;
    }

    // Receives exactly one packet and returns it.
    Received receive_one()
    {
        auto packets = receive();
        EXPECT_EQ(packets.size(), 1u);
        return packets.empty() ? Received {} : packets[0];
    }
};

// A host program that accepts one connection and echoes what it reads until end of stream.
struct EchoServer {
    Fd listener;
    std::thread thread;

    explicit EchoServer(std::string const& path)
        : listener(listen_unix(path))
    {
        thread = std::thread([this] {
            if (!readable(listener.get(), 5000))
                return;
            auto client = sys::accept(listener.get()).value();
            char buffer[512];
            while (readable(client.get(), 5000)) {
                ssize_t n = ::recv(client.get(), buffer, sizeof(buffer), 0);
                if (n <= 0)
                    return;
                (void)::send(client.get(), buffer, static_cast<size_t>(n), MSG_NOSIGNAL);
            }
        });
    }
    ~EchoServer() { thread.join(); }
};

} // namespace

TEST_F(VsockFixture, GuestConnectsToAHostPortAndGetsItsBytesEchoed)
{
    EchoServer server(uds + "_5000");
    ASSERT_TRUE(send(header(OP_REQUEST, 1234, 5000)));
    auto response = receive_one();
    EXPECT_EQ(response.header.op, OP_RESPONSE);
    EXPECT_EQ(response.header.src_port, 5000u);
    EXPECT_EQ(response.header.dst_port, 1234u);
    EXPECT_EQ(response.header.buf_alloc, BUFFER_BYTES);
    EXPECT_EQ(device->connection_count(), 1u);

    ASSERT_TRUE(send(header(OP_RW, 1234, 5000, 11), "hello vsock"));
    auto echo = receive_one();
    EXPECT_EQ(echo.header.op, OP_RW);
    EXPECT_EQ(echo.payload, "hello vsock");
    EXPECT_EQ(echo.header.fwd_cnt, 11u) << "the host socket took all 11 bytes";

    auto shutdown = header(OP_SHUTDOWN, 1234, 5000);
    shutdown.flags = SHUTDOWN_RCV | SHUTDOWN_SEND;
    ASSERT_TRUE(send(shutdown));
    EXPECT_EQ(receive_one().header.op, OP_RST) << "a full shutdown is answered with RST";
    EXPECT_EQ(device->connection_count(), 0u);
}

TEST_F(VsockFixture, HostConnectsThroughTheConnectCommand)
{
    Fd host = connect_unix(uds);
    ASSERT_EQ(::send(host.get(), "CONNECT 52\n", 11, 0), 11);
    auto request = receive_one();
    EXPECT_EQ(request.header.op, OP_REQUEST);
    EXPECT_EQ(request.header.dst_port, 52u);
    u32 host_port = request.header.src_port;
    EXPECT_EQ(host_port, FIRST_HOST_PORT);
    EXPECT_EQ(read_some(host.get(), 200), "<timeout>") << "nothing before the guest accepts";

    ASSERT_TRUE(send(header(OP_RESPONSE, 52, host_port)));
    EXPECT_EQ(read_some(host.get()), fmt::format("OK {}\n", host_port));

    ASSERT_EQ(::send(host.get(), "ping", 4, 0), 4);
    auto ping = receive_one();
    EXPECT_EQ(ping.header.op, OP_RW);
    EXPECT_EQ(ping.header.src_port, host_port);
    EXPECT_EQ(ping.header.dst_port, 52u);
    EXPECT_EQ(ping.payload, "ping");

    ASSERT_TRUE(send(header(OP_RW, 52, host_port, 4), "pong"));
    EXPECT_EQ(read_some(host.get()), "pong");

    ASSERT_EQ(::shutdown(host.get(), SHUT_WR), 0); // the host program is done sending
    auto shutdown = receive_one();
    EXPECT_EQ(shutdown.header.op, OP_SHUTDOWN);
    EXPECT_EQ(shutdown.header.flags, SHUTDOWN_SEND) << "the host sends no more";
    ASSERT_TRUE(send(header(OP_RW, 52, host_port, 5), "reply"));
    EXPECT_EQ(read_some(host.get()), "reply") << "the other direction still works";
    auto finish = header(OP_SHUTDOWN, 52, host_port);
    finish.flags = SHUTDOWN_RCV | SHUTDOWN_SEND;
    ASSERT_TRUE(send(finish));
    EXPECT_EQ(receive_one().header.op, OP_RST);
    EXPECT_EQ(read_some(host.get()), "") << "the host sees the end of the stream";
    EXPECT_EQ(device->connection_count(), 0u);
}

TEST_F(VsockFixture, GuestWritingToAClosedHostSocketIsReset)
{
    Fd listener = listen_unix(uds + "_7001");
    ASSERT_TRUE(send(header(OP_REQUEST, 78, 7001)));
    ASSERT_EQ(receive_one().header.op, OP_RESPONSE);
    sys::accept(listener.get()).value().reset(); // accepts and closes at once
    auto shutdown = receive_one();
    EXPECT_EQ(shutdown.header.op, OP_SHUTDOWN);
    ASSERT_TRUE(send(header(OP_RW, 78, 7001, 4), "lost"));
    EXPECT_EQ(receive_one().header.op, OP_RST) << "the host socket is gone";
    EXPECT_EQ(device->connection_count(), 0u);
}

TEST_F(VsockFixture, GuestRefusingAHostConnectionClosesIt)
{
    Fd host = connect_unix(uds);
    ASSERT_EQ(::send(host.get(), "CONNECT 80\n", 11, 0), 11);
    auto request = receive_one();
    ASSERT_EQ(request.header.op, OP_REQUEST);
    ASSERT_TRUE(send(header(OP_RST, 80, request.header.src_port)));
    EXPECT_EQ(read_some(host.get()), "") << "closed without OK";
    EXPECT_EQ(device->connection_count(), 0u);
}

TEST_F(VsockFixture, MalformedConnectCommandsAreClosed)
{
    for (std::string line : std::vector<std::string> { "HELLO 52\n", "CONNECT\n", "CONNECT 99999999999\n", "CONNECT 5x\n", std::string(40, 'C') }) {
        Fd host = connect_unix(uds);
        ASSERT_EQ(::send(host.get(), line.data(), line.size(), 0), static_cast<ssize_t>(line.size()));
        EXPECT_TRUE(receive(2).empty()) << line;
        EXPECT_EQ(read_some(host.get()), "") << line;
    }
    EXPECT_EQ(device->connection_count(), 0u);
}

TEST_F(VsockFixture, UnknownPortsAndConnectionsGetAReset)
{
    ASSERT_TRUE(send(header(OP_REQUEST, 1000, 6000)));
    auto refused = receive_one();
    EXPECT_EQ(refused.header.op, OP_RST) << "nobody listens on " << uds << "_6000";
    EXPECT_EQ(refused.header.src_port, 6000u);
    EXPECT_EQ(refused.header.dst_port, 1000u);

    ASSERT_TRUE(send(header(OP_RW, 1000, 6000, 3), "abc"));
    EXPECT_EQ(receive_one().header.op, OP_RST) << "data for no connection";
    ASSERT_TRUE(send(header(OP_RST, 1000, 6000)));
    EXPECT_TRUE(receive(2).empty()) << "a RST is never answered";

    auto datagram = header(OP_REQUEST, 1000, 6000);
    datagram.type = 3;
    ASSERT_TRUE(send(datagram));
    EXPECT_EQ(receive_one().header.op, OP_RST) << "unsupported socket type";
    auto spoofed = header(OP_REQUEST, 1000, 6000);
    spoofed.src_cid = 7;
    ASSERT_TRUE(send(spoofed));
    EXPECT_TRUE(receive(2).empty()) << "a packet from another CID is dropped";
    EXPECT_EQ(device->connection_count(), 0u);
}

TEST_F(VsockFixture, MalformedPacketsAreDeviceErrors)
{
    auto expect_error = [&](std::vector<u8> bytes, u16 flags, char const* what) {
        u16 descriptor = tx_next++ % tx.layout().size;
        tx.set_descriptor(descriptor, { tx.buffer(bytes), static_cast<u32>(bytes.size()), flags, 0 });
        tx.make_available(descriptor);
        auto result = device->process(TXQ, tx_queue);
        ASSERT_FALSE(result) << what;
        EXPECT_NE(result.error().to_string().find(what), std::string::npos) << result.error().to_string();
        tx_queue = SplitQueue::create(tx_memory, tx.layout(), false).value();
        tx.set_available_index(0);
        tx_next = 0;
    };
    expect_error(std::vector<u8>(20), 0, "shorter than its 44-byte header");
    expect_error(std::vector<u8>(HEADER_BYTES), WRITE, "device-writable");
    auto claims = header(OP_RW, 1, 2, 100);
    std::vector<u8> bytes(HEADER_BYTES + 10);
    std::memcpy(bytes.data(), &claims, HEADER_BYTES);
    expect_error(bytes, 0, "but 10 follow the header");
    auto huge = header(OP_RW, 1, 2, 0xFFFF'FFFF);
    std::memcpy(bytes.data(), &huge, HEADER_BYTES);
    expect_error(bytes, 0, "over the 65536-byte limit");

    // An rx buffer the device could only read from.
    rx_queue = SplitQueue::create(rx_memory, rx.layout(), false).value();
    rx.set_available_index(0);
    rx.set_descriptor(0, { rx_address[0], 64, 0, 0 });
    rx.make_available(0);
    ASSERT_TRUE(send(header(OP_REQUEST, 1000, 6000)));
    ASSERT_TRUE(readable(device->host_event_fd(), 1000));
    auto result = device->process_host_events(queues);
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().to_string().find("device-readable"), std::string::npos);
}

TEST_F(VsockFixture, HostBytesWaitForGuestCredit)
{
    Fd host = connect_unix(uds);
    ASSERT_EQ(::send(host.get(), "CONNECT 9\n", 10, 0), 10);
    u32 host_port = receive_one().header.src_port;
    ASSERT_TRUE(send(header(OP_RESPONSE, 9, host_port, 0, 8, 0))); // the guest can buffer 8 bytes
    EXPECT_EQ(read_some(host.get()), fmt::format("OK {}\n", host_port));

    ASSERT_EQ(::send(host.get(), "0123456789abcdefghij", 20, 0), 20);
    auto packets = receive();
    ASSERT_EQ(packets.size(), 2u);
    EXPECT_EQ(packets[0].header.op, OP_RW);
    EXPECT_EQ(packets[0].payload, "01234567") << "no more than the credit";
    EXPECT_EQ(packets[1].header.op, OP_CREDIT_REQUEST);
    EXPECT_TRUE(receive(2).empty()) << "nothing more until the guest reads";

    ASSERT_TRUE(send(header(OP_CREDIT_UPDATE, 9, host_port, 0, 8, 8)));
    packets = receive();
    ASSERT_EQ(packets.size(), 2u);
    EXPECT_EQ(packets[0].payload, "89abcdef");
    EXPECT_EQ(packets[1].header.op, OP_CREDIT_REQUEST) << "out of credit again";
    ASSERT_TRUE(send(header(OP_CREDIT_UPDATE, 9, host_port, 0, 8, 16)));
    EXPECT_EQ(receive_one().payload, "ghij");
}

TEST_F(VsockFixture, GuestOverrunningTheAdvertisedBufferIsReset)
{
    Fd listener = listen_unix(uds + "_7000");
    ASSERT_TRUE(send(header(OP_REQUEST, 77, 7000)));
    ASSERT_EQ(receive_one().header.op, OP_RESPONSE);
    Fd host = sys::accept(listener.get()).value(); // accepts, never reads
    std::string chunk(MAX_PAYLOAD, 'z');
    bool reset = false;
    for (int i = 0; i < 64 && !reset; ++i) {
        ASSERT_TRUE(send(header(OP_RW, 77, 7000, MAX_PAYLOAD), chunk));
        for (auto const& packet : receive(1))
            reset |= packet.header.op == OP_RST;
    }
    EXPECT_TRUE(reset) << "the guest sent far more than " << BUFFER_BYTES << " unread bytes";
    EXPECT_EQ(device->connection_count(), 0u);
}

// A guest that sends to connections that do not exist, and never posts rx buffers, gets at most
// MAX_PENDING_RESETS RSTs queued; the rest are dropped and counted, and the device still serves.
TEST_F(VsockFixture, ResetsForUnknownConnectionsWaitAtMostTheLimit)
{
    constexpr u32 packets = 20000;
    for (u32 i = 0; i < packets; i += tx.layout().size)
        ASSERT_TRUE(send_many(tx.layout().size, [&](u32 n) { return header(OP_RW, 1000 + i + n, 6000, 0); }));
    EXPECT_EQ(device->pending_control_count(), MAX_PENDING_RESETS);
    EXPECT_EQ(device->stats().resets_dropped, packets - MAX_PENDING_RESETS);

    size_t resets = 0;
    for (auto packets = receive(); !packets.empty(); packets = receive(2)) {
        for (auto const& packet : packets)
            resets += packet.header.op == OP_RST;
    }
    EXPECT_EQ(resets, MAX_PENDING_RESETS);
    EchoServer server(uds + "_5000");
    ASSERT_TRUE(send(header(OP_REQUEST, 1234, 5000)));
    EXPECT_EQ(receive_one().header.op, OP_RESPONSE) << "the device still serves";
    ASSERT_TRUE(send(header(OP_RST, 1234, 5000)));
}

// A CREDIT_REQUEST flood on a live connection leaves one CREDIT_UPDATE waiting, not one per request.
TEST_F(VsockFixture, CreditRequestFloodLeavesOneCreditUpdate)
{
    EchoServer server(uds + "_5000");
    ASSERT_TRUE(send(header(OP_REQUEST, 1234, 5000)));
    ASSERT_EQ(receive_one().header.op, OP_RESPONSE);
    constexpr u32 packets = 20000;
    for (u32 i = 0; i < packets; i += tx.layout().size)
        ASSERT_TRUE(send_many(tx.layout().size, [&](u32) { return header(OP_CREDIT_REQUEST, 1234, 5000); }));
    EXPECT_EQ(device->pending_control_count(), 1u);
    EXPECT_EQ(device->stats().replies_coalesced, packets - 1);
    auto update = receive_one();
    EXPECT_EQ(update.header.op, OP_CREDIT_UPDATE);
    EXPECT_EQ(update.header.buf_alloc, BUFFER_BYTES);
    ASSERT_TRUE(send(header(OP_RW, 1234, 5000, 4), "ping"));
    EXPECT_EQ(receive_one().payload, "ping") << "the connection still works";
    ASSERT_TRUE(send(header(OP_RST, 1234, 5000)));
}

// Connecting and resetting in a loop without reading the rx queue leaves nothing queued: the
// RESPONSE of a connection goes when the connection goes.
TEST_F(VsockFixture, ConnectResetCyclesLeaveNothingQueued)
{
    Fd listener = listen_unix(uds + "_5001");
    ASSERT_EQ(::listen(listener.get(), 4096), 0); // room for every connection the loop makes
    constexpr u32 cycles = 2000;
    for (u32 i = 0; i < cycles; ++i)
        ASSERT_TRUE(send_many(2, [&](u32 n) { return header(n == 0 ? OP_REQUEST : OP_RST, 42, 5001); }));
    EXPECT_EQ(device->stats().resets_dropped, 0u) << "every connection was made";
    EXPECT_EQ(device->connection_count(), 0u);
    EXPECT_EQ(device->pending_control_count(), 0u);
    EXPECT_TRUE(receive(2).empty());
}

TEST(VsockDevice, ConnectionsBeyondTheLimitAreRefused)
{
    auto directory = sys::make_temp_dir("/tmp/kasou-vsock-XXXXXX").value();
    auto refused = VsockDevice::create({ GUEST_CID, directory + "/zero", 0 });
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().to_string().find("max_connections 0 is outside 1 to 65536"), std::string::npos) << refused.error().to_string();
    std::filesystem::remove_all(directory);
}

TEST_F(VsockFixture, ConnectionsBeyondTheConfiguredLimitGetAReset)
{
    device.reset();
    std::filesystem::remove(uds);
    device = VsockDevice::create({ GUEST_CID, uds, 2 }).value();
    Fd listener = listen_unix(uds + "_5002");
    for (u32 port = 1; port <= 2; ++port) {
        ASSERT_TRUE(send(header(OP_REQUEST, port, 5002)));
        EXPECT_EQ(receive_one().header.op, OP_RESPONSE);
    }
    ASSERT_TRUE(send(header(OP_REQUEST, 3, 5002)));
    EXPECT_EQ(receive_one().header.op, OP_RST) << "a third connection is over the limit of 2";
    EXPECT_EQ(device->connection_count(), 2u);
}
