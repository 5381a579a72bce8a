#include "storage/nbd/server.h"

#include <arpa/inet.h>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <list>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <optional>
#include <poll.h>
#include <sys/file.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/asio_error.h"
#include "base/sys_event.h"
#include "base/sys_file.h"
#include "base/sys_path.h"
#include "base/sys_socket.h"
#include "base/try.h"
#include "base/unix_socket.h"
#include "storage/nbd/connection.h"
#include "storage/nbd/transport.h"

namespace kasou::storage::nbd {

namespace asio = boost::asio;
using boost::system::error_code;

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

// The event loop of run(): the listening socket and the stop descriptor, both waited on for
// readability; the watchdog timer; the connections and their threads. Only the loop's thread
// touches it, except that a connection's thread posts its own end to `io`.
struct Server::Loop {
    // A connection's handshake, run on the loop: the socket is waited on for readiness and read
    // and written without blocking (MSG_DONTWAIT), exactly as many bytes as the negotiation wants.
    struct Handshake {
        Handshake(Server const& server, int fd, asio::io_context& io)
            : negotiation(server.m_exports, max_payload_for(server.m_budget))
            , socket(io, fd)
            , output(negotiation.take_output())
        {
        }
        ~Handshake()
        {
            // Waiting through Asio made the socket non-blocking; the transmission's threads block.
            error_code ignored;
            socket.native_non_blocking(false, ignored);
            (void)socket.release(); // the transport owns the descriptor
        }
        Negotiation negotiation;
        asio::posix::stream_descriptor socket;
        std::vector<u8> input;
        size_t received { 0 };
        std::vector<u8> output;
        size_t sent { 0 };
    };

    struct Client {
        Client(std::string peer, std::shared_ptr<SocketTransport> transport, asio::io_context& io)
            : peer(std::move(peer))
            , transport(std::move(transport))
            , work(asio::make_work_guard(io))
        {
        }
        std::string peer;
        std::shared_ptr<SocketTransport> transport;
        std::unique_ptr<Handshake> handshake; // until the handshake is over
        ConnectionMonitor monitor;
        std::chrono::steady_clock::time_point accepted { std::chrono::steady_clock::now() };
        asio::executor_work_guard<asio::io_context::executor_type> work; // run() lasts until it is reaped
        std::thread thread;
        std::atomic<bool> finished { false };
        bool closing { false }; // the watchdog has stopped it
    };
    using Clients = std::list<Client>;

    explicit Loop(Server& server)
        : server(server)
    {
    }

    // Takes over the listening socket (set non-blocking, so a connection that went away before it
    // was accepted costs a wake-up, not a hang).
    ErrorOr<void> listen(Fd listener);
    ErrorOr<void> run(int stop_fd);
    void accept_next();
    void accept_one();
    void start(Fd connection);
    // Sends what the negotiation has to say and reads what it wants next, until it would block
    // (then waits for the socket) or the handshake is over.
    void handshake_step(Clients::iterator client);
    // Starts the connection's thread for the transmission phase.
    void begin_transmission(Clients::iterator client);
    // Joins the thread of a connection that has ended and forgets it.
    void reap(Clients::iterator client);
    // Forgets a connection that has no thread (it ended during the handshake).
    void forget(Clients::iterator client);
    // Closes the connections past a timeout; returns how long until the next one can expire.
    std::chrono::milliseconds watch();
    void watch_next(std::chrono::milliseconds delay);
    // Stops when the server has been unused long enough and may go (see exit_when_unused);
    // returns when to look again.
    std::chrono::steady_clock::time_point exit_if_unused(std::chrono::steady_clock::time_point now);
    void stop();

    Server& server;
    asio::io_context io { 1 };
    asio::posix::stream_descriptor listener { io };
    asio::posix::stream_descriptor stop_event { io };
    asio::steady_timer watchdog { io };
    Clients clients;
    u64 next_client_id { 1 };
    bool stopping { false };
    std::chrono::steady_clock::time_point unused_since { std::chrono::steady_clock::now() };
};

ErrorOr<void> Server::Loop::listen(Fd socket)
{
    error_code code;
    listener.assign(socket.get(), code);
    if (!code)
        listener.non_blocking(true, code);
    if (code)
        return tl::unexpected(asio_error(code, server.m_address.to_string()));
    (void)socket.release(); // the loop owns it now
    return {};
}

void Server::Loop::accept_next()
{
    listener.async_wait(asio::posix::stream_descriptor::wait_read, [this](error_code const& code) {
        if (code == asio::error::operation_aborted || stopping)
            return;
        if (code)
            spdlog::warn("nbd: waiting for connections: {}", asio_error(code, "accept").to_string());
        else
            accept_one();
        accept_next();
    });
}

void Server::Loop::accept_one()
{
    // accept4 with SOCK_CLOEXEC, so no connection leaks into a process kasou starts.
    auto accepted = sys::accept(listener.native_handle());
    if (!accepted) {
        if (accepted.error().code() != EAGAIN)
            spdlog::warn("nbd: accept: {}", accepted.error().to_string());
        return;
    }
    start(std::move(*accepted));
}

void Server::Loop::start(Fd connection)
{
    auto const& options = server.m_options;
    std::string peer = fmt::format("connection {}", next_client_id++);
    if (clients.size() >= options.max_connections) {
        spdlog::warn("nbd: {}: refused, {} connections are open already", peer, clients.size());
        return;
    }
    if (server.m_address.unix_path.empty())
        (void)sys::setsockopt(connection.get(), IPPROTO_TCP, TCP_NODELAY, 1);
    auto transport = std::make_shared<SocketTransport>(std::move(connection));
    if (auto timeout = transport->set_send_timeout(options.send_timeout); !timeout) {
        spdlog::warn("nbd: {}: refused: {}", peer, timeout.error().to_string());
        return;
    }
    auto client = clients.emplace(clients.end(), std::move(peer), std::move(transport), io);
    try {
        client->handshake = std::make_unique<Handshake>(server, client->transport->native_handle(), io);
    } catch (boost::system::system_error const& error) {
        spdlog::warn("nbd: {}: refused: {}", client->peer, asio_error(error.code(), "event loop").to_string());
        forget(client);
        return;
    }
    handshake_step(client);
}

void Server::Loop::handshake_step(Clients::iterator client)
{
    auto& handshake = *client->handshake;
    int const fd = client->transport->native_handle();
    auto wait = [this, client](asio::posix::stream_descriptor::wait_type type) {
        client->handshake->socket.async_wait(type, [this, client](error_code const& code) {
            if (code == asio::error::operation_aborted)
                return; // the handshake is gone (and with it, perhaps, the client)
            handshake_step(client);
        });
    };
    auto end = [&](std::optional<Error> const& error) {
        if (error)
            spdlog::error("nbd: {}: closing the connection during negotiation: {}", client->peer, error->to_string());
        else
            spdlog::debug("nbd: {}: the client left during negotiation", client->peer);
        forget(client);
    };
    for (;;) {
        while (handshake.sent < handshake.output.size()) {
            auto sent = sys::send(fd, handshake.output.data() + handshake.sent, handshake.output.size() - handshake.sent, MSG_DONTWAIT);
            if (!sent && (sent.error().code() == EAGAIN || sent.error().code() == EWOULDBLOCK))
                return wait(asio::posix::stream_descriptor::wait_write);
            if (!sent) {
                // After NBD_OPT_ABORT the acknowledgement is a courtesy the client need not take.
                if (handshake.negotiation.state() == Negotiation::State::Ended)
                    return end(std::nullopt);
                return end(sent.error());
            }
            handshake.sent += *sent;
        }
        handshake.output.clear();
        handshake.sent = 0;
        switch (handshake.negotiation.state()) {
        case Negotiation::State::Done:
            return begin_transmission(client);
        case Negotiation::State::Ended:
            return end(std::nullopt);
        case Negotiation::State::Reading:
            break;
        }
        handshake.input.resize(handshake.negotiation.wanted());
        while (handshake.received < handshake.input.size()) {
            auto received = sys::recv(fd, handshake.input.data() + handshake.received, handshake.input.size() - handshake.received, MSG_DONTWAIT);
            if (!received && (received.error().code() == EAGAIN || received.error().code() == EWOULDBLOCK))
                return wait(asio::posix::stream_descriptor::wait_read);
            if (!received)
                return end(received.error());
            if (*received == 0) {
                if (handshake.negotiation.in_option() || handshake.received > 0)
                    return end(Error::from_string("the client closed the connection in the middle of an option", ErrorKind::Disconnected));
                return end(std::nullopt);
            }
            handshake.received += *received;
        }
        handshake.received = 0;
        if (auto fed = handshake.negotiation.feed(handshake.input); !fed)
            return end(fed.error());
        handshake.output = handshake.negotiation.take_output();
    }
}

void Server::Loop::begin_transmission(Clients::iterator client)
{
    Session session = client->handshake->negotiation.session();
    client->handshake.reset();
    client->monitor.negotiated();
    try {
        client->thread = std::thread([this, client, session] {
            ConnectionEnvironment environment { .max_workers = server.m_options.workers_per_connection, .budget = server.m_budget, .monitor = client->monitor };
            serve_session(*client->transport, session, environment, client->peer);
            client->finished = true;
            asio::post(io, [this, client] { reap(client); });
        });
    } catch (std::system_error const& error) {
        spdlog::warn("nbd: {}: cannot start a thread: {}", client->peer, error.what());
        forget(client);
    }
}

void Server::Loop::reap(Clients::iterator client)
{
    client->thread.join(); // it has posted this as its last act
    forget(client);
}

void Server::Loop::forget(Clients::iterator client)
{
    clients.erase(client);
    if (clients.empty()) {
        unused_since = std::chrono::steady_clock::now();
        if (server.m_options.exit_when_unused.count() > 0 && !stopping) {
            watchdog.cancel(); // look again now rather than at the next tick
            watch_next(std::chrono::milliseconds(0));
        }
    }
}

std::chrono::steady_clock::time_point Server::Loop::exit_if_unused(std::chrono::steady_clock::time_point now)
{
    auto const& options = server.m_options;
    auto const never = now + std::chrono::hours(1);
    if (options.exit_when_unused.count() == 0 || stopping)
        return never;
    if (!clients.empty())
        return never; // reap() looks again when the last one goes
    auto deadline = unused_since + options.exit_when_unused;
    if (deadline > now)
        return deadline;
    auto const retry = now + std::chrono::milliseconds(50);
    auto lock = sys::open(options.exit_lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (!lock) {
        spdlog::warn("nbd: {}: {}", options.exit_lock_path, lock.error().to_string());
        return retry;
    }
    if (!sys::flock(lock->get(), LOCK_EX | LOCK_NB))
        return retry; // a client is connecting
    // A client that connected before we took the lock waits in the listen queue.
    pollfd pending { .fd = listener.native_handle(), .events = POLLIN, .revents = 0 };
    if (sys::poll(&pending, 1, 0).value_or(0) > 0) {
        accept_one();
        return retry;
    }
    spdlog::info("nbd: no connection for {} ms: stopping", options.exit_when_unused.count());
    stop(); // the socket is removed before the lock is released
    return never;
}

std::chrono::milliseconds Server::Loop::watch()
{
    using namespace std::chrono;
    auto const& options = server.m_options;
    auto const now = steady_clock::now();
    auto next = now + seconds(1);
    for (auto& client : clients) {
        if (client.closing || client.finished)
            continue;
        std::optional<steady_clock::time_point> deadline;
        std::string_view why;
        if (client.monitor.negotiating()) {
            if (options.handshake_timeout.count() > 0) {
                deadline = client.accepted + options.handshake_timeout;
                why = "did not finish the handshake within";
            }
        } else if (options.idle_timeout.count() > 0) {
            if (auto idle_since = client.monitor.idle_since()) {
                deadline = *idle_since + options.idle_timeout;
                why = "sent no request for";
            }
        }
        if (!deadline)
            continue;
        if (*deadline <= now) {
            auto limit = client.monitor.negotiating() ? options.handshake_timeout : options.idle_timeout;
            spdlog::warn("nbd: {}: closing: it {} {} ms", client.peer, why, limit.count());
            client.closing = true;
            client.monitor.request_stop();
            client.transport->disconnect(); // nothing in flight: nothing to answer
        } else {
            next = std::min(next, *deadline);
        }
    }
    next = std::min(next, exit_if_unused(now));
    if (stopping)
        return milliseconds(0);
    return duration_cast<milliseconds>(next - now) + milliseconds(1);
}

void Server::Loop::watch_next(std::chrono::milliseconds delay)
{
    watchdog.expires_after(delay);
    watchdog.async_wait([this](error_code const& code) {
        if (!code && !stopping)
            watch_next(watch());
    });
}

void Server::Loop::stop()
{
    stopping = true;
    spdlog::info("nbd: stopping: answering {} connection(s) in flight", clients.size());
    if (!server.m_address.unix_path.empty())
        (void)sys::unlink(server.m_address.unix_path); // already gone is fine
    error_code ignored;
    listener.close(ignored);
    stop_event.cancel(ignored); // when stopping on its own (exit_when_unused)
    watchdog.cancel();
    for (auto& client : clients) {
        client.monitor.request_stop(); // a receiver waiting for memory gives up
        client.transport->stop_reading();
    }
}

ErrorOr<void> Server::Loop::run(int stop_fd)
{
    error_code code;
    stop_event.assign(stop_fd, code);
    if (code)
        return tl::unexpected(asio_error(code, "nbd: the stop descriptor"));
    stop_event.async_wait(asio::posix::stream_descriptor::wait_read, [this](error_code const&) {
        if (!stopping)
            stop();
    });
    accept_next();
    watch_next(watch());
    // Returns once stopped and every connection has been reaped (each holds a work guard).
    io.run();
    (void)stop_event.release(); // the caller's
    return {};
}

Server::Server(std::vector<Export> exports, ListenAddress address, ServerOptions const& options)
    : m_exports(std::move(exports))
    , m_address(std::move(address))
    , m_options(options)
    , m_budget(options.max_memory)
    , m_loop(std::make_unique<Loop>(*this))
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
    if (!m_address.unix_path.empty() && m_loop->listener.is_open())
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
    std::unique_ptr<Server> server;
    try {
        server.reset(new Server(std::move(exports), std::move(bound), options));
    } catch (boost::system::system_error const& error) {
        return tl::unexpected(asio_error(error.code(), "nbd: event loop"));
    }
    TRY(server->m_loop->listen(std::move(listener)));
    return server;
}

ErrorOr<void> Server::run(int stop_fd)
{
    spdlog::info("nbd: serving {} export(s) on {}", m_exports.size(), m_address.to_string());
    TRY(m_loop->run(stop_fd));
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
