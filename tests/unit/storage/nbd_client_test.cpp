// The NBD client disk (NbdClientDevice) against kasou's own server over TCP and a Unix socket, and
// against a hostile fake server that sends malformed replies.

#include <cerrno>
#include <cstring>
#include <functional>
#include <sys/eventfd.h>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/sys_event.h"
#include "base/sys_file.h"
#include "base/sys_socket.h"
#include "base/unix_socket.h"
#include "io_test_support.h"
#include "storage/io/raw_file_device.h"
#include "storage/nbd/client_device.h"
#include "storage/nbd/protocol.h"
#include "storage/nbd/server.h"

namespace kasou::storage::nbd {
namespace {

using storage::testing::ScratchFile;

bool read_exact(int fd, void* buffer, size_t size)
{
    auto* bytes = static_cast<u8*>(buffer);
    for (size_t done = 0; done < size;) {
        auto n = sys::recv(fd, bytes + done, size - done, 0);
        if (!n || *n == 0)
            return false;
        done += *n;
    }
    return true;
}

std::string error_text(auto const& result) { return result ? std::string("(success)") : result.error().to_string(); }

TEST(NbdUriTest, ParsesTcpAndUnixForms)
{
    auto tcp = MUST(NbdUri::parse("nbd://example.org/disk%200"));
    EXPECT_EQ(tcp.host, "example.org");
    EXPECT_EQ(tcp.port, NBD_DEFAULT_PORT);
    EXPECT_EQ(tcp.export_name, "disk 0");
    auto port = MUST(NbdUri::parse("nbd://127.0.0.1:10900"));
    EXPECT_EQ(port.port, 10900);
    EXPECT_EQ(port.export_name, "");
    auto v6 = MUST(NbdUri::parse("nbd://[::1]:5000/a/b"));
    EXPECT_EQ(v6.host, "::1");
    EXPECT_EQ(v6.port, 5000);
    EXPECT_EQ(v6.export_name, "a/b");
    auto unix_socket = MUST(NbdUri::parse("nbd+unix:///vol?socket=/run/x.sock"));
    EXPECT_TRUE(unix_socket.is_unix());
    EXPECT_EQ(unix_socket.unix_path, "/run/x.sock");
    EXPECT_EQ(unix_socket.export_name, "vol");
    EXPECT_EQ(unix_socket.to_string(), "nbd+unix:///vol?socket=/run/x.sock");
}

TEST(NbdUriTest, RefusesWhatItCannotConnectTo)
{
    for (char const* text : { "disk.img", "nbds://h/e", "nbd+vsock://2/e", "nbd://h:0/e", "nbd://h:99999/e", "nbd://h:/e", "nbd:///e",
             "nbd+unix:///e", "nbd+unix://host/e?socket=/s", "nbd://u@h/e", "nbd://h/e?tls=on", "nbd://h/%zz", "nbd://h/%4" }) {
        auto parsed = NbdUri::parse(text);
        EXPECT_FALSE(parsed) << text;
        if (!parsed) {
            EXPECT_NE(parsed.error().to_string().find(text), std::string::npos) << parsed.error().to_string();
        }
    }
}

// kasou's server on a thread, over a scratch file.
class ServedFile {
public:
    ServedFile(ListenAddress address, bool read_only = false)
        : m_file(4 * MiB)
        , m_stop(MUST(sys::eventfd(0, EFD_CLOEXEC)))
    {
        auto device = MUST(RawFileDevice::open(m_file.path(), { .read_only = read_only }));
        m_server = MUST(Server::create({ { .name = "disk", .device = device } }, address, {}));
        m_thread = std::thread([this] { (void)m_server->run(m_stop.get()); });
    }
    ~ServedFile()
    {
        u64 one = 1;
        (void)sys::write(m_stop.get(), &one, sizeof(one));
        m_thread.join();
    }
    Server& server() { return *m_server; }
    std::string const& path() const { return m_file.path(); }

private:
    ScratchFile m_file;
    Fd m_stop;
    std::unique_ptr<Server> m_server;
    std::thread m_thread;
};

std::vector<u8> pattern(size_t size, u8 seed)
{
    std::vector<u8> bytes(size);
    for (size_t i = 0; i < size; ++i)
        bytes[i] = static_cast<u8>(seed + i * 7 + i / 4096);
    return bytes;
}

void exercise(NbdClientDevice& disk, std::string const& file)
{
    EXPECT_EQ(disk.size(), 4 * MiB);
    EXPECT_FALSE(disk.read_only());
    EXPECT_TRUE(disk.info().structured_replies);
    auto data = pattern(256 * KiB, 3);
    ASSERT_TRUE(disk.write(64 * KiB, data, false));
    ASSERT_TRUE(disk.write(0, std::span<u8 const>(data).first(4096), true));
    ASSERT_TRUE(disk.flush());
    std::vector<u8> back(data.size());
    ASSERT_TRUE(disk.read(64 * KiB, back));
    EXPECT_EQ(back, data);

    // A batch of 64 reads and writes in flight at once, each matched to its own reply.
    std::vector<std::vector<u8>> buffers;
    std::vector<BlockTransfer> batch;
    for (u32 i = 0; i < 64; ++i)
        buffers.push_back(i % 2 ? std::vector<u8>(8192) : pattern(8192, static_cast<u8>(i)));
    for (u32 i = 0; i < 64; ++i)
        batch.push_back({ .write = i % 2 == 0, .offset = 1 * MiB + (i / 2) * 8192, .buffer = buffers[i], .fua = false, .error = {} });
    disk.transfer_batch(batch);
    for (auto const& transfer : batch)
        EXPECT_FALSE(transfer.error) << transfer.error->to_string();
    std::vector<BlockTransfer> reads;
    std::vector<std::vector<u8>> read_back(32, std::vector<u8>(8192));
    for (u32 i = 0; i < 32; ++i)
        reads.push_back({ .write = false, .offset = 1 * MiB + i * 8192, .buffer = read_back[i], .fua = false, .error = {} });
    disk.transfer_batch(reads);
    for (u32 i = 0; i < 32; ++i)
        EXPECT_EQ(read_back[i], pattern(8192, static_cast<u8>(2 * i))) << i;

    ASSERT_TRUE(disk.write_zeroes(64 * KiB, 64 * KiB, true));
    ASSERT_TRUE(disk.discard(128 * KiB, 4096));
    ASSERT_TRUE(disk.read(64 * KiB, back));
    EXPECT_TRUE(std::all_of(back.begin(), back.begin() + 64 * KiB + 4096, [](u8 b) { return b == 0; }));
    EXPECT_TRUE(std::equal(back.begin() + 68 * KiB, back.end(), data.begin() + 68 * KiB));

    // Past the end: refused locally, the connection goes on.
    std::vector<u8> small(4096);
    EXPECT_FALSE(disk.read(4 * MiB - 512, small));
    ASSERT_TRUE(disk.read(0, small));

    // What went through the client is in the file the server serves.
    auto raw = MUST(RawFileDevice::open(file, { .read_only = true, .lock = false }));
    ASSERT_TRUE(raw->read(0, small));
    EXPECT_TRUE(std::equal(small.begin(), small.end(), data.begin()));
}

TEST(NbdClientTest, WorksAgainstKasouOverAUnixSocket)
{
    ScratchFile socket_name(0);
    std::string path = socket_name.path() + ".sock";
    ServedFile served({ .unix_path = path, .host = {}, .port = 0 });
    auto disk = MUST(NbdClientDevice::connect(MUST(NbdUri::parse("nbd+unix:///disk?socket=" + path))));
    exercise(*disk, served.path());
}

TEST(NbdClientTest, WorksAgainstKasouOverTcp)
{
    ServedFile served(MUST(ListenAddress::parse_tcp("127.0.0.1:0")));
    auto uri = MUST(NbdUri::parse(fmt::format("nbd://127.0.0.1:{}/disk", served.server().address().port)));
    auto disk = MUST(NbdClientDevice::connect(uri));
    exercise(*disk, served.path());
}

TEST(NbdClientTest, ReadOnlyExportRefusesWritesAndUnknownExportIsNamed)
{
    ServedFile served(MUST(ListenAddress::parse_tcp("127.0.0.1:0")), true);
    auto port = served.server().address().port;
    auto disk = MUST(NbdClientDevice::connect(MUST(NbdUri::parse(fmt::format("nbd://127.0.0.1:{}/disk", port)))));
    EXPECT_TRUE(disk->read_only());
    std::vector<u8> data(4096, 1);
    auto refused = disk->write(0, data, false);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().kind(), ErrorKind::PermissionDenied);
    EXPECT_TRUE(disk->read(0, data));

    auto missing = NbdClientDevice::connect(MUST(NbdUri::parse(fmt::format("nbd://127.0.0.1:{}/nope", port))));
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().kind(), ErrorKind::NotFound);
    EXPECT_NE(missing.error().to_string().find("'nope'"), std::string::npos) << missing.error().to_string();
}

// A fake server on a Unix socket: a correct handshake (structured replies as asked), then
// `script` is called with each request header and the connection and answers it as it likes.
class FakeServer {
public:
    using Script = std::function<bool(Request const&, int fd)>; // false: stop serving

    FakeServer(Script script, u16 transmission_flags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_WRITE_ZEROES,
        bool structured = true)
        : m_listener(MUST(listen_unix(m_name.path() + ".sock")))
    {
        m_thread = std::thread([this, script = std::move(script), transmission_flags, structured] {
            auto accepted = sys::accept(m_listener.get());
            if (!accepted)
                return;
            int fd = accepted->get();
            if (!handshake(fd, transmission_flags, structured))
                return;
            for (;;) {
                u8 header[REQUEST_SIZE];
                if (!read_exact(fd, header, sizeof(header)))
                    return;
                auto request = decode_request(header);
                if (request.type == NBD_CMD_DISC)
                    return;
                std::vector<u8> payload(request.type == NBD_CMD_WRITE ? request.length : 0);
                if (!payload.empty() && !read_exact(fd, payload.data(), payload.size()))
                    return;
                if (!script(request, fd))
                    break;
            }
            // Keep the connection open until the client goes, so a stalled reply stays stalled.
            u8 byte;
            while (sys::recv(fd, &byte, 1, 0).value_or(0) > 0) { }
        });
    }
    ~FakeServer()
    {
        (void)sys::shutdown(m_listener.get(), SHUT_RDWR);
        m_thread.join();
        ::unlink((m_name.path() + ".sock").c_str());
    }
    NbdUri uri() const { return MUST(NbdUri::parse("nbd+unix:///x?socket=" + m_name.path() + ".sock")); }

    static void send(int fd, std::vector<u8> const& bytes) { (void)sys::write_exact(fd, bytes.data(), bytes.size()); }
    static std::vector<u8> simple_reply(u64 cookie, u32 error)
    {
        WireWriter reply;
        reply.u32_field(NBD_SIMPLE_REPLY_MAGIC);
        reply.u32_field(error);
        reply.u64_field(cookie);
        return reply.data();
    }
    static std::vector<u8> chunk(u64 cookie, u16 flags, u16 type, std::vector<u8> const& payload)
    {
        WireWriter reply;
        reply.u32_field(NBD_STRUCTURED_REPLY_MAGIC);
        reply.u16_field(flags);
        reply.u16_field(type);
        reply.u64_field(cookie);
        reply.u32_field(static_cast<u32>(payload.size()));
        reply.bytes(payload);
        return reply.data();
    }

private:
    static bool handshake(int fd, u16 transmission_flags, bool structured)
    {
        WireWriter greeting;
        greeting.u64_field(NBD_MAGIC);
        greeting.u64_field(NBD_IHAVEOPT);
        greeting.u16_field(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
        send(fd, greeting.data());
        u8 flags[4];
        if (!read_exact(fd, flags, 4))
            return false;
        for (;;) {
            u8 header[OPTION_HEADER_SIZE];
            if (!read_exact(fd, header, sizeof(header)))
                return false;
            u32 option = load_be32(header + 8);
            std::vector<u8> data(load_be32(header + 12));
            if (!data.empty() && !read_exact(fd, data.data(), data.size()))
                return false;
            auto reply = [&](u32 type, std::vector<u8> const& payload) {
                WireWriter message;
                message.u64_field(NBD_OPTION_REPLY_MAGIC);
                message.u32_field(option);
                message.u32_field(type);
                message.u32_field(static_cast<u32>(payload.size()));
                message.bytes(payload);
                send(fd, message.data());
            };
            if (option == NBD_OPT_STRUCTURED_REPLY) {
                reply(structured ? NBD_REP_ACK : NBD_REP_ERR_UNSUP, {});
                continue;
            }
            WireWriter info;
            info.u16_field(NBD_INFO_EXPORT);
            info.u64_field(1 * MiB);
            info.u16_field(transmission_flags);
            reply(NBD_REP_INFO, info.data());
            reply(NBD_REP_ACK, {});
            return option == NBD_OPT_GO;
        }
    }

    ScratchFile m_name { 0 };
    Fd m_listener;
    std::thread m_thread;
};

ClientOptions quick() { return { .timeout = std::chrono::milliseconds(500) }; }

// Each hostile reply ends the connection with an error naming it; later requests fail at once.
void expect_broken(FakeServer::Script script, std::string_view expected)
{
    FakeServer server(std::move(script));
    auto disk = MUST(NbdClientDevice::connect(server.uri(), quick()));
    std::vector<u8> buffer(4096);
    auto first = disk->read(0, buffer);
    ASSERT_FALSE(first);
    EXPECT_NE(first.error().to_string().find(expected), std::string::npos) << first.error().to_string();
    auto later = disk->read(0, buffer);
    ASSERT_FALSE(later);
    EXPECT_NE(later.error().to_string().find("nbd+unix://"), std::string::npos) << later.error().to_string();
}

TEST(NbdClientHostileServerTest, UnknownCookie)
{
    expect_broken([](Request const& r, int fd) { FakeServer::send(fd, FakeServer::simple_reply(r.cookie + 1000, 0)); return true; },
        "matches no request in flight");
}

TEST(NbdClientHostileServerTest, BadMagic)
{
    expect_broken([](Request const& r, int fd) {
        auto reply = FakeServer::simple_reply(r.cookie, 0);
        reply[0] ^= 0xff;
        FakeServer::send(fd, reply);
        return true;
    }, "bad reply magic");
}

TEST(NbdClientHostileServerTest, DataOutsideTheRequest)
{
    expect_broken([](Request const& r, int fd) {
        WireWriter data;
        data.u64_field(r.offset + 512);
        data.bytes(std::vector<u8>(r.length)); // runs 512 bytes past the end of the read
        FakeServer::send(fd, FakeServer::chunk(r.cookie, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA, data.data()));
        return true;
    }, "lie outside the request");
}

TEST(NbdClientHostileServerTest, ReadReplyWithAGap)
{
    expect_broken([](Request const& r, int fd) {
        WireWriter data;
        data.u64_field(r.offset);
        data.bytes(std::vector<u8>(r.length / 2));
        FakeServer::send(fd, FakeServer::chunk(r.cookie, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA, data.data()));
        return true;
    }, "short");
}

TEST(NbdClientHostileServerTest, ClosesInTheMiddleOfAReply)
{
    expect_broken([](Request const& r, int fd) {
        FakeServer::send(fd, FakeServer::simple_reply(r.cookie, 0));
        FakeServer::send(fd, std::vector<u8>(100));
        (void)sys::shutdown(fd, SHUT_RDWR);
        return false;
    }, "connection");
}

TEST(NbdClientHostileServerTest, SilentServerTimesOut)
{
    auto started = std::chrono::steady_clock::now();
    expect_broken([](Request const&, int) { return false; }, "no reply to NBD_CMD_READ within 500 ms");
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
}

TEST(NbdClientHostileServerTest, ErrorRepliesFailOneRequestAndTheConnectionGoesOn)
{
    FakeServer server([](Request const& r, int fd) {
        if (r.type == NBD_CMD_WRITE) {
            FakeServer::send(fd, FakeServer::simple_reply(r.cookie, NBD_ENOSPC));
        } else if (r.offset == 0) {
            WireWriter error;
            error.u32_field(NBD_EIO);
            error.u16_field(7);
            error.text("bad\nsec");
            FakeServer::send(fd, FakeServer::chunk(r.cookie, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, error.data()));
        } else {
            WireWriter hole;
            hole.u64_field(r.offset);
            hole.u32_field(r.length);
            FakeServer::send(fd, FakeServer::chunk(r.cookie, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_HOLE, hole.data()));
        }
        return true;
    });
    auto disk = MUST(NbdClientDevice::connect(server.uri(), quick()));
    std::vector<u8> buffer(4096, 0xaa);
    auto full = disk->write(0, buffer, false);
    ASSERT_FALSE(full);
    EXPECT_EQ(full.error().code(), ENOSPC);
    EXPECT_EQ(full.error().kind(), ErrorKind::NoSpace);
    auto failed = disk->read(0, buffer);
    ASSERT_FALSE(failed);
    EXPECT_EQ(failed.error().code(), EIO);
    EXPECT_NE(failed.error().to_string().find("(bad?sec)"), std::string::npos) << failed.error().to_string();
    ASSERT_TRUE(disk->read(8192, buffer)) << error_text(disk->read(8192, buffer));
    EXPECT_TRUE(std::all_of(buffer.begin(), buffer.end(), [](u8 b) { return b == 0; }));
}

TEST(NbdClientHostileServerTest, HandshakeFailuresAreNamed)
{
    // A server that never greets: the connect times out rather than hanging.
    ScratchFile name(0);
    std::string path = name.path() + ".sock";
    Fd listener = MUST(listen_unix(path));
    auto silent = NbdClientDevice::connect(MUST(NbdUri::parse("nbd+unix:///x?socket=" + path)), quick());
    ASSERT_FALSE(silent);
    EXPECT_EQ(silent.error().kind(), ErrorKind::TimedOut) << silent.error().to_string();
    ::unlink(path.c_str());
}

} // namespace
} // namespace kasou::storage::nbd
