#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "virtio/adaptive_poll.h"

using kasou::virtio::AdaptivePoll;
using namespace std::chrono_literals;

namespace {

// Records each wait in turn and checks the window that follows it.
void expect_windows(AdaptivePoll& poll, std::vector<std::pair<std::chrono::nanoseconds, std::chrono::nanoseconds>> const& steps)
{
    for (size_t i = 0; i < steps.size(); ++i) {
        poll.record(steps[i].first);
        EXPECT_EQ(poll.window(), steps[i].second) << "after wait " << i << " of " << steps[i].first.count() << " ns";
    }
}

} // namespace

TEST(AdaptivePoll, AMaximumOfZeroNeverPolls)
{
    AdaptivePoll poll(0ns);
    expect_windows(poll, { { 0ns, 0ns }, { 1ns, 0ns }, { 1us, 0ns }, { 1ms, 0ns } });
}

TEST(AdaptivePoll, GrowsByDoublingWhileWorkArrivesWithinTheMaximum)
{
    AdaptivePoll poll(32us);
    EXPECT_EQ(poll.window(), 0ns) << "starts without polling";
    expect_windows(poll, {
                             { 10us, AdaptivePoll::INITIAL_WINDOW },
                             { 10us, 4us },
                             { 10us, 8us },
                             { 10us, 16us },
                             { 10us, 16us }, // work now arrives inside the window: it stays
                             { 30us, 32us },
                             { 32us, 32us }, // never beyond the maximum
                         });
}

TEST(AdaptivePoll, HalvesWhenTheWaitOutlastsTheMaximumAndStopsBelowTheInitialWindow)
{
    AdaptivePoll poll(32us);
    for (int i = 0; i < 10; ++i)
        poll.record(31us);
    ASSERT_EQ(poll.window(), 32us);
    expect_windows(poll, {
                             { 1ms, 16us },
                             { 1ms, 8us },
                             { 1ms, 4us },
                             { 1ms, 2us },
                             { 1ms, 0ns }, // below the initial window polling stops
                             { 1ms, 0ns },
                         });
}

TEST(AdaptivePoll, ANegativeMaximumMeansNoPolling)
{
    AdaptivePoll poll(-5ns);
    EXPECT_EQ(poll.maximum(), 0ns);
    expect_windows(poll, { { 0ns, 0ns }, { 1us, 0ns } });
}
