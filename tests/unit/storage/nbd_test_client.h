#pragma once

// A minimal NBD client for the unit tests: the server side runs serve_connection() on one end of
// a socketpair, the test drives the other end byte by byte with these helpers.

#include <string>
#include <sys/socket.h>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "base/sys_file.h"
#include "base/sys_socket.h"
#include "base/try.h"
#include "storage/nbd/connection.h"
#include "storage/nbd/protocol.h"

namespace kasou::storage::nbd::testing {

struct OptionReply {
    u32 option { 0 };
    u32 type { 0 };
    std::vector<u8> data;
};

struct Chunk {
    u16 flags { 0 };
    u16 type { 0 };
    u64 cookie { 0 };
    std::vector<u8> payload;
};

// Starts a server thread for `exports` and holds the client end.
class TestClient {
public:
    TestClient(std::vector<Export> const& exports, u32 workers = 1, u64 max_memory = 256 * MiB)
        : m_exports(exports)
        , m_budget(max_memory)
    {
        int fds[2];
        EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
        m_socket = Fd(fds[0]);
        m_server = std::thread([this, server = fds[1], workers] {
            SocketTransport transport { Fd(server) };
            serve_connection(transport, m_exports, { .max_workers = workers, .budget = m_budget, .monitor = m_monitor }, "test");
        });
    }
    ~TestClient()
    {
        m_socket.reset();
        m_server.join();
    }

    void send(std::vector<u8> const& bytes) { ASSERT_TRUE(sys::write_exact(m_socket.get(), bytes.data(), bytes.size())); }
    std::vector<u8> receive(size_t size)
    {
        std::vector<u8> bytes(size);
        size_t done = 0;
        while (done < size) {
            auto n = MUST(sys::recv(m_socket.get(), bytes.data() + done, size - done, 0));
            if (n == 0) {
                ADD_FAILURE() << "the server closed the connection";
                return {};
            }
            done += n;
        }
        return bytes;
    }
    // True if the server closed its end (after draining anything it still sent).
    bool closed_by_server()
    {
        u8 scratch[4096];
        for (;;) {
            auto n = sys::recv(m_socket.get(), scratch, sizeof(scratch), 0);
            if (!n)
                return n.error().code() == ECONNRESET;
            if (*n == 0)
                return true;
        }
    }

    // Reads the greeting and sends the client flags.
    void handshake(u32 client_flags = NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)
    {
        auto greeting = receive(18);
        ASSERT_EQ(greeting.size(), 18u);
        EXPECT_EQ(load_be64(greeting.data()), NBD_MAGIC);
        EXPECT_EQ(load_be64(greeting.data() + 8), NBD_IHAVEOPT);
        EXPECT_EQ(load_be16(greeting.data() + 16), NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
        WireWriter flags;
        flags.u32_field(client_flags);
        send(flags.data());
    }
    void option(u32 option, std::vector<u8> const& payload = {})
    {
        WireWriter message;
        message.u64_field(NBD_IHAVEOPT);
        message.u32_field(option);
        message.u32_field(static_cast<u32>(payload.size()));
        message.bytes(payload);
        send(message.data());
    }
    OptionReply option_reply()
    {
        auto header = receive(20);
        if (header.size() != 20)
            return {};
        EXPECT_EQ(load_be64(header.data()), NBD_OPTION_REPLY_MAGIC);
        OptionReply reply { .option = load_be32(header.data() + 8), .type = load_be32(header.data() + 12), .data = {} };
        reply.data = receive(load_be32(header.data() + 16));
        return reply;
    }
    static std::vector<u8> go_payload(std::string const& name, std::vector<u16> const& infos = {})
    {
        WireWriter payload;
        payload.u32_field(static_cast<u32>(name.size()));
        payload.text(name);
        payload.u16_field(static_cast<u16>(infos.size()));
        for (u16 info : infos)
            payload.u16_field(info);
        return payload.data();
    }
    static std::vector<u8> meta_payload(std::string const& name, std::vector<std::string> const& queries)
    {
        WireWriter payload;
        payload.u32_field(static_cast<u32>(name.size()));
        payload.text(name);
        payload.u32_field(static_cast<u32>(queries.size()));
        for (auto const& query : queries) {
            payload.u32_field(static_cast<u32>(query.size()));
            payload.text(query);
        }
        return payload.data();
    }
    // Handshake, optionally structured replies with base:allocation, then NBD_OPT_GO.
    void connect(std::string const& name, bool structured)
    {
        handshake();
        if (structured) {
            option(NBD_OPT_STRUCTURED_REPLY);
            EXPECT_EQ(option_reply().type, NBD_REP_ACK);
            option(NBD_OPT_SET_META_CONTEXT, meta_payload(name, { std::string(BASE_ALLOCATION) }));
            EXPECT_EQ(option_reply().type, NBD_REP_META_CONTEXT);
            EXPECT_EQ(option_reply().type, NBD_REP_ACK);
        }
        option(NBD_OPT_GO, go_payload(name));
        for (;;) {
            auto reply = option_reply();
            if (reply.type != NBD_REP_INFO) {
                EXPECT_EQ(reply.type, NBD_REP_ACK);
                break;
            }
        }
    }

    void request(u16 type, u64 cookie, u64 offset, u32 length, std::vector<u8> const& payload = {}, u16 flags = 0)
    {
        WireWriter message;
        message.u32_field(NBD_REQUEST_MAGIC);
        message.u16_field(flags);
        message.u16_field(type);
        message.u64_field(cookie);
        message.u64_field(offset);
        message.u32_field(length);
        message.bytes(payload);
        send(message.data());
    }
    // A simple reply: {error, cookie}.
    std::pair<u32, u64> simple_reply()
    {
        auto header = receive(16);
        if (header.size() != 16)
            return { ~0u, 0 };
        EXPECT_EQ(load_be32(header.data()), NBD_SIMPLE_REPLY_MAGIC);
        return { load_be32(header.data() + 4), load_be64(header.data() + 8) };
    }
    Chunk chunk()
    {
        auto header = receive(20);
        if (header.size() != 20)
            return {};
        EXPECT_EQ(load_be32(header.data()), NBD_STRUCTURED_REPLY_MAGIC);
        Chunk chunk { .flags = load_be16(header.data() + 4), .type = load_be16(header.data() + 6), .cookie = load_be64(header.data() + 8), .payload = {} };
        chunk.payload = receive(load_be32(header.data() + 16));
        return chunk;
    }

    MemoryBudget& budget() { return m_budget; }
    ConnectionMonitor& monitor() { return m_monitor; }

private:
    std::vector<Export> m_exports;
    MemoryBudget m_budget;
    ConnectionMonitor m_monitor;
    Fd m_socket;
    std::thread m_server;
};

} // namespace kasou::storage::nbd::testing
