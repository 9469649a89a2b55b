// At most one log line per interval for a failure that can repeat thousands
// of times a second (accept() with no file descriptors left): the first
// failure is reported at once, later ones are counted and reported with the
// next line that is due. A full disk of log lines must not be what running
// out of descriptors costs.
#pragma once

#include <chrono>
#include <cstdint>

namespace litchi::server {

class FailureLogGate {
  public:
    using Clock = std::chrono::steady_clock;

    explicit FailureLogGate(Clock::duration interval) : interval_(interval) {}

    // Counts one failure at `now`. Returns how many failures the line due now
    // reports (this one and those held back since the last line), or 0 when
    // no line is due yet.
    std::uint64_t record(Clock::time_point now);

    // Failures held back since the last line (a success may report them).
    std::uint64_t pending() const { return pending_; }
    // Forgets the run: the next failure is reported at once.
    void reset() {
        pending_ = 0;
        reported_once_ = false;
    }

  private:
    Clock::duration interval_;
    Clock::time_point last_line_{};
    bool reported_once_ = false;
    std::uint64_t pending_ = 0;
};

}  // namespace litchi::server
