// Cluster mode's side of live progress: feeds this node's event hub from the
// shared store's event log (store/event_log.hpp), so a watcher on any node
// sees every change any node made, with the seq the database assigned.
//
// One thread, one listening connection:
//   wait_for_entries (LISTEN, ids only) ──> for each notified user this node
//   tracks: read_after(the hub's position) ──> hub.publish_logged
//                                        └──> jobs stopped anywhere: on_jobs_stopped
// plus the cluster's housekeeping that is due on this node: logging coalesced
// progress when it falls due (flush_progress, which any node may do) and
// pruning entries past the retention window.
//
// Notifications are only hints. After a reconnect (missed notifications) and
// every `resync_every` anyway, every tracked user is read again from its
// position, so a lost NOTIFY costs latency, never an event. While the
// database is unreachable the follower backs off (100 ms doubling to 5 s),
// reports unhealthy (/healthz: degraded), and catches up when it is back.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "events/event_hub.hpp"
#include "store/event_log.hpp"

namespace litchi::server {

struct LogFollowerOptions {
    // Every tracked user is re-read this often even without a notification.
    std::chrono::milliseconds resync_every{std::chrono::seconds(5)};
    // The hub's progress interval: coalesced progress is flushed by then.
    std::chrono::milliseconds progress_interval{100};
    std::chrono::milliseconds prune_every{std::chrono::minutes(1)};
    std::size_t read_batch = 1000;  // entries per read
};

// What the follower tells the rest of the node. Both run on its thread.
struct LogFollowerHooks {
    // Other nodes changed something: the scheduler's feeder may have new
    // work to claim.
    std::function<void()> on_activity;
    // Jobs some node paused, cancelled or deleted while items of theirs were
    // in flight (LogWakeup::stopped_jobs): stop this node's transfers.
    std::function<void(const std::vector<JobId>&)> on_jobs_stopped;
};

class LogFollower {
  public:
    LogFollower(EventLog& log, events::EventHub& hub, LogFollowerOptions options,
                LogFollowerHooks hooks = {});
    ~LogFollower();  // stop()
    LogFollower(const LogFollower&) = delete;
    LogFollower& operator=(const LogFollower&) = delete;

    void start();
    void stop();  // idempotent

    // Read this user's log now (the hub just seeded it). Any thread.
    void poke(UserId user);
    // Read and publish this user's new entries on the calling thread, now
    // (a client named a job this node has not heard of yet). Any thread: a
    // concurrent catch-up publishes the same entries, which the hub skips.
    void catch_up_now(UserId user);

    // False while the log cannot be read (the database is unreachable).
    bool healthy() const { return healthy_.load(std::memory_order_relaxed); }

  private:
    void run();
    void catch_up(UserId user, std::uint64_t position);
    void flush_progress_if_due(bool activity);
    bool backoff(std::chrono::milliseconds delay);  // false when stopping

    EventLog& log_;
    events::EventHub& hub_;
    LogFollowerOptions options_;
    LogFollowerHooks hooks_;

    std::mutex mutex_;
    std::condition_variable stop_cv_;
    bool stopping_ = false;
    std::set<UserId> poked_;  // guarded by mutex_
    std::atomic<bool> healthy_{true};
    std::thread thread_;

    // Follower thread only.
    std::optional<std::chrono::steady_clock::time_point> next_flush_;
    std::chrono::steady_clock::time_point last_flush_{};
    std::chrono::steady_clock::time_point last_prune_{};
};

}  // namespace litchi::server
