// The PostgreSQL job store's inside, shared by its two files: pg_job_store.cpp
// (rows, the event-log writer, creation, reads, claims, outcomes, leases) and
// pg_job_actions.cpp (the user's state changes, recovery, progress flushing).
//
// Every write runs in one pg::Pool::transaction and takes its row locks in one
// global order, so that transactions of different nodes do not deadlock:
// items (in id order), then jobs (FOR UPDATE, in id order), then users (the
// event counters, in id order, taken by LogWriter::write just before the
// commit). Items come first so that the hot paths, claims and outcomes, do
// their item work (most of their time) before they lock the job row every
// one of them changes: a job's row is held only for the counter update, the
// log entries and the commit, and several nodes (or feeders) working on one
// job overlap instead of queueing behind each other for the whole
// transaction. Job counts are therefore changed by deltas, applied to the
// row as read once locked. Writers that change items without locking them
// first (retry: failed items; pause/resume: none) only touch item states no
// claim or outcome holds, so they may lock the job first.
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/logged_event.hpp"
#include "store/fair_share.hpp"
#include "store/pg_connection.hpp"
#include "store/pg_job_store.hpp"
#include "store/pg_rows.hpp"
#include "store/sqlite_rows.hpp"  // settle_state, is_runnable: one rule for both backends

namespace litchi {

// A job row with the columns only the store sees: the rate estimator's
// reference point and the progress coalescing state.
struct PgJobRow {
    JobSnapshot job;
    JobState before = JobState::queued;  // the state when read (state change => log at once)
    TimeMs rate_at = 0;
    std::int64_t rate_finished = 0;
    TimeMs progress_at = 0;
    bool progress_pending = false;
};

// The items of job $1, as a primary-key range: a job's items have the ids of
// the block create_job reserved (jobs.first_item..last_item), so the items
// table needs no index on job_id (one index fewer for every item written;
// claims and retries use the partial indexes of their state).
inline constexpr const char* kJobItems =
    "id BETWEEN (SELECT first_item FROM jobs WHERE id = $1) AND "
    "(SELECT last_item FROM jobs WHERE id = $1) AND job_id = $1";

namespace pg_rows {

// The job columns the job store locks and rewrites: what clients see (the
// shared mapping in pg_rows.hpp, which the event log reads too), then the
// coalescing state only the writer needs. read_item is the shared one.
inline const std::string kJobColumns =
    std::string(kPgJobColumns) + ", rate_at, rate_finished, progress_at, progress_pending";
inline constexpr const char* kItemColumns = kPgItemColumns;
inline constexpr int kJobColumnCount = kPgJobColumnCount + 4;
inline constexpr int kItemColumnCount = kPgItemColumnCount;

PgJobRow read_job(const pg::Result& result, int row, int column = 0);
inline ItemRecord read_item(const pg::Result& result, int row, int column = 0) {
    return pg_item_from_row(result, row, column);
}

}  // namespace pg_rows

// The event-log entries of one transaction. write() numbers them per user
// (users locked in id order), inserts them and notifies, all in the
// transaction that made the change, so a user's entries are numbered in
// commit order.
class LogWriter {
  public:
    void add(UserId user, LoggedKind kind, JobId job, std::string body);
    // An item's change: joins the last entry when that is an item entry of
    // the same job (one row for a batch's items, not one per item).
    void add_item(UserId user, const ItemRecord& item);
    bool empty() const { return entries_.empty(); }
    void write(pg::Connection& conn, TimeMs now);

  private:
    struct Entry {
        UserId user;
        LoggedKind kind;
        JobId job;
        std::string body;
    };
    std::vector<Entry> entries_;
};

struct PgJobStore::Impl {
    Impl(pg::Pool& connection_pool, const StoreOptions& store_options)
        : pool(connection_pool), options(store_options) {
        if (!options.clock) options.clock = [] { return now_ms(); };
    }

    pg::Pool& pool;
    StoreOptions options;
    std::mutex fairness_mutex;
    FairnessCursor fairness;  // this process's turn; each node keeps its own

    TimeMs now() const { return options.clock(); }

    // --- rows ---

    // Locks and reads jobs in id order; `where` selects them (e.g.
    // "id = ANY($1)"), `params` fill it.
    std::vector<PgJobRow> lock_jobs(pg::Connection& conn, const std::string& where,
                                    const pg::Params& params, bool skip_locked = false);
    std::optional<PgJobRow> lock_user_job(pg::Connection& conn, UserId user, JobId id);
    // Writes every column of these jobs back (one statement).
    void write_jobs(pg::Connection& conn, const std::vector<PgJobRow*>& rows);
    std::vector<ItemId> active_items(pg::Connection& conn, JobId job);
    std::vector<JobSnapshot> list_jobs(pg::Connection& conn, UserId user);

    // --- the event log ---

    // A job's counts or state changed: log a progress entry now (state
    // changed, `force`, or the last one is progress_interval old) with a
    // fresh rate/eta, or mark it pending for flush_progress().
    void note_progress(PgJobRow& row, TimeMs now, LogWriter& log, bool force = false);
    // The rate/eta rule (see the design in pg_job_store.cpp).
    static void update_rate(PgJobRow& row, TimeMs now);
    static void settle_eta(JobSnapshot& job);

    // --- the calls ---

    JobSnapshot create_job(const NewJob& request);
    std::vector<ClaimedItem> claim(std::size_t max, const SlotLoad& load);
    // Items went back to the queue (`items`, of `jobs`, one entry each; the
    // jobs locked): each job's claim cursor down to its lowest such item
    // (schema step 4 -> 5).
    void lower_claim_cursors(pg::Connection& conn, const std::vector<std::int64_t>& jobs,
                             const std::vector<std::int64_t>& items);
    // Items went back anywhere in the jobs `where` picks (locked): their
    // claims look from the start again.
    void restart_claim_cursors(pg::Connection& conn, const std::string& where,
                               const pg::Params& params);
    // Claims found nothing from these cursors (`searched_from`): back to the
    // start of the job where items are still counted queued.
    void rewind_claim_cursors(pg::Connection& conn, const std::vector<std::int64_t>& jobs,
                              const std::vector<std::int64_t>& searched_from);
    ApplySummary apply(const std::vector<ItemOutcome>& outcomes);
    std::int64_t renew_leases();
    std::int64_t expire_leases();
    std::vector<ItemId> released_claims(const std::vector<HeldClaim>& held);

    JobOpResult pause(UserId user, JobId id);
    JobOpResult resume(UserId user, JobId id);
    JobOpResult cancel(UserId user, JobId id);
    JobOpResult retry(UserId user, JobId id, const RetrySelection& which);
    JobOpResult rename(UserId user, JobId id, std::string_view name);
    JobOpResult remove(UserId user, JobId id);
    std::int64_t requeue_active();
    RecoverySummary recover();
    std::optional<TimeMs> flush_progress();

    // Puts active items back to queued, those of `node` only unless empty,
    // or only those whose lease ended before `expired_before` when set
    // (items locked first, then their jobs). Fixes the counters and logs the
    // items (a few per job) or items_reset. Returns how many.
    std::int64_t requeue_items(pg::Connection& conn, const std::string& node,
                               std::optional<TimeMs> expired_before, TimeMs now, LogWriter& log);
};

}  // namespace litchi
