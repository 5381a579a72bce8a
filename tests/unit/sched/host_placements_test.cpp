// The host-wide placement record: real processes (forked children), a real state directory, the
// real HostCores on a captured 16-CPU topology (4 packages x 2 cores x 2 threads).

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/sys_path.h"
#include "base/try.h"
#include "sched/host_cores.h"
#include "sched/host_placements.h"
#include "shipped_topologies.h"

using namespace kasou::sched;
using namespace kasou::sched::testing;
using kasou::i32;
using kasou::u32;

namespace {

class HostPlacementsTest : public ::testing::Test {
protected:
    void SetUp() override { m_state_dir = MUST(kasou::sys::make_temp_dir("/tmp/kasou-placements-XXXXXX")); }
    void TearDown() override { std::filesystem::remove_all(m_state_dir); }

    std::unique_ptr<HostCores> open_cores() const
    {
        HostCoresOptions options;
        options.sysfs = shipped_path("16em64t-4s2c2t");
        options.state_dir = m_state_dir;
        return MUST(HostCores::open(options));
    }
    std::string entry_of(i32 pid) const { return fmt::format("{}/cores/{}.json", m_state_dir, pid); }
    void write_entry(i32 pid, std::string const& text) const
    {
        std::filesystem::create_directories(m_state_dir + "/cores");
        std::ofstream(entry_of(pid)) << text;
    }

    // A child process that places `vcpus` auto and reports its CPUs; it holds them until
    // release_child(), and then leaves without any clean-up, as a crashed kasou would.
    struct Child {
        pid_t pid { -1 };
        CpuSet cpus;
        int release_fd { -1 };
    };
    Child start_child(u32 vcpus) const
    {
        int report[2], release[2];
        EXPECT_EQ(::pipe(report), 0);
        EXPECT_EQ(::pipe(release), 0);
        pid_t pid = ::fork();
        if (pid == 0) {
            ::close(report[0]);
            ::close(release[1]);
            auto cores = open_cores();
            auto placement = cores->allocate_for_run(vcpus, "auto");
            std::string text = placement ? CpuSet::parse_list(fmt::format("{}", fmt::join(placement->cpus, ",")))->to_list() : "error";
            (void)!::write(report[1], text.data(), text.size());
            ::close(report[1]);
            char byte;
            (void)!::read(release[0], &byte, 1);
            ::_exit(0); // no destructor runs: the record stays behind
        }
        ::close(report[1]);
        ::close(release[0]);
        std::string text;
        char buffer[256];
        for (ssize_t got; (got = ::read(report[0], buffer, sizeof(buffer))) > 0;)
            text.append(buffer, size_t(got));
        ::close(report[0]);
        EXPECT_NE(text, "error");
        return { pid, CpuSet::parse_list(text).value_or(CpuSet()), release[1] };
    }
    static void finish_child(Child const& child)
    {
        ::close(child.release_fd);
        int status = 0;
        ASSERT_EQ(::waitpid(child.pid, &status, 0), child.pid);
    }

    std::string m_state_dir;
};

CpuSet cpus_of(VmPlacement const& placement)
{
    CpuSet set;
    for (u32 cpu : placement.cpus)
        set.add(cpu);
    return set;
}

} // namespace

TEST_F(HostPlacementsTest, TwoProcessesGetDisjointCpus)
{
    auto child = start_child(4);
    ASSERT_EQ(child.cpus.count(), 4u);
    auto cores = open_cores();
    auto mine = MUST(cores->allocate_for_run(4, "auto"));
    EXPECT_FALSE(cpus_of(mine).intersects(child.cpus)) << cpus_of(mine).to_list() << " vs " << child.cpus.to_list();
    // Both are in the record, each under its own pid.
    auto entries = MUST(MUST(HostPlacements::open(m_state_dir)).list());
    ASSERT_EQ(entries.size(), 2u);
    for (auto const& entry : entries)
        EXPECT_EQ(entry.cpus, entry.process.pid == child.pid ? child.cpus : cpus_of(mine));
    finish_child(child);
}

TEST_F(HostPlacementsTest, AnEntryOfADeadProcessIsReclaimed)
{
    auto child = start_child(16); // the whole host
    finish_child(child);          // gone without removing its entry
    ASSERT_TRUE(std::filesystem::exists(entry_of(child.pid)));
    auto cores = open_cores();
    auto mine = MUST(cores->allocate_for_run(16, "auto"));
    EXPECT_EQ(mine.cpus.size(), 16u);
    EXPECT_FALSE(std::filesystem::exists(entry_of(child.pid)));
}

TEST_F(HostPlacementsTest, WithTooFewFreeCpusAGroupSharesThem)
{
    auto child = start_child(14);
    auto cores = open_cores();
    auto mine = MUST(cores->allocate_for_run(4, "auto"));
    EXPECT_EQ(mine.cpus.size(), 4u);
    EXPECT_TRUE(cpus_of(mine).intersects(child.cpus));
    finish_child(child);
}

TEST_F(HostPlacementsTest, AnExplicitListIsPlacedAsGivenEvenIfHeldElsewhere)
{
    auto child = start_child(2);
    auto cores = open_cores();
    auto mine = MUST(cores->allocate_list(child.cpus));
    EXPECT_EQ(cpus_of(mine), child.cpus);
    finish_child(child);
}

TEST_F(HostPlacementsTest, TheEntryGoesWithTheObjectAndWithTheLastRelease)
{
    auto cores = open_cores();
    auto placement = MUST(cores->allocate_for_run(2, "auto"));
    EXPECT_TRUE(std::filesystem::exists(entry_of(::getpid())));
    cores->release(placement.id);
    EXPECT_FALSE(std::filesystem::exists(entry_of(::getpid())));
    MUST(cores->allocate_for_run(2, "auto"));
    EXPECT_TRUE(std::filesystem::exists(entry_of(::getpid())));
    cores.reset();
    EXPECT_FALSE(std::filesystem::exists(entry_of(::getpid())));
}

TEST_F(HostPlacementsTest, AReusedPidIsNotTakenForTheWriter)
{
    auto self = ProcessIdentity::self();
    write_entry(self.pid, fmt::format(R"({{"pid": {}, "start_time": {}, "cpus": "0-15"}})", self.pid, self.start_time + 1));
    auto entries = MUST(MUST(HostPlacements::open(m_state_dir)).list());
    EXPECT_TRUE(entries.empty());
    EXPECT_FALSE(std::filesystem::exists(entry_of(self.pid)));
}

TEST_F(HostPlacementsTest, AnUnreadableEntryOfALiveProcessIsAnErrorNamingTheFile)
{
    auto parent = *ProcessIdentity::of(i32(::getppid()));
    for (std::string text : { std::string("not json"),
             fmt::format(R"({{"pid": {}, "start_time": {}, "cpus": "0-3", "extra": 1}})", parent.pid, parent.start_time),
             fmt::format(R"({{"pid": {}, "start_time": "soon", "cpus": "0-3"}})", parent.pid),
             fmt::format(R"({{"pid": {}, "start_time": {}, "cpus": "zero"}})", parent.pid, parent.start_time) }) {
        write_entry(parent.pid, text);
        auto cores = open_cores();
        auto placement = cores->allocate_for_run(2, "auto");
        ASSERT_FALSE(placement) << text;
        EXPECT_NE(placement.error().to_string().find(entry_of(parent.pid)), std::string::npos) << placement.error().to_string();
        EXPECT_TRUE(std::filesystem::exists(entry_of(parent.pid))) << "a live process's entry is kept";
    }
}

TEST_F(HostPlacementsTest, AnUnreadableEntryOfADeadProcessIsRemoved)
{
    pid_t pid = ::fork();
    if (pid == 0)
        ::_exit(0);
    ASSERT_EQ(::waitpid(pid, nullptr, 0), pid);
    write_entry(pid, "{ half written");
    auto entries = MUST(MUST(HostPlacements::open(m_state_dir)).list());
    EXPECT_TRUE(entries.empty());
    EXPECT_FALSE(std::filesystem::exists(entry_of(pid)));
}

TEST_F(HostPlacementsTest, ARelativeStateDirectoryIsRefused)
{
    auto opened = HostPlacements::open("relative/dir");
    ASSERT_FALSE(opened);
    EXPECT_NE(opened.error().to_string().find("relative/dir"), std::string::npos);
}
