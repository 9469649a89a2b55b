// Every limit of the event hub, with its default. The server shows these in
// `litchi serve --help` next to the other limits; the hub refuses to start with
// values that would break its guarantees (see validate_event_limits).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace litchi::events {

struct EventLimits {
    // At most one `progress` message per job per interval; a change of a job's
    // `state` is never delayed. 100 ms keeps a bar smooth (10 frames/s) while
    // 5,000 completions/s cost each watcher at most 10 messages/s per job.
    std::chrono::milliseconds progress_interval{100};

    // Job-level events kept per user for `resume` and for watchers that read
    // behind. It is also each watcher's backlog bound: a watcher that falls
    // further behind than this is resynced by one `snapshot`.
    std::size_t replay_capacity = 1024;

    // Per-item events and subscription acknowledgements queued per watcher.
    // Over this, the oldest item events are dropped (the client sees a gap in
    // `iseq` and refetches the job's items).
    std::size_t side_queue_capacity = 1024;

    // Jobs one watcher may follow item by item at the same time.
    std::size_t max_item_subscriptions = 64;

    // Jobs a hello or snapshot lists at most: the unfinished ones first, then
    // the newest finished ones. A longer list is cut and says so ("truncated",
    // "total"). Bounds what each new watcher of a user with many jobs costs.
    std::size_t max_snapshot_jobs = 500;

    // How long a user's replay buffer outlives their last watcher. After that
    // the user's hub state is dropped and a late `resume` gets a snapshot.
    std::chrono::seconds idle_user_ttl{300};
};

// Empty when `limits` are usable, otherwise what is wrong with them.
std::string validate_event_limits(const EventLimits& limits);

}  // namespace litchi::events
