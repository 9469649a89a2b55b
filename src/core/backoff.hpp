// Retry timing: exponential backoff with full jitter (AWS architecture blog,
// "Exponential Backoff And Jitter"): sleep = random(0, min(cap, base * 2^attempt)).
// Full jitter spreads retries of a burst of failures instead of re-synchronising them.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace litchi {

struct BackoffPolicy {
    std::chrono::milliseconds base{250};
    std::chrono::milliseconds cap{30'000};
};

// `attempt` counts failures so far (1 after the first failure). `unit_random`
// is uniform in [0, 1): injected so the function is pure and testable.
std::chrono::milliseconds backoff_delay(const BackoffPolicy& policy, int attempt,
                                        double unit_random);

// Parses an HTTP Retry-After value given in seconds ("120"). HTTP-date forms
// return nullopt (the caller falls back to backoff). Negative or garbage: nullopt.
std::optional<std::chrono::seconds> parse_retry_after_seconds(std::string_view value);

}  // namespace litchi
