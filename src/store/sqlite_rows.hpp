// The SQLite job store's row mapping, shared by its files: the column lists
// and readers for jobs and items, and the rules both backends share: what an
// outcome does to an item and its job, and how a job's state settles from
// its counts.
#pragma once

#include <string>
#include <string_view>

#include "core/records.hpp"
#include "store/job_store.hpp"

namespace litchi {

class Statement;

namespace sqlite_rows {

extern const char* const kJobColumns;        // read_job reads a row selected with these
extern const char* const kItemColumns;       // read_item likewise
inline constexpr int kItemColumnCount = 14;  // columns in kItemColumns (extra ones follow)

JobSnapshot read_job(const Statement& stmt);
ItemRecord read_item(const Statement& stmt);

inline bool is_runnable(JobState state) {
    return state == JobState::queued || state == JobState::running;
}

// Anything that still holds work left becomes done once nothing is queued or
// active (failures included). Paused counts too: pausing the last few active
// items, which then finish, leaves nothing to resume.
inline void settle_state(JobSnapshot& job) {
    if ((is_runnable(job.state) || job.state == JobState::paused) && job.counts.queued == 0 &&
        job.counts.active == 0)
        job.state = JobState::done;
}

// What one outcome for an active item does to the item and to its job's
// counts, for both backends (the PostgreSQL store uses it too): done; back
// to queued when it was cancelled because its job was paused, not by the
// user's cancel (not counted as cancelled); otherwise failed or cancelled.
// Counts it in `summary` and returns the item's new state, which says which
// columns the caller writes.
ItemState apply_outcome(const ItemOutcome& result, ItemRecord& item, JobSnapshot& job,
                        ApplySummary& summary, TimeMs now);

bool is_sha256_hex(std::string_view text);

// The SQL condition (on an items row already known to be failed) that picks
// the items `which` selects; bad_url is never among them. Built from the
// fixed reason vocabulary only, no user text.
std::string retry_condition(const RetrySelection& which);

}  // namespace sqlite_rows
}  // namespace litchi
