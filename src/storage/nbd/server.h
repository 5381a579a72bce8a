#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "storage/nbd/export.h"
#include "storage/nbd/memory_budget.h"

namespace kasou::storage::nbd {

// Where the server listens: a Unix socket path, or an IPv4 address and TCP port.
struct ListenAddress {
    std::string unix_path; // set for a Unix socket
    std::string host;      // set for TCP
    u16 port { 0 };

    // "127.0.0.1:10809"; the port is required, "localhost" is accepted.
    static ErrorOr<ListenAddress> parse_tcp(std::string const& text);
    std::string to_string() const;
};

// The limits that keep clients from holding the server hostage (docs/nbd.md, "Limits a client
// meets"). A timeout of 0 means none.
struct ServerOptions {
    // Threads one connection may use to run requests concurrently (see Transmission); it is also
    // the number of requests one connection can have in flight.
    u32 workers_per_connection { 4 };
    // Connections beyond this are closed on arrival.
    u32 max_connections { 256 };
    // Request data all connections together may make the server hold (MemoryBudget).
    u64 max_memory { 256 * MiB };
    // A connection that has not picked an export this long after it was accepted is closed.
    std::chrono::milliseconds handshake_timeout { 10'000 };
    // A connection with no request in flight and none received for this long is closed.
    std::chrono::milliseconds idle_timeout { 0 };
    // A connection that takes in no reply data for this long (it stopped reading) is closed.
    std::chrono::milliseconds send_timeout { 60'000 };
    // When set, the server stops on its own once no connection has been open for this long
    // (counted from the start, or from the last connection's close), as if stop_fd had become
    // readable. Before it stops it takes exit_lock_path (flock, without waiting; if someone holds it,
    // it tries again later) and holds it until its socket is gone, so a client that connects while
    // holding the same lock either reaches a server that stays or finds none.
    std::chrono::milliseconds exit_when_unused { 0 };
    std::string exit_lock_path;

    // The smallest max_memory accepted: a few requests of the largest preferred block size.
    static constexpr u64 MIN_MEMORY = 1 * MiB;
    // One error naming the first option out of range.
    ErrorOr<void> validate() const;
};

// The NBD server: accepts clients on one socket, negotiates with each on its event loop and then
// serves each on its own thread (see serve_session), any number of them at once up to
// max_connections, all charging their request buffers to one MemoryBudget.
//
// run() drives a Boost.Asio event loop (Loop, private to server.cpp) on its thread: it accepts,
// runs every connection's handshake (a Negotiation, fed without blocking as the socket becomes
// readable, so a slow or silent client holds no thread), watches the stop descriptor, closes the
// connections past the handshake or idle timeout from one watchdog timer, and joins each
// connection's thread when the connection posts that it is done. Only a connection that has
// picked an export gets a thread.
// The connections' own threads read and write their sockets directly (blocking, after a short poll)
// and call the device: a request at queue depth 1 is served on the thread that read it, with no
// hand-off through the loop (docs/event-loop.md). run() returns when the stop descriptor becomes
// readable, after every connection has answered what it had received.
class Server {
public:
    static ErrorOr<std::unique_ptr<Server>> create(std::vector<Export> exports, ListenAddress const& address, ServerOptions const& options);
    ~Server();
    Server(Server const&) = delete;
    Server& operator=(Server const&) = delete;

    // The bound address (for TCP with port 0, the port the kernel picked).
    ListenAddress const& address() const { return m_address; }

    // Serves until stop_fd is readable; then stops accepting, stops reading from every connection,
    // waits until each has replied to the requests it had read, and flushes every export. Runs once.
    // stop_fd stays the caller's (not closed), though it is left in non-blocking mode.
    ErrorOr<void> run(int stop_fd);

private:
    struct Loop;

    Server(std::vector<Export> exports, ListenAddress address, ServerOptions const& options);

    std::vector<Export> m_exports;
    ListenAddress m_address;
    ServerOptions m_options;
    MemoryBudget m_budget;
    std::unique_ptr<Loop> m_loop;
};

} // namespace kasou::storage::nbd
