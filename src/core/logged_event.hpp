// One entry of a shared event log (the PostgreSQL store keeps one per user):
// a change of a user's jobs or items, numbered in the same transaction as the
// change itself, so that every node of a cluster reads the same entries in
// the same order and turns entry S into the same protocol message.
//
// `pos` numbers every entry of a user (1, 2, 3...); `seq` numbers only the
// job-level ones (created, progress, deleted), which are what protocol v1's
// `seq` counts; item-level entries (item, items_reset) carry seq 0. One
// `item` entry holds the changes of one or more items of its job, in order
// (a claim or a batch of outcomes writes one entry per job, not per item).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "core/records.hpp"

namespace litchi {

enum class LoggedKind { job_created, progress, job_deleted, item, items_reset };

constexpr bool is_job_level(LoggedKind kind) {
    return kind == LoggedKind::job_created || kind == LoggedKind::progress ||
           kind == LoggedKind::job_deleted;
}

struct LoggedEvent {
    UserId user = 0;
    std::uint64_t pos = 0;
    std::uint64_t seq = 0;  // job-level entries only; 0 otherwise
    LoggedKind kind = LoggedKind::progress;
    JobId job = 0;
    TimeMs at = 0;  // when it was logged (retention)
    // job_created and progress: the job as clients must see it, rate and eta
    // included (computed once, by the writer, so every node shows the same).
    std::optional<JobSnapshot> snapshot;
    std::vector<ItemRecord> items;  // item only: one or more, in order
};

}  // namespace litchi
