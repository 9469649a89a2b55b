// Host health and per-host rate: the state machines of host_health.hpp on a
// clock the test moves by hand.
#include <gtest/gtest.h>

#include "fetch/host_health.hpp"

namespace litchi {
namespace {

using namespace std::chrono_literals;
using Gate = HostHealth::Gate;
using Clock = HostHealth::Clock;

const HostHealthPolicy kPolicy{3, 1000ms, 4000ms};

TEST(HostHealthTest, WhatCountsAsAHostFailure) {
    EXPECT_TRUE(is_host_failure(FailureReason::connect, false));
    EXPECT_TRUE(is_host_failure(FailureReason::dns, false));
    EXPECT_TRUE(is_host_failure(FailureReason::tls, false));
    EXPECT_TRUE(is_host_failure(FailureReason::timeout, false));
    EXPECT_FALSE(is_host_failure(FailureReason::timeout, true));  // slow body: the URL's
    EXPECT_FALSE(is_host_failure(FailureReason::http, true));
    EXPECT_FALSE(is_host_failure(FailureReason::truncated, true));
    EXPECT_FALSE(is_host_failure(FailureReason::blocked_address, false));  // policy, not health
    EXPECT_FALSE(is_host_failure(FailureReason::not_image, true));
}

TEST(HostHealthTest, GoesDownAfterThresholdFailuresInARow) {
    HostHealth h(kPolicy);
    auto t0 = Clock::time_point{} + 100s;
    EXPECT_EQ(h.gate(t0), Gate::open);
    EXPECT_FALSE(h.on_failure(FailureReason::connect, "Connection refused", t0));
    EXPECT_FALSE(h.on_failure(FailureReason::connect, "Connection refused", t0));
    EXPECT_EQ(h.gate(t0), Gate::open);
    EXPECT_TRUE(h.on_failure(FailureReason::connect, "Connection refused", t0));
    EXPECT_TRUE(h.down());
    EXPECT_EQ(h.reason(), FailureReason::connect);
    EXPECT_EQ(h.gate(t0), Gate::down);
    EXPECT_EQ(h.gate(t0 + 999ms), Gate::down);
    EXPECT_EQ(h.down_until(), t0 + 1000ms);
    auto detail = h.down_detail(t0 + 500ms);
    EXPECT_NE(detail.find("3 failures in a row"), std::string::npos) << detail;
    EXPECT_NE(detail.find("Connection refused"), std::string::npos) << detail;
    EXPECT_NE(detail.find("0.5 s"), std::string::npos) << detail;
}

TEST(HostHealthTest, AnAnswerClearsTheCount) {
    HostHealth h(kPolicy);
    auto t0 = Clock::time_point{} + 100s;
    h.on_failure(FailureReason::timeout, "timed out", t0);
    h.on_failure(FailureReason::timeout, "timed out", t0);
    h.on_answer();  // an HTTP 404 is an answer too
    EXPECT_EQ(h.failures_in_row(), 0);
    EXPECT_FALSE(h.on_failure(FailureReason::timeout, "timed out", t0));
    EXPECT_FALSE(h.on_failure(FailureReason::timeout, "timed out", t0));
    EXPECT_EQ(h.gate(t0), Gate::open);
}

TEST(HostHealthTest, LateFailuresOfTransfersInFlightDoNotStretchTheCoolOff) {
    HostHealth h(kPolicy);
    auto t0 = Clock::time_point{} + 100s;
    for (int i = 0; i < 3; ++i) h.on_failure(FailureReason::connect, "refused", t0);
    EXPECT_FALSE(h.on_failure(FailureReason::connect, "refused", t0 + 900ms));
    EXPECT_EQ(h.down_until(), t0 + 1000ms);
}

TEST(HostHealthTest, OneProbeAfterTheCoolOffAndTheCoolOffDoublesUpToTheCap) {
    HostHealth h(kPolicy);
    auto now = Clock::time_point{} + 100s;
    for (int i = 0; i < 3; ++i) h.on_failure(FailureReason::connect, "refused", now);
    std::chrono::milliseconds expected[] = {1000ms, 2000ms, 4000ms, 4000ms, 4000ms};
    for (auto cooloff : expected) {
        EXPECT_EQ(h.cooloff(), cooloff);
        EXPECT_EQ(h.gate(now + cooloff - 1ms), Gate::down);
        now += cooloff;
        ASSERT_EQ(h.gate(now), Gate::probe);
        h.begin_probe();
        EXPECT_EQ(h.gate(now), Gate::wait);  // nobody else while the probe is out
        EXPECT_EQ(h.gate(now + 1h), Gate::wait);
        // A transfer that started before the host went down says nothing.
        EXPECT_FALSE(h.on_failure(FailureReason::connect, "refused", now));
        EXPECT_EQ(h.gate(now), Gate::wait);
        EXPECT_TRUE(h.on_failure(FailureReason::connect, "refused", now, true));  // down again
    }
    // The host comes back: the probe's answer opens it, and the next time it
    // fails it gets the threshold and the first cool-off again.
    now += h.cooloff();
    ASSERT_EQ(h.gate(now), Gate::probe);
    h.begin_probe();
    h.on_answer();
    EXPECT_FALSE(h.down());
    EXPECT_EQ(h.gate(now), Gate::open);
    EXPECT_FALSE(h.on_failure(FailureReason::connect, "refused", now));
    EXPECT_FALSE(h.on_failure(FailureReason::connect, "refused", now));
    EXPECT_TRUE(h.on_failure(FailureReason::connect, "refused", now));
    EXPECT_EQ(h.cooloff(), 1000ms);
}

TEST(HostHealthTest, ALostProbeLetsTheNextTransferProbe) {
    HostHealth h(kPolicy);
    auto now = Clock::time_point{} + 100s;
    for (int i = 0; i < 3; ++i) h.on_failure(FailureReason::connect, "refused", now);
    now += 1s;
    ASSERT_EQ(h.gate(now), Gate::probe);
    h.begin_probe();
    h.on_probe_lost();  // e.g. the item was cancelled
    EXPECT_EQ(h.gate(now), Gate::probe);
    EXPECT_EQ(h.cooloff(), 1000ms);
}

TEST(RateBucketTest, SpacesStartsAtLeastOneOverRateApartWithoutBursts) {
    RateBucket b;
    auto now = Clock::time_point{} + 100s;
    EXPECT_FALSE(b.take(4.0, now));  // a token is there at first
    auto next = b.take(4.0, now);
    ASSERT_TRUE(next);
    EXPECT_EQ(*next, now + 250ms);
    EXPECT_TRUE(b.take(4.0, now + 249ms));
    EXPECT_FALSE(b.take(4.0, now + 250ms));
    // A long idle spell banks one token, not ten.
    now += 10s;
    EXPECT_FALSE(b.take(4.0, now));
    EXPECT_TRUE(b.take(4.0, now + 1ms));
}

TEST(RateBucketTest, NoRateNoLimit) {
    RateBucket b;
    auto now = Clock::time_point{} + 100s;
    for (int i = 0; i < 100; ++i) EXPECT_FALSE(b.take(0.0, now));
}

}  // namespace
}  // namespace litchi
