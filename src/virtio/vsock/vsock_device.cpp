#include "virtio/vsock/vsock_device.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <fmt/format.h>

#include "base/log.h"
#include "base/sys_file.h"
#include "base/sys_path.h"
#include "base/sys_socket.h"
#include "base/try.h"
#include "base/unix_socket.h"
#include "virtio/io_vectors.h"

namespace kasou::virtio::vsock {

namespace {

constexpr u64 LISTENER_TOKEN = 1;
constexpr u64 WAKEUP_TOKEN = 2;
constexpr size_t MAX_CONNECT_LINE = 32; // "CONNECT 4294967295\n" and some slack
constexpr u32 SOCKET_EVENTS = EPOLLIN | EPOLLOUT | EPOLLRDHUP;

// "CONNECT <port>" without its newline.
std::optional<u32> parse_connect(std::string_view line)
{
    constexpr std::string_view prefix = "CONNECT ";
    if (!line.starts_with(prefix) || line.size() == prefix.size())
        return std::nullopt;
    line.remove_prefix(prefix.size());
    u32 port = 0;
    auto [end, error] = std::from_chars(line.data(), line.data() + line.size(), port);
    if (error != std::errc() || end != line.data() + line.size())
        return std::nullopt;
    return port;
}

} // namespace

u32 VsockDevice::Connection::guest_credit() const
{
    u32 in_flight = rx_cnt - peer_fwd_cnt;
    return in_flight >= peer_buf_alloc ? 0 : peer_buf_alloc - in_flight;
}

ErrorOr<std::shared_ptr<VsockDevice>> VsockDevice::create(VsockOptions options)
{
    if (options.guest_cid < 3 || options.guest_cid > 0xFFFF'FFFE)
        return make_error(fmt::format("vsock guest CID {} is outside 3 to 4294967294", options.guest_cid));
    if (options.max_connections < 1 || options.max_connections > MAX_MAX_CONNECTIONS)
        return make_error(fmt::format("vsock max_connections {} is outside 1 to {}", options.max_connections, MAX_MAX_CONNECTIONS));
    auto address = TRY(unix_address(options.uds_path));
    struct stat existing;
    if (sys::lstat(options.uds_path, existing))
        return make_error(ErrorKind::AlreadyExists, fmt::format("vsock socket path {} exists already; remove it first", options.uds_path));
    auto listener = TRY(sys::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0));
    TRY(sys::bind(listener.get(), reinterpret_cast<sockaddr const*>(&address), sizeof(address)).map_error([&](Error const& e) {
        return e.with_prefix(fmt::format("vsock socket {}", options.uds_path));
    }));
    TRY(sys::listen(listener.get(), 64));
    auto events = TRY(HostEvents::create());
    auto wakeup = TRY(EventFd::create());
    TRY(events.add(listener.get(), EPOLLIN, LISTENER_TOKEN));
    TRY(events.add(wakeup.fd(), EPOLLIN, WAKEUP_TOKEN));
    return std::shared_ptr<VsockDevice>(new VsockDevice(std::move(options), std::move(listener), std::move(events), std::move(wakeup)));
}

VsockDevice::VsockDevice(VsockOptions options, Fd listener, HostEvents events, EventFd wakeup)
    : m_options(std::move(options))
    , m_listener(std::move(listener))
    , m_events(std::move(events))
    , m_wakeup(std::move(wakeup))
    , m_next_token(WAKEUP_TOKEN + 1)
{
}

VsockDevice::~VsockDevice()
{
    (void)sys::unlink(m_options.uds_path);
}

void VsockDevice::read_config(u64 offset, std::span<u8> data)
{
    u8 config[8];
    std::memcpy(config, &m_options.guest_cid, 8); // struct virtio_vsock_config: le64 guest_cid
    copy_config(config, offset, data);
}

void VsockDevice::reset()
{
    for (auto& [key, connection] : m_connections)
        m_events.remove(connection.socket.get());
    m_connections.clear();
    m_tokens.clear();
    m_resets.clear();
    m_control.clear();
    m_readable.clear();
    m_chain.reset(); // it belonged to the queue the driver just dropped
}

ErrorOr<void> VsockDevice::process(u16 index, SplitQueue& queue)
{
    switch (index) {
    case RXQ:
        return deliver(queue);
    case TXQ:
        TRY(transmit(queue));
        // Answers, and host bytes the guest just gave credit for, wait for the rx queue, which
        // only the host-event path holds.
        if (!m_resets.empty() || !m_control.empty() || !m_readable.empty())
            TRY(m_wakeup.signal());
        return {};
    default:
        return {}; // event queue buffers stay with the device until an event needs them
    }
}

ErrorOr<void> VsockDevice::process_host_events(std::span<SplitQueue* const> queues)
{
    for (auto const& event : TRY(m_events.take())) {
        if (event.data.u64 == LISTENER_TOKEN)
            accept_host_connections();
        else if (event.data.u64 == WAKEUP_TOKEN)
            (void)m_wakeup.consume();
        else
            socket_event(event.data.u64, event.events);
    }
    if (queues.size() > RXQ && queues[RXQ])
        TRY(deliver(*queues[RXQ]));
    return {};
}

ErrorOr<void> VsockDevice::transmit(SplitQueue& queue)
{
    while (auto chain = TRY(queue.pop())) {
        handle(TRY(VsockPacket::parse(*chain)));
        TRY(queue.push(chain->head, 0));
    }
    return {};
}

void VsockDevice::handle(VsockPacket const& packet)
{
    auto const& header = packet.header;
    if (header.src_cid != m_options.guest_cid || header.dst_cid != HOST_CID) {
        spdlog::debug("virtio-vsock: dropped a packet from CID {} to CID {}", header.src_cid, header.dst_cid);
        return;
    }
    Key key { header.dst_port, header.src_port };
    if (header.type != TYPE_STREAM) {
        if (header.op != OP_RST)
            send_reset(key);
        return;
    }
    auto found = m_connections.find(key);
    if (found == m_connections.end()) {
        if (header.op == OP_REQUEST)
            guest_connect(header);
        else if (header.op != OP_RST)
            send_reset(key);
        return;
    }
    guest_packet(key, found->second, packet);
}

void VsockDevice::guest_connect(VsockHeader const& header)
{
    Key key { header.dst_port, header.src_port };
    if (m_connections.size() + m_pending.size() >= m_options.max_connections) {
        spdlog::debug("virtio-vsock: refused guest port {}: {} connections already", header.src_port, m_options.max_connections);
        send_reset(key);
        return;
    }
    std::string path = fmt::format("{}_{}", m_options.uds_path, header.dst_port);
    auto socket = connect_unix(path, SOCK_NONBLOCK);
    if (!socket) {
        spdlog::debug("virtio-vsock: guest port {} to host port {}: {}", header.src_port, header.dst_port, socket.error().to_string());
        send_reset(key);
        return;
    }
    Connection connection;
    connection.socket = std::move(*socket);
    connection.token = m_next_token++;
    connection.peer_buf_alloc = header.buf_alloc;
    connection.peer_fwd_cnt = header.fwd_cnt;
    if (auto added = m_events.add(connection.socket.get(), SOCKET_EVENTS, connection.token); !added) {
        spdlog::warn("virtio-vsock: {}", added.error().to_string());
        send_reset(key);
        return;
    }
    m_tokens.emplace(connection.token, key);
    auto& added = m_connections.emplace(key, std::move(connection)).first->second;
    send_control(key, added, CONTROL_RESPONSE);
}

void VsockDevice::guest_packet(Key key, Connection& connection, VsockPacket const& packet)
{
    auto const& header = packet.header;
    connection.peer_buf_alloc = header.buf_alloc;
    connection.peer_fwd_cnt = header.fwd_cnt;
    if (connection.guest_credit() > 0)
        connection.credit_requested = false;
    switch (header.op) {
    case OP_RESPONSE: {
        if (connection.state != State::Connecting) {
            close(key, true);
            return;
        }
        connection.state = State::Established;
        std::string ok = fmt::format("OK {}\n", key.first);
        auto sent = sys::send(connection.socket.get(), ok.data(), ok.size(), MSG_DONTWAIT);
        if (!sent || *sent != ok.size()) {
            close(key, true);
            return;
        }
        break;
    }
    case OP_RST:
        close(key, false);
        return;
    case OP_SHUTDOWN:
        connection.guest_shutdown |= header.flags & (SHUTDOWN_RCV | SHUTDOWN_SEND);
        finish_if_done(key, connection);
        return;
    case OP_RW: {
        bool open = connection.state != State::Connecting && !(connection.guest_shutdown & SHUTDOWN_SEND);
        if (!open || connection.to_host.size() + header.len > BUFFER_BYTES) {
            spdlog::debug("virtio-vsock: guest port {} sent {} bytes it had no credit or connection for", key.second, header.len);
            close(key, true);
            return;
        }
        for (auto const& piece : packet.payload) {
            auto const* bytes = static_cast<u8 const*>(piece.iov_base);
            connection.to_host.insert(connection.to_host.end(), bytes, bytes + piece.iov_len);
        }
        flush(key, connection);
        return;
    }
    case OP_CREDIT_UPDATE:
        break;
    case OP_CREDIT_REQUEST:
        send_control(key, connection, CONTROL_CREDIT_UPDATE);
        break;
    default: // a second REQUEST for a live connection, or an unknown operation
        close(key, true);
        return;
    }
    make_ready(key, connection);
}

void VsockDevice::send_control(Key key, Connection& connection, ControlBit control)
{
    if (connection.controls & control) {
        ++m_stats.replies_coalesced;
        return;
    }
    if (connection.controls == 0)
        m_control.push_back(key);
    connection.controls |= control;
}

void VsockDevice::send_reset(Key key)
{
    if (m_resets.size() >= MAX_PENDING_RESETS) {
        if (m_stats.resets_dropped++ == 0)
            spdlog::warn("virtio-vsock: {} RSTs wait for rx buffers; further ones are dropped", MAX_PENDING_RESETS);
        return;
    }
    m_resets.push_back(key);
}

size_t VsockDevice::pending_control_count() const
{
    size_t count = m_resets.size();
    for (Key key : m_control)
        count += static_cast<size_t>(std::popcount(m_connections.at(key).controls));
    return count;
}

VsockDevice::Control VsockDevice::take_control()
{
    if (!m_resets.empty()) {
        Key key = m_resets.front();
        m_resets.pop_front();
        return Control { key, OP_RST, 0 };
    }
    Key key = m_control.front();
    auto& connection = m_connections.at(key);
    auto control = static_cast<ControlBit>(connection.controls & -connection.controls); // the lowest bit first
    connection.controls &= static_cast<u8>(~control);
    if (connection.controls == 0)
        m_control.pop_front();
    switch (control) {
    case CONTROL_RESPONSE:
        return Control { key, OP_RESPONSE, 0 };
    case CONTROL_REQUEST:
        return Control { key, OP_REQUEST, 0 };
    case CONTROL_CREDIT_UPDATE:
        return Control { key, OP_CREDIT_UPDATE, 0 };
    case CONTROL_CREDIT_REQUEST:
        return Control { key, OP_CREDIT_REQUEST, 0 };
    case CONTROL_SHUTDOWN:
        return Control { key, OP_SHUTDOWN, SHUTDOWN_SEND };
    }
    return Control { key, OP_RST, 0 }; // unreachable: controls holds only ControlBit values
}

void VsockDevice::close(Key key, bool send_reset)
{
    auto found = m_connections.find(key);
    if (found != m_connections.end()) {
        // Its waiting packets go with it, so a guest that connects and resets in a loop leaves
        // nothing behind.
        if (found->second.controls)
            std::erase(m_control, key);
        if (found->second.queued)
            std::erase(m_readable, key);
        m_events.remove(found->second.socket.get());
        m_tokens.erase(found->second.token);
        m_connections.erase(found);
    }
    if (send_reset)
        this->send_reset(key);
}

void VsockDevice::flush(Key key, Connection& connection)
{
    size_t taken = 0;
    while (taken < connection.to_host.size()) {
        auto sent = sys::send(connection.socket.get(), connection.to_host.data() + taken, connection.to_host.size() - taken, MSG_DONTWAIT);
        if (!sent) {
            if (sent.error().code() == EAGAIN)
                break; // EPOLLOUT calls again
            close(key, true);
            return;
        }
        taken += *sent;
    }
    connection.to_host.erase(connection.to_host.begin(), connection.to_host.begin() + static_cast<std::ptrdiff_t>(taken));
    connection.fwd_cnt += static_cast<u32>(taken);
    // Tell the guest about freed space before it runs out of credit.
    if (connection.fwd_cnt - connection.told_fwd_cnt >= BUFFER_BYTES / 2 && !(connection.controls & CONTROL_CREDIT_UPDATE))
        send_control(key, connection, CONTROL_CREDIT_UPDATE);
    finish_if_done(key, connection);
}

void VsockDevice::finish_if_done(Key key, Connection& connection)
{
    if (!connection.to_host.empty())
        return;
    if ((connection.guest_shutdown & SHUTDOWN_SEND) && !connection.write_shut) {
        connection.write_shut = true;
        (void)sys::shutdown(connection.socket.get(), SHUT_WR);
    }
    if (connection.guest_shutdown == (SHUTDOWN_RCV | SHUTDOWN_SEND))
        close(key, true);
}

void VsockDevice::make_ready(Key key, Connection& connection)
{
    if (connection.readable && !connection.queued) {
        connection.queued = true;
        m_readable.push_back(key);
    }
}

void VsockDevice::accept_host_connections()
{
    for (;;) {
        auto socket = sys::accept(m_listener.get());
        if (!socket) {
            if (socket.error().code() != EAGAIN)
                spdlog::warn("virtio-vsock: {}", socket.error().to_string());
            return;
        }
        if (m_connections.size() + m_pending.size() >= m_options.max_connections) {
            spdlog::warn("virtio-vsock: refused a host connection: {} connections already", m_options.max_connections);
            continue;
        }
        u64 token = m_next_token++;
        if (!sys::set_nonblocking(socket->get()) || !m_events.add(socket->get(), EPOLLIN | EPOLLRDHUP, token))
            continue;
        m_pending.emplace(token, PendingHost { std::move(*socket), {} });
    }
}

void VsockDevice::read_connect_line(u64 token)
{
    auto& pending = m_pending.at(token);
    auto drop = [&] {
        m_events.remove(pending.socket.get());
        m_pending.erase(token);
    };
    // Byte by byte, so nothing after the newline (the stream itself) is taken from the socket.
    for (;;) {
        char byte;
        auto n = sys::recv(pending.socket.get(), &byte, 1, MSG_DONTWAIT);
        if (!n) {
            if (n.error().code() != EAGAIN)
                drop();
            return;
        }
        if (*n == 0 || pending.line.size() >= MAX_CONNECT_LINE)
            return drop();
        if (byte == '\n')
            break;
        pending.line.push_back(byte);
    }
    auto port = parse_connect(pending.line);
    if (!port) {
        spdlog::debug("virtio-vsock: refused host request '{}'", pending.line);
        return drop();
    }
    Key key { allocate_host_port(), *port };
    Connection connection;
    connection.socket = std::move(pending.socket);
    connection.token = token;
    connection.state = State::Connecting;
    m_pending.erase(token);
    if (!m_events.modify(connection.socket.get(), SOCKET_EVENTS, token))
        return;
    m_tokens.emplace(token, key);
    auto& added = m_connections.emplace(key, std::move(connection)).first->second;
    send_control(key, added, CONTROL_REQUEST);
}

u32 VsockDevice::allocate_host_port() const
{
    for (;;) {
        u32 port = m_next_host_port++;
        if (m_next_host_port == 0)
            m_next_host_port = FIRST_HOST_PORT;
        auto used = m_connections.lower_bound(Key { port, 0 });
        if (used == m_connections.end() || used->first.first != port)
            return port;
    }
}

void VsockDevice::socket_event(u64 token, u32 events)
{
    if (m_pending.contains(token))
        return read_connect_line(token);
    auto found = m_tokens.find(token);
    if (found == m_tokens.end())
        return; // closed since the event was queued
    Key key = found->second;
    auto& connection = m_connections.at(key);
    if (events & EPOLLOUT) {
        flush(key, connection);
        if (!m_connections.contains(key))
            return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        connection.readable = true;
        make_ready(key, connection);
    }
}

VsockDevice::Connection* VsockDevice::next_readable(Key& key)
{
    while (!m_readable.empty()) {
        key = m_readable.front();
        m_readable.pop_front();
        auto found = m_connections.find(key);
        if (found == m_connections.end())
            continue;
        auto& connection = found->second;
        connection.queued = false;
        if (!connection.readable || connection.host_done || connection.state != State::Established
            || (connection.guest_shutdown & SHUTDOWN_RCV))
            continue;
        if (connection.guest_credit() == 0) {
            // Waits for the guest's next header with a larger fwd_cnt (make_ready() then).
            if (!connection.credit_requested) {
                connection.credit_requested = true;
                send_control(key, connection, CONTROL_CREDIT_REQUEST);
            }
            continue;
        }
        return &connection;
    }
    return nullptr;
}

VsockHeader VsockDevice::header_for(Key key, u16 op, u32 flags, u32 length)
{
    VsockHeader header {};
    header.src_cid = HOST_CID;
    header.dst_cid = m_options.guest_cid;
    header.src_port = key.first;
    header.dst_port = key.second;
    header.len = length;
    header.type = TYPE_STREAM;
    header.op = op;
    header.flags = flags;
    if (auto found = m_connections.find(key); found != m_connections.end()) {
        header.buf_alloc = BUFFER_BYTES;
        header.fwd_cnt = found->second.fwd_cnt;
        found->second.told_fwd_cnt = found->second.fwd_cnt;
    }
    return header;
}

ErrorOr<void> VsockDevice::deliver(SplitQueue& queue)
{
    for (;;) {
        Key key;
        Connection* source = m_resets.empty() && m_control.empty() ? next_readable(key) : nullptr;
        if (!source && m_resets.empty() && m_control.empty()) // next_readable() may have queued a CREDIT_REQUEST
            return {};
        if (!m_chain) {
            m_chain = TRY(pop_or_request_notification(queue));
            if (!m_chain) {
                if (source)
                    make_ready(key, *source);
                return {}; // resumed by process(RXQ) when the driver adds buffers
            }
            if (auto checked = check_receive_chain(*m_chain); !checked) {
                m_chain.reset();
                return tl::unexpected(checked.error());
            }
        }
        if (!source) {
            Control next = take_control();
            VsockHeader header = header_for(next.key, next.op, next.flags, 0);
            m_chain->write(0, std::span(reinterpret_cast<u8 const*>(&header), HEADER_BYTES));
            TRY(queue.push(m_chain->head, HEADER_BYTES));
            m_chain.reset();
            continue;
        }
        u64 room = std::min<u64>({ source->guest_credit(), m_chain->writable_bytes() - HEADER_BYTES, MAX_PAYLOAD });
        if (room == 0) {
            // The guest offered a buffer with no room for data: wait for a larger one.
            make_ready(key, *source);
            return {};
        }
        auto vectors = io_vectors(m_chain->writable, HEADER_BYTES, room);
        auto n = sys::readv(source->socket.get(), vectors.data(), vectors.size());
        if (!n && n.error().code() == EAGAIN) {
            source->readable = false; // the chain waits for the next packet
            continue;
        }
        if (!n) {
            close(key, true);
            continue;
        }
        if (*n == 0) {
            // End of the host's stream. It may still read (a half-close looks the same), so the
            // guest may still send; its own close then ends the connection.
            source->readable = false;
            source->host_done = true;
            send_control(key, *source, CONTROL_SHUTDOWN);
            continue;
        }
        VsockHeader header = header_for(key, OP_RW, 0, static_cast<u32>(*n));
        m_chain->write(0, std::span(reinterpret_cast<u8 const*>(&header), HEADER_BYTES));
        TRY(queue.push(m_chain->head, static_cast<u32>(HEADER_BYTES + *n)));
        m_chain.reset();
        source->rx_cnt += static_cast<u32>(*n);
        make_ready(key, *source);
    }
}

} // namespace kasou::virtio::vsock
