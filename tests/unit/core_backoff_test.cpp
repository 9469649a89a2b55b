// Retry timing and the shared failure vocabulary.
#include <gtest/gtest.h>

#include "core/backoff.hpp"
#include "core/reason.hpp"

namespace litchi {
namespace {

using std::chrono::milliseconds;

TEST(BackoffTest, FullJitterStaysUnderTheExponentialCeiling) {
    BackoffPolicy p{milliseconds(100), milliseconds(5'000)};
    EXPECT_EQ(backoff_delay(p, 1, 0.0), milliseconds(0));
    EXPECT_EQ(backoff_delay(p, 1, 0.5), milliseconds(50));
    EXPECT_EQ(backoff_delay(p, 2, 0.5), milliseconds(100));
    EXPECT_EQ(backoff_delay(p, 3, 0.5), milliseconds(200));
    EXPECT_LT(backoff_delay(p, 4, 0.999999), milliseconds(800));
    // The cap holds however many attempts, and huge attempt numbers do not overflow.
    EXPECT_LE(backoff_delay(p, 20, 0.999999), milliseconds(5'000));
    EXPECT_LE(backoff_delay(p, 1'000'000, 0.999999), milliseconds(5'000));
    EXPECT_GE(backoff_delay(p, 1'000'000, 0.9), milliseconds(4'000));
    // Out-of-range randomness is clamped, attempt 0 treated as the first.
    EXPECT_EQ(backoff_delay(p, 0, -1.0), milliseconds(0));
    EXPECT_LT(backoff_delay(p, 1, 7.0), milliseconds(100));
}

TEST(BackoffTest, RetryAfterSeconds) {
    EXPECT_EQ(parse_retry_after_seconds("2"), std::chrono::seconds(2));
    EXPECT_EQ(parse_retry_after_seconds(" 120 \r\n"), std::chrono::seconds(120));
    EXPECT_FALSE(parse_retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT"));
    EXPECT_FALSE(parse_retry_after_seconds("-1"));
    EXPECT_FALSE(parse_retry_after_seconds(""));
    EXPECT_FALSE(parse_retry_after_seconds("1.5"));
}

TEST(ReasonTest, VocabularyRoundTripsAndTransienceIsNarrow) {
    const char* names[] = {"bad_url",
                           "dns",
                           "connect",
                           "tls",
                           "timeout",
                           "http",
                           "too_large",
                           "truncated",
                           "too_many_redirects",
                           "blocked_address",
                           "not_image",
                           "too_many_pixels",
                           "io",
                           "cancelled"};
    for (const char* n : names) {
        auto r = parse_failure_reason(n);
        ASSERT_TRUE(r) << n;
        EXPECT_EQ(to_string(*r), n);
    }
    EXPECT_FALSE(parse_failure_reason("oops"));
    EXPECT_TRUE(is_transient(FailureReason::connect, 0));
    EXPECT_TRUE(is_transient(FailureReason::timeout, 0));
    EXPECT_TRUE(is_transient(FailureReason::http, 503));
    EXPECT_TRUE(is_transient(FailureReason::http, 429));
    EXPECT_FALSE(is_transient(FailureReason::http, 404));
    EXPECT_FALSE(is_transient(FailureReason::http, 403));
    EXPECT_FALSE(is_transient(FailureReason::not_image, 200));
    EXPECT_FALSE(is_transient(FailureReason::blocked_address, 0));
    EXPECT_FALSE(is_transient(FailureReason::too_large, 0));
}

}  // namespace
}  // namespace litchi
