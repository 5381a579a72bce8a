#include "virtio/queue_service.h"

#include <algorithm>

#include <sys/epoll.h>

#include "base/sys_event.h"
#include "base/sys_file.h"
#include "base/try.h"

namespace kasou::virtio {

namespace {

constexpr u64 STOP = ~u64 { 0 };
constexpr u64 HOST = STOP - 1;
constexpr u64 PAUSE = STOP - 2;
constexpr int MAX_EVENTS = 16;
// While polling, the queues are looked at after every pause; the epoll set (notifications of other
// kinds, host events, the stop event) and the clock only every so many pauses (a pause takes tens
// to a hundred-odd cycles), as each look at the epoll set is a system call.
constexpr u32 SPINS_PER_EPOLL_CHECK = 32;
// While the driver keeps adding buffers, the thread never waits; it still looks at the epoll set
// this often, so host events (a tap's frames, the stop event) are not held back by a busy queue.
constexpr std::chrono::microseconds EVENTS_CHECK_INTERVAL { 20 };
// How many times serve() asks the device about a queue whose driver keeps adding buffers, before
// it lets the loop look at the other queues and the events.
constexpr u32 MAX_PASSES_PER_SERVE = 8;

} // namespace

QueueService::QueueService(VirtioDevice& device, std::vector<Queue> queues, int stop_fd, PauseGate& pause_gate, Interrupt interrupt,
    std::chrono::nanoseconds poll_maximum)
    : m_device(device)
    , m_stop_fd(stop_fd)
    , m_pause_gate(pause_gate)
    , m_interrupt(std::move(interrupt))
    , m_poll(poll_maximum)
{
    // Every queue the device has gets a slot, enabled or not: devices look theirs up by index.
    m_by_index.resize(device.queue_count(), nullptr);
    for (auto& queue : queues) {
        if (queue.index >= m_by_index.size())
            m_by_index.resize(queue.index + 1u, nullptr);
        m_queues.push_back(Served { std::move(queue) });
    }
    for (auto& served : m_queues)
        m_by_index[served.queue.index] = &served.queue.queue;
}

std::vector<QueueService::Queue> QueueService::take_queues()
{
    std::vector<Queue> queues;
    for (auto& served : m_queues)
        queues.push_back(std::move(served.queue));
    m_queues.clear();
    m_by_index.clear();
    return queues;
}

bool QueueService::any_new_buffers() const
{
    return std::any_of(m_queues.begin(), m_queues.end(), [this](Served const& served) { return has_new_buffers(served); });
}

void QueueService::interrupt_if_wanted(Served& served)
{
    if (served.queue.queue.should_interrupt())
        m_interrupt(served.queue.vector);
}

ErrorOr<void> QueueService::serve(Served& served)
{
    // Until the driver stops adding buffers, or the device leaves some (it is not asked again for
    // those, or the thread would spin), or for a few passes: a driver that never stops must not
    // keep the thread from its other queues and its events.
    auto& queue = served.queue.queue;
    u16 looked_at;
    for (u32 pass = 1;; ++pass) {
        looked_at = queue.available_index();
        u16 before = queue.popped();
        TRY(m_device.process(served.queue.index, queue));
        if (queue.popped() == before || !queue.has_available() || pass == MAX_PASSES_PER_SERVE)
            break;
    }
    // Buffers added after process() last looked must count as new, or nothing would serve them.
    served.seen_available = queue.has_available() ? looked_at : queue.popped();
    queue.suppress_notifications(); // until the thread is about to sleep
    interrupt_if_wanted(served);
    return {};
}

ErrorOr<void> QueueService::serve_new_buffers()
{
    for (auto& served : m_queues) {
        if (has_new_buffers(served))
            TRY(serve(served));
    }
    return {};
}

ErrorOr<void> QueueService::serve_host_events()
{
    TRY(m_device.process_host_events(m_by_index));
    for (auto& served : m_queues)
        interrupt_if_wanted(served);
    return {};
}

ErrorOr<void> QueueService::run()
{
    auto epoll = TRY(sys::epoll_create());
    TRY(sys::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, m_stop_fd, EPOLLIN, STOP));
    TRY(sys::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, m_pause_gate.fd(), EPOLLIN, PAUSE));
    for (size_t slot = 0; slot < m_queues.size(); ++slot)
        TRY(sys::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, m_queues[slot].queue.notify_fd, EPOLLIN, slot));
    if (int host_fd = m_device.host_event_fd(); host_fd >= 0)
        TRY(sys::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, host_fd, EPOLLIN, HOST));

    epoll_event events[MAX_EVENTS];
    auto events_checked = std::chrono::steady_clock::now();
    for (;;) {
        auto waiting_since = std::chrono::steady_clock::now();
        u32 ready = 0;
        bool new_buffers = false;
        if (m_poll.window().count() > 0) {
            auto deadline = waiting_since + m_poll.window();
            for (u32 spins = 1; !(new_buffers = any_new_buffers()); ++spins) {
                __builtin_ia32_pause();
                if (spins % SPINS_PER_EPOLL_CHECK != 0)
                    continue;
                ready = TRY(sys::epoll_wait(epoll.get(), events, 0));
                events_checked = std::chrono::steady_clock::now();
                if (ready != 0 || events_checked >= deadline)
                    break;
            }
        }
        if (!new_buffers && ready == 0) {
            for (auto& served : m_queues)
                served.queue.queue.request_notification();
            new_buffers = any_new_buffers();
            if (!new_buffers) {
                ready = TRY(sys::epoll_wait(epoll.get(), events, -1));
                events_checked = std::chrono::steady_clock::now();
            }
        }
        auto now = std::chrono::steady_clock::now();
        m_poll.record(now - waiting_since);
        if (ready == 0 && now - events_checked >= EVENTS_CHECK_INTERVAL) {
            ready = TRY(sys::epoll_wait(epoll.get(), events, 0));
            events_checked = now;
        }
        for (u32 i = 0; i < ready; ++i) {
            if (events[i].data.u64 == STOP)
                return {};
            if (events[i].data.u64 == PAUSE) {
                m_pause_gate.park(); // between passes: nothing taken from a queue is unanswered
                continue;
            }
            if (events[i].data.u64 == HOST) {
                TRY(serve_host_events());
                continue;
            }
            // A notification says the driver added buffers: serve_new_buffers() finds them (or
            // has already, while polling).
            u64 drained;
            (void)sys::read(m_queues[events[i].data.u64].queue.notify_fd, &drained, sizeof(drained));
        }
        TRY(serve_new_buffers());
    }
}

} // namespace kasou::virtio
