// What the engine knows about one origin (scheme, host, port) beyond its
// queue: whether it answers (HostHealth), whether it asked us to stay away
// (a Retry-After pause), and how fast we may ask it (RateBucket). Pure state
// machines over a time the caller passes in, so tests drive them on a clock
// of their own; only the network thread touches them.
//
// The host-health rule (docs/architecture.md, "Host health"):
//   - A transfer that got no HTTP answer because of the host (dns, connect,
//     tls, or a timeout before any response header) is a host failure; any
//     HTTP answer, whatever its status, is proof of life and clears the count.
//   - `failures` host failures in a row take the host down for a cool-off of
//     `cooloff`. While down, its queued items and any new ones fail at once
//     with the reason of the last failure, without a request.
//   - When the cool-off is over, the next item is the one probe (the only
//     transfer to the host; the rest wait for it). An answer brings the host
//     back up (and the cool-off back to `cooloff`); a failure takes it down
//     again for twice the last cool-off, at most `cooloff_cap`.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "core/reason.hpp"

namespace litchi {

struct HostHealthPolicy {
    int failures = 3;                                // host failures in a row that take it down
    std::chrono::milliseconds cooloff{5'000};        // first cool-off
    std::chrono::milliseconds cooloff_cap{300'000};  // cool-offs double up to this
};

// Does this reason say the host (not this URL) is not answering?
// `answered`: the transfer got at least a response status line.
bool is_host_failure(FailureReason reason, bool answered);

class HostHealth {
  public:
    using Clock = std::chrono::steady_clock;

    // What the next transfer to the host may do now.
    enum class Gate {
        open,   // start it
        probe,  // start it as the probe (call begin_probe); no other until it ends
        wait,   // the probe is in flight: keep it queued
        down,   // fail it now with reason()/detail()
    };

    explicit HostHealth(HostHealthPolicy policy = {}) : policy_(policy) {}

    Gate gate(Clock::time_point now) const;
    void begin_probe() { state_ = State::probing; }

    // A transfer to the host got an HTTP answer.
    void on_answer();
    // A transfer to the host ended with a host failure. True when this
    // failure took the host down (from up, or a failed probe). While the probe
    // is out, only the probe's own failure (`from_probe`) counts.
    bool on_failure(FailureReason reason, const std::string& detail, Clock::time_point now,
                    bool from_probe = false);
    // The probe ended without telling (cancelled, refused by policy): the
    // next transfer probes instead.
    void on_probe_lost() {
        if (state_ == State::probing) state_ = State::down;
    }
    bool probing() const { return state_ == State::probing; }

    bool down() const { return state_ != State::up; }
    bool healthy_and_quiet() const { return state_ == State::up && in_row_ == 0; }
    int failures_in_row() const { return in_row_; }
    Clock::time_point down_until() const { return until_; }
    std::chrono::milliseconds cooloff() const { return cooloff_; }
    FailureReason reason() const { return reason_; }
    // "host down: 3 failures in a row (last: Connection refused); next probe in 4.8 s"
    std::string down_detail(Clock::time_point now) const;

  private:
    enum class State { up, down, probing };
    HostHealthPolicy policy_;
    State state_ = State::up;
    int in_row_ = 0;
    std::chrono::milliseconds cooloff_{0};  // the current one, once down
    Clock::time_point until_{};
    FailureReason reason_ = FailureReason::none;
    std::string last_detail_;
};

// --per-host-rate: a token bucket holding at most one token (requests are
// spaced at least 1/rate apart, no bursts). rate <= 0: no limit.
class RateBucket {
  public:
    using Clock = std::chrono::steady_clock;

    // Takes a token if there is one (nullopt) or says when there will be.
    std::optional<Clock::time_point> take(double rate, Clock::time_point now);

  private:
    Clock::time_point next_{};  // when the next token is there
};

}  // namespace litchi
