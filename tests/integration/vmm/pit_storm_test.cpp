// pit_storm.elf programs the PIT with a count of 1 in rate-generator mode (an edge every 838 ns)
// and spins with interrupts off. kasou's PIT thread must wake at most once per 200 us (5000 times
// a second) however fast the guest's PIT runs, and the guest must still finish.

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <kasou_guests.h>

#include "kasou_process.h"

using namespace kasou::test;
using namespace std::chrono_literals;

namespace {

constexpr int GUEST_PASSED = 1;

// The context switches (voluntary and not) of kasou's thread named `name` so far: each wake-up
// of a thread that sleeps in poll() is one.
std::optional<unsigned long> thread_switches(pid_t pid, std::string const& name)
{
    std::error_code error;
    for (auto const& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", error)) {
        std::ifstream comm(task.path() / "comm");
        std::string thread_name;
        std::getline(comm, thread_name);
        if (thread_name != name)
            continue;
        std::ifstream status(task.path() / "status");
        unsigned long total = 0;
        for (std::string line; std::getline(status, line);) {
            if (line.find("ctxt_switches:") != std::string::npos)
                total += std::stoul(line.substr(line.find(':') + 1));
        }
        return total;
    }
    return std::nullopt;
}

} // namespace

TEST(PitStorm, CountOfOneCannotMakeThePitThreadWakeMoreThanEvery200Microseconds)
{
    KasouProcess process({ "run", "--kernel", KASOU_GUEST_PIT_STORM, "--memory", "32M", "--cmdline", "seconds=6" });
    ASSERT_TRUE(process.wait_for_output("spinning", 60s));
    auto before = thread_switches(process.pid(), "pit");
    auto start = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(2s);
    auto after = thread_switches(process.pid(), "pit");
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    auto result = process.wait(300s);
    EXPECT_EQ(result.status, GUEST_PASSED) << result.err;
    EXPECT_NE(result.out.find("pit_storm: done"), std::string::npos) << result.out;
    if (std::getenv("KASOU_TEST_IRQCHIP")) {
        EXPECT_FALSE(before) << "KVM's PIT needs no thread of kasou's";
        return;
    }
    ASSERT_TRUE(before && after) << "no thread named pit";
    double per_second = static_cast<double>(*after - *before) / seconds;
    EXPECT_LE(per_second, 5000 * 1.1) << *after - *before << " wake-ups in " << seconds << " s";
    std::cout << "pit thread: " << per_second << " wake-ups per second with a guest PIT at 1.19 MHz\n";
}
