// The two limits on POST /api/login.
//
// LoginRateLimiter, per client IP: a sliding window, at most N attempts in
// any window (--login-rate, --login-window: 10 in 60 s). Each attempt costs
// an argon2id hash, so this also caps the CPU one client can burn. Memory is
// bounded: at most `max_clients` addresses are tracked (--login-clients), and
// the stalest are dropped first.
//
// AccountLoginThrottle, per account name (what many source addresses guessing
// one password share): the first `free_failures` failed logins in a row cost
// nothing; after that each further attempt waits base * 2^(k) (k = failures
// beyond the free ones), capped at `max_delay`. The cap is the trade-off: a
// guesser gets one try per max_delay at most, and the owner is never made to
// wait longer than that after the guesser's last attempt (no lockout that an
// attacker can make permanent, no lockout at all once they stop). A success
// clears the count; so does a quiet spell of max_delay + window. Unknown names
// are counted the same way (no hint which names exist).
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
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

struct AccountThrottleLimits {
    int free_failures = 5;                  // --login-account-free
    std::chrono::seconds base_delay{1};     // --login-account-delay
    std::chrono::seconds max_delay{60};     // --login-account-max-delay
    std::chrono::seconds quiet_reset{120};  // count forgotten after this long without failures
    std::size_t max_accounts = 10'000;      // names remembered (the stalest are forgotten)
};

class AccountLoginThrottle {
  public:
    using Clock = std::chrono::steady_clock;

    explicit AccountLoginThrottle(AccountThrottleLimits limits);

    // Before checking a password: 0 when this attempt may go ahead (it is
    // then counted as in progress, so parallel guesses cannot all slip in
    // before the first failure is recorded), else the seconds to wait.
    long try_acquire(std::string_view account, Clock::time_point now = Clock::now());
    // The outcome of an attempt try_acquire allowed.
    void failed(std::string_view account, Clock::time_point now = Clock::now());
    void succeeded(std::string_view account);
    // An allowed attempt that ended without an answer (store error).
    void abandoned(std::string_view account);

    // The wait after `failures` failures in a row (0 within the free ones).
    Clock::duration delay_after(int failures) const;
    std::size_t tracked() const;

  private:
    struct Entry {
        int failures = 0;
        int pending = 0;  // allowed, outcome not yet known
        Clock::time_point next_allowed{};
        Clock::time_point last{};
    };
    static std::string key(std::string_view account);
    void evict(Clock::time_point now);

    AccountThrottleLimits limits_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, Entry> accounts_;
};

}  // namespace litchi::server
