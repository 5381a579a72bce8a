// `kasou cores topology` and `kasou cores simulate` as a user runs them, on captured sysfs trees.

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
