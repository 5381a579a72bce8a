#pragma once

#include <atomic>
#include <chrono>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/error.h"
#include "base/fd.h"
#include "storage/nbd/connection.h"
#include "storage/nbd/export.h"
#include "storage/nbd/transport.h"

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

    // The smallest max_memory accepted: a few requests of the largest preferred block size.
    static constexpr u64 MIN_MEMORY = 1 * MiB;
    // One error naming the first option out of range.
    ErrorOr<void> validate() const;
};

// The NBD server: accepts clients on one socket and serves each on its own thread (see
// serve_connection), any number of them at once up to max_connections, all charging their request
// buffers to one MemoryBudget. The run() thread also watches the connections and closes those past
// the handshake or idle timeout. run() returns when the stop descriptor becomes readable, after
// every connection has answered what it had received.
class Server {
public:
    static ErrorOr<std::unique_ptr<Server>> create(std::vector<Export> exports, ListenAddress const& address, ServerOptions const& options);
    ~Server();
    Server(Server const&) = delete;
    Server& operator=(Server const&) = delete;

    // The bound address (for TCP with port 0, the port the kernel picked).
    ListenAddress const& address() const { return m_address; }

    // Serves until stop_fd is readable; then stops accepting, stops reading from every connection,
    // waits until each has replied to the requests it had read, and flushes every export.
    ErrorOr<void> run(int stop_fd);

private:
    struct Client {
        std::string peer;
        std::shared_ptr<Transport> transport;
        ConnectionMonitor monitor;
        std::chrono::steady_clock::time_point accepted;
        std::thread thread;
        std::atomic<bool> finished { false };
        bool closing { false }; // the watchdog has stopped it
    };

    Server(std::vector<Export> exports, Fd listener, ListenAddress address, ServerOptions const& options);
    void accept_one();
    // Joins the threads of clients that have finished.
    void reap(bool all);
    // Stops the connections past a timeout; returns how long until the next one can expire.
    std::chrono::milliseconds watch();
    static void stop(Client& client);

    std::vector<Export> m_exports;
    Fd m_listener;
    ListenAddress m_address;
    ServerOptions m_options;
    MemoryBudget m_budget;
    u64 m_next_client_id { 1 };
    std::list<std::unique_ptr<Client>> m_clients; // only the run() thread touches the list
};

} // namespace kasou::storage::nbd
