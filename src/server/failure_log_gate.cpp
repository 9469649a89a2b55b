// See failure_log_gate.hpp.
#include "server/failure_log_gate.hpp"

namespace litchi::server {

std::uint64_t FailureLogGate::record(Clock::time_point now) {
    ++pending_;
    if (reported_once_ && now - last_line_ < interval_) return 0;
    reported_once_ = true;
    last_line_ = now;
    auto count = pending_;
    pending_ = 0;
    return count;
}

}  // namespace litchi::server
