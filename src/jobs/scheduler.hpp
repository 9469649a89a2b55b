// The scheduler turns stored jobs into engine work, fairly: it owns the one
// download Engine, keeps at most ~2x concurrency items waiting for or on the
// network in it (so a job submitted later waits behind a short buffer, not
// behind a whole big job), claims the next items max-min fair across users and
// then across each user's runnable jobs, and commits each batch of results in
// one transaction (the JobStore then tells the observer).
//
// Fairness has two halves (docs/architecture.md, "Fair shares"). Claims: each
// claim starts from what every user and job holds on the network in the engine
// now (Engine::network_load), so the room goes to the least-loaded first and a
// job whose items take long (a slow host) is not fed more while others hold
// less (store/fair_share.hpp). Dispatch: every request carries its user and
// job, and the engine starts the next transfer of whoever runs the fewest
// (fetch/fair_queue.hpp). Neither cuts anything short: a job alone takes every
// slot and gives them back as its transfers end.
//
//   feeder thread:    wake() ──> claim_next_items (marks active) ──> engine.submit
//   committer thread: on_results ──> apply_results (one txn) ──> wake feeder
//
// Why two limits: an item is in the engine from submit until its result is
// committed, but only its network part delays other jobs. Items already
// downloaded and waiting for the engine's group commit (fsyncs: tens of ms on
// a busy disk) must not hold the network back, or every commit stalls all
// transfers. So the fairness buffer counts the engine's queued + active
// transfers only (the claim's capacity, shared out per user and job), and a
// larger bound on everything in the engine keeps memory and the commit
// backlog bounded. The engine reports transfers ending only through its
// counters, so while there may be more to claim the feeder looks again every
// feeder_poll; a commit or a new job makes it claim at once (its claim may
// find a newcomer below its share even when the buffer is full).
//
// Leases (job_store.hpp): every claimed item is leased to this node. An upkeep
// thread renews this node's leases and returns every node's expired ones to
// the queue every lease/3 (waking the feeder when that freed work). A store
// shared with other nodes gets work the feeder is never told about, so an
// idle feeder also looks again every claim_poll.
//
// Results the store cannot take (apply_outcomes throws: database unreachable,
// disk full) are kept, in order, and retried with backoff, on the committer
// thread when more results arrive and on the upkeep thread otherwise; the
// feeder claims nothing new meanwhile. They stay leased under this node, and
// renewed, until stored. Beyond max_pending_results the oldest are dropped
// (their downloads are lost, their blobs left for the orphan sweep) and their
// items given back to the queue as soon as the store takes writes again.
//
// User actions (job_service.hpp) that touch in-flight work call
// cancel_in_engine() and remove_blobs_when_safe(), so the engine stops what it
// is doing for a paused, cancelled or deleted job and no blob is removed while
// a download of the same bytes may still be renamed into place. The same
// action taken on another node reaches this one as stop_jobs() (a NOTIFY),
// or, should that be lost, through the upkeep's released_claims().
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/config.hpp"
#include "fetch/engine.hpp"
#include "store/job_store.hpp"

namespace litchi {

class BlobStore;

struct SchedulerOptions {
    FetchLimits limits{};  // the engine's limits (concurrency = -j)
    // Items queued or downloading in the engine: <= this * concurrency. The
    // most a job submitted later waits behind.
    std::size_t outstanding_per_slot = 2;
    // Everything handed to the engine and not yet committed (also downloaded
    // items waiting to be made durable): <= this * concurrency. At least
    // outstanding_per_slot.
    std::size_t in_engine_per_slot = 8;
    // Items parked in the engine (retry waits, a host's Retry-After pause or
    // probe: EngineStats::waiting) count in neither bound above, so they never
    // hold the claim buffer; this * concurrency of them at most, a bound on
    // memory only.
    std::size_t parked_per_slot = 32;
    // How often the feeder re-reads the engine's counters while it waits for
    // network room (transfers end without telling the scheduler).
    std::chrono::milliseconds feeder_poll{5};
    // The store's lease (StoreOptions::lease, `--lease`): this node's leases
    // are renewed, and expired ones returned, every lease/3. 0: no upkeep.
    std::chrono::milliseconds lease{30'000};
    // While idle, look for claimable work this often: other nodes sharing the
    // store add jobs without waking this feeder. 0: only when woken (enough
    // for a store nobody else writes to; cheap either way, one indexed query).
    std::chrono::milliseconds claim_poll{1'000};
    // Results kept for retry while the store refuses them, in outcomes.
    std::size_t max_pending_results = 10'000;
    // Retry delays for those: doubling from min up to max.
    std::chrono::milliseconds apply_retry_min{100};
    std::chrono::milliseconds apply_retry_max{5'000};
    // What the feeder's backoff and the upkeep's timers read. Empty: the
    // steady clock. Tests drive it and call Scheduler::clock_moved().
    std::function<std::chrono::steady_clock::time_point()> clock;
};

// Counters since start, for /metrics.
struct SchedulerStats {
    std::uint64_t done = 0;
    std::uint64_t failed = 0;
    std::uint64_t cancelled = 0;
    // Results refused by the fence: the item's lease had run out and passed
    // to a later claim (this node was frozen or cut off), so it was redone.
    std::uint64_t fenced = 0;
    std::array<std::uint64_t, 15> failed_by_reason{};  // indexed by FailureReason
    std::uint64_t bytes = 0;                           // bytes of items that became done
    std::uint64_t in_flight = 0;    // items handed to the engine, not yet returned
    std::int64_t queued = 0;        // items waiting in runnable jobs (database)
    std::int64_t leased_total = 0;  // items active under a lease, any node (database)
    // This node's items active under its leases: in the engine or with a
    // result waiting to be stored.
    std::uint64_t leased = 0;
    std::uint64_t pending_results = 0;  // results the store refused so far, to retry
    std::uint64_t dropped_results = 0;  // results given up (beyond max_pending_results)
    EngineStats engine{};
};

class Scheduler {
  public:
    // `jobs` and `blobs` must outlive the scheduler. Nothing runs before start().
    Scheduler(JobStore& jobs, BlobStore& blobs, SchedulerOptions options = {});
    ~Scheduler();  // stop()
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    // Creates the engine and the feeder thread and starts feeding.
    void start();

    // Graceful stop: no more claims, engine.stop() (results already durable
    // are still applied), then every item still active goes back to queued.
    // Idempotent.
    void stop();

    // Tell the feeder there may be new work (after creating a job outside
    // the scheduler). Cheap; any thread.
    void wake();

    // Cancels these items in the engine (their cancelled results come back
    // and are applied as usual). Any thread; ids the engine no longer has are
    // ignored.
    void cancel_in_engine(const std::vector<ItemId>& ids);
    // Cancels this node's transfers of these jobs: another node paused,
    // cancelled or deleted them (LogWakeup::stopped_jobs). Any thread. A
    // stop this node never hears of is found by the lease upkeep
    // (JobStore::released_claims) within lease/3.
    void stop_jobs(const std::vector<JobId>& jobs);

    // Deletes these blob files once no download of the same bytes can be
    // between the engine's rename and its commit: now when nothing is in
    // flight, otherwise right after the committer's next apply. Files an item
    // references again by then are kept.
    void remove_blobs_when_safe(const std::vector<BlobKey>& blobs);

    // The engine's limits (admission checks URLs by the same rule).
    const FetchLimits& limits() const { return options_.limits; }

    SchedulerStats stats() const;

    // Tell the scheduler that SchedulerOptions::clock moved (tests that drive
    // it): the upkeep thread looks again at what is due. Any thread.
    void clock_moved();

    // Blocks until nothing is claimable and nothing is in flight, or until
    // `timeout`; true if idle. For tests and benchmarks.
    bool wait_idle(std::chrono::milliseconds timeout);

  private:
    void run_feeder();
    // The job's request options for its FetchRequests (nullptr: none); the
    // feeder's own cache.
    std::shared_ptr<const RequestOptions> options_of(JobId job);
    static constexpr std::size_t kOptionsCacheJobs = 4096;
    std::unordered_map<JobId, std::shared_ptr<const RequestOptions>> options_cache_;

    // How many more items the engine should get now (0: wait). mutex_ held.
    std::size_t feeder_room() const;
    // The engine's queued + active transfers are below the network buffer.
    bool network_has_room() const;
    void on_results(std::vector<FetchResult>&& results);
    // Stores `fresh` after any results still pending (retrying them if their
    // backoff is over, or when `force`), then does what follows a store:
    // blob removals, counters, waking the feeder. `returned`: the engine's
    // results `fresh` came from (nullptr on a retry).
    void commit(std::vector<ItemOutcome>&& fresh, const std::vector<FetchResult>* returned,
                bool force = false);
    // Drops the oldest pending results beyond the bound; returns how many.
    // commit_mutex_ held.
    std::size_t drop_oldest_pending();
    std::chrono::steady_clock::time_point now() const { return options_.clock(); }
    void run_upkeep(std::chrono::steady_clock::time_point first_upkeep);
    void upkeep_leases();
    void remove_unreferenced_blobs(const std::vector<BlobKey>& blobs);

    JobStore& jobs_;
    BlobStore& blobs_;
    SchedulerOptions options_;
    std::unique_ptr<Engine> engine_;

    mutable std::mutex mutex_;
    std::condition_variable wake_cv_;  // feeder waits here
    std::condition_variable idle_cv_;  // wait_idle waits here
    bool wake_pending_ = false;
    bool watching_network_ = false;  // the last claim took some: poll for network room
    bool stopping_ = false;
    bool started_ = false;
    bool stopped_ = false;
    bool idle_ = true;  // last claim found nothing and nothing is in flight
    struct InFlight {
        JobId job = 0;
        LeaseId lease = 0;  // the claim's fence, passed back with the outcome
    };
    std::unordered_map<ItemId, InFlight> in_flight_;  // handed to the engine
    // Cancels for items not in flight when they came (cancel_in_engine):
    // claimed by the claim in progress and about to be submitted, or not
    // this node's. Kept from one claim's start to its submit.
    std::unordered_set<ItemId> early_cancels_;
    // The same for stop_jobs(): jobs whose items the claim in progress may hold.
    std::unordered_set<JobId> early_stopped_jobs_;
    // Blob deletions that wait for the committer thread (see delete_job).
    std::vector<BlobKey> pending_blob_removals_;
    SchedulerStats counters_;
    bool apply_failing_ = false;  // mirror of the commit side's, for the feeder
    // When the upkeep thread should retry pending results (max: none pending).
    std::chrono::steady_clock::time_point retry_at_ = std::chrono::steady_clock::time_point::max();
    std::size_t released_count_ = 0;  // mirror of released_.size()
    bool claim_failing_ = false;      // feeder only: log a failure streak once
    bool upkeep_failing_ = false;     // upkeep thread only: likewise
    bool upkeep_stopping_ = false;
    bool upkeep_poked_ = false;          // something the upkeep waits for changed
    std::condition_variable upkeep_cv_;  // the upkeep thread waits here

    // The commit side: one store attempt at a time (committer and upkeep
    // threads). Lock order: commit_mutex_, then mutex_.
    std::mutex commit_mutex_;
    std::vector<ItemOutcome> pending_results_;  // oldest first
    // Items whose results were dropped: cancelled outcomes that give them
    // back to the queue with the next successful store.
    std::vector<ItemOutcome> released_;
    bool failing_ = false;          // the last store attempt threw
    bool dropping_logged_ = false;  // in the current streak
    std::uint64_t dropped_streak_ = 0;
    std::chrono::steady_clock::time_point next_retry_{};
    std::chrono::milliseconds retry_delay_{0};
    std::uint64_t failed_attempts_ = 0;  // in the current streak

    std::thread feeder_;
    std::thread upkeep_;
};

}  // namespace litchi
