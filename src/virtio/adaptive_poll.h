#pragma once

#include <chrono>

namespace kasou::virtio {

// How long an I/O thread busy-polls its queues before it arms notifications and sleeps, adapted
// to how soon work has been arriving. Polling that finds the next request saves the driver its
// notification exit and the thread its wake-up; polling that finds nothing only burns CPU. So the
// window grows (from a small start, by doubling, up to the maximum) while work keeps arriving
// within the maximum but after the window closed, stays while work arrives inside the window, and
// halves when the wait outlasts the maximum (gaps too long to bridge).
//
// Invariant: 0 <= window() <= maximum; a maximum of 0 turns polling off.
class AdaptivePoll {
public:
    using Nanoseconds = std::chrono::nanoseconds;
    static constexpr Nanoseconds INITIAL_WINDOW { 2000 };
    // The maximum kasou uses unless told otherwise; QEMU's IOThreads default to 32768 ns
    // (IOTHREAD_POLL_MAX_NS_DEFAULT in its iothread.c).
    static constexpr std::chrono::microseconds DEFAULT_MAXIMUM { 32 };

    explicit AdaptivePoll(Nanoseconds maximum);

    Nanoseconds window() const { return m_window; }
    Nanoseconds maximum() const { return m_maximum; }
    // Records how long the last wait lasted, from its start until work was found (by polling, or
    // after sleeping), and adapts the window.
    void record(Nanoseconds waited);

private:
    Nanoseconds m_maximum;
    Nanoseconds m_window { 0 };
};

} // namespace kasou::virtio
