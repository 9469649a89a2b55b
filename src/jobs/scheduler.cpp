// The fair scheduler between the job store and the download engine: see
// scheduler.hpp.
#include "jobs/scheduler.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "blobs/blob_store.hpp"

namespace litchi {

Scheduler::Scheduler(JobStore& jobs, BlobStore& blobs, SchedulerOptions options)
    : jobs_(jobs), blobs_(blobs), options_(options) {
    if (options_.limits.concurrency < 1) options_.limits.concurrency = 1;
    if (options_.outstanding_per_slot < 1) options_.outstanding_per_slot = 1;
    if (options_.in_engine_per_slot < options_.outstanding_per_slot)
        options_.in_engine_per_slot = options_.outstanding_per_slot;
    if (options_.feeder_poll < std::chrono::milliseconds(1))
        options_.feeder_poll = std::chrono::milliseconds(1);
    if (options_.lease < std::chrono::milliseconds(0)) options_.lease = {};
    if (options_.claim_poll < std::chrono::milliseconds(0)) options_.claim_poll = {};
    if (options_.max_pending_results < 1) options_.max_pending_results = 1;
    if (options_.apply_retry_min < std::chrono::milliseconds(1))
        options_.apply_retry_min = std::chrono::milliseconds(1);
    if (options_.apply_retry_max < options_.apply_retry_min)
        options_.apply_retry_max = options_.apply_retry_min;
    retry_delay_ = options_.apply_retry_min;
    if (!options_.clock) options_.clock = [] { return std::chrono::steady_clock::now(); };
}

Scheduler::~Scheduler() {
    stop();
}

void Scheduler::start() {
    std::lock_guard lock(mutex_);
    if (started_) return;
    started_ = true;
    engine_ = std::make_unique<Engine>(
        options_.limits, blobs_,
        [this](std::vector<FetchResult>&& results) { on_results(std::move(results)); });
    wake_pending_ = true;
    idle_ = false;
    feeder_ = std::thread([this] { run_feeder(); });
    // The first upkeep is due a third of a lease after start, by the clock
    // read now (not whenever the thread gets to run).
    const auto interval = options_.lease / 3;
    auto first_upkeep =
        interval.count() > 0 ? now() + interval : std::chrono::steady_clock::time_point::max();
    upkeep_ = std::thread([this, first_upkeep] { run_upkeep(first_upkeep); });
}

void Scheduler::stop() {
    {
        std::lock_guard lock(mutex_);
        if (!started_ || stopped_) return;
        stopped_ = true;
        stopping_ = true;
    }
    wake_cv_.notify_all();
    if (feeder_.joinable()) feeder_.join();
    // The engine delivers what is already durable (applied as usual) and
    // drops the rest without reporting it; those items are still active in
    // the database and go back to the queue below.
    engine_->stop();
    {
        std::lock_guard lock(mutex_);
        upkeep_stopping_ = true;
    }
    upkeep_cv_.notify_all();
    if (upkeep_.joinable()) upkeep_.join();
    // One last try for results the store refused; whatever it still refuses
    // is lost, and its items go back to the queue below with the rest.
    commit({}, nullptr, true);
    {
        std::lock_guard commit_lock(commit_mutex_);
        if (!pending_results_.empty())
            spdlog::error(
                "scheduler stopped with {} results the store did not take; their items are "
                "downloaded again",
                pending_results_.size());
        pending_results_.clear();
        released_.clear();
        std::lock_guard lock(mutex_);
        counters_.pending_results = 0;
        released_count_ = 0;
    }
    std::int64_t requeued = 0;
    try {
        requeued = jobs_.requeue_active();
    } catch (const std::exception& e) {
        // Unreachable store: this node's claims run out after the lease and
        // any node (or this one's next start) puts them back.
        spdlog::error("scheduler: putting in-flight items back in the queue failed: {}", e.what());
    }
    std::vector<BlobKey> removals;
    {
        std::lock_guard lock(mutex_);
        in_flight_.clear();
        counters_.in_flight = 0;
        removals.swap(pending_blob_removals_);
    }
    remove_unreferenced_blobs(removals);  // the engine is stopped: no rename can race
    idle_cv_.notify_all();
    if (requeued > 0)
        spdlog::info("scheduler stopped; {} in-flight items back in the queue", requeued);
}

void Scheduler::wake() {
    {
        std::lock_guard lock(mutex_);
        wake_pending_ = true;
        idle_ = false;
    }
    wake_cv_.notify_one();
}

bool Scheduler::network_has_room() const {
    // Parked items (a retry wait, a host's pause) are in neither count.
    EngineStats engine = engine_ ? engine_->stats() : EngineStats{};
    return engine.queued + engine.active <
           static_cast<std::size_t>(options_.limits.concurrency) * options_.outstanding_per_slot;
}

std::size_t Scheduler::feeder_room() const {
    // Only memory is bounded here. The network buffer (outstanding_per_slot x
    // concurrency) is the claim's capacity: it fills each user and job up to
    // its max-min target of the buffer (SlotLoad::capacity, counted from
    // Engine::network_load, which leaves parked items out), so a newcomer
    // gets its share even while others fill the buffer, and nobody gets more
    // while everyone holds theirs.
    const auto concurrency = static_cast<std::size_t>(options_.limits.concurrency);
    const std::size_t engine_cap = concurrency * options_.in_engine_per_slot;
    // Before the first submit there is no engine traffic to count.
    EngineStats engine = engine_ ? engine_->stats() : EngineStats{};
    // Parked items (a retry wait, a host's pause) are bounded on their own.
    const std::size_t parked =
        std::min(static_cast<std::size_t>(engine.waiting), in_flight_.size());
    const std::size_t held = in_flight_.size() - parked;
    if (held >= engine_cap || parked >= concurrency * options_.parked_per_slot) return 0;
    return engine_cap - held;
}

void Scheduler::run_feeder() {
    std::unique_lock lock(mutex_);
    while (true) {
        std::size_t room = 0;
        while (!stopping_) {
            // While the store refuses results, claim nothing more: its
            // results could not be stored either. A successful retry wakes us.
            if (!apply_failing_ && (wake_pending_ || watching_network_) &&
                (room = feeder_room()) > 0) {
                // Woken (results came back, or new work): claim, the targets
                // decide. Watching: only once the network buffer has room, a
                // claim per poll would mostly find everyone at their target.
                if (wake_pending_ || network_has_room()) break;
            }
            if ((wake_pending_ || watching_network_) && !apply_failing_) {
                // Work to hand out, but no room yet: transfers end without a
                // notification, so look again shortly. A commit (on_results)
                // or a user action wakes us earlier.
                wake_cv_.wait_for(lock, options_.feeder_poll);
            } else if (options_.claim_poll.count() > 0 && !apply_failing_) {
                // Idle. Other nodes sharing the store add work without
                // telling us: look again after claim_poll unless woken first.
                if (wake_cv_.wait_for(lock, options_.claim_poll) == std::cv_status::timeout)
                    wake_pending_ = true;
            } else {
                wake_cv_.wait(lock);
            }
        }
        if (stopping_) return;
        wake_pending_ = false;
        idle_ = false;  // until a claim finds nothing and nothing is out
        // Cancels left before this claim began are for claims already made:
        // this claim's transaction starts after the pause or cancel behind
        // them committed, so it cannot take those items unless the job was
        // resumed meanwhile (and then they must run).
        early_cancels_.clear();
        early_stopped_jobs_.clear();
        lock.unlock();

        std::vector<ClaimedItem> claimed;
        try {
            // What each user and job holds on the network now: the claim
            // fills the least loaded first (max-min; see scheduler.hpp).
            SlotLoad load;
            for (const auto& [key, n] : engine_->network_load())
                load.add(static_cast<UserId>(key.user), static_cast<JobId>(key.job),
                         static_cast<std::int64_t>(n));
            load.capacity =
                static_cast<std::int64_t>(static_cast<std::size_t>(options_.limits.concurrency) *
                                          options_.outstanding_per_slot);
            claimed = jobs_.claim_next_items(room, load);
            if (claim_failing_) spdlog::info("scheduler: claiming items works again");
            claim_failing_ = false;
        } catch (const std::exception& e) {
            // A database failure here is not the user's fault and not worth
            // dying for; try again on the next wake or claim_poll. Logged
            // once per streak, not once per attempt.
            if (!claim_failing_) spdlog::error("scheduler: claiming items failed: {}", e.what());
            claim_failing_ = true;
        }

        // Before taking the lock: reading a job's options may ask the store.
        std::vector<std::shared_ptr<const RequestOptions>> options;
        options.reserve(claimed.size());
        for (const auto& item : claimed) options.push_back(options_of(item.job));

        lock.lock();
        if (stopping_) {
            // Claimed after stop began: they are active in the database, and
            // stop() requeues every active item once the engine has stopped.
            return;
        }
        std::vector<FetchRequest> requests;
        requests.reserve(claimed.size());
        std::vector<std::uint64_t> cancelled_early;
        for (std::size_t i = 0; i < claimed.size(); ++i) {
            auto& item = claimed[i];
            in_flight_.emplace(item.item, InFlight{item.job, item.lease});
            if (early_cancels_.erase(item.item) > 0 || early_stopped_jobs_.contains(item.job))
                cancelled_early.push_back(static_cast<std::uint64_t>(item.item));
            requests.push_back({static_cast<std::uint64_t>(item.item), std::move(item.url),
                                std::move(options[i]),
                                DispatchKey{static_cast<std::uint64_t>(item.user),
                                            static_cast<std::uint64_t>(item.job)}});
        }
        counters_.in_flight = in_flight_.size();
        if (claimed.size() == room) wake_pending_ = true;  // maybe more to claim once there is room
        // Claimed some: there may be more, for when transfers end. Claimed
        // none: nothing to do, or everyone holds their share; a commit wakes
        // us either way.
        watching_network_ = !claimed.empty();
        idle_ = claimed.empty() && in_flight_.empty() && counters_.pending_results == 0 &&
                released_count_ == 0;
        if (idle_) idle_cv_.notify_all();
        // Submitted under the lock, so that cancel_in_engine() (which takes
        // it) either finds these items in flight and cancels them after
        // this, or finds them not yet in flight and leaves word for us (a
        // pause can come between the claim's commit and this point: its
        // cancel, sent first, would find nothing in the engine, and the
        // transfers would then run as if it had never come).
        if (!requests.empty()) engine_->submit(std::move(requests));
        if (!cancelled_early.empty()) engine_->cancel(cancelled_early);
        early_cancels_.clear();
        early_stopped_jobs_.clear();
    }
}

std::shared_ptr<const RequestOptions> Scheduler::options_of(JobId job) {
    // A job's options never change, so one read per job is enough; the cache
    // is only the feeder's and is dropped whole when it grows past a bound
    // (the jobs still running are read again, once each).
    if (auto found = options_cache_.find(job); found != options_cache_.end()) return found->second;
    if (options_cache_.size() >= kOptionsCacheJobs) options_cache_.clear();
    std::shared_ptr<const RequestOptions> options;
    try {
        auto stored = jobs_.request_options(job);
        if (stored && !stored->empty())
            options = std::make_shared<const RequestOptions>(std::move(*stored));
    } catch (const std::exception& e) {
        // Not cached: the next claim of this job's items asks again.
        spdlog::error("scheduler: reading job {}'s request options failed: {}", job, e.what());
        return nullptr;
    }
    options_cache_.emplace(job, options);
    return options;
}

namespace {

// The store's view of an engine result: what became of the item, no paths.
ItemOutcome outcome_of(const FetchResult& result) {
    ItemOutcome outcome;
    outcome.item = static_cast<ItemId>(result.id);
    outcome.reason = result.reason;
    outcome.http_status = result.http_status;
    outcome.attempts = result.attempts;
    if (result.ok()) {
        outcome.sha256 = result.sha256;
        outcome.bytes = result.bytes;
        outcome.format = result.format;
        outcome.width = result.width;
        outcome.height = result.height;
    }
    return outcome;
}

}  // namespace

void Scheduler::on_results(std::vector<FetchResult>&& results) {
    std::vector<ItemOutcome> outcomes;
    outcomes.reserve(results.size());
    {
        std::lock_guard lock(mutex_);
        for (const FetchResult& result : results) {
            outcomes.push_back(outcome_of(result));
            auto found = in_flight_.find(outcomes.back().item);
            if (found != in_flight_.end()) outcomes.back().lease = found->second.lease;
        }
    }
    commit(std::move(outcomes), &results);
}

std::size_t Scheduler::drop_oldest_pending() {
    const std::size_t max = options_.max_pending_results;
    if (pending_results_.size() <= max) return 0;
    const std::size_t n = pending_results_.size() - max;
    for (std::size_t i = 0; i < n; ++i) {
        // The download is lost; its item is still leased to this node (and
        // renewed). A cancelled outcome puts it back in the queue once the
        // store takes writes again. These are small, and few: the feeder
        // claims nothing while the store refuses results, so no more can be
        // dropped in one failure streak than the engine held when it began.
        ItemOutcome give_back;
        give_back.item = pending_results_[i].item;
        give_back.lease = pending_results_[i].lease;
        give_back.reason = FailureReason::cancelled;
        released_.push_back(std::move(give_back));
    }
    pending_results_.erase(pending_results_.begin(),
                           pending_results_.begin() + static_cast<std::ptrdiff_t>(n));
    if (!dropping_logged_)
        spdlog::error(
            "scheduler: more than {} results waiting for the store; dropping the oldest (their "
            "items are downloaded again)",
            max);
    dropping_logged_ = true;
    dropped_streak_ += n;
    return n;
}

void Scheduler::commit(std::vector<ItemOutcome>&& fresh, const std::vector<FetchResult>* returned,
                       bool force) {
    using Clock = std::chrono::steady_clock;
    ApplySummary summary;
    bool stored = false;
    bool failing = false;
    std::size_t unstored = 0, released = 0, dropped = 0;
    auto retry_at = Clock::time_point::max();
    {
        std::lock_guard commit_lock(commit_mutex_);
        pending_results_.insert(pending_results_.end(), std::make_move_iterator(fresh.begin()),
                                std::make_move_iterator(fresh.end()));
        dropped = drop_oldest_pending();
        auto at = now();
        bool waiting = !pending_results_.empty() || !released_.empty();
        // While failing, results arriving before the backoff is over just
        // queue up behind the others (in order); the upkeep thread retries.
        if (waiting && (!failing_ || force || at >= next_retry_)) {
            std::vector<ItemOutcome> with_released;
            const std::vector<ItemOutcome>* batch = &pending_results_;
            if (!released_.empty()) {
                with_released = released_;
                with_released.insert(with_released.end(), pending_results_.begin(),
                                     pending_results_.end());
                batch = &with_released;
            }
            try {
                summary = jobs_.apply_outcomes(*batch);
                stored = true;
                if (failing_)
                    spdlog::info(
                        "scheduler: the store takes results again: {} stored after {} failed "
                        "attempts{}",
                        batch->size(), failed_attempts_,
                        dropped_streak_
                            ? fmt::format(" ({} results were dropped meanwhile)", dropped_streak_)
                            : std::string());
                pending_results_.clear();
                released_.clear();
                failing_ = false;
                failed_attempts_ = 0;
                dropping_logged_ = false;
                dropped_streak_ = 0;
                retry_delay_ = options_.apply_retry_min;
            } catch (const std::exception& e) {
                // Not dropped: the items stay leased to this node (renewed
                // by the upkeep) until their results are stored. Logged once
                // per streak; the recovery is logged too.
                if (!failing_)
                    spdlog::error(
                        "scheduler: storing {} results failed, keeping them and retrying: {}",
                        batch->size(), e.what());
                failing_ = true;
                ++failed_attempts_;
                next_retry_ = at + retry_delay_;
                retry_delay_ = std::min(retry_delay_ * 2, options_.apply_retry_max);
            }
        }
        failing = failing_;
        if (failing_) retry_at = next_retry_;
        unstored = pending_results_.size();
        released = released_.size();
    }

    // Blob removals are safe once every blob renamed so far is referenced in
    // the database if an item uses it: nothing may wait unstored. On the
    // committer thread the next rename happens only after we return; on any
    // other thread only while nothing is in the engine (the feeder cannot
    // submit while we hold mutex_).
    std::vector<BlobKey> removals = std::move(summary.orphaned);
    if (returned) {
        std::lock_guard lock(mutex_);
        if (unstored == 0) {
            removals.insert(removals.end(), pending_blob_removals_.begin(),
                            pending_blob_removals_.end());
            pending_blob_removals_.clear();
        } else {
            pending_blob_removals_.insert(pending_blob_removals_.end(), removals.begin(),
                                          removals.end());
            removals.clear();
        }
    } else if (stored) {
        std::lock_guard lock(mutex_);
        if (in_flight_.empty()) {
            removals.insert(removals.end(), pending_blob_removals_.begin(),
                            pending_blob_removals_.end());
            pending_blob_removals_.clear();
            remove_unreferenced_blobs(removals);
        } else {
            pending_blob_removals_.insert(pending_blob_removals_.end(), removals.begin(),
                                          removals.end());
        }
        removals.clear();
    }
    remove_unreferenced_blobs(removals);

    {
        std::lock_guard lock(mutex_);
        if (returned) {
            for (const auto& result : *returned) {
                in_flight_.erase(static_cast<ItemId>(result.id));
                if (result.ok() || result.reason == FailureReason::cancelled) continue;
                auto index = static_cast<std::size_t>(result.reason);
                if (index < counters_.failed_by_reason.size()) ++counters_.failed_by_reason[index];
            }
        }
        counters_.done += summary.done;
        counters_.failed += summary.failed;
        counters_.cancelled += summary.cancelled;
        counters_.fenced += summary.fenced;
        counters_.bytes += summary.bytes;
        counters_.in_flight = in_flight_.size();
        counters_.pending_results = unstored;
        counters_.dropped_results += dropped;
        released_count_ = released;
        apply_failing_ = failing;
        retry_at_ = retry_at;
        upkeep_poked_ = true;
        if (returned || stored) wake_pending_ = true;
    }
    wake_cv_.notify_one();
    upkeep_cv_.notify_one();  // the next retry may be due at another time now
}

void Scheduler::run_upkeep(std::chrono::steady_clock::time_point next_upkeep) {
    using Clock = std::chrono::steady_clock;
    const auto interval = options_.lease / 3;
    std::unique_lock lock(mutex_);
    while (!upkeep_stopping_) {
        auto until = std::min(next_upkeep, retry_at_);
        // Woken by stop, by a commit that moved retry_at_, by clock_moved(),
        // or when `until` comes by the clock (a driven clock may not get
        // there in real time: clock_moved() then wakes us).
        auto woken = [&] { return upkeep_stopping_ || upkeep_poked_; };
        if (until == Clock::time_point::max())
            upkeep_cv_.wait(lock, woken);
        else
            upkeep_cv_.wait_for(lock, until - now(), woken);
        upkeep_poked_ = false;
        if (upkeep_stopping_) break;
        auto at = now();
        bool retry = at >= retry_at_;
        bool upkeep = at >= next_upkeep;
        if (!retry && !upkeep) continue;
        lock.unlock();
        if (retry) commit({}, nullptr);
        if (upkeep) {
            upkeep_leases();
            // Every third of a lease from the first, by the schedule; after a
            // stall longer than that, a third of a lease from now (no burst).
            next_upkeep = next_upkeep + interval > at ? next_upkeep + interval : at + interval;
        }
        lock.lock();
    }
}

void Scheduler::upkeep_leases() {
    std::vector<HeldClaim> held;
    {
        std::lock_guard lock(mutex_);
        held.reserve(in_flight_.size());
        for (const auto& [item, claim] : in_flight_) held.push_back({item, claim.lease});
    }
    std::int64_t expired = 0;
    std::vector<ItemId> released;
    try {
        jobs_.renew_leases();
        expired = jobs_.expire_leases();
        released = jobs_.released_claims(held);
        if (upkeep_failing_) spdlog::info("scheduler: renewing leases works again");
        upkeep_failing_ = false;
    } catch (const std::exception& e) {
        // This node's claims run out if this goes on for a lease: other nodes
        // then redo them and our late results are fenced. Never fatal.
        if (!upkeep_failing_) spdlog::error("scheduler: renewing leases failed: {}", e.what());
        upkeep_failing_ = true;
    }
    if (expired > 0) {
        spdlog::info("scheduler: {} items whose lease ran out are back in the queue", expired);
        wake();
    }
    if (!released.empty()) {
        // Paused, cancelled or deleted on another node whose notification
        // never came (stop_jobs), or lost to a later claim while this node
        // was cut off: their transfers would only be wasted.
        spdlog::info("scheduler: stopping {} transfers this node no longer holds", released.size());
        cancel_in_engine(released);
    }
}

void Scheduler::stop_jobs(const std::vector<JobId>& jobs) {
    if (jobs.empty()) return;
    const std::unordered_set<JobId> stopped(jobs.begin(), jobs.end());
    std::vector<ItemId> items;
    {
        std::lock_guard lock(mutex_);
        for (const auto& [item, claim] : in_flight_)
            if (stopped.contains(claim.job)) items.push_back(item);
        // The claim in progress may hold items of these jobs, not in flight
        // yet: the feeder cancels them right after submitting them.
        early_stopped_jobs_.insert(jobs.begin(), jobs.end());
    }
    cancel_in_engine(items);
}

void Scheduler::cancel_in_engine(const std::vector<ItemId>& ids) {
    if (ids.empty()) return;
    std::vector<std::uint64_t> engine_ids(ids.begin(), ids.end());
    std::lock_guard lock(mutex_);
    if (!engine_ || stopped_) return;
    // An item claimed but not yet submitted (the feeder is between the
    // claim's commit and engine_->submit) is not in flight yet: the feeder
    // cancels it right after submitting it. Word left for an item that is
    // not this node's (already back, or another node's) is dropped when
    // that claim is submitted or the next one begins.
    for (ItemId id : ids)
        if (!in_flight_.count(id)) early_cancels_.insert(id);
    // Under mutex_, after any submit of these ids (the feeder submits under
    // it): the engine sees the cancel after the transfer. Only queues a
    // message: the engine never calls back into us from here.
    engine_->cancel(engine_ids);
}

void Scheduler::remove_blobs_when_safe(const std::vector<BlobKey>& blobs) {
    if (blobs.empty()) return;
    // A blob may only go when no download of the same bytes can be between
    // the engine's rename and apply_outcomes (it would then be reported done
    // with its file gone). With nothing in flight, and the feeder unable to
    // submit while we hold mutex_, that is now; otherwise the committer
    // thread does it right after its next apply, when everything renamed so
    // far is visible in the database.
    std::unique_lock lock(mutex_);
    if (in_flight_.empty() || stopped_) {
        remove_unreferenced_blobs(blobs);
    } else {
        pending_blob_removals_.insert(pending_blob_removals_.end(), blobs.begin(), blobs.end());
    }
}

void Scheduler::remove_unreferenced_blobs(const std::vector<BlobKey>& blobs) {
    for (const auto& blob : blobs) {
        if (blob.sha256.empty() || jobs_.blob_referenced(blob.sha256)) continue;
        try {
            blobs_.remove(blob.sha256, blob.format);
        } catch (const std::exception& e) {
            spdlog::warn("deleting blob {} failed: {}", blob.sha256, e.what());
        }
    }
}

void Scheduler::clock_moved() {
    {
        std::lock_guard lock(mutex_);
        upkeep_poked_ = true;
    }
    upkeep_cv_.notify_all();
}

SchedulerStats Scheduler::stats() const {
    SchedulerStats out;
    std::size_t released_count_copy = 0;
    {
        std::lock_guard lock(mutex_);
        out = counters_;
        released_count_copy = released_count_;
    }
    out.leased = out.in_flight + out.pending_results + released_count_copy;
    if (engine_) out.engine = engine_->stats();
    try {
        out.queued = jobs_.queued_total();
        out.leased_total = jobs_.leased_total();
    } catch (const std::exception& e) {
        // The database is unreachable (cluster mode): the gauges read 0 and
        // /healthz says why; the node's own counters above are still right.
        spdlog::debug("scheduler: reading queue gauges failed: {}", e.what());
    }
    return out;
}

bool Scheduler::wait_idle(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return idle_cv_.wait_for(lock, timeout, [&] {
        return stopped_ || (idle_ && !wake_pending_ && in_flight_.empty() &&
                            counters_.pending_results == 0 && released_count_ == 0);
    });
}

}  // namespace litchi
