// `kasou cores topology`, `simulate`, `reserve` and `placements` as a user runs them, on captured sysfs
// trees.

#include <csignal>
#include <set>

#include <nlohmann/json.hpp>
#include <gtest/gtest.h>

#include "kasou_process.h"

using namespace kasou::test;

namespace {

std::string const ARCHIVE = std::string(KASOU_TOPOLOGIES) + "/16em64t-4s2c2t.tar.bz2";

} // namespace

TEST(CoresCommand, TopologyJsonHasTheCounts)
{
    auto result = run_kasou({ "cores", "topology", "--sysfs", ARCHIVE, "--json" });
    ASSERT_EQ(result.status, 0) << result.err;
    auto json = nlohmann::json::parse(result.out);
    // 4 sockets x 2 cores x 2 threads, one L3 per socket, as the archive's name says.
    EXPECT_EQ(json.at("packages").get<int>(), 4);
    EXPECT_EQ(json.at("cores").get<int>(), 8);
    EXPECT_EQ(json.at("threads").get<int>(), 16);
    EXPECT_GE(json.at("llc_domains").get<int>(), 1);
    EXPECT_GE(json.at("numa_nodes").get<int>(), 1);
}

TEST(CoresCommand, SimulateReportsEveryMetric)
{
    auto result = run_kasou({ "cores", "simulate", "--sysfs", ARCHIVE, "--policy", "kasou", "--seed", "1", "--json" });
    ASSERT_EQ(result.status, 0) << result.err;
    auto json = nlohmann::json::parse(result.out);
    for (char const* field : { "cross_llc_share", "cross_numa_share", "coherence_cost", "fragmentation", "rejected", "migrations" })
        EXPECT_TRUE(json.contains(field)) << field << " missing from " << result.out;
}

TEST(CoresCommand, BadInputIsRefused)
{
    auto missing = run_kasou({ "cores", "topology", "--sysfs", "/nonexistent/tree" });
    EXPECT_NE(missing.status, 0);
    EXPECT_NE(missing.err.find("/nonexistent/tree"), std::string::npos) << missing.err;
    auto policy = run_kasou({ "cores", "simulate", "--sysfs", ARCHIVE, "--policy", "random" });
    EXPECT_NE(policy.status, 0);
}

namespace {

// The CPUs each process holds, by pid, as `kasou cores placements --json` lists them.
std::map<int, std::string> placements(std::string const& state_dir)
{
    auto result = run_kasou({ "--state-dir", state_dir, "cores", "placements", "--json" });
    EXPECT_EQ(result.status, 0) << result.err;
    std::map<int, std::string> held;
    for (auto const& entry : nlohmann::json::parse(result.out))
        held[entry.at("pid").get<int>()] = entry.at("cpus").get<std::string>();
    return held;
}

std::set<int> cpus_of(std::string const& list)
{
    std::set<int> cpus;
    size_t start = 0;
    while (start < list.size()) {
        size_t end = std::min(list.find(',', start), list.size());
        auto range = list.substr(start, end - start);
        auto dash = range.find('-');
        int first = std::stoi(range.substr(0, dash));
        int last = dash == std::string::npos ? first : std::stoi(range.substr(dash + 1));
        for (int cpu = first; cpu <= last; ++cpu)
            cpus.insert(cpu);
        start = end + 1;
    }
    return cpus;
}

} // namespace

// Two placements started at once in one state directory take different CPUs; the one killed
// without a chance to clean up loses its entry at the next read, the one stopped removes its own.
TEST(CoresCommand, ConcurrentReservationsDoNotOverlapAndLeaveNoTrace)
{
    TemporaryDirectory state;
    std::vector<std::string> reserve { "--state-dir", state.path(), "cores", "reserve", "--cpus", "4", "--sysfs", ARCHIVE };
    KasouProcess first(reserve);
    KasouProcess second(reserve);
    ASSERT_TRUE(first.wait_for_output("reserved host CPUs", std::chrono::seconds(30)));
    ASSERT_TRUE(second.wait_for_output("reserved host CPUs", std::chrono::seconds(30)));

    auto held = placements(state.path());
    ASSERT_EQ(held.size(), 2u);
    auto a = cpus_of(held.at(first.pid()));
    auto b = cpus_of(held.at(second.pid()));
    EXPECT_EQ(a.size(), 4u);
    EXPECT_EQ(b.size(), 4u);
    for (int cpu : a)
        EXPECT_FALSE(b.contains(cpu)) << "CPU " << cpu << " given to both: " << held.at(first.pid()) << " and " << held.at(second.pid());

    first.send_signal(SIGKILL);
    first.wait(std::chrono::seconds(10));
    held = placements(state.path());
    EXPECT_EQ(held.size(), 1u);
    EXPECT_TRUE(held.contains(second.pid()));

    second.send_signal(SIGTERM);
    EXPECT_EQ(second.wait(std::chrono::seconds(10)).status, 0);
    EXPECT_TRUE(placements(state.path()).empty());
}

TEST(CoresCommand, ReserveRefusesAListOfTheWrongLength)
{
    TemporaryDirectory state;
    auto result = run_kasou({ "--state-dir", state.path(), "cores", "reserve", "--cpus", "2", "--cores", "0", "--sysfs", ARCHIVE });
    EXPECT_NE(result.status, 0);
    EXPECT_NE(result.err.find("names 1 CPUs for 2 vCPUs"), std::string::npos) << result.err;
}
