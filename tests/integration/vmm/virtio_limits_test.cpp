// Hostile guests against kasou's virtio devices: each floods a queue the guest can fill, while the
// test watches the kasou process's resident memory (VmRSS in /proc/PID/status), which must stay
// flat; afterwards the guest checks the device still serves it.

#include <algorithm>
#include <csignal>
#include <fstream>
#include <iostream>
#include <regex>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

#include <poll.h>

#include <gtest/gtest.h>
#include <kasou_guests.h>

#include "kasou_process.h"

using namespace kasou::test;
using namespace std::chrono_literals;

namespace {

constexpr int GUEST_PASSED = 1;
// Growth of kasou's resident memory a flood may cause at most. Without the bounds the replies to
// half a million packets take about 6 MiB.
constexpr long MAX_GROWTH_KIB = 2048;
constexpr char const* PACKETS = "500000";
// How long the echo server waits for the guest: a flood takes minutes inside the nested test host.
constexpr int ECHO_PATIENCE_MS = 600'000;

long resident_kib(pid_t pid)
{
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.starts_with("VmRSS:"))
            return std::stol(line.substr(6));
    }
    return 0;
}

// Samples the process's resident memory until its output contains `text`; the largest value seen.
long peak_resident_kib_until(KasouProcess& process, std::string const& text, std::chrono::seconds deadline)
{
    long peak = resident_kib(process.pid());
    auto until = std::chrono::steady_clock::now() + deadline;
    while (!process.wait_for_output(text, 10ms) && std::chrono::steady_clock::now() < until)
        peak = std::max(peak, resident_kib(process.pid()));
    return std::max(peak, resident_kib(process.pid()));
}

// A host program listening at `path` that accepts one connection and echoes it until it ends.
class EchoServer {
public:
    explicit EchoServer(std::string const& path)
    {
        m_listener = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un address {};
        address.sun_family = AF_UNIX;
        path.copy(address.sun_path, sizeof(address.sun_path) - 1);
        EXPECT_EQ(::bind(m_listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
        EXPECT_EQ(::listen(m_listener, 4), 0);
        m_thread = std::thread([this] { serve(); });
    }
    ~EchoServer()
    {
        m_thread.join();
        ::close(m_listener);
    }

private:
    static bool readable(int fd, int timeout_ms)
    {
        pollfd ready { fd, POLLIN, 0 };
        return ::poll(&ready, 1, timeout_ms) == 1;
    }
    void serve()
    {
        if (!readable(m_listener, ECHO_PATIENCE_MS))
            return;
        int client = ::accept(m_listener, nullptr, nullptr);
        char buffer[512];
        while (readable(client, ECHO_PATIENCE_MS)) {
            ssize_t n = ::recv(client, buffer, sizeof(buffer), 0);
            if (n <= 0)
                break;
            (void)::send(client, buffer, static_cast<size_t>(n), MSG_NOSIGNAL);
        }
        ::close(client);
    }
    int m_listener { -1 };
    std::thread m_thread;
};

// Boots vsock_flood with `mode`; returns its output after checking it flooded PACKETS packets
// with kasou's memory flat and its connection still echoing.
std::string run_vsock_flood(std::string const& mode)
{
    TemporaryDirectory directory;
    auto uds = directory.file("v.sock");
    EchoServer echo(uds + "_5000");
    KasouProcess kasou({ "run", "--kernel", KASOU_GUEST_VSOCK_FLOOD, "--memory", "64M", "--no-rng", "--vsock", "cid=3,uds=" + uds,
        "--cmdline", "flood=" + mode + " packets=" + PACKETS });
    if (!kasou.wait_for_output("vsock_flood: flooding", 120s)) {
        kasou.send_signal(SIGKILL);
        auto result = kasou.wait(10s);
        ADD_FAILURE() << "the guest did not start flooding\n" << result.out << result.err;
        return {};
    }
    long before = resident_kib(kasou.pid());
    long peak = peak_resident_kib_until(kasou, "vsock_flood: sent", 900s);
    auto result = kasou.wait(300s);
    std::cout << "kasou's VmRSS: " << before << " KiB when the flood began, at most " << peak << " KiB during it\n";
    EXPECT_EQ(result.status, GUEST_PASSED) << result.out << result.err;
    EXPECT_NE(result.out.find("vsock_flood: sent " + std::string(PACKETS) + " packets\n"), std::string::npos) << result.out;
    EXPECT_NE(result.out.find("vsock_flood: echo ok\n"), std::string::npos) << result.out;
    EXPECT_LT(peak - before, MAX_GROWTH_KIB) << "kasou grew from " << before << " KiB to " << peak << " KiB during the flood\n" << result.out;
    return result.out;
}

} // namespace

// Packets to a connection that does not exist, with no rx buffer posted: at most 256 RSTs wait
// (virtio-vsock MAX_PENDING_RESETS), the rest are dropped.
TEST(VirtioLimits, VsockFloodToUnknownConnections)
{
    auto out = run_vsock_flood("unknown");
    EXPECT_NE(out.find("vsock_flood: 256 replies waited (RST 256, CREDIT_UPDATE 0, other 0)\n"), std::string::npos) << out;
}

// CREDIT_REQUESTs on a live connection, with no rx buffer posted: one CREDIT_UPDATE waits.
TEST(VirtioLimits, VsockFloodOfCreditRequests)
{
    auto out = run_vsock_flood("credit");
    EXPECT_NE(out.find("vsock_flood: 1 replies waited (RST 0, CREDIT_UPDATE 1, other 0)\n"), std::string::npos) << out;
}
