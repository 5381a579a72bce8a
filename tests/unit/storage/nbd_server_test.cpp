#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "base/sys_event.h"
#include "base/sys_file.h"
#include "base/sys_path.h"
#include "base/sys_socket.h"
#include "base/unix_socket.h"
#include "io_test_support.h"
#include "storage/io/raw_file_device.h"
#include "storage/nbd/protocol.h"
#include "storage/nbd/serve.h"
#include "storage/nbd/server.h"

namespace kasou::storage::nbd {
namespace {

using storage::testing::ScratchFile;

TEST(NbdListenAddressTest, ParsesTcpAddresses)
{
    auto address = MUST(ListenAddress::parse_tcp("127.0.0.1:10809"));
    EXPECT_EQ(address.host, "127.0.0.1");
    EXPECT_EQ(address.port, 10809);
    EXPECT_EQ(MUST(ListenAddress::parse_tcp("localhost:0")).host, "127.0.0.1");
    EXPECT_FALSE(ListenAddress::parse_tcp("127.0.0.1"));
    EXPECT_FALSE(ListenAddress::parse_tcp("127.0.0.1:70000"));
    EXPECT_FALSE(ListenAddress::parse_tcp("127.0.0.1:12ab"));
    auto bad_host = ListenAddress::parse_tcp("example.org:10809");
    ASSERT_FALSE(bad_host);
    EXPECT_NE(bad_host.error().to_string().find("example.org"), std::string::npos);
}

TEST(NbdServeTest, FileExportsAreNamedAfterTheFileOrExplicitly)
{
    EXPECT_EQ(MUST(parse_file_export("/var/images/disk.img")), (std::pair<std::string, std::string> { "disk.img", "/var/images/disk.img" }));
    EXPECT_EQ(MUST(parse_file_export("base=/images/a=b.raw")), (std::pair<std::string, std::string> { "base", "/images/a=b.raw" }));
    EXPECT_FALSE(parse_file_export("=/x"));
    EXPECT_FALSE(parse_file_export("name="));
    EXPECT_FALSE(parse_file_export("/images/"));
}

class NbdServerTest : public ::testing::Test {
protected:
    NbdServerTest()
        : m_file(1 * MiB)
        , m_device(MUST(RawFileDevice::open(m_file.path(), {})))
    {
    }
    std::vector<Export> exports() { return { { .name = "disk", .device = m_device } }; }

    ScratchFile m_file;
    std::shared_ptr<RawFileDevice> m_device; // opened once: a second writable open of the file is refused
};

TEST_F(NbdServerTest, RefusesDuplicateOrEmptyNamesAndNoExports)
{
    ListenAddress address { .unix_path = m_file.path() + ".sock", .host = {}, .port = 0 };
    EXPECT_FALSE(Server::create({}, address, {}));
    auto twice = exports();
    twice.push_back(twice.front());
    auto duplicate = Server::create(twice, address, {});
    ASSERT_FALSE(duplicate);
    EXPECT_NE(duplicate.error().to_string().find("disk"), std::string::npos);
    auto unnamed = exports();
    unnamed.front().name.clear();
    EXPECT_FALSE(Server::create(unnamed, address, {}));
}

TEST_F(NbdServerTest, RefusesToReplaceAFileThatIsNotASocket)
{
    ListenAddress address { .unix_path = m_file.path(), .host = {}, .port = 0 };
    auto server = Server::create(exports(), address, {});
    ASSERT_FALSE(server);
    EXPECT_NE(server.error().to_string().find("not a socket"), std::string::npos);
}

TEST_F(NbdServerTest, ServesTcpClientsAndStopsWhenAsked)
{
    auto server = MUST(Server::create(exports(), MUST(ListenAddress::parse_tcp("127.0.0.1:0")), {}));
    ASSERT_NE(server->address().port, 0);
    Fd stop = MUST(sys::eventfd(0, EFD_CLOEXEC));
    ErrorOr<void> result;
    std::thread runner([&] { result = server->run(stop.get()); });

    // Two clients at once both get the greeting.
    std::vector<Fd> clients;
    for (int i = 0; i < 2; ++i) {
        Fd client = MUST(sys::socket(AF_INET, SOCK_STREAM, 0));
        sockaddr_in in {};
        in.sin_family = AF_INET;
        in.sin_port = htons(server->address().port);
        inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
        ASSERT_TRUE(sys::connect(client.get(), reinterpret_cast<sockaddr const*>(&in), sizeof(in)));
        clients.push_back(std::move(client));
    }
    for (auto& client : clients) {
        u8 greeting[18];
        ASSERT_TRUE(sys::read(client.get(), greeting, sizeof(greeting)));
        EXPECT_EQ(load_be64(greeting), NBD_MAGIC);
    }
    // Stopping ends the connections still in negotiation and returns.
    u64 one = 1;
    ASSERT_TRUE(sys::write(stop.get(), &one, sizeof(one)));
    runner.join();
    EXPECT_TRUE(result);
    for (auto& client : clients) {
        u8 byte;
        EXPECT_EQ(MUST(sys::recv(client.get(), &byte, 1, 0)), 0u);
    }
}

TEST_F(NbdServerTest, UnixSocketIsRemovedOnStop)
{
    std::string path = m_file.path() + ".sock";
    auto server = MUST(Server::create(exports(), { .unix_path = path, .host = {}, .port = 0 }, {}));
    struct stat st { };
    ASSERT_TRUE(sys::lstat(path, st));
    // A second server on the same live socket is refused.
    auto second = Server::create(exports(), { .unix_path = path, .host = {}, .port = 0 }, {});
    ASSERT_FALSE(second);
    EXPECT_NE(second.error().to_string().find("in use"), std::string::npos);
    Fd stop = MUST(sys::eventfd(1, EFD_CLOEXEC));
    EXPECT_TRUE(server->run(stop.get()));
    EXPECT_FALSE(sys::lstat(path, st));
}


// Connections in the handshake are served by the event loop: fifty that stay silent after the
// greeting start no thread, and a good client still gets through meanwhile.
TEST_F(NbdServerTest, SilentClientsInTheHandshakeHoldNoThread)
{
    auto count_threads = [] { return std::distance(std::filesystem::directory_iterator("/proc/self/task"), std::filesystem::directory_iterator {}); };
    std::string path = m_file.path() + ".sock";
    auto server = MUST(Server::create(exports(), { .unix_path = path, .host = {}, .port = 0 }, {}));
    Fd stop = MUST(sys::eventfd(0, EFD_CLOEXEC));
    ErrorOr<void> result;
    std::thread runner([&] { result = server->run(stop.get()); });
    auto before = count_threads();
    std::vector<Fd> silent;
    for (int i = 0; i < 50; ++i) {
        silent.push_back(MUST(connect_unix(path)));
        u8 greeting[18];
        ASSERT_TRUE(sys::read(silent.back().get(), greeting, sizeof(greeting)));
        EXPECT_EQ(load_be64(greeting), NBD_MAGIC);
    }
    // Half of them send their flags and half an option header, then nothing more.
    for (size_t i = 0; i < silent.size(); ++i) {
        u8 flags[4] = { 0, 0, 0, 3 };
        ASSERT_TRUE(sys::write_exact(silent[i].get(), flags, sizeof(flags)));
        if (i % 2 == 0) {
            ASSERT_TRUE(sys::write_exact(silent[i].get(), "IHAVEOPT", 8));
        }
    }
    EXPECT_LE(count_threads(), before + 2);
    // A good client: NBD_OPT_ABORT is acknowledged.
    Fd good = MUST(connect_unix(path));
    u8 greeting[18];
    ASSERT_TRUE(sys::read(good.get(), greeting, sizeof(greeting)));
    WireWriter abort;
    abort.u32_field(NBD_FLAG_C_FIXED_NEWSTYLE);
    abort.u64_field(NBD_IHAVEOPT);
    abort.u32_field(NBD_OPT_ABORT);
    abort.u32_field(0);
    ASSERT_TRUE(sys::write_exact(good.get(), abort.data().data(), abort.data().size()));
    u8 reply[20];
    ASSERT_TRUE(sys::read(good.get(), reply, sizeof(reply)));
    EXPECT_EQ(load_be64(reply), NBD_OPTION_REPLY_MAGIC);
    EXPECT_EQ(load_be32(reply + 12), NBD_REP_ACK);
    u64 one = 1;
    ASSERT_TRUE(sys::write(stop.get(), &one, sizeof(one)));
    runner.join();
    EXPECT_TRUE(result);
}

} // namespace
} // namespace kasou::storage::nbd
