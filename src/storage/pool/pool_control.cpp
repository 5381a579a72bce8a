#include "storage/pool/pool_control.h"

#include <cerrno>
#include <filesystem>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "base/asio_error.h"
#include "base/sys_path.h"
#include "base/sys_socket.h"
#include "base/try.h"
#include "base/unix_socket.h"
#include "storage/pool/pool_admin.h"

namespace kasou::storage {

namespace asio = boost::asio;
using boost::system::error_code;
using Protocol = asio::local::stream_protocol;

namespace {

constexpr size_t MAX_MESSAGE = 64 * 1024;
constexpr std::chrono::milliseconds REQUEST_TIMEOUT { 5000 };
constexpr std::chrono::milliseconds ANSWER_TIMEOUT { 120'000 }; // labelling and committing on slow disks

// One connection's message, read under a deadline. Every handler holds the exchange, so the
// socket outlives whichever of the read and the deadline completes last.
class Exchange : public std::enable_shared_from_this<Exchange> {
public:
    explicit Exchange(asio::io_context& io)
        : m_socket(io)
        , m_deadline(io)
    {
    }

    Protocol::socket& socket() { return m_socket; }

    // Reads until the peer closes its side, a newline, or MAX_MESSAGE bytes; `done` gets the
    // message, or the error that ended the read (ETIMEDOUT when `timeout` passed first).
    template<class Done>
    void read(std::chrono::milliseconds timeout, Done done)
    {
        m_deadline.expires_after(timeout);
        m_deadline.async_wait([self = shared_from_this()](error_code const& code) {
            if (code || self->m_read_done)
                return; // the message came first (a deadline that expired as it came is ignored)
            self->m_timed_out = true;
            error_code ignored;
            self->m_socket.cancel(ignored);
        });
        asio::async_read_until(m_socket, asio::dynamic_buffer(m_message, MAX_MESSAGE), '\n',
            [self = shared_from_this(), done = std::move(done)](error_code const& code, size_t) {
                self->m_read_done = true;
                self->m_deadline.cancel();
                done(self->outcome(code));
            });
    }

private:
    ErrorOr<std::string> outcome(error_code const& code)
    {
        if (m_timed_out)
            return make_errno_error(ETIMEDOUT, "pool control socket");
        if (code == asio::error::not_found)
            return make_error("pool control message too long");
        if (code && code != asio::error::eof)
            return tl::unexpected(asio_error(code, "pool control socket"));
        return std::move(m_message);
    }

    Protocol::socket m_socket;
    asio::steady_timer m_deadline;
    std::string m_message;
    bool m_timed_out { false };
    bool m_read_done { false };
};

} // namespace

using Listener = asio::posix::stream_descriptor;

// The listening socket is waited on for readability and accepted with accept4 (Asio's own accept
// does not set close-on-exec).
struct PoolControlServer::Loop {
    asio::io_context io { 1 };
    Listener listener { io };
};

std::string pool_control_path(std::string const& state_dir, std::string const& name)
{
    return fmt::format("{}/locks/{}.sock", state_dir, name);
}

ErrorOr<std::unique_ptr<PoolControlServer>> PoolControlServer::start(std::string state_dir, std::string name, std::shared_ptr<ThinPool> pool)
{
    auto path = pool_control_path(state_dir, name);
    Fd listener = TRY(listen_unix(path, 8));
    std::error_code restricted;
    std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write, restricted);
    if (restricted)
        return make_errno_error(restricted.value(), fmt::format("chmod {}", path));
    std::unique_ptr<Loop> loop;
    try {
        loop = std::make_unique<Loop>();
    } catch (boost::system::system_error const& error) {
        return tl::unexpected(asio_error(error.code(), "pool control socket: event loop"));
    }
    error_code assigned;
    loop->listener.assign(listener.get(), assigned);
    if (!assigned)
        loop->listener.non_blocking(true, assigned);
    if (assigned)
        return tl::unexpected(asio_error(assigned, path));
    (void)listener.release(); // the acceptor owns it now
    std::unique_ptr<PoolControlServer> server(new PoolControlServer(std::move(state_dir), std::move(name), std::move(pool), std::move(path), std::move(loop)));
    server->accept_next();
    server->m_thread = std::thread([raw = server.get()] { raw->m_loop->io.run(); });
    return server;
}

PoolControlServer::PoolControlServer(std::string state_dir, std::string name, std::shared_ptr<ThinPool> pool, std::string path, std::unique_ptr<Loop> loop)
    : m_state_dir(std::move(state_dir))
    , m_name(std::move(name))
    , m_pool(std::move(pool))
    , m_path(std::move(path))
    , m_loop(std::move(loop))
{
}

void PoolControlServer::answer_op(std::string const& op, Handler handler)
{
    std::lock_guard lock(m_handlers_lock);
    if (handler)
        m_handlers[op] = std::move(handler);
    else
        m_handlers.erase(op);
}

void PoolControlServer::stop()
{
    m_loop->io.stop();
    if (m_thread.joinable())
        m_thread.join();
}

PoolControlServer::~PoolControlServer()
{
    stop();
    (void)sys::unlink(m_path);
}

void PoolControlServer::accept_next()
{
    m_loop->listener.async_wait(Listener::wait_read, [this](error_code const& ready) {
        if (ready == asio::error::operation_aborted)
            return;
        if (ready)
            spdlog::warn("pool {}: control socket: {}", m_name, asio_error(ready, "waiting for connections").to_string());
        else
            answer_next();
        accept_next();
    });
}

void PoolControlServer::answer_next()
{
    // accept4 with SOCK_CLOEXEC, so no connection leaks into a process kasou starts.
    auto accepted = sys::accept(m_loop->listener.native_handle());
    if (!accepted) {
        if (accepted.error().code() != EAGAIN)
            spdlog::warn("pool {}: control socket: {}", m_name, accepted.error().to_string());
        return;
    }
    auto exchange = std::make_shared<Exchange>(m_loop->io);
    error_code assigned;
    exchange->socket().assign(Protocol(), accepted->get(), assigned);
    if (assigned) {
        spdlog::warn("pool {}: control socket: {}", m_name, asio_error(assigned, "accept").to_string());
        return;
    }
    (void)accepted->release(); // the exchange's socket owns it now
    exchange->read(REQUEST_TIMEOUT, [this, exchange](ErrorOr<std::string> const& request) {
        auto reply = std::make_shared<std::string>(answer(request) + "\n");
        asio::async_write(exchange->socket(), asio::buffer(*reply), [this, exchange, reply](error_code const& written, size_t) {
            if (written)
                spdlog::warn("pool {}: control socket: {}", m_name, asio_error(written, "answer").to_string());
        });
    });
}

std::string PoolControlServer::answer(ErrorOr<std::string> const& request)
{
    try {
        return request ? handle(*request) : error_answer(request.error().to_string());
    } catch (std::exception const& exception) {
        // nlohmann::json throws on what a request may hold; the holder must not die of it.
        return error_answer(fmt::format("malformed request: {}", exception.what()));
    }
}

std::string PoolControlServer::handle(std::string const& text)
{
    auto request = nlohmann::json::parse(text, nullptr, false);
    auto const& refuse = error_answer;
    if (request.is_discarded() || !request.is_object())
        return refuse("the request is not a JSON object");
    if (!request.contains("op") || !request["op"].is_string())
        return refuse("the request names no \"op\"");
    auto op = request["op"].get<std::string>();
    if (op != "add") {
        std::lock_guard lock(m_handlers_lock);
        auto handler = m_handlers.find(op);
        if (handler == m_handlers.end()) {
            std::string known = "add";
            for (auto const& entry : m_handlers)
                known += ", " + entry.first;
            return refuse(fmt::format("unknown request (known: {})", known));
        }
        return handler->second(request).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }
    bool force_ok = !request.contains("force") || request["force"].is_boolean();
    if (!request.contains("disks") || !request["disks"].is_array() || request["disks"].empty() || !force_ok)
        return refuse("add needs \"disks\": [paths] and \"force\": true|false");
    auto const& disks = request["disks"];
    std::vector<std::string> paths;
    for (auto const& disk : disks) {
        if (!disk.is_string())
            return refuse("disk paths must be strings");
        paths.push_back(disk.get<std::string>());
    }
    bool force = request.contains("force") && request["force"].get<bool>();
    if (auto grown = grow_open_pool(*m_pool, m_state_dir, m_name, paths, force); !grown)
        return refuse(grown.error().to_string());
    spdlog::info("pool {}: grown by {} disk(s) on request", m_name, paths.size());
    return nlohmann::json { { "ok", true } }.dump();
}

std::string PoolControlServer::error_answer(std::string const& why)
{
    // Replacing invalid UTF-8 (a name read from a disk, say) rather than throwing.
    return nlohmann::json { { "error", why } }.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::optional<ErrorOr<nlohmann::json>> ask_holder(std::string const& state_dir, std::string const& name, nlohmann::json const& request)
{
    auto connection = connect_unix(pool_control_path(state_dir, name));
    if (!connection)
        return std::nullopt; // no socket, or its process is gone: nobody to ask
    auto exchange = [&]() -> ErrorOr<nlohmann::json> {
        std::optional<asio::io_context> io;
        try {
            io.emplace(1);
        } catch (boost::system::system_error const& error) {
            return tl::unexpected(asio_error(error.code(), "event loop"));
        }
        auto peer = std::make_shared<Exchange>(*io);
        error_code code;
        peer->socket().assign(Protocol(), connection->get(), code);
        if (code)
            return tl::unexpected(asio_error(code, "pool control socket"));
        (void)connection->release(); // the socket owns it now
        auto text = request.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
        asio::write(peer->socket(), asio::buffer(text), code);
        if (!code)
            peer->socket().shutdown(Protocol::socket::shutdown_send, code);
        if (code)
            return tl::unexpected(asio_error(code, "pool control socket"));
        std::optional<ErrorOr<std::string>> read;
        peer->read(ANSWER_TIMEOUT, [&read](ErrorOr<std::string> const& outcome) { read = outcome; });
        peer.reset();
        io->run();
        if (!read)
            return make_error("pool control socket: no answer read");
        auto answer = nlohmann::json::parse(TRY(std::move(*read)), nullptr, false);
        if (answer.is_object() && answer.contains("ok") && answer["ok"].is_boolean() && answer["ok"].get<bool>())
            return answer;
        if (answer.is_object() && answer.contains("error") && answer["error"].is_string())
            return make_error(answer["error"].get<std::string>());
        return make_error(fmt::format("pool {}: the process holding it gave no answer", name));
    };
    return exchange().map_error([&](Error const& error) { return error.with_prefix(fmt::format("pool {} (in use; asked its holder)", name)); });
}

std::optional<ErrorOr<void>> ask_holder_to_add(std::string const& state_dir, std::string const& name, std::vector<std::string> const& disks,
    bool force)
{
    auto answer = ask_holder(state_dir, name, nlohmann::json { { "op", "add" }, { "disks", disks }, { "force", force } });
    if (!answer)
        return std::nullopt;
    if (!*answer)
        return tl::unexpected(answer->error());
    return ErrorOr<void> {};
}

} // namespace kasou::storage
