// bench_virtio_wakeup [ROUND_TRIPS]: what moving a virtio I/O thread (QueueService) onto Boost.Asio
// would cost it, measured in one run against the loop it has (docs/virtio.md, "Event loop").
//
// 1. Wake-up: a driver thread signals an eventfd (as a guest's notification does through an
//    ioeventfd) and waits for the waiter's answer on a second eventfd; the waiter sleeps in
//    epoll_wait (QueueService), or in an io_context on an async_wait of the eventfd (Asio). The
//    round trip holds two wake-ups; the median and the 99th percentile are printed.
// 2. A look without sleeping, as the polling loop takes every 32 pauses: epoll_wait with a zero
//    timeout against io_context::poll(), with nothing ready.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <sys/epoll.h>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <fmt/format.h>

#include "base/event_fd.h"
#include "base/sys_event.h"
#include "base/try.h"

using namespace kasou;
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

struct Figures {
    double median_us;
    double p99_us;
};

Figures summarize(std::vector<double> samples)
{
    std::sort(samples.begin(), samples.end());
    return { samples[samples.size() / 2], samples[samples.size() * 99 / 100] };
}

// Runs `waiter` (which answers each signal of `request` with one of `answer` and returns after
// `count` of them) on its own thread and times `count` round trips from this one.
Figures round_trips(u32 count, std::function<void(EventFd const& request, EventFd const& answer, u32 count)> const& waiter)
{
    auto request = MUST(EventFd::create());
    auto answer = MUST(EventFd::create());
    std::thread thread([&] { waiter(request, answer, count); });
    std::vector<double> samples;
    samples.reserve(count);
    epoll_event ready {};
    auto epoll = MUST(sys::epoll_create());
    MUST(sys::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, answer.fd(), EPOLLIN, 0));
    for (u32 i = 0; i < count; ++i) {
        auto start = Clock::now();
        MUST(request.signal());
        while (::epoll_wait(epoll.get(), &ready, 1, -1) != 1) {
        }
        MUST(answer.consume());
        samples.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
    }
    thread.join();
    return summarize(std::move(samples));
}

// QueueService's way: one epoll set, level-triggered, epoll_wait(-1), then read the eventfd.
void epoll_waiter(EventFd const& request, EventFd const& answer, u32 count)
{
    auto epoll = MUST(sys::epoll_create());
    MUST(sys::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, request.fd(), EPOLLIN, 0));
    epoll_event events[16];
    for (u32 done = 0; done < count;) {
        if (::epoll_wait(epoll.get(), events, 16, -1) <= 0)
            continue;
        MUST(request.consume());
        MUST(answer.signal());
        ++done;
    }
}

// The same on Asio: an async_wait on the eventfd, re-armed by its handler, in io_context::run().
void asio_waiter(EventFd const& request, EventFd const& answer, u32 count)
{
    asio::io_context io(1);
    asio::posix::stream_descriptor notify(io);
    boost::system::error_code code;
    notify.assign(request.fd(), code);
    if (code)
        std::abort();
    u32 done = 0;
    std::function<void(boost::system::error_code const&)> on_ready = [&](boost::system::error_code const&) {
        MUST(request.consume());
        MUST(answer.signal());
        if (++done < count)
            notify.async_wait(asio::posix::stream_descriptor::wait_read, on_ready);
    };
    notify.async_wait(asio::posix::stream_descriptor::wait_read, on_ready);
    io.run();
    (void)notify.release(); // the EventFd's
}

template<class Look>
double nanoseconds_per_look(u32 count, Look look)
{
    auto start = Clock::now();
    for (u32 i = 0; i < count; ++i)
        look();
    return std::chrono::duration<double, std::nano>(Clock::now() - start).count() / count;
}

} // namespace

int main(int argc, char** argv)
{
    u32 const count = argc > 1 ? static_cast<u32>(std::strtoul(argv[1], nullptr, 10)) : 20'000;
    std::vector<Figures> epoll_runs, asio_runs;
    // Alternating, so drift of a shared machine hits both alike; the median run of each is shown.
    for (int round = 0; round < 5; ++round) {
        epoll_runs.push_back(round_trips(count, epoll_waiter));
        asio_runs.push_back(round_trips(count, asio_waiter));
    }
    auto median_run = [](std::vector<Figures> runs) {
        std::sort(runs.begin(), runs.end(), [](Figures a, Figures b) { return a.median_us < b.median_us; });
        return runs[runs.size() / 2];
    };
    auto e = median_run(epoll_runs);
    auto a = median_run(asio_runs);

    auto notify = MUST(EventFd::create());
    auto epoll = MUST(sys::epoll_create());
    MUST(sys::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, notify.fd(), EPOLLIN, 0));
    asio::io_context io(1);
    asio::posix::stream_descriptor watched(io);
    boost::system::error_code code;
    watched.assign(notify.fd(), code);
    watched.async_wait(asio::posix::stream_descriptor::wait_read, [](boost::system::error_code const&) {});
    u32 const looks = 1'000'000;
    epoll_event events[16];
    double epoll_look = nanoseconds_per_look(looks, [&] { (void)::epoll_wait(epoll.get(), events, 16, 0); });
    double asio_look = nanoseconds_per_look(looks, [&] { (void)io.poll(); });
    (void)watched.release();

    fmt::print("eventfd wake-up round trip ({} round trips x 5 runs, median run)\n", count);
    fmt::print("| loop                           | median us | p99 us |\n|--------------------------------|-----------|--------|\n");
    fmt::print("| epoll_wait (QueueService)      | {:9.1f} | {:6.1f} |\n", e.median_us, e.p99_us);
    fmt::print("| Asio io_context + async_wait   | {:9.1f} | {:6.1f} |\n", a.median_us, a.p99_us);
    fmt::print("Asio / epoll: median {:.2f}x, p99 {:.2f}x\n\n", a.median_us / e.median_us, a.p99_us / e.p99_us);
    fmt::print("a look without sleeping, nothing ready ({} looks)\n", looks);
    fmt::print("| epoll_wait(0)                  | {:7.0f} ns |\n| io_context::poll()             | {:7.0f} ns |\n", epoll_look, asio_look);
    fmt::print("Asio / epoll: {:.2f}x\n", asio_look / epoll_look);
    return 0;
}
