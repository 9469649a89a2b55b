// Jobs and their items in SQLite: creation (100,000 URLs in one transaction),
// user-scoped reads, paging, the state changes a user asks for, and the two
// hot paths the scheduler drives: claiming the next items fairly and applying
// a batch of engine results in one transaction.
//
// Counts are exact and cheap: every item transition updates its job's
// counters in the same transaction. On open, recover() puts `active` items
// back to `queued` (a crash left them in flight) and recomputes every job's
// counters from its items, so a kill -9 at any moment costs nothing but
// repeated downloads.
//
// Every method is thread-safe (it holds the database mutex). Every read and
// user action takes the UserId and treats another user's job as not found.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fetch/engine.hpp"
#include "store/records.hpp"

namespace litchi {

class Database;
class StoreObserver;

// Splits a text/plain body into URL lines: trims spaces, tabs and CR, skips
// blank lines. The views point into `body`.
std::vector<std::string_view> split_url_lines(std::string_view body);

enum class JobOpStatus {
    ok,         // done (or already in the asked-for state: idempotent)
    not_found,  // no such job for this user
    conflict,   // not allowed from the job's state (e.g. resume a cancelled job)
};

struct JobOpResult {
    JobOpStatus status = JobOpStatus::not_found;
    std::optional<JobSnapshot> job;     // the job after the change (ok and conflict)
    std::vector<ItemId> in_flight;      // items the engine must cancel (pause/cancel/delete)
    std::vector<BlobKey> unreferenced;  // delete only: blob files no item references any more
};

struct ItemQuery {
    std::optional<ItemState> state;  // filter; none = all
    ItemId after = 0;                // cursor: items with id > after
    int limit = 100;                 // clamped to 1..1000
};

struct ItemPage {
    std::vector<ItemRecord> items;  // in input order
    std::optional<ItemId> next;     // pass as `after` for the next page; none at the end
};

// An item taken for download: it is `active` in the database already.
struct ClaimedItem {
    ItemId item = 0;
    JobId job = 0;
    UserId user = 0;
    std::string url;
};

// What apply_results did, for metrics and the scheduler.
struct ApplySummary {
    std::size_t done = 0;
    std::size_t failed = 0;
    std::size_t cancelled = 0;
    std::size_t requeued = 0;  // cancelled results of paused jobs, back to queued
    std::size_t ignored = 0;   // items no longer active (cancelled/deleted meanwhile)
    std::uint64_t bytes = 0;   // bytes of items that became done
    // Blobs the engine stored for items that were cancelled or deleted
    // meanwhile: delete them if blob_referenced() says nobody uses them.
    std::vector<BlobKey> orphaned;
};

struct RecoverySummary {
    std::int64_t requeued = 0;       // active items put back to queued
    std::int64_t jobs_repaired = 0;  // jobs whose stored counters or state were wrong
};

class JobStore {
  public:
    // `db` must be migrated and outlive this. Does not run recover() itself
    // (Store does, on open).
    explicit JobStore(Database& db);
    ~JobStore();
    JobStore(const JobStore&) = delete;
    JobStore& operator=(const JobStore&) = delete;

    // Called after every commit that changes something; nullptr to stop.
    // Set before the scheduler starts.
    void set_observer(StoreObserver* observer);

    // One transaction, one prepared insert, fsynced (synchronous=FULL) before
    // returning so an accepted job survives a power loss too. Each URL goes
    // through check_url(text, allow_private); ones that fail become items
    // already `failed` with reason bad_url/blocked_address. An empty name
    // becomes "job <id>". Callers bound the count (the store has no limit).
    JobSnapshot create_job(UserId user, std::string_view name,
                           const std::vector<std::string_view>& urls, bool allow_private);
    JobSnapshot create_job(UserId user, std::string_view name, const std::vector<std::string>& urls,
                           bool allow_private);
    // Admission by the engine's own limits (allow_private and allowed_ranges).
    JobSnapshot create_job(UserId user, std::string_view name,
                           const std::vector<std::string_view>& urls, const FetchLimits& admission);

    std::vector<JobSnapshot> list_jobs(UserId user);  // newest first
    std::optional<JobSnapshot> get_job(UserId user, JobId job);

    // Runs `visit` with the user's jobs while holding the store lock, so no
    // change can be observed between the snapshot and whatever `visit`
    // registers (the event hub's hello). `visit` must not call the store.
    void visit_jobs(UserId user, const std::function<void(const std::vector<JobSnapshot>&)>& visit);

    // nullopt when the job is not the user's.
    std::optional<ItemPage> list_items(UserId user, JobId job, const ItemQuery& query);
    std::optional<ItemRecord> get_item(UserId user, JobId job, ItemId item);

    // The format of a blob if some item of one of the user's jobs holds it
    // (images are served only to a user who owns them).
    std::optional<ImageFormat> find_user_blob(UserId user, std::string_view sha256);

    // Is any item (any job, any user) still referencing this blob?
    bool blob_referenced(std::string_view sha256);

    // User actions. See JobOpResult; the scheduler wraps these and cancels
    // `in_flight` in the engine.
    //  pause:  queued/running -> paused; active items stay active until the
    //          engine returns them (a cancelled result then goes back to queued).
    //  resume: paused -> queued/running (or done if nothing is left).
    //  cancel: queued and active items -> cancelled at once; job cancelled.
    //          Late engine results for those items are ignored.
    //  retry:  failed items -> queued (reason cleared); job back to queued/
    //          running unless paused. Conflict on a cancelled job.
    //  delete: removes job and items; `unreferenced` lists blobs to delete.
    JobOpResult pause_job(UserId user, JobId job);
    JobOpResult resume_job(UserId user, JobId job);
    JobOpResult cancel_job(UserId user, JobId job);
    JobOpResult retry_job(UserId user, JobId job);
    JobOpResult delete_job(UserId user, JobId job);

    // --- the scheduler's side ---

    // Up to `max` queued items of runnable (queued/running) jobs, chosen
    // round-robin across users, then across each user's jobs, oldest item
    // first within a job; marks them active (job -> running) in one
    // transaction.
    std::vector<ClaimedItem> claim_next_items(std::size_t max);

    // Applies a batch of engine results (FetchResult::id is the ItemId) in one
    // transaction, then notifies the observer.
    ApplySummary apply_results(const std::vector<FetchResult>& results);

    // Puts every active item back to queued (graceful stop; and recover()).
    std::int64_t requeue_active();

    // Crash recovery: requeue_active(), then recompute all counters and
    // states from the items. Idempotent.
    RecoverySummary recover();

    // Items waiting in runnable jobs, across all users (queue depth metric).
    std::int64_t queued_total();
    // Is there anything claimable right now?
    bool has_runnable();

    // How far back `rate` looks.
    void set_rate_window(std::chrono::milliseconds window);

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace litchi
