// See log_follower.hpp.
#include "server/log_follower.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "store/store_error.hpp"

namespace litchi::server {

using Clock = std::chrono::steady_clock;

LogFollower::LogFollower(EventLog& log, events::EventHub& hub, LogFollowerOptions options,
                         LogFollowerHooks hooks)
    : log_(log), hub_(hub), options_(options), hooks_(std::move(hooks)) {}

LogFollower::~LogFollower() {
    stop();
}

void LogFollower::start() {
    thread_ = std::thread([this] { run(); });
}

void LogFollower::stop() {
    {
        std::lock_guard lock(mutex_);
        if (stopping_) return;
        stopping_ = true;
    }
    stop_cv_.notify_all();
    log_.interrupt_wait();
    if (thread_.joinable()) thread_.join();
}

void LogFollower::poke(UserId user) {
    {
        std::lock_guard lock(mutex_);
        poked_.insert(user);
    }
    log_.interrupt_wait();
}

void LogFollower::catch_up_now(UserId user) {
    for (const auto& [tracked, position] : hub_.log_positions()) {
        if (tracked == user) return catch_up(user, position);
    }
}

void LogFollower::catch_up(UserId user, std::uint64_t position) {
    for (;;) {
        auto entries = log_.read_after(user, position, options_.read_batch);
        if (entries.empty()) return;
        position = entries.back().pos;
        const bool more = entries.size() >= options_.read_batch;
        hub_.publish_logged(user, entries);
        if (!more) return;
    }
}

void LogFollower::flush_progress_if_due(bool activity) {
    // Coalesced progress is logged when its interval has passed. The log says
    // when the next one falls due; a notification means some node may have
    // left a new one pending, so look again within half an interval.
    const auto now = Clock::now();
    const bool due = next_flush_ && now >= *next_flush_;
    const bool recheck = activity && now - last_flush_ >= options_.progress_interval / 2;
    if (!due && !recheck) return;
    last_flush_ = now;
    auto next = log_.flush_progress();
    if (!next) {
        next_flush_.reset();
        return;
    }
    auto wait = std::chrono::milliseconds(std::max<std::int64_t>(0, *next - now_ms()));
    next_flush_ = now + wait;
}

bool LogFollower::backoff(std::chrono::milliseconds delay) {
    std::unique_lock lock(mutex_);
    stop_cv_.wait_for(lock, delay, [&] { return stopping_; });
    return !stopping_;
}

void LogFollower::run() {
    bool resync_all = true;  // the first pass reads every tracked user
    auto last_resync = Clock::now();
    std::chrono::milliseconds retry{100};
    bool reported_down = false;
    for (;;) {
        {
            std::lock_guard lock(mutex_);
            if (stopping_) return;
        }
        try {
            // Wait for a notification, but not past the next flush or resync.
            auto now = Clock::now();
            auto until = last_resync + options_.resync_every;
            if (next_flush_) until = std::min(until, *next_flush_);
            auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(until - now);
            {
                std::lock_guard lock(mutex_);
                if (!poked_.empty()) timeout = std::chrono::milliseconds(0);
            }
            LogWakeup wake = log_.wait_for_entries(std::max(timeout, std::chrono::milliseconds(0)));
            // First: a paused job's transfers on this node are wasted work
            // every moment they go on.
            if (!wake.stopped_jobs.empty() && hooks_.on_jobs_stopped)
                hooks_.on_jobs_stopped(wake.stopped_jobs);
            if (wake.resync) resync_all = true;
            if (Clock::now() - last_resync >= options_.resync_every) resync_all = true;

            std::set<UserId> users(wake.users.begin(), wake.users.end());
            {
                std::lock_guard lock(mutex_);
                users.insert(poked_.begin(), poked_.end());
                poked_.clear();
            }
            for (const auto& [user, position] : hub_.log_positions()) {
                if (resync_all || users.contains(user)) catch_up(user, position);
            }
            if (resync_all) last_resync = Clock::now();
            resync_all = false;

            const bool activity = !wake.users.empty();
            flush_progress_if_due(activity || wake.resync);
            if (Clock::now() - last_prune_ >= options_.prune_every) {
                last_prune_ = Clock::now();
                if (auto pruned = log_.prune(); pruned > 0)
                    spdlog::debug("event log: pruned {} entries past retention", pruned);
            }
            if ((activity || wake.resync) && hooks_.on_activity) hooks_.on_activity();

            if (reported_down) spdlog::info("event log: the database is reachable again");
            reported_down = false;
            healthy_.store(true, std::memory_order_relaxed);
            retry = std::chrono::milliseconds(100);
        } catch (const std::exception& e) {
            // Unreachable (StoreUnavailable) or anything unexpected: stay up,
            // back off, and re-read everything once it works again.
            healthy_.store(false, std::memory_order_relaxed);
            if (!reported_down) spdlog::warn("event log: {}; retrying with backoff", e.what());
            reported_down = true;
            resync_all = true;
            if (!backoff(retry)) return;
            retry = std::min(retry * 2, std::chrono::milliseconds(5000));
        }
    }
}

}  // namespace litchi::server
