#include "storage/nbd/server.h"

#include <arpa/inet.h>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/sys.h"
#include "base/try.h"
#include "base/unix_socket.h"
#include "storage/nbd/connection.h"

namespace kasou::storage::nbd {

ErrorOr<ListenAddress> ListenAddress::parse_tcp(std::string const& text)
{
    auto colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0)
        return make_error(fmt::format("'{}' is not HOST:PORT", text));
    ListenAddress address;
    address.host = text.substr(0, colon);
    if (address.host == "localhost")
        address.host = "127.0.0.1";
    in_addr parsed {};
    if (inet_pton(AF_INET, address.host.c_str(), &parsed) != 1)
        return make_error(fmt::format("'{}' is not an IPv4 address", address.host));
    auto port_text = std::string_view(text).substr(colon + 1);
    unsigned port = 0;
    auto [end, error] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (error != std::errc {} || end != port_text.data() + port_text.size() || port > 65535)
        return make_error(fmt::format("'{}' is not a TCP port", port_text));
    address.port = static_cast<u16>(port);
    return address;
}

std::string ListenAddress::to_string() const
{
    if (!unix_path.empty())
        return fmt::format("unix:{}", unix_path);
    return fmt::format("{}:{}", host, port);
}

namespace {

ErrorOr<Fd> listen_tcp(ListenAddress& address)
{
    sockaddr_in in {};
    in.sin_family = AF_INET;
    in.sin_port = htons(address.port);
    inet_pton(AF_INET, address.host.c_str(), &in.sin_addr);
    Fd listener = TRY(sys::socket(AF_INET, SOCK_STREAM, 0));
    TRY(sys::setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, 1));
    if (auto bound = sys::bind(listener.get(), reinterpret_cast<sockaddr const*>(&in), sizeof(in)); !bound)
        return tl::unexpected(bound.error().with_prefix(address.to_string()));
    TRY(sys::listen(listener.get(), 128));
    socklen_t length = sizeof(in);
    TRY(sys::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&in), length));
    address.port = ntohs(in.sin_port);
    return listener;
}

} // namespace

Server::Server(std::vector<Export> exports, Fd listener, ListenAddress address, ServerOptions const& options)
    : m_exports(std::move(exports))
    , m_listener(std::move(listener))
    , m_address(std::move(address))
    , m_options(options)
    , m_budget(options.max_memory)
{
}

ErrorOr<void> ServerOptions::validate() const
{
    if (workers_per_connection == 0)
        return make_error("workers per connection must be at least 1");
    if (max_connections == 0)
        return make_error("max connections must be at least 1");
    if (max_memory < MIN_MEMORY)
        return make_error(fmt::format("max memory of {} bytes is below the minimum of {} bytes", max_memory, MIN_MEMORY));
    return {};
}

Server::~Server()
{
    for (auto& client : m_clients)
        stop(*client);
    reap(true);
    if (!m_address.unix_path.empty() && m_listener.valid())
        (void)sys::unlink(m_address.unix_path);
}

ErrorOr<std::unique_ptr<Server>> Server::create(std::vector<Export> exports, ListenAddress const& address, ServerOptions const& options)
{
    TRY(options.validate());
    if (exports.empty())
        return make_error("nothing to serve: no exports");
    for (size_t i = 0; i < exports.size(); ++i) {
        if (exports[i].name.empty() || exports[i].name.size() > 4096)
            return make_error(fmt::format("export name '{}' must have 1 to 4096 bytes", exports[i].name));
        for (size_t j = 0; j < i; ++j) {
            if (exports[i].name == exports[j].name)
                return make_error(fmt::format("two exports are named '{}'", exports[i].name));
        }
    }
    ListenAddress bound = address;
    Fd listener = TRY(bound.unix_path.empty() ? listen_tcp(bound) : listen_unix(bound.unix_path));
    return std::unique_ptr<Server>(new Server(std::move(exports), std::move(listener), std::move(bound), options));
}

void Server::accept_one()
{
    auto accepted = sys::accept(m_listener.get());
    if (!accepted) {
        spdlog::warn("nbd: accept: {}", accepted.error().to_string());
        return;
    }
    std::string peer = fmt::format("connection {}", m_next_client_id++);
    if (m_clients.size() >= m_options.max_connections) {
        spdlog::warn("nbd: {}: refused, {} connections are open already", peer, m_clients.size());
        return;
    }
    if (m_address.unix_path.empty())
        (void)sys::setsockopt(accepted->get(), IPPROTO_TCP, TCP_NODELAY, 1);
    auto transport = std::make_shared<SocketTransport>(std::move(*accepted));
    if (auto timeout = transport->set_send_timeout(m_options.send_timeout); !timeout) {
        spdlog::warn("nbd: {}: refused: {}", peer, timeout.error().to_string());
        return;
    }
    auto client = std::make_unique<Client>();
    client->peer = peer;
    client->transport = std::move(transport);
    client->accepted = std::chrono::steady_clock::now();
    Client* raw = client.get();
    try {
        client->thread = std::thread([this, raw] {
            ConnectionEnvironment environment { .max_workers = m_options.workers_per_connection, .budget = m_budget, .monitor = raw->monitor };
            serve_connection(*raw->transport, m_exports, environment, raw->peer);
            raw->finished = true;
        });
    } catch (std::system_error const& error) {
        spdlog::warn("nbd: {}: cannot start a thread: {}", peer, error.what());
        return;
    }
    m_clients.push_back(std::move(client));
}

void Server::reap(bool all)
{
    for (auto it = m_clients.begin(); it != m_clients.end();) {
        if (all || (*it)->finished) {
            (*it)->thread.join();
            it = m_clients.erase(it);
        } else {
            ++it;
        }
    }
}

void Server::stop(Client& client)
{
    client.monitor.request_stop();
    client.transport->stop_reading();
}

std::chrono::milliseconds Server::watch()
{
    using namespace std::chrono;
    auto const now = steady_clock::now();
    auto next = now + seconds(1);
    for (auto& client : m_clients) {
        if (client->closing || client->finished)
            continue;
        std::optional<steady_clock::time_point> deadline;
        std::string_view why;
        if (client->monitor.negotiating()) {
            if (m_options.handshake_timeout.count() > 0) {
                deadline = client->accepted + m_options.handshake_timeout;
                why = "did not finish the handshake within";
            }
        } else if (m_options.idle_timeout.count() > 0) {
            if (auto idle_since = client->monitor.idle_since()) {
                deadline = *idle_since + m_options.idle_timeout;
                why = "sent no request for";
            }
        }
        if (!deadline)
            continue;
        if (*deadline <= now) {
            auto limit = client->monitor.negotiating() ? m_options.handshake_timeout : m_options.idle_timeout;
            spdlog::warn("nbd: {}: closing: it {} {} ms", client->peer, why, limit.count());
            client->closing = true;
            client->monitor.request_stop();
            client->transport->disconnect(); // nothing in flight: nothing to answer
        } else {
            next = std::min(next, *deadline);
        }
    }
    return duration_cast<milliseconds>(next - now) + milliseconds(1);
}

ErrorOr<void> Server::run(int stop_fd)
{
    spdlog::info("nbd: serving {} export(s) on {}", m_exports.size(), m_address.to_string());
    auto wait = std::chrono::milliseconds(1000);
    for (;;) {
        pollfd fds[2] = { { m_listener.get(), POLLIN, 0 }, { stop_fd, POLLIN, 0 } };
        TRY(sys::poll(fds, 2, static_cast<int>(wait.count())));
        reap(false);
        wait = watch();
        if (fds[1].revents)
            break;
        if (fds[0].revents & POLLIN)
            accept_one();
    }
    spdlog::info("nbd: stopping: answering {} connection(s) in flight", m_clients.size());
    if (!m_address.unix_path.empty())
        (void)sys::unlink(m_address.unix_path); // already gone is fine
    m_listener.reset();
    for (auto& client : m_clients)
        client->transport->stop_reading();
    reap(true);
    ErrorOr<void> result;
    for (auto const& entry : m_exports) {
        if (auto flushed = entry.device->flush(); !flushed) {
            spdlog::error("nbd: flushing export '{}': {}", entry.name, flushed.error().to_string());
            result = tl::unexpected(flushed.error().with_prefix(entry.name));
        }
    }
    return result;
}

} // namespace kasou::storage::nbd
