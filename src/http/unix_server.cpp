#include "http/unix_server.h"

#include <filesystem>
#include <optional>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/asio_error.h"
#include "base/sys_path.h"
#include "base/sys_socket.h"
#include "base/try.h"
#include "base/unix_socket.h"

namespace kasou::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using boost::system::error_code;
using Protocol = asio::local::stream_protocol;
using Stream = beast::basic_stream<Protocol>;

namespace {

constexpr unsigned BAD_REQUEST = 400;
constexpr unsigned PAYLOAD_TOO_LARGE = 413;
constexpr unsigned HEADERS_TOO_LARGE = 431;
constexpr unsigned INTERNAL_ERROR = 500;

bool is_http_error(error_code const& code)
{
    return code.category() == bhttp::make_error_code(bhttp::error::bad_method).category();
}

// One client connection: reads a request under the read deadline, answers it, and reads the next
// while the client keeps the connection alive. Every pending operation holds the connection.
class Connection : public std::enable_shared_from_this<Connection> {
public:
    Connection(Protocol::socket socket, std::shared_ptr<Service const> service, ServerLimits const& limits)
        : m_stream(std::move(socket))
        , m_service(std::move(service))
        , m_limits(limits)
    {
    }

    void read_next()
    {
        m_parser.emplace();
        m_parser->header_limit(static_cast<std::uint32_t>(m_limits.header_bytes));
        m_parser->body_limit(m_limits.body_bytes);
        m_stream.expires_after(m_limits.read_timeout);
        bhttp::async_read(m_stream, m_buffer, *m_parser, [self = shared_from_this()](error_code const& code, size_t) { self->on_read(code); });
    }

    void close()
    {
        m_closed = true;
        error_code ignored;
        m_stream.socket().shutdown(Protocol::socket::shutdown_both, ignored);
        m_stream.close();
    }

private:
    void on_read(error_code const& code)
    {
        if (m_closed)
            return;
        if (code && !is_http_error(code)) {
            close(); // the client went away, fell silent, or the server is closing
            return;
        }
        if (code == bhttp::error::end_of_stream || code == bhttp::error::partial_message) {
            close(); // closed between requests, or in the middle of one: nobody to answer
            return;
        }
        if (code) {
            unsigned status = BAD_REQUEST;
            std::string reason = fmt::format("malformed HTTP request: {}", code.message());
            if (code == bhttp::error::header_limit || code == bhttp::error::buffer_overflow) {
                status = HEADERS_TOO_LARGE;
                reason = fmt::format("the request line and headers are larger than {} bytes", m_limits.header_bytes);
            } else if (code == bhttp::error::body_limit) {
                status = PAYLOAD_TOO_LARGE;
                reason = fmt::format("the request body is larger than {} bytes", m_limits.body_bytes);
            }
            answer(m_service->refuse(status, reason), false);
            return;
        }
        auto& message = m_parser->get();
        Request request { std::string(message.method_string()), std::string(message.target()), std::move(message.body()) };
        Response response;
        try {
            response = m_service->handle(request);
        } catch (std::exception const& exception) {
            // A service must not throw; if one does, the connection's client hears of it and the
            // loop goes on.
            response = m_service->refuse(INTERNAL_ERROR, fmt::format("internal error: {}", exception.what()));
        }
        answer(response, message.keep_alive());
    }

    void answer(Response const& response, bool keep_alive)
    {
        m_response = {};
        m_response.version(11);
        m_response.result(response.status);
        m_response.set(bhttp::field::server, "kasou");
        if (!response.body.empty()) {
            m_response.set(bhttp::field::content_type, response.content_type);
            m_response.body() = response.body;
        }
        m_response.keep_alive(keep_alive);
        m_response.prepare_payload();
        m_stream.expires_after(m_limits.write_timeout);
        bhttp::async_write(m_stream, m_response, [self = shared_from_this(), keep_alive](error_code const& code, size_t) {
            if (self->m_closed)
                return;
            if (code || !keep_alive)
                self->close();
            else
                self->read_next();
        });
    }

    Stream m_stream;
    beast::flat_buffer m_buffer;
    std::optional<bhttp::request_parser<bhttp::string_body>> m_parser;
    bhttp::response<bhttp::string_body> m_response;
    std::shared_ptr<Service const> m_service;
    ServerLimits m_limits;
    bool m_closed { false };
};

} // namespace

// The listening socket is waited on for readability and accepted with accept4 (Asio's own accept
// does not set close-on-exec).
struct UnixServer::State {
    State(asio::io_context& io, Service service, ServerLimits limits)
        : io(io)
        , listener(io)
        , service(std::make_shared<Service const>(std::move(service)))
        , limits(limits)
    {
    }

    // Forgets connections that have ended; returns how many are still open.
    size_t open_connections()
    {
        std::erase_if(connections, [](auto const& connection) { return connection.expired(); });
        return connections.size();
    }

    asio::io_context& io;
    asio::posix::stream_descriptor listener;
    std::shared_ptr<Service const> service;
    ServerLimits limits;
    std::vector<std::weak_ptr<Connection>> connections;
};

ErrorOr<std::unique_ptr<UnixServer>> UnixServer::start(asio::io_context& io, std::string path, Service service, ServerLimits limits)
{
    Fd listener = TRY(listen_unix(path, 16));
    std::error_code restricted;
    std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write, restricted);
    if (restricted) {
        (void)sys::unlink(path);
        return make_errno_error(restricted.value(), fmt::format("chmod {}", path));
    }
    auto state = std::make_shared<State>(io, std::move(service), limits);
    error_code assigned;
    state->listener.assign(listener.get(), assigned);
    if (!assigned)
        state->listener.non_blocking(true, assigned);
    if (assigned) {
        (void)sys::unlink(path);
        return tl::unexpected(asio_error(assigned, path));
    }
    (void)listener.release(); // the listener descriptor owns it now
    std::unique_ptr<UnixServer> server(new UnixServer(std::move(path), std::move(state)));
    server->accept_next();
    return server;
}

UnixServer::UnixServer(std::string path, std::shared_ptr<State> state)
    : m_path(std::move(path))
    , m_state(std::move(state))
{
}

UnixServer::~UnixServer()
{
    error_code ignored;
    m_state->listener.close(ignored);
    for (auto const& weak : m_state->connections) {
        if (auto connection = weak.lock())
            connection->close();
    }
    (void)sys::unlink(m_path);
}

void UnixServer::accept_next()
{
    // The handler holds the state, not the server: after the destructor it only sees the closed
    // listener's operation_aborted.
    m_state->listener.async_wait(asio::posix::stream_descriptor::wait_read, [this, state = m_state](error_code const& ready) {
        if (ready == asio::error::operation_aborted || !state->listener.is_open())
            return;
        if (ready) {
            spdlog::warn("API socket {}: {}", m_path, asio_error(ready, "waiting for connections").to_string());
        } else if (auto accepted = sys::accept(state->listener.native_handle()); accepted) {
            serve(std::move(*accepted));
        } else if (accepted.error().code() != EAGAIN) {
            spdlog::warn("API socket {}: {}", m_path, accepted.error().to_string());
        }
        accept_next();
    });
}

void UnixServer::serve(Fd connection)
{
    if (m_state->open_connections() >= m_state->limits.connections) {
        spdlog::warn("API socket {}: {} connections are open already; one more was closed", m_path, m_state->limits.connections);
        return; // `connection` closes it
    }
    Protocol::socket socket(m_state->io);
    error_code assigned;
    socket.assign(Protocol(), connection.get(), assigned);
    if (assigned) {
        spdlog::warn("API socket {}: {}", m_path, asio_error(assigned, "accept").to_string());
        return;
    }
    (void)connection.release(); // the socket owns it now
    auto served = std::make_shared<Connection>(std::move(socket), m_state->service, m_state->limits);
    m_state->connections.push_back(served);
    served->read_next();
}

} // namespace kasou::http
