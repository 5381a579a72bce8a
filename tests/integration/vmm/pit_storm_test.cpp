// pit_storm.elf programs the PIT with a count of 1 in rate-generator mode (an edge every 838 ns)
// and spins with interrupts off. kasou's PIT thread must wake at most once per 200 us (5000 times
// a second) however fast the guest's PIT runs, so it takes little CPU, and the guest must still
// finish.

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>
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

struct ThreadUsage {
    unsigned long switches { 0 }; // context switches: each wake-up of a thread that sleeps is one
    double cpu_seconds { 0 };     // user and system time
};

// The usage so far of kasou's thread named `name`.
std::optional<ThreadUsage> thread_usage(pid_t pid, std::string const& name)
{
    std::error_code error;
    for (auto const& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", error)) {
        std::ifstream comm(task.path() / "comm");
        std::string thread_name;
        std::getline(comm, thread_name);
        if (thread_name != name)
            continue;
        ThreadUsage usage;
        std::ifstream status(task.path() / "status");
        for (std::string line; std::getline(status, line);) {
            if (line.find("ctxt_switches:") != std::string::npos)
                usage.switches += std::stoul(line.substr(line.find(':') + 1));
        }
        // /proc/PID/task/TID/stat: utime and stime are fields 14 and 15, after the ")" of the name.
        std::ifstream stat(task.path() / "stat");
        std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
        std::istringstream fields(text.substr(text.rfind(')') + 2));
        std::string field;
        unsigned long ticks = 0;
        for (int index = 3; index <= 15 && fields >> field; ++index) {
            if (index >= 14)
                ticks += std::stoul(field);
        }
        usage.cpu_seconds = static_cast<double>(ticks) / static_cast<double>(::sysconf(_SC_CLK_TCK));
        return usage;
    }
    return std::nullopt;
}

} // namespace

TEST(PitStorm, CountOfOneCannotMakeThePitThreadWakeMoreThanEvery200Microseconds)
{
    KasouProcess process({ "run", "--kernel", KASOU_GUEST_PIT_STORM, "--memory", "32M", "--cmdline", "seconds=8" });
    ASSERT_TRUE(process.wait_for_output("spinning", 60s));
    auto before = thread_usage(process.pid(), "pit");
    auto start = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(3s);
    auto after = thread_usage(process.pid(), "pit");
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    auto result = process.wait(300s);
    EXPECT_EQ(result.status, GUEST_PASSED) << result.err;
    EXPECT_NE(result.out.find("pit_storm: done"), std::string::npos) << result.out;
    if (std::getenv("KASOU_TEST_IRQCHIP")) {
        EXPECT_FALSE(before) << "KVM's PIT needs no thread of kasou's";
        return;
    }
    ASSERT_TRUE(before && after) << "no thread named pit";
    double per_second = static_cast<double>(after->switches - before->switches) / seconds;
    double cpu_share = (after->cpu_seconds - before->cpu_seconds) / seconds;
    std::cout << "pit thread: " << per_second << " wake-ups per second, " << cpu_share * 100
              << " % of a CPU, with a guest PIT at 1.19 MHz\n";
    EXPECT_LE(per_second, 5000 * 1.1);
    // The CPU share is printed, not asserted: inside the nested test host (one emulated CPU shared
    // with the spinning vCPU) it measured about 7 % with the 200 us bound and 30 % without it on an
    // idle machine, but 28 % with the bound on a loaded CI machine, so it cannot tell them apart.
}
