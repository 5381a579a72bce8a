#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <thread>
#include <unistd.h>

#include "base/try.h"
#include "sched/host_cores.h"
#include "sched/rebalancer.h"
#include "sched/sysfs_source.h"
#include "shipped_topologies.h"

using namespace kasou::sched;
using kasou::u32;
using namespace std::chrono_literals;

namespace {

// Threads that either spin or sleep until stopped, each reporting its kernel thread id.
class Workers {
public:
    Workers(u32 count, bool busy)
    {
        for (u32 i = 0; i < count; ++i) {
            m_threads.emplace_back([this, busy] {
                {
                    std::lock_guard guard(m_lock);
                    m_tids.push_back(gettid());
                }
                m_ready.notify_all();
                if (busy) {
                    while (!m_stop.load(std::memory_order_relaxed)) { }
                } else {
                    std::unique_lock guard(m_lock);
                    m_ready.wait(guard, [this] { return m_stop.load(); });
                }
            });
        }
        std::unique_lock guard(m_lock);
        m_ready.wait(guard, [&] { return m_tids.size() == count; });
    }
    ~Workers()
    {
        {
            std::lock_guard guard(m_lock);
            m_stop = true;
        }
        m_ready.notify_all();
        for (auto& thread : m_threads)
            thread.join();
    }
    std::vector<pid_t> tids()
    {
        std::lock_guard guard(m_lock);
        return m_tids;
    }

private:
    std::mutex m_lock;
    std::condition_variable m_ready;
    std::atomic<bool> m_stop { false };
    std::vector<pid_t> m_tids;
    std::vector<std::thread> m_threads;
};

// A mover that remembers what it was asked to do (the real movers are tested in cpu_mover_test).
class RecordingMover final : public CpuMover {
public:
    explicit RecordingMover(std::vector<GroupPlacement>& log)
        : m_log(log)
    {
    }
    kasou::ErrorOr<void> apply(GroupPlacement const& placement) override
    {
        m_log.push_back(placement);
        return {};
    }

private:
    std::vector<GroupPlacement>& m_log;
};

// Runs real rounds (real schedstat, real clock) until the group changes size or time runs out.
std::vector<RebalanceDecision> rounds_until_decision(Rebalancer& rebalancer, std::chrono::milliseconds limit)
{
    auto deadline = Rebalancer::Clock::now() + limit;
    while (Rebalancer::Clock::now() < deadline) {
        auto decisions = rebalancer.step(Rebalancer::Clock::now(), rebalancer.sample());
        if (!decisions.empty())
            return decisions;
        std::this_thread::sleep_for(60ms);
    }
    return {};
}

RebalancerOptions quick_options() { return RebalancerOptions { 0.25, 0.30, 2, 1, 60ms }; }

} // namespace

TEST(Rebalancer, StarvedGroupOfRealThreadsGrows)
{
    auto topology = MUST(load_topology(""));
    if (topology.cores().size() < 2)
        GTEST_SKIP() << "needs two cores";
    std::mutex lock;
    CoreAllocator allocator(topology, {});
    u32 id = MUST(allocator.allocate(GroupRequest { 1, Sharing::Dedicated, false }));
    auto first_cpu = allocator.group(id)->cpus[0];
    Workers busy(3, true); // three spinning threads on one CPU: each waits about two thirds of the time
    auto tids = busy.tids();
    AffinityMover pin(tids);
    ASSERT_TRUE(pin.apply(GroupPlacement { CpuSet::of({ first_cpu }), {} }));
    Rebalancer rebalancer(allocator, lock, quick_options());
    ASSERT_TRUE(rebalancer.add_group(id, getpid(), tids, GroupLimits { 1, 2 }, std::make_unique<AffinityMover>(tids)));
    auto decisions = rounds_until_decision(rebalancer, 5s);
    ASSERT_EQ(decisions.size(), 1u);
    EXPECT_EQ(decisions[0].old_cpus, 1u);
    EXPECT_EQ(decisions[0].new_cpus, 2u);
    EXPECT_EQ(allocator.group(id)->cpus.size(), 2u);
    EXPECT_EQ(allocator.group(id)->cpus[0], first_cpu);
    CpuSet expected;
    for (u32 cpu : allocator.group(id)->cpus)
        expected.add(cpu);
    for (pid_t tid : tids)
        EXPECT_EQ(MUST(thread_affinity(tid)), expected);
}

TEST(Rebalancer, IdleGroupOfRealThreadsShrinks)
{
    auto topology = MUST(load_topology(""));
    if (topology.cores().size() < 2)
        GTEST_SKIP() << "needs two cores";
    std::mutex lock;
    CoreAllocator allocator(topology, {});
    u32 id = MUST(allocator.allocate(GroupRequest { 2, Sharing::Dedicated, false }));
    Workers idle(2, false);
    auto tids = idle.tids();
    Rebalancer rebalancer(allocator, lock, quick_options());
    ASSERT_TRUE(rebalancer.add_group(id, getpid(), tids, GroupLimits { 1, 2 }, std::make_unique<AffinityMover>(tids)));
    auto decisions = rounds_until_decision(rebalancer, 5s);
    ASSERT_EQ(decisions.size(), 1u);
    EXPECT_EQ(decisions[0].new_cpus, 1u);
    ASSERT_EQ(allocator.group(id)->cpus.size(), 1u);
    for (pid_t tid : tids)
        EXPECT_EQ(MUST(thread_affinity(tid)), CpuSet::of({ allocator.group(id)->cpus[0] }));
    EXPECT_EQ(allocator.free_cores(), u32(topology.cores().size()) - 1);
    // At its minimum it stays, however idle.
    EXPECT_TRUE(rounds_until_decision(rebalancer, 400ms).empty());
}

TEST(Rebalancer, HysteresisAndCooldownPreventFlapping)
{
    auto const& topology = kasou::sched::testing::shipped("64amd64-4s2n4ca2co");
    std::mutex lock;
    CoreAllocator allocator(topology, {});
    u32 id = MUST(allocator.allocate(GroupRequest { 2, Sharing::Dedicated, false }));
    std::vector<GroupPlacement> moves;
    Rebalancer rebalancer(allocator, lock, RebalancerOptions { 0.25, 0.30, 3, 3, 100ms });
    ASSERT_TRUE(rebalancer.add_group(id, 1, { 101, 102 }, GroupLimits { 1, 4 }, std::make_unique<RecordingMover>(moves)));

    // A fake clock and synthetic counters: per 100 ms interval, each thread runs `run` ms and waits `wait` ms.
    auto now = Rebalancer::Clock::time_point {};
    std::vector<ThreadTimes> times(2);
    auto tick = [&](u32 run, u32 wait) {
        now += 100ms;
        for (auto& t : times) {
            t.run_ns += run * 1'000'000ull;
            t.wait_ns += wait * 1'000'000ull;
        }
        return rebalancer.step(now, { { id, times } });
    };
    EXPECT_TRUE(tick(0, 0).empty()); // the first sample is only a baseline
    // Starved and busy in turn: neither streak reaches three, nothing moves.
    for (int i = 0; i < 10; ++i) {
        EXPECT_TRUE(tick(60, 40).empty());
        EXPECT_TRUE(tick(5, 0).empty());
    }
    EXPECT_TRUE(moves.empty());
    // Three starved intervals in a row: grow by one CPU.
    EXPECT_TRUE(tick(60, 40).empty());
    EXPECT_TRUE(tick(60, 40).empty());
    auto grow = tick(60, 40);
    ASSERT_EQ(grow.size(), 1u);
    EXPECT_EQ(grow[0].new_cpus, 3u);
    ASSERT_EQ(moves.size(), 1u);
    EXPECT_EQ(moves.back().cpus.count(), 3u);
    EXPECT_EQ(moves.back().nodes.size(), 1u); // several nodes on this machine: memory follows
    // Idle right after growing: the cooldown and then the streak hold it for 3 + 3 intervals.
    for (int i = 0; i < 5; ++i)
        EXPECT_TRUE(tick(2, 0).empty()) << i;
    auto shrink = tick(2, 0);
    ASSERT_EQ(shrink.size(), 1u);
    EXPECT_EQ(shrink[0].new_cpus, 2u);
    // Starved for long: grows to its maximum of 4 and no further.
    u32 grown = 0;
    for (int i = 0; i < 30; ++i)
        grown += u32(tick(60, 40).size());
    EXPECT_EQ(grown, 2u);
    EXPECT_EQ(allocator.group(id)->cpus.size(), 4u);
    rebalancer.remove_group(id);
    EXPECT_TRUE(tick(60, 40).empty());
}

TEST(HostCores, AllocatesPinsAndWatchesOnTheLiveHost)
{
    auto cores = MUST(HostCores::open(HostCoresOptions {}));
    auto placement = MUST(cores->allocate(GroupRequest { 1, Sharing::Dedicated, true }));
    ASSERT_EQ(placement.cpus.size(), 1u);
    EXPECT_EQ(placement.guest.threads_per_core * placement.guest.cores_per_package, 1u);
    auto original = MUST(thread_affinity(0));
    ASSERT_TRUE(HostCores::pin_current_thread(placement.cpus[0]));
    EXPECT_EQ(MUST(thread_affinity(0)), CpuSet::of({ placement.cpus[0] }));
    ASSERT_TRUE(set_thread_affinity(0, original));
    Workers idle(1, false);
    EXPECT_TRUE(cores->watch(placement.id, getpid(), idle.tids(), GroupLimits { 1, 1 }));
    EXPECT_FALSE(cores->watch(placement.id + 100, getpid(), idle.tids(), GroupLimits { 1, 1 }));
    auto overlapping = cores->allocate_list(CpuSet::of({ placement.cpus[0] }));
    EXPECT_FALSE(overlapping);
    cores->release(placement.id);
    EXPECT_TRUE(cores->allocate_list(CpuSet::of({ placement.cpus[0] })));
    EXPECT_FALSE(HostCores::open(HostCoresOptions { "", PlacementPolicy::Kasou, 1000, {}, "" }));
}

TEST(HostCores, ParsesTheRunCoresOption)
{
    auto cores = MUST(HostCores::open(HostCoresOptions {}));
    auto automatic = cores->allocate_for_run(1, "auto");
    ASSERT_TRUE(automatic) << automatic.error().to_string();
    u32 other = cores->topology().cpus().back().id == automatic->cpus[0] ? cores->topology().cpus().front().id
                                                                               : cores->topology().cpus().back().id;
    auto wrong_count = cores->allocate_for_run(2, std::to_string(other));
    ASSERT_FALSE(wrong_count);
    EXPECT_NE(wrong_count.error().to_string().find("names 1 CPUs for 2 vCPUs"), std::string::npos);
    EXPECT_FALSE(cores->allocate_for_run(1, "0-x"));
    auto listed = cores->allocate_for_run(1, std::to_string(other));
    ASSERT_TRUE(listed) << listed.error().to_string();
    EXPECT_EQ(listed->cpus, (std::vector<u32> { other }));
}
