// See rate_limiter.hpp.
#include "server/rate_limiter.hpp"

#include <algorithm>
#include <limits>

namespace litchi::server {

LoginRateLimiter::LoginRateLimiter(int attempts_per_window, std::chrono::seconds window,
                                   std::size_t max_clients)
    : limit_(std::max(attempts_per_window, 1)),
      window_(window),
      max_clients_(std::max<std::size_t>(max_clients, 1)) {}

long LoginRateLimiter::try_acquire(const std::string& client, Clock::time_point now) {
    std::lock_guard lock(mutex_);
    if (attempts_.size() >= max_clients_ && !attempts_.contains(client)) evict_stale(now);
    auto& times = attempts_[client];
    while (!times.empty() && now - times.front() >= window_) times.pop_front();
    if (static_cast<int>(times.size()) >= limit_) {
        auto wait = std::chrono::ceil<std::chrono::seconds>(times.front() + window_ - now).count();
        return std::max<long>(wait, 1);
    }
    times.push_back(now);
    return 0;
}

void LoginRateLimiter::evict_stale(Clock::time_point now) {
    // First drop clients whose window has passed; if every client is still
    // active, drop the one whose newest attempt is oldest.
    std::erase_if(attempts_, [&](const auto& entry) {
        return entry.second.empty() || now - entry.second.back() >= window_;
    });
    if (attempts_.size() < max_clients_) return;
    auto oldest = std::min_element(
        attempts_.begin(), attempts_.end(),
        [](const auto& a, const auto& b) { return a.second.back() < b.second.back(); });
    attempts_.erase(oldest);
}

AccountLoginThrottle::AccountLoginThrottle(AccountThrottleLimits limits) : limits_(limits) {
    limits_.free_failures = std::max(limits_.free_failures, 0);
    limits_.base_delay = std::max(limits_.base_delay, std::chrono::seconds(1));
    limits_.max_delay = std::max(limits_.max_delay, limits_.base_delay);
    limits_.max_accounts = std::max<std::size_t>(limits_.max_accounts, 1);
}

std::string AccountLoginThrottle::key(std::string_view account) {
    // Real names are at most 64 bytes; a longer text can name no account,
    // and keeping all of it would let a client spend our memory.
    return std::string(account.substr(0, 80));
}

AccountLoginThrottle::Clock::duration AccountLoginThrottle::delay_after(int failures) const {
    if (failures < limits_.free_failures) return Clock::duration::zero();
    int doublings = std::min(failures - limits_.free_failures, 30);
    auto delay = limits_.base_delay * (std::int64_t(1) << doublings);
    return std::min<Clock::duration>(delay, limits_.max_delay);
}

long AccountLoginThrottle::try_acquire(std::string_view account, Clock::time_point now) {
    std::lock_guard lock(mutex_);
    auto name = key(account);
    auto found = accounts_.find(name);
    if (found == accounts_.end()) {
        if (accounts_.size() >= limits_.max_accounts) evict(now);
        found = accounts_.emplace(std::move(name), Entry{}).first;
    }
    Entry& entry = found->second;
    if (entry.pending == 0 && now - entry.last >= limits_.max_delay + limits_.quiet_reset)
        entry.failures = 0;  // a quiet spell forgives
    if (now < entry.next_allowed) {
        auto wait = std::chrono::ceil<std::chrono::seconds>(entry.next_allowed - now).count();
        return std::max<long>(wait, 1);
    }
    // Counted as a failure until it is known not to be one.
    ++entry.pending;
    entry.last = now;
    auto delay = delay_after(entry.failures + entry.pending);
    if (delay > Clock::duration::zero()) entry.next_allowed = now + delay;
    return 0;
}

void AccountLoginThrottle::failed(std::string_view account, Clock::time_point now) {
    std::lock_guard lock(mutex_);
    auto found = accounts_.find(key(account));
    if (found == accounts_.end()) return;  // evicted meanwhile
    Entry& entry = found->second;
    if (entry.pending > 0) --entry.pending;
    if (entry.failures < std::numeric_limits<int>::max()) ++entry.failures;
    entry.last = now;
    auto delay = delay_after(entry.failures + entry.pending);
    if (delay > Clock::duration::zero())
        entry.next_allowed = std::max(entry.next_allowed, now + delay);
}

void AccountLoginThrottle::abandoned(std::string_view account) {
    std::lock_guard lock(mutex_);
    auto found = accounts_.find(key(account));
    if (found != accounts_.end() && found->second.pending > 0) --found->second.pending;
}

void AccountLoginThrottle::succeeded(std::string_view account) {
    std::lock_guard lock(mutex_);
    accounts_.erase(key(account));
}

std::size_t AccountLoginThrottle::tracked() const {
    std::lock_guard lock(mutex_);
    return accounts_.size();
}

void AccountLoginThrottle::evict(Clock::time_point now) {
    // Names nobody is guessing any more go first; if all are busy, the one
    // tried longest ago.
    std::erase_if(accounts_, [&](const auto& entry) {
        return entry.second.pending == 0 && now >= entry.second.next_allowed &&
               now - entry.second.last >= limits_.max_delay + limits_.quiet_reset;
    });
    if (accounts_.size() < limits_.max_accounts) return;
    auto oldest = std::min_element(
        accounts_.begin(), accounts_.end(),
        [](const auto& a, const auto& b) { return a.second.last < b.second.last; });
    accounts_.erase(oldest);
}

}  // namespace litchi::server
