// Who gets the next free download slots: round-robin across users, then
// across each user's runnable jobs, one slot at a time, starting after the
// user (and, per user, the job) served last. A user's share does not grow with
// how many jobs they submit, and a job never gets more slots than it has
// queued items. Pure logic over the counts a backend read; the cursor carries
// the turn from one claim to the next.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <unordered_map>
#include <vector>

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

// `runnable`: per user, their runnable jobs in id order. Returns how many
// items to take from each job (only jobs that get at least one), at most
// `max` in all, and advances the cursor.
std::map<JobId, std::int64_t> share_slots(
    const std::map<UserId, std::vector<RunnableJob>>& runnable, std::size_t max,
    FairnessCursor& cursor);

}  // namespace litchi
