#include "storage/nbd/transport.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sys/socket.h>

#include <fmt/format.h>

#include "base/sys_socket.h"
#include "base/try.h"

namespace kasou::storage::nbd {

ErrorOr<size_t> SocketTransport::read_some(std::span<u8> buffer)
{
    // A client at low queue depth sends its next request a few microseconds after our reply:
    // looking for it without sleeping for a short while saves the sleep and wake-up of a blocking
    // recv, the largest cost of a small request at queue depth 1 (QEMU's event loop polls the
    // same way, up to 32 us by default).
    auto deadline = std::chrono::steady_clock::now() + POLL_BEFORE_SLEEPING;
    do {
        auto received = sys::recv(m_socket.get(), buffer.data(), buffer.size(), MSG_DONTWAIT);
        if (received || (received.error().code() != EAGAIN && received.error().code() != EWOULDBLOCK))
            return received;
    } while (std::chrono::steady_clock::now() < deadline);
    return sys::recv(m_socket.get(), buffer.data(), buffer.size(), 0);
}

ErrorOr<void> SocketTransport::set_send_timeout(std::chrono::milliseconds timeout)
{
    TRY(sys::setsockopt_timeout(m_socket.get(), SO_SNDTIMEO, static_cast<u64>(timeout.count())));
    m_send_timeout = timeout;
    return {};
}

ErrorOr<void> SocketTransport::set_receive_timeout(std::chrono::milliseconds timeout)
{
    return sys::setsockopt_timeout(m_socket.get(), SO_RCVTIMEO, static_cast<u64>(timeout.count()));
}

ErrorOr<void> SocketTransport::write_all(std::span<iovec const> vectors)
{
    auto sent = sys::send_all(m_socket.get(), vectors.data(), vectors.size());
    if (!sent && (sent.error().code() == EAGAIN || sent.error().code() == EWOULDBLOCK))
        return make_error(fmt::format("the {} took no data for {} ms (send timeout): it does not read its {}", m_peer == Peer::Client ? "client" : "server",
            m_send_timeout.count(), m_peer == Peer::Client ? "replies" : "requests"));
    return sent;
}

void SocketTransport::stop_reading()
{
    // ENOTCONN if the peer is already gone: nothing left to stop.
    (void)sys::shutdown(m_socket.get(), SHUT_RD);
}

void SocketTransport::disconnect()
{
    (void)sys::shutdown(m_socket.get(), SHUT_RDWR);
}

ErrorOr<bool> BufferedReader::read_exact(std::span<u8> out)
{
    size_t filled = 0;
    while (filled < out.size()) {
        if (m_start < m_end) {
            size_t n = std::min(m_end - m_start, out.size() - filled);
            std::memcpy(out.data() + filled, m_buffer.span(m_end).data() + m_start, n);
            m_start += n;
            filled += n;
            continue;
        }
        size_t wanted = out.size() - filled;
        size_t n = 0;
        if (wanted >= CAPACITY) {
            n = TRY(m_transport.read_some(out.subspan(filled)));
            filled += n;
        } else {
            auto buffer = TRY(m_buffer.reserve(CAPACITY));
            n = TRY(m_transport.read_some(buffer));
            m_start = 0;
            m_end = n;
        }
        if (n == 0) {
            if (filled == 0)
                return false;
            return make_error(ErrorKind::Disconnected, "the peer closed the connection in the middle of a message");
        }
    }
    return true;
}

ErrorOr<void> BufferedReader::skip(u64 length)
{
    u8 scratch[4096];
    while (length > 0) {
        size_t n = std::min<u64>(length, sizeof(scratch));
        if (!TRY(read_exact({ scratch, n })))
            return make_error(ErrorKind::Disconnected, "the peer closed the connection in the middle of a message");
        length -= n;
    }
    return {};
}

} // namespace kasou::storage::nbd
