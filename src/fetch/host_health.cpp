// Host health and per-host rate (see host_health.hpp for the rule).
#include "fetch/host_health.hpp"

#include <algorithm>
#include <cstdio>

namespace litchi {

bool is_host_failure(FailureReason reason, bool answered) {
    switch (reason) {
        case FailureReason::dns:
        case FailureReason::connect:
        case FailureReason::tls:
            return true;
        case FailureReason::timeout:
            return !answered;  // a slow body is the URL's problem, not the host's
        default:
            return false;
    }
}

HostHealth::Gate HostHealth::gate(Clock::time_point now) const {
    switch (state_) {
        case State::up:
            return Gate::open;
        case State::probing:
            return Gate::wait;
        case State::down:
            return now < until_ ? Gate::down : Gate::probe;
    }
    return Gate::open;
}

void HostHealth::on_answer() {
    state_ = State::up;
    in_row_ = 0;
    cooloff_ = std::chrono::milliseconds(0);
    reason_ = FailureReason::none;
    last_detail_.clear();
}

bool HostHealth::on_failure(FailureReason reason, const std::string& detail, Clock::time_point now,
                            bool from_probe) {
    if (state_ == State::probing && !from_probe) return false;  // started before it went down
    ++in_row_;
    reason_ = reason;
    last_detail_ = detail;
    switch (state_) {
        case State::up:
            if (in_row_ < std::max(1, policy_.failures)) return false;
            cooloff_ = std::min(policy_.cooloff, policy_.cooloff_cap);
            break;
        case State::probing:
            cooloff_ = std::min(cooloff_ * 2, policy_.cooloff_cap);
            if (cooloff_.count() == 0) cooloff_ = std::min(policy_.cooloff, policy_.cooloff_cap);
            break;
        case State::down:
            // A transfer started before the host went down: it says nothing
            // new, and must not stretch the cool-off.
            return false;
    }
    state_ = State::down;
    until_ = now + cooloff_;
    return true;
}

std::string HostHealth::down_detail(Clock::time_point now) const {
    auto left = std::chrono::duration<double>(std::max(until_ - now, Clock::duration::zero()));
    char tail[64];
    std::snprintf(tail, sizeof tail, "); next probe in %.1f s", left.count());
    return "host down: " + std::to_string(in_row_) + " failures in a row (last: " + last_detail_ +
           tail;
}

std::optional<RateBucket::Clock::time_point> RateBucket::take(double rate, Clock::time_point now) {
    if (rate <= 0) return std::nullopt;
    if (now < next_) return next_;
    const auto spacing =
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / rate));
    // The bucket holds one token: it refills from the moment it is taken, so
    // idle time banks nothing and starts are always >= 1/rate apart.
    next_ = now + spacing;
    return std::nullopt;
}

}  // namespace litchi
