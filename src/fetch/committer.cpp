// Probe and commit: the stages after the network (see committer.hpp).
#include "fetch/committer.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <span>
#include <utility>

#include "fetch/part_pool.hpp"
#include "fetch/probe.hpp"
#include "fetch/transfer.hpp"

namespace litchi {

// ---- committer ------------------------------------------------------------

Committer::Committer(BlobStore& blobs, Engine::ResultsHandler on_results,
                     std::function<void(std::size_t)> on_delivered)
    : blobs_(blobs), on_results_(std::move(on_results)), on_delivered_(std::move(on_delivered)) {
    thread_ = std::thread([this] { loop(); });
}

void Committer::push(CommitItem item) {
    {
        std::lock_guard lock(mutex_);
        queue_.push_back(std::move(item));
    }
    cv_.notify_one();
}

void Committer::push(std::vector<CommitItem>&& items) {
    if (items.empty()) return;
    {
        std::lock_guard lock(mutex_);
        if (queue_.empty())
            queue_ = std::move(items);
        else
            queue_.insert(queue_.end(), std::make_move_iterator(items.begin()),
                          std::make_move_iterator(items.end()));
    }
    items.clear();
    cv_.notify_one();
}

void Committer::close() {
    {
        std::lock_guard lock(mutex_);
        closing_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void Committer::loop() {
    while (true) {
        std::vector<CommitItem> batch;
        {
            std::unique_lock lock(mutex_);
            cv_.wait(lock, [this] { return closing_ || !queue_.empty(); });
            if (queue_.empty()) return;
            batch.swap(queue_);
        }
        commit_batch(batch);
    }
}

void Committer::commit_batch(std::vector<CommitItem>& batch) {
    std::vector<PendingBlob> pending;
    std::vector<std::size_t> owners;
    for (std::size_t i = 0; i < batch.size(); ++i) {
        if (batch[i].blob) {
            pending.push_back(*batch[i].blob);
            owners.push_back(i);
        }
    }
    if (!pending.empty()) {
        try {
            auto errors = blobs_.commit(pending);
            for (std::size_t k = 0; k < errors.size(); ++k) {
                if (!errors[k]) continue;
                auto& r = batch[owners[k]].result;
                r.reason = FailureReason::io;
                r.detail = "store: " + errors[k].message();
                r.sha256.clear();
                r.file.clear();
            }
        } catch (const std::exception& e) {
            // A folder that cannot be synced makes no file in it durable.
            for (auto k : owners) {
                auto& r = batch[k].result;
                r.reason = FailureReason::io;
                r.detail = std::string("store: ") + e.what();
                r.sha256.clear();
                r.file.clear();
            }
        }
    }
    std::vector<FetchResult> results;
    results.reserve(batch.size());
    for (auto& item : batch) results.push_back(std::move(item.result));
    std::size_t n = results.size();
    if (on_results_) on_results_(std::move(results));
    if (on_delivered_) on_delivered_(n);
}

// ---- probe pool -----------------------------------------------------------

ProbePool::ProbePool(const FetchLimits& limits, BlobStore& blobs, PartPool& parts,
                     Committer& committer, int threads)
    : limits_(limits), blobs_(blobs), parts_(parts), committer_(committer) {
    for (int i = 0; i < std::max(1, threads); ++i) threads_.emplace_back([this] { loop(); });
}

void ProbePool::add(std::vector<std::unique_ptr<Transfer>>& batch, std::unique_ptr<Transfer> t) {
    ++in_flight_;
    batch.push_back(std::move(t));
}

void ProbePool::flush(std::vector<std::unique_ptr<Transfer>>& batch) {
    if (batch.empty()) return;
    {
        std::lock_guard lock(mutex_);
        for (auto& t : batch) queue_.push_back(std::move(t));
    }
    batch.clear();
    cv_.notify_one();  // the thread that wakes wakes another if it leaves work behind
}

void ProbePool::close() {
    {
        std::lock_guard lock(mutex_);
        closing_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_)
        if (t.joinable()) t.join();
}

void ProbePool::loop() {
    const std::size_t threads = threads_.size();
    std::vector<std::unique_ptr<Transfer>> batch;
    std::vector<CommitItem> results;
    while (true) {
        parts_.refill();
        {
            std::unique_lock lock(mutex_);
            cv_.wait(lock, [this] { return closing_ || !queue_.empty(); });
            if (queue_.empty()) return;  // closing and drained
            // Header checks are microseconds: one thread takes them all, so
            // a batch costs one wake-up. Decoding is not: split it evenly.
            std::size_t take = queue_.size();
            if (limits_.verify == VerifyMode::decode)
                take = (queue_.size() + threads - 1) / std::max<std::size_t>(threads, 1);
            for (std::size_t k = 0; k < take; ++k) {
                batch.push_back(std::move(queue_.front()));
                queue_.pop_front();
            }
            if (!queue_.empty()) cv_.notify_one();
        }
        for (auto& t : batch) results.push_back(probe_one(std::move(t)));
        const std::size_t n = batch.size();
        batch.clear();
        committer_.push(std::move(results));
        results.clear();
        in_flight_ -= n;
    }
}

CommitItem ProbePool::probe_one(std::unique_ptr<Transfer> t) {
    CommitItem item;
    auto& r = item.result;
    r.id = t->id;
    r.url = t->original_url;
    r.http_status = int(t->status);
    r.attempts = t->attempts;
    // A body kept in memory is written here, off the network thread, in one
    // write, and checked from memory.
    ProbeResult probe;
    if (!t->in_memory) {
        probe = probe_image_fd(t->fd, std::span(t->head, t->head_len), t->limits->max_pixels,
                               limits_.verify);
    } else if (!write_memory_body(*t)) {
        probe.reason = FailureReason::io;
        probe.detail = std::string("write: ") + std::strerror(errno);
    } else {
        probe = probe_image_bytes(t->fd, t->memory.bytes(), t->limits->max_pixels, limits_.verify);
        // Hashed here, not on the network thread (transfer.cpp, on_body).
        if (probe.reason == FailureReason::none) {
            auto body = t->memory.bytes();
            t->sha.update(body.data(), body.size());
        }
    }
    t->memory.release();
    r.format = probe.format;
    r.width = probe.width;
    r.height = probe.height;
    r.pages = probe.pages;
    if (probe.reason != FailureReason::none) {
        r.reason = probe.reason;
        r.detail = probe.detail;
    } else if (::close(std::exchange(t->fd, -1)) != 0) {
        r.reason = FailureReason::io;
        r.detail = std::string("close: ") + std::strerror(errno);
    } else {
        r.sha256 = t->sha.finish_hex();
        r.bytes = t->bytes;
        r.file = blobs_.relative_path(r.sha256, r.format);
        // The committer makes it durable together with its batch.
        item.blob = PendingBlob{t->part, r.sha256, r.format};
        t->part.clear();  // the committer owns the file now
    }
    close_part(*t);
    return item;
}

}  // namespace litchi
