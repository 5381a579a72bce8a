// http::UnixServer on a real Unix socket, driven by a raw client: keep-alive, the limits, the
// timeouts, the connection limit, and the socket file's life.

#include <cerrno>
#include <chrono>
#include <map>
#include <sys/socket.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <gtest/gtest.h>

#include "base/sys_socket.h"
#include "base/unix_socket.h"
#include "http/unix_server.h"

using namespace kasou;
using namespace std::chrono_literals;

namespace {

// A server on its own loop thread, answering every request with its method, target and body.
class ServerFixture : public ::testing::Test {
protected:
    void start(http::ServerLimits limits = {})
    {
        m_path = ::testing::TempDir() + "kasou-http-" + std::to_string(::getpid()) + ".sock";
        http::Service service {
            [this](http::Request const& request) {
                ++m_handled;
                return http::Response { 200, request.method + " " + request.target + " " + request.body, "text/plain" };
            },
            [](unsigned status, std::string_view reason) { return http::Response { status, std::string(reason), "text/plain" }; },
        };
        auto server = http::UnixServer::start(m_io, m_path, service, limits);
        ASSERT_TRUE(server) << server.error().to_string();
        m_server = std::move(*server);
        m_thread = std::thread([this] { m_io.run(); });
    }

    void TearDown() override
    {
        if (m_thread.joinable()) {
            // The server is destroyed on its loop's thread, as it asks.
            boost::asio::post(m_io, [this] { m_server.reset(); });
            m_guard.reset();
            m_thread.join();
        }
    }

    Fd connect()
    {
        auto fd = connect_unix(m_path);
        EXPECT_TRUE(fd) << fd.error().to_string();
        (void)sys::setsockopt_timeout(fd->get(), SO_RCVTIMEO, 5000);
        return std::move(*fd);
    }

    static void send(Fd const& fd, std::string const& text) { ASSERT_EQ(::send(fd.get(), text.data(), text.size(), MSG_NOSIGNAL), static_cast<ssize_t>(text.size())); }

    // Reads until the server has sent one whole response (headers and Content-Length bytes), or
    // closed; returns that response and keeps what came after it for the next call.
    std::string receive_response(Fd const& fd)
    {
        std::string& text = m_pending[fd.get()];
        char buffer[4096];
        for (;;) {
            auto end = text.find("\r\n\r\n");
            if (end != std::string::npos) {
                auto length_at = text.find("Content-Length: ");
                size_t length = length_at == std::string::npos || length_at > end ? 0 : std::stoul(text.substr(length_at + 16));
                if (text.size() >= end + 4 + length) {
                    auto response = text.substr(0, end + 4 + length);
                    text.erase(0, end + 4 + length);
                    return response;
                }
            }
            ssize_t got = ::recv(fd.get(), buffer, sizeof(buffer), 0);
            if (got <= 0)
                return std::exchange(text, {});
            text.append(buffer, static_cast<size_t>(got));
        }
    }

    // True when the server closed the connection (recv sees the end within the timeout).
    // A server that closes while bytes it did not read are still queued resets the connection
    // (ECONNRESET) instead of ending it; both mean it closed.
    static bool closed_by_server(Fd const& fd)
    {
        char byte;
        auto received = ::recv(fd.get(), &byte, 1, 0);
        return received == 0 || (received < 0 && errno == ECONNRESET);
    }

    boost::asio::io_context m_io;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> m_guard { m_io.get_executor() };
    std::string m_path;
    std::unique_ptr<http::UnixServer> m_server;
    std::thread m_thread;
    std::atomic<int> m_handled { 0 };
    std::map<int, std::string> m_pending; // bytes received past the last response, by descriptor
};

TEST_F(ServerFixture, AnswersRequestsOfAKeptAliveConnectionInOrder)
{
    start();
    struct stat info {};
    ASSERT_EQ(::stat(m_path.c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0600u) << "only the owner may connect";

    auto client = connect();
    send(client, "PUT /drives/root HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello");
    auto first = receive_response(client);
    EXPECT_TRUE(first.starts_with("HTTP/1.1 200 OK\r\n")) << first;
    EXPECT_TRUE(first.ends_with("PUT /drives/root hello")) << first;
    // Two pipelined requests on the same connection, the second asking to close it.
    send(client, "GET /a HTTP/1.1\r\nHost: localhost\r\n\r\nGET /b?x=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    auto second = receive_response(client);
    EXPECT_TRUE(second.ends_with("GET /a ")) << second;
    auto third = receive_response(client);
    EXPECT_TRUE(third.ends_with("GET /b?x=1 ")) << third;
    EXPECT_TRUE(closed_by_server(client));
    EXPECT_EQ(m_handled.load(), 3);
}

TEST_F(ServerFixture, MalformedRequestsGetA400AndTheConnectionCloses)
{
    start();
    for (std::string request : { "NOT HTTP AT ALL\r\n\r\n", "GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
             "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" }) {
        auto client = connect();
        send(client, request);
        auto answer = receive_response(client);
        EXPECT_TRUE(answer.starts_with("HTTP/1.1 400 Bad Request\r\n")) << request << " -> " << answer;
        EXPECT_NE(answer.find("malformed HTTP request"), std::string::npos) << answer;
        EXPECT_TRUE(closed_by_server(client));
    }
    EXPECT_EQ(m_handled.load(), 0) << "the service saw none of them";
}

TEST_F(ServerFixture, RequestsPastTheLimitsGet413Or431)
{
    start({ .header_bytes = 1024, .body_bytes = 100 });
    auto client = connect();
    send(client, "PUT /x HTTP/1.1\r\nContent-Length: 101\r\n\r\n" + std::string(101, 'a'));
    auto answer = receive_response(client);
    EXPECT_TRUE(answer.starts_with("HTTP/1.1 413 ")) << answer;
    EXPECT_NE(answer.find("larger than 100 bytes"), std::string::npos) << answer;
    EXPECT_TRUE(closed_by_server(client));

    auto other = connect();
    send(other, "GET /x HTTP/1.1\r\nX-Filler: " + std::string(2000, 'b') + "\r\n\r\n");
    answer = receive_response(other);
    EXPECT_TRUE(answer.starts_with("HTTP/1.1 431 ")) << answer;
    EXPECT_TRUE(closed_by_server(other));

    auto within = connect();
    send(within, "PUT /x HTTP/1.1\r\nContent-Length: 100\r\n\r\n" + std::string(100, 'c'));
    EXPECT_TRUE(receive_response(within).starts_with("HTTP/1.1 200 "));
    EXPECT_EQ(m_handled.load(), 1);
}

TEST_F(ServerFixture, SilentOrHalfSentClientsAreDisconnectedAfterTheReadTimeout)
{
    start({ .read_timeout = 200ms });
    auto silent = connect();
    auto partial = connect();
    send(partial, "PUT /x HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc");
    auto began = std::chrono::steady_clock::now();
    EXPECT_TRUE(closed_by_server(silent));
    EXPECT_TRUE(closed_by_server(partial));
    EXPECT_LT(std::chrono::steady_clock::now() - began, 3s);
    EXPECT_EQ(m_handled.load(), 0);
}

TEST_F(ServerFixture, ConnectionsPastTheLimitAreClosedAtOnce)
{
    start({ .connections = 1 });
    auto first = connect();
    send(first, "GET /1 HTTP/1.1\r\n\r\n");
    EXPECT_TRUE(receive_response(first).ends_with("GET /1 "));
    auto second = connect();
    EXPECT_TRUE(closed_by_server(second));
    first = Fd();
    // Once the first has gone, a new one is served.
    std::string answer;
    for (int attempt = 0; attempt < 50 && answer.empty(); ++attempt) {
        auto third = connect();
        send(third, "GET /3 HTTP/1.1\r\n\r\n");
        answer = receive_response(third);
        if (answer.empty())
            std::this_thread::sleep_for(20ms);
    }
    EXPECT_TRUE(answer.ends_with("GET /3 ")) << answer;
}

TEST_F(ServerFixture, TheSocketFileGoesWithTheServerAndALiveOneIsNotTakenOver)
{
    start();
    boost::asio::io_context other;
    auto second = http::UnixServer::start(other, m_path, { [](auto const&) { return http::Response {}; }, [](unsigned, auto) { return http::Response {}; } });
    ASSERT_FALSE(second) << "a socket another server answers on is refused";
    TearDown();
    EXPECT_NE(::access(m_path.c_str(), F_OK), 0) << "removed when the server is destroyed";
}

} // namespace
