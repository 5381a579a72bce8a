// Snapshots through `kasou run --snapshot-to` (SIGUSR2: save and stop) and `kasou run --restore`:
// snapshot_counter.elf, two CPUs counting and checksumming their memory, is stopped into a
// snapshot and restored again and again at random moments and must finish as if nothing had
// happened; a damaged snapshot is refused with one error before anything runs.

#include <csignal>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <kasou_guests.h>

#include "kasou_process.h"

using namespace kasou::test;
using namespace std::chrono_literals;

namespace {

constexpr int GUEST_PASSED = 1;
constexpr int STATUS_SIGNAL = 8;
constexpr int STATUS_REFUSED = 2;

// Waits until kasou blocks SIGUSR2 (it takes it from a signalfd from then on), so a signal sent
// later cannot find it still starting up.
bool wait_until_snapshot_signal_is_taken(pid_t pid)
{
    auto until = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < until) {
        std::ifstream status("/proc/" + std::to_string(pid) + "/status");
        for (std::string line; std::getline(status, line);) {
            if (line.rfind("SigBlk:", 0) == 0 && (std::stoull(line.substr(7), nullptr, 16) >> (SIGUSR2 - 1)) & 1)
                return true;
        }
        std::this_thread::sleep_for(5ms);
    }
    return false;
}

} // namespace

TEST(Snapshot, CountingGuestStoppedAndRestoredAtRandomMomentsNoticesNothing)
{
    TemporaryDirectory dir;
    std::string snapshot = dir.file("snap");
    // About 30 s of counting inside the nested test host, a few seconds on hardware.
    unsigned const rounds_total = in_nested_test_host() ? 20000 : 300000;
    std::string rounds = "rounds=" + std::to_string(rounds_total);
    std::mt19937 random(std::random_device {}());
    // Short enough that the guest is stopped at least three times before it ends, however fast the host.
    std::uniform_int_distribution<int> delay_ms(150, 900);
    std::string console;
    int snapshots = 0;
    bool finished = false;
    for (int run = 0; run < 8 && !finished; ++run) {
        std::vector<std::string> arguments = run == 0
            ? std::vector<std::string> { "run", "--kernel", KASOU_GUEST_SNAPSHOT_COUNTER, "--cpus", "2", "--memory", "32M", "--no-rng", "--cmdline",
                  rounds, "--snapshot-to", snapshot }
            : std::vector<std::string> { "run", "--restore", snapshot, "--snapshot-to", snapshot };
        KasouProcess process(arguments);
        if (!wait_until_snapshot_signal_is_taken(process.pid()) || (run == 0 && !process.wait_for_output("2 cpus up", 60s))) {
            process.send_signal(SIGKILL);
            auto result = process.wait(10s);
            FAIL() << "the guest did not start: " << result.out << result.err;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(random)));
        process.send_signal(SIGUSR2);
        auto result = process.wait(120s);
        console += result.out;
        ASSERT_FALSE(result.timed_out);
        if (result.status == GUEST_PASSED || (result.signal == SIGUSR2 && result.out.find("memory intact") != std::string::npos)) {
            finished = true; // it ended before the signal came (or as kasou was exiting)
            break;
        }
        ASSERT_EQ(result.status, STATUS_SIGNAL) << result.err << console;
        ASSERT_NE(result.err.find("stopped by SIGUSR2 after a snapshot to"), std::string::npos) << result.err;
        ++snapshots;
    }
    if (!finished) {
        auto result = run_kasou({ "run", "--restore", snapshot }, 600s);
        console += result.out;
        EXPECT_EQ(result.status, GUEST_PASSED) << result.err << console;
    }
    EXPECT_NE(console.find("memory intact"), std::string::npos) << console;
    EXPECT_EQ(console.find("FAIL"), std::string::npos) << console;
    EXPECT_GE(snapshots, 3) << console;
    // Every progress line once, in order: no stretch of the guest's work was lost or done twice.
    for (unsigned cpu = 0; cpu < 2; ++cpu) {
        size_t previous = 0;
        for (unsigned round = 100; round <= rounds_total; round += 100) {
            std::string line = "cpu " + std::to_string(cpu) + " round " + std::to_string(round) + "\n";
            size_t at = console.find(line);
            ASSERT_NE(at, std::string::npos) << line;
            EXPECT_EQ(console.find(line, at + 1), std::string::npos) << "twice: " << line;
            EXPECT_GE(at, previous) << "out of order: " << line;
            previous = at;
        }
    }
}

TEST(Snapshot, DamagedOrMismatchedSnapshotIsRefusedAndNothingRuns)
{
    TemporaryDirectory dir;
    std::string snapshot = dir.file("snap");
    KasouProcess process({ "run", "--kernel", KASOU_GUEST_SNAPSHOT_COUNTER, "--cpus", "2", "--memory", "32M", "--no-rng", "--cmdline",
        "rounds=1000000", "--snapshot-to", snapshot });
    if (!process.wait_for_output("2 cpus up", 60s)) {
        process.send_signal(SIGKILL);
        auto result = process.wait(10s);
        FAIL() << "the guest did not start: " << result.out << result.err;
    }
    process.send_signal(SIGUSR2);
    ASSERT_EQ(process.wait(60s).status, STATUS_SIGNAL);

    auto refused = [&](std::vector<std::string> const& arguments, std::string const& message) {
        auto result = run_kasou(arguments, 60s);
        EXPECT_EQ(result.status, STATUS_REFUSED) << result.err;
        EXPECT_NE(result.err.find(message), std::string::npos) << result.err;
        EXPECT_EQ(result.out.find("cpu"), std::string::npos) << "the guest ran: " << result.out;
    };
    refused({ "run", "--restore", snapshot, "--cpus", "1" }, "has 2 vCPUs, 1 were asked for");
    refused({ "run", "--restore", snapshot, "--memory", "64M" }, "bytes of memory");

    std::string damaged = dir.file("damaged");
    std::filesystem::copy(snapshot, damaged);
    std::filesystem::resize_file(damaged + "/memory", 16 << 20);
    refused({ "run", "--restore", damaged }, "memory file holds 16777216 bytes, the machine has 33554432");
    std::filesystem::resize_file(damaged + "/memory", 32 << 20);
    std::filesystem::resize_file(damaged + "/state", std::filesystem::file_size(damaged + "/state") - 10);
    refused({ "run", "--restore", damaged }, "truncated");
}
