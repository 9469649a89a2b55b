// The rate estimator with an injected clock: a job's rate is its growth over
// the window, rounded as the API writes it, an ETA follows while it runs, and
// finished or forgotten jobs hold nothing.
#include <gtest/gtest.h>

#include <cmath>

#include "jobs/rate_estimator.hpp"

namespace litchi {
namespace {

using namespace std::chrono_literals;

struct FakeClock {
    RateEstimator::Clock::time_point now = RateEstimator::Clock::time_point{} + 1000h;
};

JobSnapshot job_at(std::int64_t finished, std::int64_t total, JobState state = JobState::running) {
    JobSnapshot job;
    job.id = 1;
    job.state = state;
    job.counts.total = total;
    job.counts.done = finished;
    job.counts.queued = total - finished;
    return job;
}

TEST(JobsRate, RateIsGrowthOverTheWindowAndEtaFollows) {
    FakeClock clock;
    RateEstimator rates(5s, [&] { return clock.now; });
    rates.observe(job_at(0, 100));
    clock.now += 2s;
    rates.observe(job_at(20, 100));
    JobSnapshot job = job_at(20, 100);
    rates.fill(job);
    EXPECT_DOUBLE_EQ(job.rate, 10);  // 20 items in 2 s
    ASSERT_TRUE(job.eta);
    EXPECT_DOUBLE_EQ(*job.eta, 8);  // 80 left at 10/s
}

TEST(JobsRate, OldSamplesLeaveTheWindow) {
    FakeClock clock;
    RateEstimator rates(5s, [&] { return clock.now; });
    rates.observe(job_at(0, 1000));
    clock.now += 1s;
    rates.observe(job_at(100, 1000));  // a fast start...
    clock.now += 10s;
    rates.observe(job_at(110, 1000));  // ...then slow
    clock.now += 4s;
    rates.observe(job_at(118, 1000));
    JobSnapshot job = job_at(118, 1000);
    rates.fill(job);
    // The window (10 s .. 15 s) keeps the last sample at or before its start
    // (the one at 1 s): 18 items in 14 s, not the fast start's 118 in 15 s.
    EXPECT_DOUBLE_EQ(job.rate, 1.3);
}

TEST(JobsRate, AfterResumeOnlyRunningTimeCounts) {
    FakeClock clock;
    RateEstimator rates(10s, [&] { return clock.now; });
    rates.observe(job_at(0, 20000));
    for (int second = 1; second <= 5; ++second) {
        clock.now += 1s;
        rates.observe(job_at(second * 20, 20000));  // 20/s
    }
    rates.observe(job_at(100, 20000, JobState::paused));
    JobSnapshot paused = job_at(100, 20000, JobState::paused);
    rates.fill(paused);
    EXPECT_EQ(paused.rate, 0) << "nothing runs while paused";
    EXPECT_FALSE(paused.eta);

    clock.now += 1h;                    // a long pause
    rates.observe(job_at(100, 20000));  // Resume
    clock.now += 1s;
    rates.observe(job_at(120, 20000));
    clock.now += 1s;
    rates.observe(job_at(140, 20000));
    JobSnapshot job = job_at(140, 20000);
    rates.fill(job);
    // 40 items in the 2 s since Resume: not 140 over an hour and 5 s (0.04/s).
    EXPECT_DOUBLE_EQ(job.rate, 20);
    ASSERT_TRUE(job.eta);
    EXPECT_DOUBLE_EQ(*job.eta, std::ceil((20000.0 - 140) / 20));
}

TEST(JobsRate, RoundedAsTheWireWritesIt) {
    EXPECT_DOUBLE_EQ(RateEstimator::round_rate(2.34), 2.3);
    EXPECT_DOUBLE_EQ(RateEstimator::round_rate(12.6), 13);
    EXPECT_DOUBLE_EQ(RateEstimator::round_rate(0.04), 0);
    EXPECT_DOUBLE_EQ(RateEstimator::round_rate(-1), 0);
}

TEST(JobsRate, TooShortToTellAndFinishedJobs) {
    FakeClock clock;
    RateEstimator rates(5s, [&] { return clock.now; });
    rates.observe(job_at(0, 10));
    clock.now += 100ms;
    rates.observe(job_at(5, 10));
    JobSnapshot job = job_at(5, 10);
    rates.fill(job);
    EXPECT_EQ(job.rate, 0) << "a tenth of a second is no rate";
    EXPECT_FALSE(job.eta);

    JobSnapshot done = job_at(10, 10, JobState::done);
    rates.observe(done);
    rates.fill(done);
    EXPECT_EQ(done.rate, 0);
    ASSERT_TRUE(done.eta);
    EXPECT_EQ(*done.eta, 0);

    JobSnapshot paused = job_at(5, 10, JobState::paused);
    rates.fill(paused);
    EXPECT_FALSE(paused.eta) << "no ETA while nothing runs";
}

TEST(JobsRate, ForgottenJobsStartOver) {
    FakeClock clock;
    RateEstimator rates(5s, [&] { return clock.now; });
    rates.observe(job_at(0, 100));
    clock.now += 1s;
    rates.observe(job_at(50, 100));
    rates.forget(1);
    JobSnapshot job = job_at(50, 100);
    rates.fill(job);
    EXPECT_EQ(job.rate, 0);
}

}  // namespace
}  // namespace litchi
