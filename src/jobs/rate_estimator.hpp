// A job's `rate` (items finished per second, recently) and `eta`, the two
// numbers of a job that are not rows: the store keeps counts, this keeps a
// short history of them per job and derives the rest.
//
// Each observed change of a job adds a (time, done + failed) sample; the rate
// is the growth between the oldest sample at or just before the window's start
// and the newest one. Only time the job spent running counts: a job that is
// paused, queued, done, cancelled or deleted holds no samples, so right after
// Resume the rate covers the seconds since it ran again (never the pause).
// Samples per job are bounded (thinned to 64) however fast results come.
//
// The rate is rounded the way the API writes it (one decimal below 10/s,
// whole from 10/s up), so two snapshots that would read the same on the wire
// compare equal, and the event hub does not send a change nobody could see.
//
// Thread-safe: the store's change delivery records, API reads fill in.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <mutex>
#include <unordered_map>

#include "core/records.hpp"

namespace litchi {

class RateEstimator {
  public:
    using Clock = std::chrono::steady_clock;

    // `window`: how far back the rate looks. `now`: injectable for tests.
    explicit RateEstimator(std::chrono::milliseconds window = std::chrono::seconds(10),
                           std::function<Clock::time_point()> now = {});

    void set_window(std::chrono::milliseconds window);

    // A committed change of the job's counts or state.
    void observe(const JobSnapshot& job);
    // The job is gone.
    void forget(JobId job);

    // Sets job.rate and job.eta from the samples (0 and none when unknown;
    // eta 0 when done).
    void fill(JobSnapshot& job);

    // The wire's rounding (core/records.hpp), kept here for readers of this class.
    static double round_rate(double items_per_second) { return shown_rate(items_per_second); }

  private:
    struct Sample {
        Clock::time_point at;
        std::int64_t finished;
    };
    void prune(std::deque<Sample>& samples, Clock::time_point now) const;

    std::function<Clock::time_point()> now_;
    std::mutex mutex_;
    std::chrono::milliseconds window_;
    std::unordered_map<JobId, std::deque<Sample>> samples_;
};

}  // namespace litchi
