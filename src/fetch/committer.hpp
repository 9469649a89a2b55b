// The last two stages of the engine: the probe pool (per-file image checks,
// in parallel and off the network thread) and the committer (group commit of
// whole batches into the blob store, then delivery of the results).
//
// Failures skip the probe pool but still go through the committer, so results
// reach the caller on one thread, in batches, and only once durable.
//
// Hand-offs are batched: a header check takes microseconds, less than waking
// a thread, so the network thread hands over everything one pass of its loop
// finished with one lock and one wake-up, a probe thread takes a share of the
// queue at once, and passes all its results to the committer together.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "blobs/blob_store.hpp"
#include "core/config.hpp"
#include "fetch/engine.hpp"

namespace litchi {

class PartPool;
struct Transfer;

struct CommitItem {
    FetchResult result;
    std::optional<PendingBlob> blob;  // a done file still under its .part name
};

// One thread. Makes a whole batch durable at once (one syncfs, or an fsync
// per file for tiny batches), renames it into the blob store, syncs each
// folder once, then hands the batch to `on_results` and tells `on_delivered`
// how many results it delivered.
class Committer {
  public:
    Committer(BlobStore& blobs, Engine::ResultsHandler on_results,
              std::function<void(std::size_t)> on_delivered);
    ~Committer() { close(); }
    Committer(const Committer&) = delete;
    Committer& operator=(const Committer&) = delete;

    void push(CommitItem item);
    // A batch at once: one lock, one wake-up.
    void push(std::vector<CommitItem>&& items);

    // Delivers what is queued, then joins the thread. Idempotent.
    void close();

  private:
    void loop();
    void commit_batch(std::vector<CommitItem>& batch);

    BlobStore& blobs_;
    Engine::ResultsHandler on_results_;
    std::function<void(std::size_t)> on_delivered_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::vector<CommitItem> queue_;
    bool closing_ = false;
    std::thread thread_;
};

// `threads` threads. Each takes a share of the downloaded files (all of them
// with --verify header, where a check is microseconds; an even split with
// --verify decode, where it is a full decode), probes them (magic bytes,
// declared size, structure), closes them, and passes them on to the committer
// together; between batches they refill the part pool.
class ProbePool {
  public:
    ProbePool(const FetchLimits& limits, BlobStore& blobs, PartPool& parts, Committer& committer,
              int threads);
    ~ProbePool() { close(); }
    ProbePool(const ProbePool&) = delete;
    ProbePool& operator=(const ProbePool&) = delete;

    // A network thread: a finished 2xx download with a non-empty body, held
    // in that thread's own `batch` (and counted in flight) until flush().
    void add(std::vector<std::unique_ptr<Transfer>>& batch, std::unique_ptr<Transfer> t);
    // A network thread: hands over its batch, with one lock and one wake-up.
    void flush(std::vector<std::unique_ptr<Transfer>>& batch);

    // Probes what is queued, then joins the threads. Idempotent.
    void close();

    // Downloaded, being checked (not yet handed to the committer).
    std::uint64_t in_flight() const { return in_flight_; }

  private:
    void loop();
    CommitItem probe_one(std::unique_ptr<Transfer> t);

    const FetchLimits& limits_;
    BlobStore& blobs_;
    PartPool& parts_;
    Committer& committer_;
    std::atomic<std::uint64_t> in_flight_{0};
    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<std::unique_ptr<Transfer>> queue_;
    bool closing_ = false;
    std::vector<std::thread> threads_;
};

}  // namespace litchi
