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
    std::int64_t requeued = jobs_.requeue_active();
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

std::size_t Scheduler::feeder_room() const {
    const auto concurrency = static_cast<std::size_t>(options_.limits.concurrency);
    const std::size_t engine_cap = concurrency * options_.in_engine_per_slot;
    const std::size_t network_cap = concurrency * options_.outstanding_per_slot;
    if (in_flight_.size() >= engine_cap) return 0;
    // Before the first submit there is no engine traffic to count.
    EngineStats engine = engine_ ? engine_->stats() : EngineStats{};
    std::size_t on_network = static_cast<std::size_t>(engine.queued + engine.active);
    if (on_network >= network_cap) return 0;
    return std::min(engine_cap - in_flight_.size(), network_cap - on_network);
}

void Scheduler::run_feeder() {
    std::unique_lock lock(mutex_);
    while (true) {
        std::size_t room = 0;
        while (!stopping_) {
            if (wake_pending_ && (room = feeder_room()) > 0) break;
            if (wake_pending_) {
                // Work to hand out, but the network is full: transfers end
                // without a notification, so look again shortly. A commit
                // (on_results) or a user action wakes us earlier.
                wake_cv_.wait_for(lock, options_.feeder_poll);
            } else {
                wake_cv_.wait(lock);
            }
        }
        if (stopping_) return;
        wake_pending_ = false;
        idle_ = false;  // until a claim finds nothing and nothing is out
        lock.unlock();

        std::vector<ClaimedItem> claimed;
        try {
            claimed = jobs_.claim_next_items(room);
        } catch (const std::exception& e) {
            // A database failure here is not the user's fault and not worth
            // dying for; try again on the next wake (results keep coming or
            // a user acts).
            spdlog::error("scheduler: claiming items failed: {}", e.what());
        }

        lock.lock();
        if (stopping_) {
            // Claimed after stop began: they are active in the database, and
            // stop() requeues every active item once the engine has stopped.
            return;
        }
        std::vector<FetchRequest> requests;
        requests.reserve(claimed.size());
        for (auto& item : claimed) {
            in_flight_.emplace(item.item, InFlight{item.job, item.lease});
            requests.push_back({static_cast<std::uint64_t>(item.item), std::move(item.url)});
        }
        counters_.in_flight = in_flight_.size();
        if (claimed.size() == room) wake_pending_ = true;  // maybe more to claim once there is room
        idle_ = claimed.empty() && in_flight_.empty();
        if (idle_) idle_cv_.notify_all();
        if (!requests.empty()) {
            lock.unlock();
            engine_->submit(std::move(requests));
            lock.lock();
        }
    }
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
    ApplySummary summary;
    try {
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
        summary = jobs_.apply_outcomes(outcomes);
    } catch (const std::exception& e) {
        // The items stay active in the database; the next start requeues them.
        spdlog::error("scheduler: storing {} results failed: {}", results.size(), e.what());
    }
    // On the committer thread, after the apply: every blob renamed so far
    // is referenced in the database if an item uses it, and the next rename
    // happens only after we return. Safe to delete what nobody references.
    std::vector<BlobKey> removals = std::move(summary.orphaned);
    {
        std::lock_guard lock(mutex_);
        removals.insert(removals.end(), pending_blob_removals_.begin(),
                        pending_blob_removals_.end());
        pending_blob_removals_.clear();
    }
    remove_unreferenced_blobs(removals);
    {
        std::lock_guard lock(mutex_);
        for (const auto& result : results) {
            in_flight_.erase(static_cast<ItemId>(result.id));
            if (result.ok() || result.reason == FailureReason::cancelled) continue;
            auto index = static_cast<std::size_t>(result.reason);
            if (index < counters_.failed_by_reason.size()) ++counters_.failed_by_reason[index];
        }
        counters_.done += summary.done;
        counters_.failed += summary.failed;
        counters_.cancelled += summary.cancelled;
        counters_.bytes += summary.bytes;
        counters_.in_flight = in_flight_.size();
        wake_pending_ = true;
    }
    wake_cv_.notify_one();
}

void Scheduler::cancel_in_engine(const std::vector<ItemId>& ids) {
    if (ids.empty()) return;
    std::vector<std::uint64_t> engine_ids(ids.begin(), ids.end());
    {
        std::lock_guard lock(mutex_);
        if (!engine_ || stopped_) return;
    }
    // Not under mutex_: the engine's committer thread takes it in on_results.
    // The engine lives until our destructor and ignores ids it no longer has.
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

SchedulerStats Scheduler::stats() const {
    SchedulerStats out;
    {
        std::lock_guard lock(mutex_);
        out = counters_;
    }
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
    return idle_cv_.wait_for(
        lock, timeout, [&] { return stopped_ || (idle_ && !wake_pending_ && in_flight_.empty()); });
}

}  // namespace litchi
