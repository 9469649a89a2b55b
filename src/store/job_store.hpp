// Jobs and their items as rows: the interface every store backend implements
// (SQLite today, sqlite_job_store.hpp). Creation of a whole job in one
// transaction, user-scoped reads and paging, the state changes a user asks
// for, and the two hot paths the scheduler drives: claiming the next items
// fairly and applying a batch of outcomes in one transaction.
//
// The store knows nothing of downloading: URLs arrive already admitted (or
// refused, with a reason) from jobs/admission.hpp, and outcomes arrive as
// ItemOutcome values, not as the engine's results. Rates and ETAs are not
// rows either: jobs/ adds them (JobSnapshot::rate is 0 here).
//
// Counts are exact and cheap: every item transition updates its job's
// counters in the same transaction. recover() puts `active` items back to
// `queued` (a crash left them in flight) and recomputes every job's counters
// from its items, so a kill -9 at any moment costs nothing but repeated
// downloads.
//
// Every method is thread-safe. Every read and user action takes the UserId
// and treats another user's job as not found. Changes are reported to the
// observer after each commit (observer.hpp) by the SQLite store; the
// PostgreSQL store reports none (other nodes change it too): its changes are
// read from its event log (event_log.hpp) instead.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/records.hpp"
#include "core/request_options.hpp"
#include "store/fair_share.hpp"

namespace litchi {

class StoreObserver;

// One line of a new job: a URL the admission accepted (normalised), or the
// text it refused with the reason (bad_url, blocked_address); a refused item
// is stored already failed so the user sees it.
//
// `url` is a view, not a copy: a job may have a million lines, and most are
// stored exactly as they came. It points into the text the job was made from
// (the request body, which outlives the store call) or into the NewJob's own
// `texts` (a line admission had to change).
struct NewItem {
    std::string_view url;
    FailureReason refused = FailureReason::none;
};

// Owns the text of the lines whose stored form is not the caller's text. Its
// strings never move: a deque does not move its elements as it grows, and
// moving a deque (or the arena, or adopting another arena's deques) hands its
// blocks over. So views into them stay valid for the life of the NewJob, moved
// or not. Not copyable: a copy's views would still point into the original.
class TextArena {
  public:
    TextArena() = default;
    TextArena(TextArena&&) = default;
    TextArena& operator=(TextArena&&) = default;
    TextArena(const TextArena&) = delete;
    TextArena& operator=(const TextArena&) = delete;

    std::string_view keep(std::string text) {
        if (parts_.empty()) parts_.emplace_back();
        return parts_.back().emplace_back(std::move(text));
    }
    // Takes over what `other` kept (views into it stay valid).
    void adopt(TextArena&& other) {
        for (auto& part : other.parts_) parts_.push_back(std::move(part));
        other.parts_.clear();
    }

  private:
    std::deque<std::deque<std::string>> parts_;  // one per arena adopted
};

struct NewJob {
    UserId user = 0;
    std::string name;  // already cleaned; empty becomes "job <id>"
    std::vector<NewItem> items;
    TextArena texts{};  // what items' views point into when not the caller's text
    // What every request of the job carries, and its webhook; stored with the
    // job (already checked: core/request_options.hpp, server/job_body.hpp).
    RequestOptions options{};
};

enum class JobOpStatus {
    ok,         // done (or already in the asked-for state: idempotent)
    not_found,  // no such job for this user
    conflict,   // not allowed from the job's state (e.g. resume a cancelled job)
};

// Which failed items a retry puts back in the queue. bad_url items never go
// back (they would fail the same way), whatever is asked.
struct RetrySelection {
    std::vector<FailureReason> reasons;  // empty: every reason
    // For FailureReason::http: only statuses worth another try (408, 429,
    // 5xx; core/reason.hpp's is_transient), not 404 and the like.
    bool http_transient_only = false;

    // What POST /api/jobs/{id}/retry does without a body: the reasons
    // is_transient() can call transient, and io (docs/api.md lists them).
    static RetrySelection transient();
};

struct JobOpResult {
    JobOpStatus status = JobOpStatus::not_found;
    std::int64_t requeued = 0;          // retry only: failed items put back in the queue
    std::optional<JobSnapshot> job;     // the job after the change (ok and conflict)
    std::vector<ItemId> in_flight;      // items the engine must cancel (pause/cancel/delete)
    std::vector<BlobKey> unreferenced;  // delete only: blob files no item references any more
};

struct ItemQuery {
    std::optional<ItemState> state;  // filter; none = all
    ItemId after = 0;                // cursor: items with id > after
    int limit = 100;                 // at least 1; callers bound it (--items-page-max)
};

struct ItemPage {
    std::vector<ItemRecord> items;  // in input order
    std::optional<ItemId> next;     // pass as `after` for the next page; none at the end
};

// Every claim is a lease: the item is `active` in the database under this
// process's node name until `lease` (StoreOptions::lease) after the last
// renewal. Each claim gets a fresh lease id, and an outcome is applied only
// while the item is still active under that same id (a fenced update): once a
// lease ran out and another claim took the item, the old holder's outcome is
// ignored, so an item is never counted twice.
using LeaseId = std::int64_t;

// An item taken for download: it is `active` in the database already.
struct ClaimedItem {
    ItemId item = 0;
    JobId job = 0;
    UserId user = 0;
    std::string url;
    LeaseId lease = 0;  // pass back in ItemOutcome::lease
};

// A claim this node holds: the item and the lease it was claimed under.
struct HeldClaim {
    ItemId item = 0;
    LeaseId lease = 0;
};

// What became of one claimed item. `reason` none: done (the fields below are
// set); cancelled: the user's cancel, or the job was paused (then the item
// goes back to the queue); anything else: failed.
struct ItemOutcome {
    ItemId item = 0;
    LeaseId lease = 0;  // ClaimedItem::lease (the fence)
    FailureReason reason = FailureReason::none;
    int http_status = 0;  // 0: none
    int attempts = 0;     // network attempts this time (added to the item's count)
    std::string sha256;   // done only
    std::uint64_t bytes = 0;
    ImageFormat format = ImageFormat::unknown;
    int width = 0, height = 0;

    bool ok() const { return reason == FailureReason::none; }
};

// What apply_outcomes did, for metrics and the scheduler.
struct ApplySummary {
    std::size_t done = 0;
    std::size_t failed = 0;
    std::size_t cancelled = 0;
    std::size_t requeued = 0;  // cancelled outcomes of paused jobs, back to queued
    std::size_t ignored = 0;   // items no longer active (cancelled/deleted meanwhile)
    std::size_t fenced = 0;    // refused: the lease ran out and the item was requeued or re-claimed
    std::uint64_t bytes = 0;   // bytes of items that became done
    // Blobs stored for items that were cancelled or deleted meanwhile:
    // delete them if blob_referenced() says nobody uses them.
    std::vector<BlobKey> orphaned;
};

struct RecoverySummary {
    std::int64_t requeued = 0;       // active items put back to queued (see Store's header)
    std::int64_t jobs_repaired = 0;  // jobs whose stored counters or state were wrong
};

// A completion webhook's delivery: a row of the outbox. The store writes one,
// in the transaction that ends a job (its state becomes done or cancelled)
// when the job has a webhook asking for that event, so a crash can delay a
// delivery but never lose it. `delivery` is the X-Litchi-Delivery id, the
// same on every attempt.
struct WebhookDelivery {
    std::int64_t id = 0;
    JobId job = 0;
    UserId user = 0;
    std::string delivery;
    std::string event;    // done, failed, cancelled
    std::string state;    // pending, delivered, failed (gave up)
    int attempts = 0;     // attempts started (a claim counts one)
    TimeMs created = 0;   // when the job ended
    TimeMs updated = 0;   // last attempt's end
    std::string body;     // what was signed and sent; empty before the first attempt
    int http_status = 0;  // last answer's status (0: none)
    std::string error;    // why the last attempt failed; empty when it did not
};

// How an attempt ended. `state` pending: try again at `next_at`.
struct WebhookAttempt {
    std::int64_t id = 0;
    std::string state;  // pending, delivered, failed
    TimeMs next_at = 0;
    std::string body;  // stored on the first attempt, kept after
    int http_status = 0;
    std::string error;
};

// A user's jobs as of one commit (see observer.hpp).
using JobsVisitor = std::function<void(const std::vector<JobSnapshot>& jobs, CommitId as_of)>;

class JobStore {
  public:
    virtual ~JobStore() = default;

    // Receives every commit's changes; nullptr to stop. Waits for a delivery
    // in progress, so after set_observer(nullptr) the old one is never called.
    virtual void set_observer(StoreObserver* observer) = 0;

    // One transaction, fsynced before returning so an accepted job survives
    // a power loss too. Refused items are stored failed. Callers bound the
    // count (the store has no limit).
    virtual JobSnapshot create_job(const NewJob& job) = 0;

    virtual std::vector<JobSnapshot> list_jobs(UserId user) = 0;  // newest first
    virtual std::optional<JobSnapshot> get_job(UserId user, JobId job) = 0;

    // Runs `visit` with the user's jobs while no change delivery runs and no
    // commit can happen, passing the commit the list is as of. `visit` must
    // not call the store.
    virtual void visit_jobs(UserId user, const JobsVisitor& visit) = 0;

    // nullopt when the job is not the user's.
    virtual std::optional<ItemPage> list_items(UserId user, JobId job, const ItemQuery& query) = 0;
    virtual std::optional<ItemRecord> get_item(UserId user, JobId job, ItemId item) = 0;

    // The format of a blob if some item of one of the user's jobs holds it
    // (images are served only to a user who owns them).
    virtual std::optional<ImageFormat> find_user_blob(UserId user, std::string_view sha256) = 0;

    // Is any item (any job, any user) still referencing this blob?
    virtual bool blob_referenced(std::string_view sha256) = 0;

    // User actions; see JobOpResult. jobs/ wraps these and cancels
    // `in_flight` in the engine.
    //  pause:  queued/running -> paused; active items stay active until the
    //          engine returns them (a cancelled outcome then goes back to queued).
    //  resume: paused -> queued/running (or done if nothing is left).
    //  cancel: queued and active items -> cancelled at once; job cancelled.
    //          Late outcomes for those items are ignored.
    //  retry:  the failed items `which` selects -> queued (reason cleared;
    //          bad_url stays failed); job back to queued/running unless
    //          paused. Conflict when cancelled.
    //  rename: the job's name (the caller checked it); watchers get a
    //          progress message carrying it.
    //  delete: removes job and items; `unreferenced` lists blobs to delete.
    virtual JobOpResult pause_job(UserId user, JobId job) = 0;
    virtual JobOpResult resume_job(UserId user, JobId job) = 0;
    virtual JobOpResult cancel_job(UserId user, JobId job) = 0;
    virtual JobOpResult retry_job(UserId user, JobId job, const RetrySelection& which = {}) = 0;
    virtual JobOpResult rename_job(UserId user, JobId job, std::string_view name) = 0;
    virtual JobOpResult delete_job(UserId user, JobId job) = 0;

    // --- the scheduler's side ---

    // Up to `max` queued items of runnable (queued/running) jobs, shared
    // max-min across users, then across each user's jobs, starting from what
    // this node's engine already holds (`load`; see store/fair_share.hpp),
    // oldest item first within a job; marks them active (job -> running) in
    // one transaction.
    virtual std::vector<ClaimedItem> claim_next_items(std::size_t max,
                                                      const SlotLoad& load = {}) = 0;

    // Applies a batch of outcomes in one transaction.
    virtual ApplySummary apply_outcomes(const std::vector<ItemOutcome>& outcomes) = 0;

    // Puts every item active under this node back to queued (graceful stop;
    // and recover()).
    virtual std::int64_t requeue_active() = 0;

    // Extends the lease of every item active under this node to now + lease.
    // The scheduler calls it every lease/3. Returns how many.
    virtual std::int64_t renew_leases() = 0;
    // Puts items whose lease ran out (any node's) back to queued, with their
    // jobs' counters. Any node may call it (each does, every lease/3).
    virtual std::int64_t expire_leases() = 0;
    // Of the claims this node holds (item, lease), the ones it should stop
    // downloading: the item is no longer active under that lease (its job
    // was cancelled or deleted, or the lease ran out and was taken over), or
    // its job is paused. Another node's user action reaches this node this
    // way even when its notification was lost (the scheduler asks every
    // lease/3). Sorted by item.
    virtual std::vector<ItemId> released_claims(const std::vector<HeldClaim>& held) = 0;

    // True when JobSnapshot::rate/eta come from the store (PostgreSQL, where
    // every node must show the same numbers); false: jobs/ estimates them.
    virtual bool keeps_rates() const { return false; }

    // Crash recovery: requeue_active(), then recompute all counters and
    // states from the items. Idempotent.
    virtual RecoverySummary recover() = 0;

    // Items waiting in runnable jobs, across all users (queue depth metric).
    virtual std::int64_t queued_total() = 0;
    // Items active under a lease (all nodes; metric).
    virtual std::int64_t leased_total() = 0;
    // Is there anything claimable right now?
    virtual bool has_runnable() = 0;

    // --- request options and webhooks ---

    // The options the job was created with (any user's job: the scheduler's
    // and the webhook sender's call); nullopt when there is no such job.
    virtual std::optional<RequestOptions> request_options(JobId job) = 0;
    // Up to `max` pending deliveries that are due, each leased to this node
    // for StoreOptions::lease (attempts + 1): until it runs out no other node
    // (or thread) gets the same one.
    virtual std::vector<WebhookDelivery> claim_webhooks(std::size_t max) = 0;
    // Keeps the body of a delivery before its first attempt is sent (a body
    // already kept stays), so a crash mid-attempt resends the same bytes.
    virtual void keep_webhook_body(std::int64_t id, const std::string& body) = 0;
    virtual void finish_webhook_attempt(const WebhookAttempt& attempt) = 0;
    // The job's latest delivery, for its API object.
    virtual std::optional<WebhookDelivery> last_webhook(JobId job) = 0;
    // The job's state and counts, whoever owns it (the webhook's body).
    virtual std::optional<JobSnapshot> find_job(JobId job) = 0;
};

}  // namespace litchi
