#include "vmm/api/api_server.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include "base/try.h"

namespace kasou::vmm::api {

using boost::system::error_code;

struct ApiServer::Timer {
    Timer(boost::asio::io_context& io, ApiController& controller)
        : timer(io)
        , controller(controller)
    {
    }

    void arm()
    {
        timer.expires_after(METRICS_PERIOD);
        timer.async_wait([this](error_code const& code) {
            if (code)
                return; // cancelled: the server is going away
            if (auto flushed = controller.flush_metrics(); !flushed)
                spdlog::warn("API: {}", flushed.error().to_string());
            arm();
        });
    }

    boost::asio::steady_timer timer;
    ApiController& controller;
};

ErrorOr<std::unique_ptr<ApiServer>> ApiServer::start(boost::asio::io_context& io, std::string const& path, ApiController& controller)
{
    auto server = TRY(http::UnixServer::start(io, path, controller.service()).map_error([&](Error const& error) { return error.with_prefix("--api-sock"); }));
    auto timer = std::make_unique<Timer>(io, controller);
    timer->arm();
    return std::unique_ptr<ApiServer>(new ApiServer(std::move(server), std::move(timer)));
}

ApiServer::ApiServer(std::unique_ptr<http::UnixServer> server, std::unique_ptr<Timer> timer)
    : m_server(std::move(server))
    , m_timer(std::move(timer))
{
}

ApiServer::~ApiServer()
{
    m_timer->timer.cancel();
}

} // namespace kasou::vmm::api
