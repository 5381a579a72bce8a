#include "virtio/console/console_device.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <poll.h>

#include "base/log.h"
#include "base/sys_event.h"
#include "base/sys_file.h"
#include "base/try.h"
#include "virtio/console/console_chain.h"

namespace kasou::virtio::console {

namespace {

// struct virtio_console_config (virtio 1.2, 5.3.4).
constexpr u64 CONFIG_COLS = 0;
constexpr u64 CONFIG_ROWS = 2;
constexpr u64 CONFIG_MAX_NR_PORTS = 4;
constexpr u64 CONFIG_EMERG_WR = 8;
constexpr u64 CONFIG_SIZE = 12;
constexpr size_t INPUT_BUFFER = 4096;

} // namespace

ErrorOr<std::shared_ptr<ConsoleDevice>> ConsoleDevice::create(ConsoleOptions options)
{
    auto events = TRY(HostEvents::create());
    if (options.input_fd >= 0) {
        // A regular file cannot be polled (EPERM) but is always ready: it is then read whenever
        // the driver adds receive buffers.
        if (auto added = events.add(options.input_fd, EPOLLIN, 0); !added && added.error().code() != EPERM)
            return tl::unexpected(added.error().with_prefix("virtio-console input"));
    }
    return std::shared_ptr<ConsoleDevice>(new ConsoleDevice(options, std::move(events)));
}

ConsoleDevice::ConsoleDevice(ConsoleOptions options, HostEvents events)
    : m_options(options)
    , m_events(std::move(events))
{
}

u64 ConsoleDevice::device_features() const
{
    u64 features = F_EMERG_WRITE;
    if (m_options.cols && m_options.rows)
        features |= F_SIZE;
    return features;
}

void ConsoleDevice::read_config(u64 offset, std::span<u8> data)
{
    u8 config[CONFIG_SIZE] = {};
    std::memcpy(config + CONFIG_COLS, &m_options.cols, 2);
    std::memcpy(config + CONFIG_ROWS, &m_options.rows, 2);
    u32 ports = 1;
    std::memcpy(config + CONFIG_MAX_NR_PORTS, &ports, 4);
    copy_config(std::span(config, CONFIG_EMERG_WR), offset, data); // emerg_wr is write-only
}

void ConsoleDevice::write_config(u64 offset, std::span<u8 const> data)
{
    if (offset == CONFIG_EMERG_WR && !data.empty())
        write_output(data.first(1));
}

ErrorOr<void> ConsoleDevice::process(u16 index, SplitQueue& queue)
{
    return index == RECEIVEQ ? receive(queue) : transmit(queue);
}

ErrorOr<void> ConsoleDevice::process_host_events(std::span<SplitQueue* const> queues)
{
    TRY(m_events.take());
    if (queues.size() > RECEIVEQ && queues[RECEIVEQ])
        TRY(receive(*queues[RECEIVEQ]));
    return {};
}

ErrorOr<void> ConsoleDevice::transmit(SplitQueue& queue)
{
    while (auto chain = TRY(queue.pop())) {
        for (auto const& piece : TRY(transmit_data(*chain)))
            write_output(piece);
        TRY(queue.push(chain->head, 0));
    }
    return {};
}

ErrorOr<void> ConsoleDevice::receive(SplitQueue& queue)
{
    while (!m_pending.empty() || read_input()) {
        auto chain = TRY(pop_or_request_notification(queue));
        if (!chain)
            return {}; // the input waits in m_pending; process() resumes when buffers arrive
        TRY(receive_room(*chain));
        u64 written = chain->write(0, m_pending);
        m_pending.erase(m_pending.begin(), m_pending.begin() + static_cast<std::ptrdiff_t>(written));
        TRY(queue.push(chain->head, static_cast<u32>(written)));
    }
    return {};
}

bool ConsoleDevice::read_input()
{
    if (m_options.input_fd < 0)
        return false;
    pollfd ready { m_options.input_fd, POLLIN, 0 };
    auto polled = sys::poll(&ready, 1, 0);
    if (!polled || *polled == 0)
        return false;
    size_t old_size = m_pending.size();
    m_pending.resize(INPUT_BUFFER);
    auto n = sys::read(m_options.input_fd, m_pending.data() + old_size, INPUT_BUFFER - old_size);
    m_pending.resize(old_size + (n ? *n : 0));
    if (!n) {
        if (n.error().code() == EAGAIN)
            return false;
        end_input(n.error().to_string().c_str());
        return false;
    }
    if (*n == 0) {
        end_input("end of input");
        return false;
    }
    return true;
}

void ConsoleDevice::end_input(char const* why)
{
    spdlog::info("virtio-console: {}; the guest gets no more input", why);
    m_events.remove(m_options.input_fd);
    m_options.input_fd = -1;
}

void ConsoleDevice::write_output(std::span<u8 const> bytes)
{
    if (m_options.output_fd < 0 || m_output_failed || bytes.empty())
        return;
    if (auto written = sys::write_exact(m_options.output_fd, bytes.data(), bytes.size()); !written) {
        spdlog::warn("virtio-console output: {}; further guest output is dropped", written.error().to_string());
        m_output_failed = true;
    }
}

} // namespace kasou::virtio::console
