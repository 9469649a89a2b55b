// The durable event log of a shared store (PostgreSQL): how every node of a
// cluster learns about changes other nodes made, and how `resume` works on
// any node and after every node restarted.
//
// The store writes entries (core/logged_event.hpp) in the same transaction as
// the change they describe, numbering them per user with counters kept on the
// user's row (pos for every entry, seq for job-level ones), and sends a
// NOTIFY carrying only the user id (ids only: the payload limit is 8,000
// bytes and the notification queue is shared by the whole database).
// Readers never trust a notification's content; they read the log after the
// last position they hold, so a lost or merged notification costs latency,
// never an event.
//
// Progress is coalesced in the database, cluster-wide: a commit that changes
// a job's counts logs a `progress` entry only if the job's last one is at
// least progress_interval old (or the state changed); otherwise it marks the
// job pending, and flush_progress() (any node may run it) logs the pending
// jobs whose interval has passed.
//
// Entries older than the retention window are pruned; a client resuming from
// before the oldest entry gets a snapshot. The epoch is the database's: it
// changes only when the log's history was lost (a new database).
//
// Thread-safe. Every method throws StoreUnavailable when the database cannot
// be reached (callers retry with backoff).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/logged_event.hpp"

namespace litchi {

// A user's state as of one point of their log, read in one transaction.
struct UserLogState {
    std::vector<JobSnapshot> jobs;  // newest first, as list_jobs
    std::uint64_t pos = 0;          // the user's last log position
    std::uint64_t seq = 0;          // the user's last job-level seq
    // The user's most recent job-level entries (up to the asked-for number),
    // oldest first, the last one being `seq` (fewer after pruning).
    std::vector<LoggedEvent> recent;
};

struct LogWakeup {
    std::vector<UserId> users;  // users with new entries (may repeat, may be spurious)
    // Jobs paused, cancelled or deleted (on any node) while items of theirs
    // were in flight: stop downloading them. Hints too: a lost one is found
    // by JobStore::released_claims.
    std::vector<JobId> stopped_jobs;
    // The listening connection was lost and re-established (or this is the
    // first wait): notifications may have been missed, re-read every user.
    bool resync = false;
};

class EventLog {
  public:
    virtual ~EventLog() = default;

    // The log's epoch (stable for the life of the database).
    virtual std::string epoch() = 0;

    virtual UserLogState user_state(UserId user, std::size_t recent_limit) = 0;

    // The user's entries with pos > after, oldest first, at most `limit`.
    virtual std::vector<LoggedEvent> read_after(UserId user, std::uint64_t after,
                                                std::size_t limit) = 0;

    // Logs the coalesced progress entries that are due now. Returns when the
    // next pending one falls due (nullopt: none pending).
    virtual std::optional<TimeMs> flush_progress() = 0;

    // Deletes entries older than the retention window; returns how many.
    virtual std::int64_t prune() = 0;

    // Waits up to `timeout` for notifications on a connection of its own (one
    // waiter at a time). Reconnects by itself when the connection was lost,
    // then returns resync = true; throws StoreUnavailable while the database
    // stays unreachable.
    virtual LogWakeup wait_for_entries(std::chrono::milliseconds timeout) = 0;
    // Makes a wait in progress return at once (shutdown). Thread-safe.
    virtual void interrupt_wait() = 0;
};

}  // namespace litchi
