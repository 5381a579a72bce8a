#pragma once

#include <chrono>
#include <memory>
#include <span>
#include <sys/uio.h>

#include "base/error.h"
#include "base/fd.h"
#include "storage/io/aligned_buffer.h"

namespace kasou::storage::nbd {

// The byte stream an NBD connection runs over. The server uses a socket; the fuzz target and unit
// tests use memory. read_some is called by one thread at a time, write_all likewise (callers
// serialize each side), but a read and a write may run at the same time.
class Transport {
public:
    virtual ~Transport() = default;
    // Reads what is available, at most buffer.size() bytes, waiting for at least one; 0 means the
    // peer closed its side (or stop_reading was called).
    virtual ErrorOr<size_t> read_some(std::span<u8> buffer) = 0;
    virtual ErrorOr<void> write_all(std::span<iovec const> vectors) = 0;
    // Makes a blocked or later read_some return 0; writes still work, so replies to requests
    // already received can go out. Safe from any thread.
    virtual void stop_reading() = 0;
    // Ends the connection both ways at once (the peer sees it closed; reads return 0, writes
    // fail), for a connection the server gives up on. Safe from any thread.
    virtual void disconnect() = 0;
};

// A connected stream socket (Unix or TCP). read_some polls the socket for POLL_BEFORE_SLEEPING
// before it blocks. With a send timeout, a write the peer does not take in for that long (it
// stopped reading) fails, so a client cannot hold a server thread for ever.
class SocketTransport final : public Transport {
public:
    static constexpr std::chrono::microseconds POLL_BEFORE_SLEEPING { 32 };

    // Who is at the other end (for messages).
    enum class Peer { Client, Server };

    explicit SocketTransport(Fd socket, Peer peer = Peer::Client)
        : m_socket(std::move(socket))
        , m_peer(peer)
    {
    }
    // 0: writes may block for ever (the default).
    ErrorOr<void> set_send_timeout(std::chrono::milliseconds timeout);
    // A read_some that waits this long for data fails with EAGAIN (0: waits for ever, the default).
    ErrorOr<void> set_receive_timeout(std::chrono::milliseconds timeout);
    ErrorOr<size_t> read_some(std::span<u8> buffer) override;
    ErrorOr<void> write_all(std::span<iovec const> vectors) override;
    void stop_reading() override;
    void disconnect() override;
    int native_handle() const { return m_socket.get(); }

private:
    Fd m_socket;
    Peer m_peer;
    std::chrono::milliseconds m_send_timeout { 0 };
};

// Exact reads on top of a Transport, through a buffer so that small headers cost no system call
// each; large payloads go straight to their destination. One reader thread at a time.
class BufferedReader {
public:
    explicit BufferedReader(Transport& transport)
        : m_transport(transport)
    {
    }

    // Fills `out` completely. Returns false if the stream ended cleanly before its first byte;
    // an end in the middle is an error.
    ErrorOr<bool> read_exact(std::span<u8> out);
    // Reads and drops `length` bytes (the payload of a rejected write).
    ErrorOr<void> skip(u64 length);
    // Bytes already received and not yet consumed.
    size_t buffered() const { return m_end - m_start; }

private:
    static constexpr size_t CAPACITY = 64 * 1024;

    Transport& m_transport;
    AlignedBuffer m_buffer;
    size_t m_start { 0 };
    size_t m_end { 0 };
};

} // namespace kasou::storage::nbd
