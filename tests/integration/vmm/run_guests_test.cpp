// Boots each test guest from guests/ with `kasou run` on /dev/kvm and checks what it printed and how
// kasou ended.

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <regex>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

#include <gtest/gtest.h>
#include <kasou_guests.h>

#include "kasou_process.h"

using namespace kasou::test;
using namespace std::chrono_literals;

namespace {

// Status for a guest that wrote 0 (its checks passed) to the debug-exit port.
constexpr int GUEST_PASSED = 1;
constexpr int STATUS_TRIPLE_FAULT = 6;
constexpr int STATUS_SIGNAL = 8;

// The tick count a pvh_smoke timer check printed ("pit: N ticks via ..."), or 0. The guest stops
// counting once it has seen three, but a timer that fell behind on a loaded host may catch up with
// a burst before the guest masks it, so more than three is also right.
unsigned reported_ticks(std::string const& out, std::string const& timer)
{
    std::smatch match;
    if (!std::regex_search(out, match, std::regex(timer + ": ([0-9]+) ticks via ")))
        return 0;
    return static_cast<unsigned>(std::stoul(match[1]));
}

} // namespace

TEST(RunGuests, FlatRealModeGuest)
{
    auto result = run_kasou({ "run", "--kernel", KASOU_GUEST_HELLO_FLAT, "--flat" });
    EXPECT_EQ(result.status, GUEST_PASSED) << result.err;
    EXPECT_EQ(result.out, "hello from real mode\n");
}

TEST(RunGuests, PvhHelloReportsBootTimer)
{
    auto result = run_kasou({ "--log-level", "info", "run", "--kernel", KASOU_GUEST_PVH_HELLO });
    EXPECT_EQ(result.status, GUEST_PASSED) << result.err;
    EXPECT_EQ(result.out, "hello from pvh\n");
    EXPECT_NE(result.err.find("boot timer: guest marker 0 at"), std::string::npos) << result.err;
}

class PvhSmoke : public ::testing::TestWithParam<int> { };

TEST_P(PvhSmoke, AllChecksPass)
{
    int cpus = GetParam();
    std::string line = "expect_cpus=" + std::to_string(cpus) + " expect_mem=64M marker=abc";
    auto result = run_kasou({ "run", "--kernel", KASOU_GUEST_PVH_SMOKE, "--cpus", std::to_string(cpus), "--memory", "64M",
        "--cmdline", line });
    EXPECT_EQ(result.status, GUEST_PASSED) << result.out << result.err;
    EXPECT_NE(result.out.find("cmdline: \"" + line + "\""), std::string::npos) << result.out;
    EXPECT_NE(result.out.find("memmap 2: 0x0000000000100000-0x0000000004000000 ram"), std::string::npos) << result.out;
    EXPECT_NE(result.out.find("ram check:"), std::string::npos);
    EXPECT_GE(reported_ticks(result.out, "pit"), 3u) << result.out;
    EXPECT_GE(reported_ticks(result.out, "lapic timer"), 3u) << result.out;
    for (int cpu = 0; cpu < cpus; ++cpu)
        EXPECT_NE(result.out.find("cpu " + std::to_string(cpu) + " (apic id " + std::to_string(cpu) + ") up"), std::string::npos) << result.out;
    EXPECT_NE(result.out.find("all " + std::to_string(cpus) + " cpus up"), std::string::npos) << result.out;
    EXPECT_NE(result.out.find("pvh_smoke: all checks passed"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Cpus, PvhSmoke, ::testing::Values(1, 2));

// Both irqchips carry the PIT's IRQ 0 along each path a guest may pick: IOAPIC pin 2 (the MADT's
// override) to the local APIC, or the 8259 PIC's ExtINT through LINT0.
class IrqchipRoutes : public ::testing::TestWithParam<std::tuple<std::string, std::string>> { };

TEST_P(IrqchipRoutes, PitTicksReachTheGuest)
{
    auto [mode, route] = GetParam();
    auto result = run_kasou({ "--log-level", "debug", "run", "--kernel", KASOU_GUEST_PVH_SMOKE, "--memory", "32M", "--irqchip", mode,
        "--cmdline", "pit_route=" + route });
    EXPECT_EQ(result.status, GUEST_PASSED) << result.out << result.err;
    std::string path = route == "pic" ? "8259 pic and lapic lint0 extint" : "ioapic pin 2";
    EXPECT_GE(reported_ticks(result.out, "pit"), 3u) << result.out;
    EXPECT_NE(result.out.find(" ticks via " + path), std::string::npos) << result.out;
    EXPECT_NE(result.err.find("irqchip: " + mode), std::string::npos) << result.err;
}

INSTANTIATE_TEST_SUITE_P(ModesAndRoutes, IrqchipRoutes,
    ::testing::Combine(::testing::Values("split", "kernel"), ::testing::Values("ioapic", "pic")));

TEST(RunGuests, SplitIrqchipIsTheDefault)
{
    if (std::getenv("KASOU_TEST_IRQCHIP"))
        GTEST_SKIP() << "KASOU_TEST_IRQCHIP chooses the irqchip of this run";
    auto result = run_kasou({ "--log-level", "debug", "run", "--kernel", KASOU_GUEST_PVH_HELLO });
    EXPECT_EQ(result.status, GUEST_PASSED) << result.err;
    EXPECT_NE(result.err.find("irqchip: split"), std::string::npos) << result.err;
}

TEST(RunGuests, GuestSeesTheDefaultCommandLine)
{
    auto result = run_kasou({ "run", "--kernel", KASOU_GUEST_PVH_SMOKE, "--memory", "32M" });
    EXPECT_EQ(result.status, GUEST_PASSED) << result.err;
    EXPECT_NE(result.out.find("cmdline: \"console=ttyS0 reboot=k panic=-1\""), std::string::npos) << result.out;
}

TEST(RunGuests, GuestNoticesAWrongCpuCount)
{
    auto result = run_kasou({ "run", "--kernel", KASOU_GUEST_PVH_SMOKE, "--cpus", "1", "--memory", "32M", "--cmdline", "expect_cpus=2" });
    EXPECT_NE(result.status, GUEST_PASSED);
    EXPECT_EQ(result.status % 2, 1) << "the guest's own failure value through the debug-exit port";
}

TEST(RunGuests, LargeMemoryAboveFourGiB)
{
    auto result = run_kasou({ "run", "--kernel", KASOU_GUEST_PVH_SMOKE, "--memory", "3200M", "--cmdline", "expect_mem=3200M" });
    EXPECT_EQ(result.status, GUEST_PASSED) << result.out << result.err;
    EXPECT_NE(result.out.find("0x0000000100000000-0x0000000108000000 ram"), std::string::npos) << result.out;
}

TEST(RunGuests, TripleFaultStopsWithItsOwnStatus)
{
    auto result = run_kasou({ "run", "--kernel", KASOU_GUEST_TRIPLE_FAULT });
    EXPECT_EQ(result.status, STATUS_TRIPLE_FAULT) << result.err;
    EXPECT_NE(result.err.find("triple fault"), std::string::npos) << result.err;
    if (host_keeps_state_across_shutdown()) {
        EXPECT_NE(result.err.find("RIP 0x"), std::string::npos) << result.err;
        EXPECT_NE(result.err.find("bytes at RIP: 0f 0b"), std::string::npos) << "the ud2 that raised the fault: " << result.err;
    } else {
        EXPECT_NE(result.err.find("faulting instruction is not known"), std::string::npos) << result.err;
    }
}

TEST(RunGuests, UnknownPortsReadAsOnesAndAreReported)
{
    auto result = run_kasou({ "run", "--kernel", KASOU_GUEST_UNKNOWN_PORT });
    EXPECT_EQ(result.status, GUEST_PASSED) << result.err;
    EXPECT_NE(result.out.find("port 0x1234 read 0xff"), std::string::npos) << result.out;
    EXPECT_NE(result.err.find("read of 1 byte(s) at port 0x1234: no device there"), std::string::npos) << result.err;
    EXPECT_NE(result.err.find("write of 1 byte(s) at port 0x1235"), std::string::npos) << result.err;
}

TEST(RunGuests, AccessOutsideRamNeitherCrashesNorWrites)
{
    auto result = run_kasou({ "run", "--kernel", KASOU_GUEST_OUTSIDE_RAM, "--memory", "64M" });
    EXPECT_EQ(result.status, GUEST_PASSED) << result.err;
    EXPECT_NE(result.out.find("read back 0xffffffff"), std::string::npos) << result.out;
    EXPECT_NE(result.err.find("guest-physical address 0xe0000000: no device there"), std::string::npos) << result.err;
}

class StopBySignal : public ::testing::TestWithParam<int> { };

TEST_P(StopBySignal, SpinningGuestStopsPromptly)
{
    KasouProcess process({ "run", "--kernel", KASOU_GUEST_SPIN, "--cpus", "2" });
    ASSERT_TRUE(process.wait_for_output("spinning", 30s));
    auto sent = std::chrono::steady_clock::now();
    process.send_signal(GetParam());
    auto result = process.wait(10s);
    auto took = std::chrono::steady_clock::now() - sent;
    EXPECT_FALSE(result.timed_out);
    EXPECT_EQ(result.status, STATUS_SIGNAL) << result.err;
    EXPECT_LT(took, 2s);
    EXPECT_NE(result.err.find(GetParam() == SIGINT ? "stopped by SIGINT" : "stopped by SIGTERM"), std::string::npos) << result.err;
}

INSTANTIATE_TEST_SUITE_P(Signals, StopBySignal, ::testing::Values(SIGTERM, SIGINT));

TEST(RunGuests, SerialToFile)
{
    TemporaryDirectory directory;
    auto path = directory.file("console.log");
    auto result = run_kasou({ "run", "--kernel", KASOU_GUEST_PVH_HELLO, "--serial", "file:" + path });
    EXPECT_EQ(result.status, GUEST_PASSED) << result.err;
    EXPECT_EQ(result.out, "");
    EXPECT_EQ(read_file(path), "hello from pvh\n");
}

TEST(RunGuests, SerialToUnixSocket)
{
    TemporaryDirectory directory;
    auto path = directory.file("console.sock");
    int listener = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address {};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
    ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    ASSERT_EQ(::listen(listener, 1), 0);
    std::string received;
    std::thread reader([&] {
        int connection = ::accept(listener, nullptr, nullptr);
        char buffer[256];
        ssize_t n;
        while ((n = ::read(connection, buffer, sizeof(buffer))) > 0)
            received.append(buffer, static_cast<size_t>(n));
        ::close(connection);
    });
    auto result = run_kasou({ "run", "--kernel", KASOU_GUEST_PVH_HELLO, "--serial", "unix:" + path });
    reader.join();
    ::close(listener);
    EXPECT_EQ(result.status, GUEST_PASSED) << result.err;
    EXPECT_EQ(received, "hello from pvh\n");
}

TEST(RunGuests, SerialToAbsentSocketIsAConfigurationError)
{
    auto result = run_kasou({ "run", "--kernel", KASOU_GUEST_PVH_HELLO, "--serial", "unix:/nonexistent/console.sock" });
    EXPECT_EQ(result.status, 2);
    EXPECT_NE(result.err.find("cannot connect"), std::string::npos) << result.err;
}

TEST(RunGuests, HiddenCpuFeaturesStillBoot)
{
    auto result = run_kasou({ "run", "--kernel", KASOU_GUEST_PVH_SMOKE, "--memory", "32M", "--cpu-features", "-xsave,-cx16,-avx" });
    EXPECT_EQ(result.status, GUEST_PASSED) << result.err;
}
