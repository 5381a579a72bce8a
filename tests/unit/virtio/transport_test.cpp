#include <algorithm>
#include <dirent.h>
#include <fstream>
#include <atomic>
#include <chrono>
#include <fcntl.h>
#include <unistd.h>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "base/sys_file.h"
#include "base/try.h"

#include "test_driver.h"
#include "virtio/pci_transport.h"
#include "virtio/console/console_device.h"
#include "virtio/rng/entropy_device.h"

using namespace kasou;
using namespace kasou::test;
using namespace kasou::virtio;
using namespace std::chrono_literals;

namespace {

struct RecordingSink final : pci::MsiSink {
    std::mutex lock;
    std::vector<u16> delivered;
    void route_changed(u16, u64, u32) override { }
    void deliver(u16 vector) override
    {
        std::lock_guard guard(lock);
        delivered.push_back(vector);
    }
    size_t count()
    {
        std::lock_guard guard(lock);
        return delivered.size();
    }
};

// A device that leaves every buffer on its queue (a receive queue with nothing to receive) and
// counts how often it is asked.
struct IdleDevice final : VirtioDevice {
    std::atomic<int> calls { 0 };
    u16 device_type() const override { return DEVICE_CONSOLE; }
    u64 device_features() const override { return 0; }
    u16 queue_count() const override { return 1; }
    void read_config(u64, std::span<u8> data) override { std::fill(data.begin(), data.end(), 0); }
    ErrorOr<void> process(u16, SplitQueue&) override
    {
        ++calls;
        return {};
    }
};

// Plays a virtio-pci driver against a transport through its BAR and configuration space.
struct TransportFixture : ::testing::Test {
    memory::GuestMemory memory = memory::GuestMemory::create(4 * MiB).value();
    TestDriver ring { memory };
    RecordingSink sink;
    std::unique_ptr<PciTransport> transport = PciTransport::create(memory, std::make_shared<EntropyDevice>(), sink).value();

    u32 read(u64 offset, size_t size = 4)
    {
        u32 value = 0;
        transport->bar_read(0, offset, std::span(reinterpret_cast<u8*>(&value), size));
        return value;
    }
    void write(u64 offset, u32 value, size_t size = 4) { transport->bar_write(0, offset, std::span(reinterpret_cast<u8 const*>(&value), size)); }

    u64 device_features()
    {
        write(0x00, 0);
        u64 low = read(0x04);
        write(0x00, 1);
        return low | (u64 { read(0x04) } << 32);
    }
    void set_driver_features(u64 features)
    {
        write(0x08, 0);
        write(0x0C, static_cast<u32>(features));
        write(0x08, 1);
        write(0x0C, static_cast<u32>(features >> 32));
    }
    u8 status() { return static_cast<u8>(read(0x14, 1)); }
    void set_status(u8 value) { write(0x14, value, 1); }

    void enable_msix()
    {
        auto& config = transport->config();
        for (u16 offset = config.read(0x34, 1); offset; offset = static_cast<u16>(config.read(offset + 1, 1))) {
            if (config.read(offset, 1) == 0x11) {
                config.write(offset + 2, 2, 0x8000);
                transport->config_written(static_cast<u16>(offset + 2), 2);
            }
        }
        for (u32 vector = 0; vector < 2; ++vector) {
            write(PciTransport::MSIX_TABLE_OFFSET + 16 * vector, 0xFEE0'0000);
            write(PciTransport::MSIX_TABLE_OFFSET + 16 * vector + 8, 0x30 + vector);
            write(PciTransport::MSIX_TABLE_OFFSET + 16 * vector + 12, 0);
        }
    }

    // The whole initialization sequence of virtio 1.2, 3.1.1, with queue 0 laid out by `ring`.
    void bring_up(u64 features)
    {
        enable_msix();
        set_status(1 | 2);
        set_driver_features(features);
        set_status(1 | 2 | PciTransport::STATUS_FEATURES_OK);
        ASSERT_TRUE(status() & PciTransport::STATUS_FEATURES_OK);
        write(0x10, 0, 2);      // config vector 0
        write(0x16, 0, 2);      // queue 0
        write(0x18, ring.layout().size, 2);
        write(0x1A, 1, 2);      // queue vector 1
        write(0x20, static_cast<u32>(ring.layout().descriptor_table));
        write(0x28, static_cast<u32>(ring.layout().available_ring));
        write(0x30, static_cast<u32>(ring.layout().used_ring));
        write(0x1C, 1, 2);
        set_status(1 | 2 | PciTransport::STATUS_FEATURES_OK | PciTransport::STATUS_DRIVER_OK);
    }

    bool wait_until(auto condition)
    {
        for (int i = 0; i < 500; ++i) {
            if (condition())
                return true;
            std::this_thread::sleep_for(2ms);
        }
        return false;
    }
};

} // namespace

TEST_F(TransportFixture, PresentsModernVirtioCapabilities)
{
    auto& config = transport->config();
    EXPECT_EQ(config.read(0x00, 2), 0x1af4u);
    EXPECT_EQ(config.read(0x02, 2), 0x1044u) << "0x1040 + device type 4";
    std::vector<u8> types;
    for (u16 offset = config.read(0x34, 1); offset; offset = static_cast<u16>(config.read(offset + 1, 1))) {
        if (config.read(offset, 1) == 0x09)
            types.push_back(static_cast<u8>(config.read(offset + 3, 1)));
    }
    EXPECT_EQ(types, (std::vector<u8> { 1, 3, 4, 2 })) << "common, ISR, device and notify capabilities";
    u64 features = device_features();
    EXPECT_TRUE(features & F_VERSION_1);
    EXPECT_TRUE(features & F_RING_EVENT_IDX);
    EXPECT_TRUE(features & F_RING_INDIRECT_DESC);
    EXPECT_EQ(read(0x12, 2), 1u) << "one queue";
}

TEST_F(TransportFixture, RefusesFeaturesThatWereNotOffered)
{
    set_status(1 | 2);
    set_driver_features(F_VERSION_1 | (1ull << 40));
    set_status(1 | 2 | PciTransport::STATUS_FEATURES_OK);
    EXPECT_FALSE(status() & PciTransport::STATUS_FEATURES_OK);
    set_status(0);
    set_status(1 | 2);
    set_driver_features(F_RING_EVENT_IDX); // no VERSION_1: a legacy driver
    set_status(1 | 2 | PciTransport::STATUS_FEATURES_OK);
    EXPECT_FALSE(status() & PciTransport::STATUS_FEATURES_OK);
}

TEST_F(TransportFixture, ServesNotificationsAndInterrupts)
{
    bring_up(F_VERSION_1 | F_RING_EVENT_IDX);
    u64 buffer = ring.buffer(std::vector<u8>(64, 0));
    ring.set_descriptor(0, { buffer, 64, WRITE, 0 });
    ring.set_used_event(0);
    ring.make_available(0);
    write(PciTransport::notify_offset(0), 0, 2);
    ASSERT_TRUE(wait_until([&] { return ring.used_index() == 1; }));
    EXPECT_EQ(ring.used_element(0), (std::pair<u32, u32> { 0, 64 }));
    std::vector<u8> random(64);
    ASSERT_TRUE(memory.read(buffer, random));
    EXPECT_NE(std::count(random.begin(), random.end(), 0), 64) << "filled with entropy";
    ASSERT_TRUE(wait_until([&] { return sink.count() == 1; }));
    EXPECT_EQ(sink.delivered[0], 1) << "the queue's vector";
    EXPECT_EQ(read(PciTransport::ISR_OFFSET, 1), 1u);
    EXPECT_EQ(read(PciTransport::ISR_OFFSET, 1), 0u) << "reading the ISR clears it";
}

TEST_F(TransportFixture, HostileChainPutsOnlyThisDeviceIntoNeedsReset)
{
    bring_up(F_VERSION_1);
    ring.set_descriptor(0, { 64 * MiB, 64, WRITE, 0 }); // outside RAM
    ring.make_available(0);
    write(PciTransport::notify_offset(0), 0, 2);
    ASSERT_TRUE(wait_until([&] { return (status() & PciTransport::STATUS_NEEDS_RESET) != 0; }));
    ASSERT_TRUE(wait_until([&] { return sink.count() == 1; }));
    EXPECT_EQ(sink.delivered[0], 0) << "the configuration-change vector";
    EXPECT_EQ(ring.used_index(), 0) << "nothing was completed";

    // After a reset the driver can start over.
    set_status(0);
    EXPECT_EQ(status(), 0);
    ring.set_available_index(0);
    ring.set_descriptor(0, { ring.buffer(std::vector<u8>(8)), 8, WRITE, 0 });
    ring.make_available(0);
    bring_up(F_VERSION_1);
    write(PciTransport::notify_offset(0), 0, 2);
    EXPECT_TRUE(wait_until([&] { return ring.used_index() == 1; }));
    EXPECT_FALSE(status() & PciTransport::STATUS_NEEDS_RESET);
}

TEST_F(TransportFixture, QueueLayoutOutsideRamIsRefusedAtDriverOk)
{
    enable_msix();
    set_status(1 | 2);
    set_driver_features(F_VERSION_1);
    set_status(1 | 2 | PciTransport::STATUS_FEATURES_OK);
    write(0x16, 0, 2);
    write(0x20, 0xFFFF'0000);
    write(0x28, 0x2000);
    write(0x30, 0x3000);
    write(0x1C, 1, 2);
    set_status(1 | 2 | PciTransport::STATUS_FEATURES_OK | PciTransport::STATUS_DRIVER_OK);
    EXPECT_TRUE(status() & PciTransport::STATUS_NEEDS_RESET);
}

TEST_F(TransportFixture, HostEventsOfADeviceReachTheGuest)
{
    int fds[2];
    ASSERT_TRUE(sys::pipe(fds, O_NONBLOCK));
    Fd input(fds[0]);
    Fd keyboard(fds[1]);
    transport = PciTransport::create(memory, console::ConsoleDevice::create({ input.get(), -1 }).value(), sink).value();
    bring_up(F_VERSION_1); // receiveq only: the transmitq stays disabled
    u64 buffer = ring.buffer(std::vector<u8>(16, 0));
    ring.set_descriptor(0, { buffer, 16, WRITE, 0 });
    ring.make_available(0);
    write(PciTransport::notify_offset(0), 0, 2);
    ASSERT_EQ(::write(keyboard.get(), "ls\n", 3), 3);
    ASSERT_TRUE(wait_until([&] { return ring.used_index() == 1; })) << "the I/O thread polls the device's host descriptor";
    EXPECT_EQ(ring.used_element(0), (std::pair<u32, u32> { 0, 3 }));
    std::string typed(3, '\0');
    ASSERT_TRUE(memory.read(buffer, std::span(reinterpret_cast<u8*>(typed.data()), 3)));
    EXPECT_EQ(typed, "ls\n");
    ASSERT_TRUE(wait_until([&] { return sink.count() == 1; }));
    EXPECT_EQ(sink.delivered[0], 1) << "the receiveq's vector";
    transport.reset(); // stops the I/O thread before the pipe closes
}

TEST_F(TransportFixture, BuffersADeviceLeavesDoNotKeepTheThreadBusy)
{
    auto idle = std::make_shared<IdleDevice>();
    transport = PciTransport::create(memory, idle, sink).value();
    bring_up(F_VERSION_1 | F_RING_EVENT_IDX);
    ring.set_descriptor(0, { ring.buffer(std::vector<u8>(16)), 16, WRITE, 0 });
    ring.make_available(0);
    write(PciTransport::notify_offset(0), 0, 2);
    ASSERT_TRUE(wait_until([&] { return idle->calls.load() > 0; }));
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(idle->calls.load(), 1) << "asked once per notification";
    EXPECT_EQ(ring.used_index(), 0);
    transport.reset();
}

namespace {

// Records the routes a transport asks for; can refuse them.
struct RecordingRouter final : NotifyRouter {
    std::vector<std::pair<u64, int>> routes; // what is routed now
    int changes { 0 };
    bool refuse { false };
    ErrorOr<void> route(u64 address, int fd) override
    {
        ++changes;
        if (refuse)
            return make_errno_error(ENOSPC, "KVM_IOEVENTFD");
        routes.emplace_back(address, fd);
        return {};
    }
    ErrorOr<void> unroute(u64 address, int fd) override
    {
        ++changes;
        auto found = std::find(routes.begin(), routes.end(), std::pair { address, fd });
        if (found == routes.end())
            return make_errno_error(ENOENT, "KVM_IOEVENTFD (deassign)");
        routes.erase(found);
        return {};
    }
};

// The driver's view: configuration-space writes go through the transport's config_written().
void config_write(PciTransport& transport, u16 offset, u8 size, u32 value)
{
    transport.config().write(offset, size, value);
    transport.config_written(offset, size);
}

} // namespace

// Notifications are routed at the BAR while memory decoding is on, not while it is off, and follow
// the BAR when the driver moves it.
TEST(TransportNotifyRoutes, FollowMemoryDecodingAndBarMoves)
{
    auto memory = memory::GuestMemory::create(1 * MiB).value();
    RecordingSink sink;
    RecordingRouter router;
    auto transport = PciTransport::create(memory, std::make_shared<EntropyDevice>(), sink, &router).value();
    transport->config().set_memory_bar(0, PciTransport::BAR_SIZE, 0xC000'0000, true);
    transport->route_notifications();
    EXPECT_TRUE(router.routes.empty()) << "memory decoding is still off";

    config_write(*transport, pci::ConfigSpace::COMMAND, 2, pci::ConfigSpace::COMMAND_MEMORY);
    ASSERT_EQ(router.routes.size(), 1u) << "the entropy device has one queue";
    EXPECT_EQ(router.routes[0].first, 0xC000'0000 + PciTransport::notify_offset(0));
    EXPECT_EQ(transport->routed_base(), 0xC000'0000u);

    // Linux's way of moving a BAR: decoding off, both halves written, decoding on.
    config_write(*transport, pci::ConfigSpace::COMMAND, 2, 0);
    EXPECT_TRUE(router.routes.empty());
    config_write(*transport, 0x10, 4, 0xC010'0000);
    config_write(*transport, 0x14, 4, 0);
    EXPECT_TRUE(router.routes.empty());
    config_write(*transport, pci::ConfigSpace::COMMAND, 2, pci::ConfigSpace::COMMAND_MEMORY);
    ASSERT_EQ(router.routes.size(), 1u);
    EXPECT_EQ(router.routes[0].first, 0xC010'0000 + PciTransport::notify_offset(0));

    // Moved while decoding stays on: the route moves at once.
    config_write(*transport, 0x10, 4, 0xC020'0000);
    ASSERT_EQ(router.routes.size(), 1u);
    EXPECT_EQ(router.routes[0].first, 0xC020'0000 + PciTransport::notify_offset(0));

    // Writes that change neither decoding nor the BAR leave the routes alone.
    int changes = router.changes;
    config_write(*transport, pci::ConfigSpace::COMMAND, 2, pci::ConfigSpace::COMMAND_MEMORY | pci::ConfigSpace::COMMAND_BUS_MASTER);
    EXPECT_EQ(router.changes, changes);
}

// A route the router refuses is logged and not retried on every configuration write; those
// notifications keep arriving through bar_write() (the userspace exit), as the other tests use.
TEST(TransportNotifyRoutes, ARefusedRouteIsNotRetriedOnEveryWrite)
{
    auto memory = memory::GuestMemory::create(1 * MiB).value();
    RecordingSink sink;
    RecordingRouter router;
    router.refuse = true;
    auto transport = PciTransport::create(memory, std::make_shared<EntropyDevice>(), sink, &router).value();
    transport->config().set_memory_bar(0, PciTransport::BAR_SIZE, 0xC000'0000, true);
    config_write(*transport, pci::ConfigSpace::COMMAND, 2, pci::ConfigSpace::COMMAND_MEMORY);
    EXPECT_TRUE(router.routes.empty());
    EXPECT_EQ(router.changes, 1);
    EXPECT_EQ(transport->routed_base(), 0xC000'0000u);
    config_write(*transport, pci::ConfigSpace::COMMAND, 2, pci::ConfigSpace::COMMAND_MEMORY | pci::ConfigSpace::COMMAND_BUS_MASTER);
    EXPECT_EQ(router.changes, 1);
}

namespace {

// The device status transitions virtio 1.2 forbids (2.1, 3.1.1) and the queue and vector writes it
// forbids (4.1.4.3, 4.1.5.1): each has a defined outcome, and the I/O thread is never started twice.
struct TransportStateMachine : TransportFixture {
    static constexpr u8 ACK = 1; // virtio 1.2, 2.1
    static constexpr u8 DRIVER = 2;
    static constexpr u8 FEATURES_OK = PciTransport::STATUS_FEATURES_OK;
    static constexpr u8 DRIVER_OK = PciTransport::STATUS_DRIVER_OK;
    static constexpr u8 NEEDS_RESET = PciTransport::STATUS_NEEDS_RESET;
    static constexpr u8 FAILED = 0x80;
    static constexpr u8 RUNNING = ACK | DRIVER | FEATURES_OK | DRIVER_OK;

    // The I/O threads of entropy devices in this process (named by the transport).
    static int io_threads()
    {
        int count = 0;
        DIR* tasks = ::opendir("/proc/self/task");
        while (auto* entry = ::readdir(tasks)) {
            if (entry->d_name[0] == '.')
                continue;
            std::ifstream comm(std::string("/proc/self/task/") + entry->d_name + "/comm");
            std::string name;
            std::getline(comm, name);
            count += name == "virtio-rng";
        }
        ::closedir(tasks);
        return count;
    }

    // Whether the device fills one more 8-byte buffer on queue 0.
    bool serves_a_request()
    {
        u16 before = ring.used_index();
        u16 head = ring.available_index() % ring.layout().size;
        ring.set_descriptor(head, { ring.buffer(std::vector<u8>(8)), 8, WRITE, 0 });
        ring.make_available(head);
        write(PciTransport::notify_offset(0), 0, 2);
        return wait_until([&] { return ring.used_index() == before + 1; });
    }

    // Resets, clears the rings and brings the device up again; it must serve a request.
    void restart()
    {
        set_status(0);
        ASSERT_EQ(status(), 0);
        EXPECT_EQ(io_threads(), 0) << "a reset ends the I/O thread";
        ASSERT_TRUE(memory.write(0x1000, std::vector<u8>(0x3000, 0))); // fresh rings
        bring_up(F_VERSION_1);
        EXPECT_EQ(status(), RUNNING);
        EXPECT_TRUE(serves_a_request()) << "the device works again after a reset";
        EXPECT_EQ(io_threads(), 1);
    }
};

} // namespace

// The reported case: DRIVER_OK cleared without a reset, then set again. Before the state machine,
// the second DRIVER_OK started a second I/O thread over the running one's std::thread: terminate.
TEST_F(TransportStateMachine, ClearingDriverOkWithoutResetNeedsReset)
{
    bring_up(F_VERSION_1);
    ASSERT_EQ(status(), RUNNING);
    ASSERT_TRUE(wait_until([] { return io_threads() == 1; })) << "the thread names itself once it runs";
    set_status(ACK | DRIVER | FEATURES_OK);
    EXPECT_EQ(status(), RUNNING | NEEDS_RESET) << "the bits stay; the device asks for a reset";
    ASSERT_TRUE(wait_until([&] { return sink.count() == 1; }));
    EXPECT_EQ(sink.delivered[0], 0) << "the configuration-change vector";
    EXPECT_EQ(read(PciTransport::ISR_OFFSET, 1), 2u) << "ISR: configuration change";
    set_status(RUNNING);
    EXPECT_EQ(status(), RUNNING | NEEDS_RESET);
    EXPECT_EQ(sink.count(), 1u) << "one configuration interrupt per reset cycle";
    EXPECT_TRUE(serves_a_request()) << "the running thread goes on serving";
    EXPECT_EQ(io_threads(), 1) << "never a second I/O thread";
    restart();
}

TEST_F(TransportStateMachine, ClearingEarlierBitsIsRefused)
{
    set_status(ACK | DRIVER);
    set_status(ACK);
    EXPECT_EQ(status(), ACK | DRIVER | NEEDS_RESET);
    set_driver_features(F_VERSION_1);
    set_status(ACK | DRIVER | FEATURES_OK);
    EXPECT_EQ(status(), ACK | DRIVER | NEEDS_RESET) << "nothing but a reset or FAILED once NEEDS_RESET is set";
    // A driver that gives up reads the status and writes it back with FAILED or-ed in.
    set_status(static_cast<u8>(status() | FAILED));
    EXPECT_EQ(status(), ACK | DRIVER | NEEDS_RESET | FAILED);
    EXPECT_EQ(io_threads(), 0);
    restart();
}

TEST_F(TransportStateMachine, BitsSetOutOfOrderAreRefused)
{
    set_status(DRIVER); // without ACKNOWLEDGE
    EXPECT_EQ(status(), NEEDS_RESET) << "the write is not taken";
    set_status(0);
    set_status(ACK | DRIVER);
    set_status(ACK | DRIVER | DRIVER_OK); // DRIVER_OK without FEATURES_OK
    EXPECT_EQ(status(), ACK | DRIVER | NEEDS_RESET);
    EXPECT_EQ(io_threads(), 0);
    restart();
}

TEST_F(TransportStateMachine, AllBitsInOneWriteAreTakenInOrder)
{
    enable_msix();
    set_driver_features(F_VERSION_1);
    write(0x16, 0, 2);
    write(0x20, static_cast<u32>(ring.layout().descriptor_table));
    write(0x28, static_cast<u32>(ring.layout().available_ring));
    write(0x30, static_cast<u32>(ring.layout().used_ring));
    write(0x1C, 1, 2);
    set_status(RUNNING);
    EXPECT_EQ(status(), RUNNING);
    EXPECT_TRUE(serves_a_request());
}

TEST_F(TransportStateMachine, RefusedFeaturesWithDriverOkInTheSameWriteStartNothing)
{
    set_status(ACK | DRIVER);
    set_driver_features(F_VERSION_1 | (1ull << 40)); // not offered
    set_status(RUNNING);
    EXPECT_FALSE(status() & FEATURES_OK);
    EXPECT_TRUE(status() & NEEDS_RESET);
    EXPECT_EQ(io_threads(), 0);
    restart();
}

TEST_F(TransportStateMachine, FailedIsTerminalUntilReset)
{
    set_status(ACK | DRIVER | FAILED);
    EXPECT_EQ(status(), ACK | DRIVER | FAILED);
    set_driver_features(F_VERSION_1);
    set_status(ACK | DRIVER | FAILED | FEATURES_OK);
    EXPECT_EQ(status(), ACK | DRIVER | FAILED);
    restart();
}

TEST_F(TransportStateMachine, QueueFieldsAreFrozenAfterDriverOk)
{
    bring_up(F_VERSION_1);
    write(0x16, 0, 2);
    write(0x18, 4, 2);
    write(0x1A, 0, 2);
    write(0x1C, 0, 2);
    write(0x20, 0x8000);
    write(0x28, 0x9000);
    write(0x30, 0xA000);
    EXPECT_EQ(read(0x18, 2), ring.layout().size);
    EXPECT_EQ(read(0x1A, 2), 1u) << "the vector the I/O thread uses";
    EXPECT_EQ(read(0x1C, 2), 1u) << "queue_enable cannot be cleared";
    EXPECT_EQ(read(0x20), ring.layout().descriptor_table);
    EXPECT_EQ(read(0x28), ring.layout().available_ring);
    EXPECT_EQ(read(0x30), ring.layout().used_ring);
    EXPECT_EQ(status(), RUNNING);
    EXPECT_TRUE(serves_a_request());
}

TEST_F(TransportStateMachine, QueueFieldsOfAnEnabledQueueAndBadSizesAreIgnored)
{
    set_status(ACK | DRIVER);
    write(0x16, 0, 2);
    write(0x18, 3, 2); // not a power of two
    EXPECT_EQ(read(0x18, 2), 256u);
    write(0x18, 512, 2); // above the device's maximum
    EXPECT_EQ(read(0x18, 2), 256u);
    write(0x18, 0, 2);
    EXPECT_EQ(read(0x18, 2), 256u);
    write(0x18, 16, 2);
    EXPECT_EQ(read(0x18, 2), 16u);
    write(0x20, 0x1000);
    write(0x1C, 1, 2);
    write(0x18, 8, 2);
    write(0x20, 0x5000);
    EXPECT_EQ(read(0x18, 2), 16u) << "enabled: the layout is fixed";
    EXPECT_EQ(read(0x20), 0x1000u);
}

TEST_F(TransportStateMachine, QueueSelectOutOfRangeReachesNoQueue)
{
    set_status(ACK | DRIVER);
    write(0x16, 7, 2); // the entropy device has one queue
    EXPECT_EQ(read(0x16, 2), 7u);
    write(0x18, 16, 2);
    write(0x1C, 1, 2);
    write(0x20, 0x1000);
    EXPECT_EQ(read(0x18, 2), 0u) << "size 0: no such queue";
    EXPECT_EQ(read(0x1C, 2), 0u);
    EXPECT_EQ(read(0x1E, 2), 0u) << "no notification offset beyond the notify region";
    EXPECT_EQ(read(0x1A, 2), 0xFFFFu);
    EXPECT_EQ(read(0x20), 0u);
    write(0x16, 0, 2);
    EXPECT_EQ(read(0x1C, 2), 0u) << "queue 0 untouched";
}

TEST_F(TransportStateMachine, VectorsOutOfRangeReadBackAsNoVector)
{
    // The entropy device has two MSI-X vectors: configuration and queue 0.
    write(0x10, 2, 2);
    EXPECT_EQ(read(0x10, 2), 0xFFFFu);
    write(0x10, 1, 2);
    EXPECT_EQ(read(0x10, 2), 1u);
    write(0x16, 0, 2);
    write(0x1A, 5, 2);
    EXPECT_EQ(read(0x1A, 2), 0xFFFFu);
    write(0x1A, 0, 2);
    EXPECT_EQ(read(0x1A, 2), 0u);
}

TEST_F(TransportStateMachine, FeatureSelectorsOutOfRangeReadZero)
{
    write(0x00, 9);
    EXPECT_EQ(read(0x04), 0u);
    write(0x08, 9);
    write(0x0C, 0xFFFF'FFFF);
    EXPECT_EQ(read(0x0C), 0u);
    EXPECT_EQ(device_features() & (1ull << 40), 0u);
}

namespace {

// A device whose requests take a while, to show that a reset waits for the one in flight.
struct SlowDevice final : VirtioDevice {
    std::atomic<bool> busy { false };
    std::atomic<int> finished { 0 };
    u16 device_type() const override { return DEVICE_ENTROPY; }
    u64 device_features() const override { return 0; }
    u16 queue_count() const override { return 1; }
    void read_config(u64, std::span<u8> data) override { std::fill(data.begin(), data.end(), 0); }
    ErrorOr<void> process(u16, SplitQueue& queue) override
    {
        while (auto chain = TRY(queue.pop())) {
            busy = true;
            std::this_thread::sleep_for(100ms);
            TRY(queue.push(chain->head, 0));
            ++finished;
            busy = false;
        }
        return {};
    }
};

} // namespace

TEST_F(TransportStateMachine, ResetWaitsForTheRequestInFlight)
{
    auto slow = std::make_shared<SlowDevice>();
    transport = PciTransport::create(memory, slow, sink).value();
    bring_up(F_VERSION_1);
    ring.set_descriptor(0, { ring.buffer(std::vector<u8>(8)), 8, WRITE, 0 });
    ring.make_available(0);
    write(PciTransport::notify_offset(0), 0, 2);
    ASSERT_TRUE(wait_until([&] { return slow->busy.load(); }));
    set_status(0);
    EXPECT_EQ(slow->finished.load(), 1) << "the request completed before the reset returned";
    EXPECT_FALSE(slow->busy.load());
    EXPECT_EQ(status(), 0);
    EXPECT_EQ(io_threads(), 0);
}
