#include "storage/pool/pool_control.h"

#include <cerrno>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "base/sys.h"
#include "base/try.h"
#include "base/unix_socket.h"
#include "storage/pool/pool_admin.h"

namespace kasou::storage {

namespace {

constexpr size_t MAX_MESSAGE = 64 * 1024;
constexpr int REQUEST_TIMEOUT_MS = 5000;
constexpr int ANSWER_TIMEOUT_MS = 120'000; // labelling and committing on slow disks

// Reads until the peer closes its side, a newline, or MAX_MESSAGE bytes; fails on a timeout.
ErrorOr<std::string> read_message(int fd, int timeout_ms)
{
    std::string message;
    char buffer[4096];
    while (message.size() < MAX_MESSAGE && message.find('\n') == std::string::npos) {
        pollfd ready { fd, POLLIN, 0 };
        if (TRY(sys::poll(&ready, 1, timeout_ms)) == 0)
            return make_errno_error(ETIMEDOUT, "pool control socket");
        auto n = TRY(sys::read(fd, buffer, sizeof(buffer)));
        if (n == 0)
            break;
        message.append(buffer, n);
    }
    if (message.size() >= MAX_MESSAGE)
        return make_error("pool control message too long");
    return message;
}

// A peer that has gone away gets EPIPE, not a SIGPIPE that would end this process (an NBD server
// answering on the control socket, or `kasou pool add` asking).
ErrorOr<void> write_message(int fd, std::string const& message)
{
    iovec vector { const_cast<char*>(message.data()), message.size() };
    return sys::send_all(fd, &vector, 1);
}

} // namespace

std::string pool_control_path(std::string const& state_dir, std::string const& name)
{
    return fmt::format("{}/locks/{}.sock", state_dir, name);
}

ErrorOr<std::unique_ptr<PoolControlServer>> PoolControlServer::start(std::string state_dir, std::string name, std::shared_ptr<ThinPool> pool)
{
    auto path = pool_control_path(state_dir, name);
    Fd listener = TRY(listen_unix(path, 8));
    if (::chmod(path.c_str(), 0600) != 0)
        return make_errno_error(errno, fmt::format("chmod {}", path));
    auto stop = TRY(EventFd::create());
    std::unique_ptr<PoolControlServer> server(
        new PoolControlServer(std::move(state_dir), std::move(name), std::move(pool), std::move(path), std::move(listener), std::move(stop)));
    server->m_thread = std::thread([raw = server.get()] { raw->serve(); });
    return server;
}

PoolControlServer::PoolControlServer(std::string state_dir, std::string name, std::shared_ptr<ThinPool> pool, std::string path, Fd listener,
    EventFd stop)
    : m_state_dir(std::move(state_dir))
    , m_name(std::move(name))
    , m_pool(std::move(pool))
    , m_path(std::move(path))
    , m_listener(std::move(listener))
    , m_stop(std::move(stop))
{
}

void PoolControlServer::stop()
{
    (void)m_stop.signal();
    if (m_thread.joinable())
        m_thread.join();
}

PoolControlServer::~PoolControlServer()
{
    stop();
    (void)sys::unlink(m_path);
}

void PoolControlServer::serve()
{
    for (;;) {
        pollfd ready[2] = { { m_listener.get(), POLLIN, 0 }, { m_stop.fd(), POLLIN, 0 } };
        auto polled = sys::poll(ready, 2, -1);
        if (!polled || (ready[1].revents & POLLIN))
            return;
        if (auto connection = sys::accept(m_listener.get()))
            answer(std::move(*connection));
    }
}

void PoolControlServer::answer(Fd connection)
{
    auto request = read_message(connection.get(), REQUEST_TIMEOUT_MS);
    std::string reply;
    try {
        reply = request ? handle(*request) : error_answer(request.error().to_string());
    } catch (std::exception const& exception) {
        // nlohmann::json throws on what a request may hold; the holder must not die of it.
        reply = error_answer(fmt::format("malformed request: {}", exception.what()));
    }
    if (auto written = write_message(connection.get(), reply + "\n"); !written)
        spdlog::warn("pool {}: control socket: {}", m_name, written.error().to_string());
}

std::string PoolControlServer::handle(std::string const& text)
{
    auto request = nlohmann::json::parse(text, nullptr, false);
    auto const& refuse = error_answer;
    if (request.is_discarded() || !request.is_object())
        return refuse("the request is not a JSON object");
    if (!request.contains("op") || !request["op"].is_string() || request["op"].get<std::string>() != "add")
        return refuse("unknown request (known: add)");
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

std::optional<ErrorOr<void>> ask_holder_to_add(std::string const& state_dir, std::string const& name, std::vector<std::string> const& disks,
    bool force)
{
    auto connection = connect_unix(pool_control_path(state_dir, name));
    if (!connection)
        return std::nullopt; // no socket, or its process is gone: nobody to ask
    auto exchange = [&]() -> ErrorOr<void> {
        nlohmann::json request { { "op", "add" }, { "disks", disks }, { "force", force } };
        TRY(write_message(connection->get(), request.dump() + "\n"));
        TRY(sys::shutdown(connection->get(), SHUT_WR));
        auto text = TRY(read_message(connection->get(), ANSWER_TIMEOUT_MS));
        auto answer = nlohmann::json::parse(text, nullptr, false);
        if (answer.is_object() && answer.contains("ok") && answer["ok"].is_boolean() && answer["ok"].get<bool>())
            return {};
        if (answer.is_object() && answer.contains("error") && answer["error"].is_string())
            return make_error(answer["error"].get<std::string>());
        return make_error(fmt::format("pool {}: the process holding it gave no answer", name));
    };
    return exchange().map_error([&](Error const& error) { return error.with_prefix(fmt::format("pool {} (in use; asked its holder)", name)); });
}

} // namespace kasou::storage
