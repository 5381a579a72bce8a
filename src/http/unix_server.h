#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "base/error.h"
#include "base/fd.h"
#include "base/types.h"
#include "http/message.h"

namespace boost::asio {
class io_context;
}

namespace kasou::http {

// What one connection may cost the server.
struct ServerLimits {
    size_t header_bytes { 8 * KiB };  // request line and headers together
    size_t body_bytes { 50 * KiB };   // Firecracker's default payload limit (51200 bytes)
    // From the moment the server waits for a request (also between two requests of a kept-alive
    // connection) until the request is read whole; a client silent that long is disconnected.
    std::chrono::milliseconds read_timeout { 60'000 };
    std::chrono::milliseconds write_timeout { 10'000 };
    size_t connections { 16 }; // open at once; one more is closed as soon as it is accepted
};

// An HTTP/1.1 server on a Unix stream socket, on the caller's Boost.Asio loop (Boost.Beast reads
// and writes the messages; no thread of its own). Requests of a connection are answered one at a
// time, in order, by the service's `handle`, on the loop's thread; keep-alive is honoured. A
// request that is malformed, whose headers or body pass the limits, or that does not arrive whole
// within the read timeout changes nothing: the first two get the service's `refuse` answer (400;
// 431 for headers, 413 for a body too large) and the connection is closed after it.
//
// The socket file is created with mode 0600 (only the owner may connect) and removed by the
// destructor, which also closes every connection. Everything, the destructor included, runs on
// the loop's thread.
class UnixServer {
public:
    // Listens on `path` (a stale socket file from a dead process is replaced; a live one or another
    // file is an error) and starts accepting on `io`.
    static ErrorOr<std::unique_ptr<UnixServer>> start(boost::asio::io_context& io, std::string path, Service service, ServerLimits limits = {});
    ~UnixServer();
    UnixServer(UnixServer const&) = delete;
    UnixServer& operator=(UnixServer const&) = delete;

    std::string const& path() const { return m_path; }

    // Serves one already connected stream socket as if it had been accepted (a socketpair end in
    // tests and the fuzz target). Counts against the connection limit.
    void serve(Fd connection);

private:
    struct State;
    UnixServer(std::string path, std::shared_ptr<State> state);
    void accept_next();

    std::string m_path;
    std::shared_ptr<State> m_state;
};

} // namespace kasou::http
