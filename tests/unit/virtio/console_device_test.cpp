#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <string>
#include <unistd.h>

#include <gtest/gtest.h>

#include "base/sys_file.h"
#include "base/try.h"
#include "test_driver.h"
#include "virtio/console/console_chain.h"
#include "virtio/console/console_device.h"

using namespace kasou;
using namespace kasou::test;
using namespace kasou::virtio;
using namespace kasou::virtio::console;

namespace {

struct Pipe {
    Fd read_end;
    Fd write_end;
    Pipe()
    {
        int fds[2];
        MUST(sys::pipe(fds, O_NONBLOCK));
        read_end = Fd(fds[0]);
        write_end = Fd(fds[1]);
    }
};

bool readable(int fd)
{
    pollfd ready { fd, POLLIN, 0 };
    return ::poll(&ready, 1, 0) == 1;
}

// The receiveq and transmitq each in their own guest memory, so one TestDriver lays out each.
struct ConsoleFixture : ::testing::Test {
    Pipe input;
    Pipe output;
    memory::GuestMemory rx_memory = memory::GuestMemory::create(4 * MiB).value();
    memory::GuestMemory tx_memory = memory::GuestMemory::create(4 * MiB).value();
    TestDriver rx { rx_memory };
    TestDriver tx { tx_memory };
    SplitQueue rx_queue = SplitQueue::create(rx_memory, rx.layout(), false).value();
    SplitQueue tx_queue = SplitQueue::create(tx_memory, tx.layout(), false).value();
    std::shared_ptr<ConsoleDevice> device = ConsoleDevice::create({ input.read_end.get(), output.write_end.get(), 80, 25 }).value();
    std::array<SplitQueue*, 2> queues { &rx_queue, &tx_queue };

    u64 add_receive_buffer(u16 descriptor, u32 size)
    {
        u64 address = rx.buffer(std::vector<u8>(size, 0));
        rx.set_descriptor(descriptor, { address, size, WRITE, 0 });
        rx.make_available(descriptor);
        return address;
    }
    std::string output_text()
    {
        char buffer[256];
        ssize_t n = ::read(output.read_end.get(), buffer, sizeof(buffer));
        return n > 0 ? std::string(buffer, static_cast<size_t>(n)) : std::string();
    }
    std::string guest_bytes(u64 address, size_t size)
    {
        std::string text(size, '\0');
        EXPECT_TRUE(rx_memory.read(address, std::span(reinterpret_cast<u8*>(text.data()), size)));
        return text;
    }
};

} // namespace

TEST_F(ConsoleFixture, GuestOutputReachesTheHost)
{
    u64 first = tx.buffer({ 'h', 'e', 'l', 'l', 'o', ' ' });
    u64 second = tx.buffer({ 'w', 'o', 'r', 'l', 'd' });
    tx.set_descriptor(0, { first, 6, NEXT, 1 });
    tx.set_descriptor(1, { second, 5, 0, 0 });
    tx.make_available(0);
    ASSERT_TRUE(device->process(TRANSMITQ, tx_queue));
    EXPECT_EQ(output_text(), "hello world");
    EXPECT_EQ(tx.used_index(), 1);
    EXPECT_EQ(tx.used_element(0), (std::pair<u32, u32> { 0, 0 }));
}

TEST_F(ConsoleFixture, HostInputFillsReceiveBuffersInOrder)
{
    u64 small = add_receive_buffer(0, 2);
    u64 large = add_receive_buffer(1, 8);
    ASSERT_EQ(::write(input.write_end.get(), "abc", 3), 3);
    ASSERT_TRUE(readable(device->host_event_fd()));
    ASSERT_TRUE(device->process_host_events(queues));
    EXPECT_EQ(rx.used_index(), 2);
    EXPECT_EQ(rx.used_element(0), (std::pair<u32, u32> { 0, 2 }));
    EXPECT_EQ(rx.used_element(1), (std::pair<u32, u32> { 1, 1 }));
    EXPECT_EQ(guest_bytes(small, 2), "ab");
    EXPECT_EQ(guest_bytes(large, 1), "c");
}

TEST_F(ConsoleFixture, InputWaitsForBuffersWithoutKeepingTheThreadBusy)
{
    ASSERT_EQ(::write(input.write_end.get(), "key", 3), 3);
    ASSERT_TRUE(readable(device->host_event_fd()));
    ASSERT_TRUE(device->process_host_events(queues));
    EXPECT_EQ(rx.used_index(), 0) << "no buffer to put it in";
    EXPECT_FALSE(readable(device->host_event_fd())) << "the I/O thread would spin";

    u64 buffer = add_receive_buffer(0, 16);
    ASSERT_TRUE(device->process(RECEIVEQ, rx_queue));
    EXPECT_EQ(rx.used_element(0), (std::pair<u32, u32> { 0, 3 }));
    EXPECT_EQ(guest_bytes(buffer, 3), "key");
}

TEST_F(ConsoleFixture, EndOfInputStopsInputOnly)
{
    add_receive_buffer(0, 16);
    input.write_end.reset();
    ASSERT_TRUE(device->process_host_events(queues));
    EXPECT_EQ(rx.used_index(), 0);
    EXPECT_FALSE(readable(device->host_event_fd())) << "a closed input is no longer watched";
    u64 text = tx.buffer({ 'o', 'k' });
    tx.set_descriptor(0, { text, 2, 0, 0 });
    tx.make_available(0);
    ASSERT_TRUE(device->process(TRANSMITQ, tx_queue));
    EXPECT_EQ(output_text(), "ok");
}

TEST_F(ConsoleFixture, ChainsOfTheWrongDirectionAreDeviceErrors)
{
    u64 buffer = tx.buffer(std::vector<u8>(8));
    tx.set_descriptor(0, { buffer, 8, WRITE, 0 });
    tx.make_available(0);
    auto sent = device->process(TRANSMITQ, tx_queue);
    ASSERT_FALSE(sent);
    EXPECT_NE(sent.error().to_string().find("device-writable"), std::string::npos);

    u64 readonly = rx.buffer(std::vector<u8>(8));
    rx.set_descriptor(0, { readonly, 8, 0, 0 });
    rx.make_available(0);
    ASSERT_EQ(::write(input.write_end.get(), "x", 1), 1);
    auto received = device->process(RECEIVEQ, rx_queue);
    ASSERT_FALSE(received);
    EXPECT_NE(received.error().to_string().find("device-readable"), std::string::npos);
}

TEST_F(ConsoleFixture, ConfigSpaceAndEmergencyWrite)
{
    EXPECT_TRUE(device->device_features() & F_SIZE);
    EXPECT_TRUE(device->device_features() & F_EMERG_WRITE);
    u16 size[2] = {};
    device->read_config(0, std::span(reinterpret_cast<u8*>(size), 4));
    EXPECT_EQ(size[0], 80);
    EXPECT_EQ(size[1], 25);
    u32 ports = 0;
    device->read_config(4, std::span(reinterpret_cast<u8*>(&ports), 4));
    EXPECT_EQ(ports, 1u);
    u32 character = '!';
    device->write_config(8, std::span(reinterpret_cast<u8 const*>(&character), 4));
    EXPECT_EQ(output_text(), "!");

    auto plain = ConsoleDevice::create({}).value();
    EXPECT_FALSE(plain->device_features() & F_SIZE) << "no size without cols and rows";
}
