#pragma once

#include <atomic>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/error.h"
#include "base/fd.h"
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

struct ServerOptions {
    // Threads one connection may use to run requests concurrently (see Transmission).
    u32 workers_per_connection { 4 };
    // Connections beyond this are closed on arrival.
    u32 max_connections { 256 };
};

// The NBD server: accepts clients on one socket and serves each on its own thread (see
// serve_connection), any number of them at once up to max_connections. run() returns when the
// stop descriptor becomes readable, after every connection has answered what it had received.
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
        std::shared_ptr<Transport> transport;
        std::thread thread;
        std::atomic<bool> finished { false };
    };

    Server(std::vector<Export> exports, Fd listener, ListenAddress address, ServerOptions const& options);
    void accept_one();
    // Joins the threads of clients that have finished.
    void reap(bool all);

    std::vector<Export> m_exports;
    Fd m_listener;
    ListenAddress m_address;
    ServerOptions m_options;
    u64 m_next_client_id { 1 };
    std::list<std::unique_ptr<Client>> m_clients; // only the run() thread touches the list
};

} // namespace kasou::storage::nbd
