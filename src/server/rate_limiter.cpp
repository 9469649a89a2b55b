// See rate_limiter.hpp.
#include "server/rate_limiter.hpp"

#include <algorithm>

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

}  // namespace litchi::server
