// QueueService against a driver thread that follows the virtio rules for notifications, in test
// memory: nothing is lost whether the service polls or sleeps, and polling spares notifications.
#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "base/event_fd.h"
#include "base/try.h"
#include "test_driver.h"
#include "virtio/queue_service.h"
#include "virtio/rng/entropy_device.h"

using namespace kasou;
using namespace kasou::test;
using namespace kasou::virtio;
using namespace std::chrono_literals;

namespace {

constexpr u16 QUEUE_SIZE = 16;

// Waits up to two seconds for condition(); returns whether it came true.
bool eventually(auto condition)
{
    auto deadline = std::chrono::steady_clock::now() + 2s;
    while (!condition()) {
        if (std::chrono::steady_clock::now() > deadline)
            return false;
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

// A driver that keeps `depth` one-buffer requests in flight on queue 0, notifying only when the
// device asks for it: through avail_event with EVENT_IDX (virtio 1.2, 2.7.10), as Linux and the
// test guests do, else through VIRTQ_USED_F_NO_NOTIFY (2.7.8).
class RacingDriver {
public:
    RacingDriver(memory::GuestMemory const& memory, TestDriver& ring, EventFd const& notify, bool event_index)
        : m_memory(memory)
        , m_ring(ring)
        , m_notify(notify)
        , m_event_index(event_index)
    {
        for (u16 slot = 0; slot < QUEUE_SIZE; ++slot)
            m_ring.set_descriptor(slot, { m_ring.buffer(std::vector<u8>(16)), 16, WRITE, 0 });
    }

    // Returns how many requests completed before a completion took longer than two seconds.
    u64 run(u64 requests, u16 depth)
    {
        u16 published = 0;
        u16 reaped = 0;
        u64 issued = 0;
        u64 completed = 0;
        for (; issued < depth && issued < requests; ++issued)
            publish(published++);
        kick(0, published);
        while (completed < requests) {
            auto deadline = std::chrono::steady_clock::now() + 2s;
            while (used_index().load(std::memory_order_acquire) == reaped) {
                if (std::chrono::steady_clock::now() > deadline)
                    return completed;
            }
            u16 before = published;
            for (u16 now = used_index().load(std::memory_order_acquire); reaped != now; ++reaped) {
                ++completed;
                if (issued < requests) {
                    publish(published++);
                    ++issued;
                }
            }
            if (published != before)
                kick(before, published);
        }
        return completed;
    }
    u64 notifications() const { return m_notifications; }

private:
    std::atomic_ref<u16> index_at(u64 address) const { return std::atomic_ref<u16>(*reinterpret_cast<u16*>(m_memory.span(address, 2).value().data())); }
    std::atomic_ref<u16> used_index() const { return index_at(m_ring.layout().used_ring + 2); }
    std::atomic_ref<u16> available_index() const { return index_at(m_ring.layout().available_ring + 2); }

    void publish(u16 position)
    {
        u64 slot_address = m_ring.layout().available_ring + 4 + 2ull * (position % QUEUE_SIZE);
        index_at(slot_address).store(static_cast<u16>(position % QUEUE_SIZE), std::memory_order_relaxed);
        available_index().store(static_cast<u16>(position + 1), std::memory_order_release);
    }
    void kick(u16 old_index, u16 new_index)
    {
        std::atomic_thread_fence(std::memory_order_seq_cst);
        bool wanted;
        if (m_event_index) {
            u16 event = index_at(m_ring.layout().used_ring + 4 + 8ull * QUEUE_SIZE).load(std::memory_order_acquire);
            wanted = static_cast<u16>(new_index - event - 1) < static_cast<u16>(new_index - old_index);
        } else {
            wanted = !(index_at(m_ring.layout().used_ring).load(std::memory_order_acquire) & 1);
        }
        if (wanted) {
            ++m_notifications;
            (void)m_notify.signal();
        }
    }

    memory::GuestMemory const& m_memory;
    TestDriver& m_ring;
    EventFd const& m_notify;
    bool m_event_index;
    u64 m_notifications { 0 };
};

struct QueueServiceTest : ::testing::Test {
    memory::GuestMemory memory = memory::GuestMemory::create(4 * MiB).value();
    TestDriver ring { memory, QUEUE_SIZE };
    EventFd notify = EventFd::create().value();
    EventFd stop = EventFd::create().value();
    std::unique_ptr<PauseGate> pause_gate = PauseGate::create().value();
    EntropyDevice device;
    std::atomic<u64> interrupts { 0 };

    struct Outcome {
        u64 completed;
        u64 notifications;
    };

    // Runs `service` on a thread of its own as a transport does: the gate knows the thread runs
    // from before it starts until it has ended.
    std::thread serve_gated(QueueService& service)
    {
        pause_gate->started();
        return std::thread([this, &service] {
            (void)service.run();
            pause_gate->ended();
        });
    }

    // Runs `requests` requests `depth` deep through a service polling at most `poll`.
    Outcome race(std::chrono::nanoseconds poll, u64 requests, u16 depth, bool event_index = true)
    {
        ring.set_used_event(0xFFFF); // the driver polls: no interrupt wanted
        std::vector<QueueService::Queue> queues;
        queues.push_back({ 0, SplitQueue::create(memory, ring.layout(), event_index).value(), 1, notify.fd() });
        QueueService service(device, std::move(queues), stop.fd(), *pause_gate, [this](u16) { ++interrupts; }, poll);
        ErrorOr<void> served;
        std::thread io([&] { served = service.run(); });
        RacingDriver driver(memory, ring, notify, event_index);
        u64 completed = driver.run(requests, depth);
        (void)stop.signal();
        io.join();
        EXPECT_TRUE(served.has_value()) << (served ? "" : served.error().to_string());
        return { completed, driver.notifications() };
    }
};

} // namespace

TEST_F(QueueServiceTest, NoRequestIsLostWhenTheServiceSleepsBetweenRequests)
{
    auto outcome = race(0ns, 20000, 1);
    EXPECT_EQ(outcome.completed, 20000u);
    EXPECT_GT(outcome.notifications, 0u);
}

TEST_F(QueueServiceTest, NoRequestIsLostWhenTheServicePolls)
{
    auto outcome = race(200us, 20000, 1);
    EXPECT_EQ(outcome.completed, 20000u);
}

TEST_F(QueueServiceTest, NoRequestIsLostAtDepthSixteenWhenTheServiceSleeps)
{
    EXPECT_EQ(race(0ns, 20000, 16).completed, 20000u);
}

TEST_F(QueueServiceTest, NoRequestIsLostAtDepthSixteenWhenTheServicePolls)
{
    EXPECT_EQ(race(200us, 20000, 16).completed, 20000u);
}

// The maximum is far above any scheduling delay of a loaded machine, so the window, once grown to
// cover the driver's turnaround, never shrinks: whether a notification is spared does not depend on
// how the threads happen to be scheduled.
constexpr auto WIDE_POLL = 1s;

TEST_F(QueueServiceTest, PollingSparesTheDriverMostNotifications)
{
    auto outcome = race(WIDE_POLL, 20000, 1);
    ASSERT_EQ(outcome.completed, 20000u);
    // A driver that answers within the window finds notifications off: only the requests that
    // arrive after the service gave up polling are notified.
    EXPECT_LT(outcome.notifications, 20000u / 2) << "requests picked up by polling need no notification";
}

TEST_F(QueueServiceTest, WithoutEventIndexNoRequestIsLostWhenTheServiceSleeps)
{
    auto sleeping = race(0ns, 20000, 1, false);
    EXPECT_EQ(sleeping.completed, 20000u);
    EXPECT_GT(sleeping.notifications, 0u);
}

TEST_F(QueueServiceTest, WithoutEventIndexPollingSparesNotifications)
{
    auto polling = race(WIDE_POLL, 20000, 1, false);
    ASSERT_EQ(polling.completed, 20000u);
    EXPECT_LT(polling.notifications, 20000u / 2) << "VIRTQ_USED_F_NO_NOTIFY stays set while the thread polls";
}

TEST_F(QueueServiceTest, InterruptsFollowTheUsedEvent)
{
    ring.set_used_event(0);
    std::vector<QueueService::Queue> queues;
    queues.push_back({ 0, SplitQueue::create(memory, ring.layout(), true).value(), 1, notify.fd() });
    u16 vector_seen = 0;
    QueueService service(device, std::move(queues), stop.fd(), *pause_gate, [&](u16 vector) { vector_seen = vector; ++interrupts; }, 32us);
    std::thread io([&] { (void)service.run(); });
    ring.set_descriptor(0, { ring.buffer(std::vector<u8>(16)), 16, WRITE, 0 });
    ring.make_available(0);
    (void)notify.signal();
    (void)eventually([&] { return interrupts.load() != 0; });
    (void)stop.signal();
    io.join();
    EXPECT_EQ(ring.used_index(), 1);
    EXPECT_EQ(interrupts.load(), 1u);
    EXPECT_EQ(vector_seen, 1);
}

TEST_F(QueueServiceTest, APausedServiceAnswersNothingUntilResumed)
{
    ring.set_used_event(0xFFFF);
    std::vector<QueueService::Queue> queues;
    queues.push_back({ 0, SplitQueue::create(memory, ring.layout(), true).value(), 1, notify.fd() });
    QueueService service(device, std::move(queues), stop.fd(), *pause_gate, [](u16) { }, 32us);
    std::thread io = serve_gated(service);
    for (u16 slot = 0; slot < 2; ++slot)
        ring.set_descriptor(slot, { ring.buffer(std::vector<u8>(16)), 16, WRITE, 0 });
    ring.make_available(0);
    (void)notify.signal();
    ASSERT_TRUE(eventually([&] { return ring.used_index() == 1; }));
    pause_gate->pause(); // returns once the thread is parked
    ring.make_available(1);
    (void)notify.signal();
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(ring.used_index(), 1) << "a parked service served a request";
    pause_gate->resume();
    EXPECT_TRUE(eventually([&] { return ring.used_index() == 2; }));
    (void)stop.signal();
    io.join();
    pause_gate->pause(); // no thread: returns at once
}

TEST_F(QueueServiceTest, APausedServiceStillStops)
{
    std::vector<QueueService::Queue> queues;
    queues.push_back({ 0, SplitQueue::create(memory, ring.layout(), true).value(), 1, notify.fd() });
    QueueService service(device, std::move(queues), stop.fd(), *pause_gate, [](u16) { }, 32us);
    std::thread io = serve_gated(service);
    pause_gate->pause();
    pause_gate->resume(); // what a transport's stop does first
    (void)stop.signal();
    io.join();
}

TEST_F(QueueServiceTest, StopsWhenTheStopEventFires)
{
    std::vector<QueueService::Queue> queues;
    queues.push_back({ 0, SplitQueue::create(memory, ring.layout(), true).value(), 1, notify.fd() });
    QueueService service(device, std::move(queues), stop.fd(), *pause_gate, [](u16) { }, 32us);
    (void)stop.signal();
    EXPECT_TRUE(service.run().has_value());
}

namespace {

// A device with three queues and a host descriptor, recording what process_host_events() gets.
struct HostFedDevice final : VirtioDevice {
    EventFd host = EventFd::create().value();
    std::atomic<size_t> queues_seen { 0 };
    std::atomic<int> enabled_seen { -1 };
    u16 device_type() const override { return DEVICE_VSOCK; }
    u64 device_features() const override { return 0; }
    u16 queue_count() const override { return 3; }
    void read_config(u64, std::span<u8> data) override { std::fill(data.begin(), data.end(), 0); }
    // When set, every process() answers what is available and then adds one buffer (descriptor 0)
    // to `feeding`, as a driver that never stops would between passes.
    std::atomic<TestDriver*> feeding { nullptr };
    ErrorOr<void> process(u16, SplitQueue& queue) override
    {
        for (auto chain = TRY(queue.pop()); chain; chain = TRY(queue.pop()))
            TRY(queue.push(chain->head, 0));
        if (TestDriver* driver = feeding.load())
            driver->make_available(0);
        return {};
    }
    int host_event_fd() const override { return host.fd(); }
    ErrorOr<void> process_host_events(std::span<SplitQueue* const> queues) override
    {
        (void)host.consume();
        for (size_t i = 0; i < queues.size(); ++i) {
            if (queues[i])
                enabled_seen = static_cast<int>(i);
        }
        queues_seen = queues.size();
        return {};
    }
};

} // namespace

TEST_F(QueueServiceTest, HostEventsSeeEveryQueueOfTheDeviceByIndex)
{
    HostFedDevice fed;
    std::vector<QueueService::Queue> queues;
    queues.push_back({ 1, SplitQueue::create(memory, ring.layout(), true).value(), 1, notify.fd() }); // only queue 1 enabled
    QueueService service(fed, std::move(queues), stop.fd(), *pause_gate, [](u16) { }, 32us);
    std::thread io([&] { (void)service.run(); });
    (void)fed.host.signal();
    (void)eventually([&] { return fed.queues_seen.load() != 0; });
    (void)stop.signal();
    io.join();
    EXPECT_EQ(fed.queues_seen.load(), 3u) << "a slot for each of the device's queues, enabled or not";
    EXPECT_EQ(fed.enabled_seen.load(), 1);
}

// A driver that never stops adding buffers keeps the thread from waiting, but host events and the
// stop event are still seen.
TEST_F(QueueServiceTest, HostEventsAndStopAreSeenWhileTheDriverKeepsAddingBuffers)
{
    HostFedDevice fed;
    std::vector<QueueService::Queue> queues;
    queues.push_back({ 0, SplitQueue::create(memory, ring.layout(), true).value(), 1, notify.fd() });
    ring.set_descriptor(0, { ring.buffer(std::vector<u8>(16)), 16, WRITE, 0 });
    fed.feeding = &ring;
    QueueService service(fed, std::move(queues), stop.fd(), *pause_gate, [](u16) { }, 32us);
    ring.make_available(0);
    std::atomic<bool> returned { false };
    std::thread io([&] {
        (void)service.run();
        returned = true;
    });
    std::this_thread::sleep_for(20ms);
    (void)fed.host.signal();
    (void)eventually([&] { return fed.queues_seen.load() != 0; });
    EXPECT_EQ(fed.queues_seen.load(), 3u) << "the host event was handled while the queue stayed busy";
    (void)stop.signal();
    EXPECT_TRUE(eventually([&] { return returned.load(); })) << "the stop event was seen while the queue stayed busy";
    fed.feeding = nullptr; // lets a thread that missed the stop event go to sleep and see it
    io.join();
}
