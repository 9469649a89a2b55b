// See rate_estimator.hpp.
#include "jobs/rate_estimator.hpp"

#include <cmath>

namespace litchi {

RateEstimator::RateEstimator(std::chrono::milliseconds window,
                             std::function<Clock::time_point()> now)
    : now_(now ? std::move(now) : [] { return Clock::now(); }), window_(window) {}

void RateEstimator::set_window(std::chrono::milliseconds window) {
    std::lock_guard lock(mutex_);
    window_ = window;
}

void RateEstimator::observe(const JobSnapshot& job) {
    std::lock_guard lock(mutex_);
    // Only running time counts: a paused (or not yet started) job keeps no
    // samples, so after Resume the rate is measured from the moment it ran
    // again, not across the pause (which read as "0.4/s, ETA 11 h").
    if (job.state != JobState::running) {
        samples_.erase(job.id);
        return;
    }
    auto& samples = samples_[job.id];
    auto now = now_();
    samples.push_back({now, job.counts.done + job.counts.failed});
    prune(samples, now);
}

void RateEstimator::forget(JobId job) {
    std::lock_guard lock(mutex_);
    samples_.erase(job);
}

void RateEstimator::prune(std::deque<Sample>& samples, Clock::time_point now) const {
    while (samples.size() > 1 && samples[1].at <= now - window_) samples.pop_front();
    // Bounded however fast results come: thin out to at most 64 samples.
    while (samples.size() > 64) samples.erase(samples.begin() + 1);
}

void RateEstimator::fill(JobSnapshot& job) {
    job.rate = 0;
    job.eta.reset();
    if (job.state == JobState::done) {
        job.eta = 0.0;
        return;
    }
    {
        std::lock_guard lock(mutex_);
        auto it = samples_.find(job.id);
        if (it != samples_.end()) {
            auto now = now_();
            prune(it->second, now);
            const auto& samples = it->second;
            if (samples.size() >= 2) {
                double seconds = std::chrono::duration<double>(now - samples.front().at).count();
                auto finished = samples.back().finished - samples.front().finished;
                // A fraction of a second is too short to call a rate.
                if (seconds >= 0.2 && finished > 0) job.rate = finished / seconds;
            }
        }
    }
    if (job.state == JobState::running && job.rate > 0)
        job.eta = std::ceil(static_cast<double>(job.counts.queued + job.counts.active) / job.rate);
    job.rate = shown_rate(job.rate);
}

}  // namespace litchi
