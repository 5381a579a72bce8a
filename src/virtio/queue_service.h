#pragma once

#include <chrono>
#include <functional>
#include <vector>

#include "base/error.h"
#include "base/types.h"
#include "virtio/adaptive_poll.h"
#include "virtio/pause_gate.h"
#include "virtio/split_queue.h"
#include "virtio/virtio_device.h"

namespace kasou::virtio {

// What a started device's I/O thread does: waits for the driver's notifications, the device's
// host events and a stop event; serves the queues through the device; raises the interrupts the
// driver asked for. When its PauseGate asks, it parks between two passes over the queues, with
// every request it took answered (a device's process() completes what it pops).
//
// Between requests it busy-polls the queues' available indexes for a window an AdaptivePoll sizes,
// with notifications left off, so a driver that keeps the device busy adds buffers without a
// notification exit and the thread needs no wake-up. Before it sleeps it asks every queue for its
// next notification and then looks once more, so that no buffer waits for a notification that will
// never come. A queue counts as having work when its available index moved since the queue was
// last served: buffers a device leaves (a receive queue without host data) do not keep it busy.
class QueueService {
public:
    // One enabled queue, with the MSI-X vector its completions raise and its notification eventfd.
    struct Queue {
        u16 index;
        SplitQueue queue;
        u16 vector;
        int notify_fd;
    };
    // Raises a queue's interrupt (the transport sets the ISR and signals the vector).
    using Interrupt = std::function<void(u16 vector)>;

    QueueService(VirtioDevice& device, std::vector<Queue> queues, int stop_fd, PauseGate& pause_gate, Interrupt interrupt,
        std::chrono::nanoseconds poll_maximum);

    // Runs until stop_fd becomes readable ({}), or until the device or the wait fails (the error).
    ErrorOr<void> run();
    // The queues, where they stand (after run() returned: where the next pass would start).
    std::vector<Queue> take_queues();

private:
    struct Served {
        Queue queue;
        u16 seen_available { 0 }; // the driver's available index when the queue was last served
    };

    bool has_new_buffers(Served const& served) const { return served.queue.queue.available_index() != served.seen_available; }
    bool any_new_buffers() const;
    ErrorOr<void> serve(Served& served);
    ErrorOr<void> serve_new_buffers();
    ErrorOr<void> serve_host_events();
    void interrupt_if_wanted(Served& served);

    VirtioDevice& m_device;
    std::vector<Served> m_queues;
    std::vector<SplitQueue*> m_by_index; // for process_host_events(): one per device queue, nullptr where not enabled
    int m_stop_fd;
    PauseGate& m_pause_gate;
    Interrupt m_interrupt;
    AdaptivePoll m_poll;
};

} // namespace kasou::virtio
