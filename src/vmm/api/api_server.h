#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "base/error.h"
#include "http/unix_server.h"
#include "vmm/api/api_controller.h"

namespace boost::asio {
class io_context;
}

namespace kasou::vmm::api {

// The per-VM API served on a Unix socket (`kasou run --api-sock PATH`) on the caller's loop: an
// http::UnixServer answering through an ApiController, and the timer that appends a line of
// metrics every METRICS_PERIOD once a metrics file is set (Firecracker's period). The controller
// outlives the server; the server closes its socket and connections when destroyed.
class ApiServer {
public:
    static constexpr std::chrono::seconds METRICS_PERIOD { 60 };

    static ErrorOr<std::unique_ptr<ApiServer>> start(boost::asio::io_context& io, std::string const& path, ApiController& controller);
    ~ApiServer();
    ApiServer(ApiServer const&) = delete;
    ApiServer& operator=(ApiServer const&) = delete;

private:
    struct Timer;
    ApiServer(std::unique_ptr<http::UnixServer> server, std::unique_ptr<Timer> timer);

    std::unique_ptr<http::UnixServer> m_server;
    std::unique_ptr<Timer> m_timer;
};

} // namespace kasou::vmm::api
