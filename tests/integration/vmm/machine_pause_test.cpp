// vmm::Machine's lifecycle driven through the library: guests/virtio_smoke in its soak mode (two
// vCPUs, one printing on COM1 every ~10 ms, the other writing and verifying virtio-blk blocks
// round after round) paused and resumed fifty times in a row. While paused, no vCPU or virtio
// thread uses CPU, the console and the disk do not change; after each resume the guest goes on,
// and at the end its disk holds the last round's data. Also: the errors of pause and resume in
// the wrong state, and a stop while paused.

#include <chrono>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>
#include <unistd.h>

#include <gtest/gtest.h>
#include <kasou_guests.h>

#include "base/try.h"
#include "kasou_process.h"
#include "vmm/machine.h"

using namespace kasou;
using namespace kasou::test;
using namespace std::chrono_literals;

namespace {

constexpr int PAUSES = 50;
constexpr u64 SOAK_BLOCKS = 4;
constexpr u64 BLOCK_BYTES = 4096;

// Waits up to `limit` for condition(); returns whether it came true.
bool eventually(auto condition, std::chrono::seconds limit = 60s)
{
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!condition()) {
        if (std::chrono::steady_clock::now() > deadline)
            return false;
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

// guests/virtio_smoke/soak.c's pattern.
u64 soak_word(u64 round, u64 block, u64 i)
{
    return ((round + 1) * 0x9e3779b97f4a7c15ull) ^ ((block + 1) * 0xbf58476d1ce4e5b9ull) ^ ((i + 1) * 0x94d049bb133111ebull);
}

// CPU time (clock ticks) and scheduler states of this process's threads whose names start with
// one of `prefixes` (vcpu0, vcpu1, virtio-blk).
struct ThreadUsage {
    u64 ticks { 0 };
    std::string states;
    size_t threads { 0 };
};

ThreadUsage thread_usage(std::vector<std::string> const& prefixes)
{
    ThreadUsage usage;
    DIR* tasks = ::opendir("/proc/self/task");
    if (!tasks)
        return usage;
    while (auto* entry = ::readdir(tasks)) {
        if (entry->d_name[0] == '.')
            continue;
        std::string base = std::string("/proc/self/task/") + entry->d_name;
        std::string name;
        std::getline(std::ifstream(base + "/comm"), name);
        bool wanted = false;
        for (auto const& prefix : prefixes)
            wanted = wanted || name.starts_with(prefix);
        if (!wanted)
            continue;
        std::string stat;
        std::getline(std::ifstream(base + "/stat"), stat);
        // Fields after the parenthesised name: state is the first, utime and stime the 12th and 13th.
        std::istringstream fields(stat.substr(stat.rfind(')') + 2));
        std::string field;
        std::vector<std::string> values;
        while (fields >> field)
            values.push_back(field);
        if (values.size() < 13)
            continue;
        usage.states += values[0];
        usage.ticks += std::stoull(values[11]) + std::stoull(values[12]);
        ++usage.threads;
    }
    ::closedir(tasks);
    return usage;
}

u64 file_size(std::string const& path)
{
    std::ifstream file(path, std::ios::binary | std::ios::ate);
    return file ? static_cast<u64>(file.tellg()) : 0;
}

class MachinePause : public testing::Test {
protected:
    void SetUp() override
    {
        m_disk = m_directory.file("disk.img");
        write_file(m_disk, "");
        ASSERT_EQ(::truncate(m_disk.c_str(), 1 << 20), 0);
        m_console = m_directory.file("console.log");
        m_config.kernel_path = KASOU_GUEST_VIRTIO_SMOKE;
        m_config.cpus = 2;
        m_config.memory = 64 * MiB;
        m_config.command_line = "soak=1 expect=blk";
        m_config.disks.push_back(MUST(vmm::DiskSpec::parse(m_disk)));
        m_config.entropy = false;
        m_config.serial = vmm::SerialSpec { vmm::SerialSpec::Kind::File, m_console };
    }

    std::string console() const { return read_file(m_console); }
    std::string disk_head() const { return read_file(m_disk).substr(0, SOAK_BLOCKS * BLOCK_BYTES); }

    // Starts the machine and waits until the guest's load runs: the second CPU ticking, the first
    // writing and reading the disk.
    std::unique_ptr<vmm::Machine> start_soaking()
    {
        auto machine = MUST(vmm::Machine::create(m_config));
        MUST(machine->start());
        EXPECT_TRUE(eventually([&] {
            auto text = console();
            return text.find("soak: 1 other cpus ticking") != std::string::npos && text.find("soak: cpu 1 tick 2\n") != std::string::npos;
        })) << console();
        return machine;
    }

    TemporaryDirectory m_directory;
    std::string m_disk;
    std::string m_console;
    vmm::MachineConfig m_config;
};

} // namespace

TEST_F(MachinePause, FiftyPausesUnderLoadStopEverythingAndLoseNothing)
{
    auto machine = start_soaking();
    int state_round_trips = 0;
    for (int pause = 0; pause < PAUSES; ++pause) {
        ASSERT_TRUE(machine->pause()) << "pause " << pause;
        auto before = thread_usage({ "vcpu", "virtio-blk" });
        u64 console_size = file_size(m_console);
        auto disk = disk_head();
        std::this_thread::sleep_for(50ms);
        auto after = thread_usage({ "vcpu", "virtio-blk" });
        EXPECT_EQ(before.threads, 3u) << "two vCPU threads and the virtio-blk I/O thread";
        // A thread that runs takes about five 10 ms ticks in 50 ms; one may still be charged for the
        // moment between its wake-up of pause() and its wait.
        EXPECT_LE(after.ticks, before.ticks + 1) << "a parked thread used CPU time (pause " << pause << ")";
        EXPECT_EQ(after.states.find('R'), std::string::npos) << "thread states " << after.states << " (pause " << pause << ")";
        EXPECT_EQ(file_size(m_console), console_size) << "console output while paused (pause " << pause << ")";
        EXPECT_EQ(disk_head(), disk) << "disk writes while paused (pause " << pause << ")";
        if (pause % 10 == 0) {
            // The whole state of both vCPUs, read and written back while paused.
            auto states = MUST(machine->vcpu_states());
            EXPECT_EQ(states.size(), 2u);
            MUST(machine->set_vcpu_states(states));
            ++state_round_trips;
        }
        ASSERT_TRUE(machine->resume()) << "resume " << pause;
        ASSERT_TRUE(eventually([&] { return file_size(m_console) > console_size; }, 30s)) << "no progress after resume " << pause;
    }
    EXPECT_EQ(state_round_trips, PAUSES / 10);

    u8 const quit = 'q';
    machine->console_input(std::span(&quit, 1));
    auto reason = machine->wait();
    EXPECT_EQ(reason.kind, vmm::StopKind::DebugExit) << reason.message << "\n" << console();
    EXPECT_EQ(reason.status, 1) << reason.message;

    auto text = console();
    std::smatch match;
    ASSERT_TRUE(std::regex_search(text, match, std::regex("soak: ([0-9]+) rounds verified, ([0-9]+) ticks from 1 other cpus"))) << text;
    u64 rounds = std::stoull(match[1]);
    EXPECT_GT(rounds, 0u);
    EXPECT_GT(std::stoull(match[2]), 10u) << "the second vCPU kept printing between pauses";
    auto disk = disk_head();
    for (u64 block = 0; block < SOAK_BLOCKS; ++block) {
        for (u64 i = 0; i < BLOCK_BYTES / 8; ++i) {
            u64 word;
            std::memcpy(&word, disk.data() + block * BLOCK_BYTES + i * 8, 8);
            ASSERT_EQ(word, soak_word(rounds - 1, block, i)) << "block " << block << " word " << i;
        }
    }
}

TEST_F(MachinePause, PauseAndResumeRefuseTheWrongStateAndAStopEndsAPausedMachine)
{
    auto machine = MUST(vmm::Machine::create(m_config));
    auto early = machine->pause();
    ASSERT_FALSE(early);
    EXPECT_EQ(early.error().kind(), ErrorKind::Busy); // a request in the wrong state, not bad input
    EXPECT_NE(early.error().to_string().find("not running"), std::string::npos) << early.error().to_string();
    MUST(machine->start());
    auto not_paused = machine->resume();
    ASSERT_FALSE(not_paused);
    EXPECT_EQ(not_paused.error().kind(), ErrorKind::Busy); // a request in the wrong state, not bad input
    EXPECT_NE(not_paused.error().to_string().find("not paused"), std::string::npos) << not_paused.error().to_string();
    ASSERT_TRUE(eventually([&] { return console().find("soak: cpu 1 tick 0\n") != std::string::npos; })) << console();
    MUST(machine->pause());
    MUST(machine->pause()); // already paused: nothing to do
    machine->request_stop(vmm::StopReason::make(vmm::StopKind::Signal, "stopped while paused"));
    auto reason = machine->wait();
    EXPECT_EQ(reason.kind, vmm::StopKind::Signal);
    EXPECT_EQ(reason.message, "stopped while paused");
    auto stopping = machine->pause();
    ASSERT_FALSE(stopping);
    EXPECT_EQ(stopping.error().kind(), ErrorKind::Busy); // a request in the wrong state, not bad input
    EXPECT_NE(stopping.error().to_string().find("stopped"), std::string::npos) << stopping.error().to_string();
    // Destroying the machine now also ends the parked virtio I/O thread.
}
