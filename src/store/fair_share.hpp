// Who gets the next claimed items: max-min fairness across users, then across
// each user's jobs, over what this node's engine holds on the network (queued
// for a transfer or downloading) plus what it is about to take.
//
// `SlotLoad::capacity` is the level the engine should hold in all (the scheduler's
// network buffer, ~2x -j). Its max-min split over the users with work (a
// user's demand: what they hold plus their queued items) is each user's
// target; a user's target is split the same way over their jobs. A job is
// given what lifts it to its target, never more, and never more than it has
// queued. So a job whose items take long (a slow host) and pile up in the
// engine gets nothing more until the others hold as much, a newcomer (user,
// or another job of a user) gets its share at once even when the buffer is
// full (what the others hold beyond their targets is not taken back: at most
// one buffer more), and a job alone takes all of it. Ties go round-robin, starting after the user
// (and, per user, the job) served last. A user's share does not grow with how many jobs they
// submit. Pure logic over the counts a backend read and the load the scheduler reports; the cursor
// carries the turn from one claim to the next.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <unordered_map>
#include <vector>

#include "core/max_min.hpp"
#include "core/records.hpp"

namespace litchi {

struct FairnessCursor {
    UserId last_user = 0;                        // the user served last
    std::unordered_map<UserId, JobId> last_job;  // per user, the job served last
};

struct RunnableJob {
    JobId job = 0;
    std::int64_t queued = 0;  // items it could give
};

// What this node's engine holds now, per user and job (jobs no longer
// runnable included: their items still hold the network), and the level it
// should hold in all.
struct SlotLoad {
    std::map<UserId, std::map<JobId, std::int64_t>> held;
    // The engine's network buffer; 0: the claim's `max` plus what is held
    // (the targets then add up to exactly `max` more).
    std::int64_t capacity = 0;

    void add(UserId user, JobId job, std::int64_t n) {
        if (n > 0) held[user][job] += n;
    }
};

// `runnable`: per user, their runnable jobs in id order. Returns how many
// items to take from each job (only jobs that get at least one), at most
// `max` in all, and advances the cursor.
std::map<JobId, std::int64_t> share_slots(
    const std::map<UserId, std::vector<RunnableJob>>& runnable, std::size_t max,
    FairnessCursor& cursor, const SlotLoad& load = {});

}  // namespace litchi
