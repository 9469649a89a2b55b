// Per-client-IP sliding-window limit for POST /api/login: at most N attempts
// in any window (--login-rate, --login-window: 10 in 60 s). Each attempt costs
// an argon2id hash, so this also caps the CPU one client can burn. Memory is
// bounded: at most `max_clients` addresses are tracked (--login-clients), and
// the stalest are dropped first.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>

namespace litchi::server {

class LoginRateLimiter {
  public:
    using Clock = std::chrono::steady_clock;

    LoginRateLimiter(int attempts_per_window, std::chrono::seconds window, std::size_t max_clients);

    // Records an attempt and returns 0 when allowed; otherwise the seconds
    // until the oldest attempt in the window expires (for Retry-After).
    long try_acquire(const std::string& client, Clock::time_point now = Clock::now());

  private:
    void evict_stale(Clock::time_point now);

    int limit_;
    std::chrono::seconds window_;
    std::size_t max_clients_;
    std::mutex mutex_;
    std::unordered_map<std::string, std::deque<Clock::time_point>> attempts_;
};

}  // namespace litchi::server
