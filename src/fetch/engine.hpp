// The download engine: one libcurl multi handle on a dedicated network thread,
// a small pool that checks images and makes them durable, and a committer
// that renames finished files into the blob store in batches (group commit).
//
//   submit() ──> network thread (socket actions over epoll; SSRF guard; size
//                cap; sha256 while streaming to a .part file; retries with backoff)
//            ──> probe pool (magic bytes, declared size, structure; batches)
//            ──> committer (rename batch, fsync folders once) ──> on_results(batch)
//
// Results are delivered in batches on the committer thread, only after every
// done file in the batch is durable under its final name. `litchi fetch` and
// `litchi serve` both drive this class; neither knows how it works inside.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/config.hpp"
#include "core/image_format.hpp"
#include "core/reason.hpp"
#include "core/request_options.hpp"
#include "fetch/fair_queue.hpp"

namespace litchi {

class BlobStore;

struct FetchRequest {
    std::uint64_t id = 0;  // the caller's; echoed in the result
    std::string url;
    // The job's User-Agent, headers, Referer and tighter limits
    // (core/request_options.hpp), shared by its requests; nullptr: none.
    std::shared_ptr<const RequestOptions> options{};
    // Whose it is: transfer slots are shared max-min across users, then a
    // user's jobs (fetch/fair_queue.hpp). `litchi fetch` leaves it (0, 0).
    DispatchKey key{};
};

struct FetchResult {
    std::uint64_t id = 0;
    std::string url;                             // as submitted
    FailureReason reason = FailureReason::none;  // none means done
    int http_status = 0;                         // last HTTP status seen (0 if none)
    int attempts = 0;         // network attempts made (redirect hops are not attempts)
    std::string sha256;       // lowercase hex; done only
    std::uint64_t bytes = 0;  // body size; done only
    ImageFormat format = ImageFormat::unknown;
    int width = 0, height = 0, pages = 0;
    std::string file;    // relative to the blob store root; done only
    std::string detail;  // short text for logs; never holds credentials

    bool ok() const { return reason == FailureReason::none; }
};

struct EngineStats {
    std::uint64_t bytes_received = 0;  // body bytes over the wire, all attempts
    std::uint64_t queued = 0;          // submitted, ready to start (not waiting)
    // Parked: waiting out a retry delay, a host's Retry-After pause or its
    // probe. Holds no transfer slot; the server does not count it in its
    // claim buffer either.
    std::uint64_t waiting = 0;
    std::uint64_t active = 0;   // transfers in the multi handle
    std::uint64_t probing = 0;  // downloaded, being checked or committed
    // Transfers put back in the queue, before any answer, so that a group
    // below its share of -j could start one (fetch/fair_queue.hpp).
    std::uint64_t preempted = 0;
};

class Engine {
  public:
    using ResultsHandler = std::function<void(std::vector<FetchResult>&&)>;

    // `blobs` must outlive the engine. `on_results` runs on the committer
    // thread; it may call submit() and cancel().
    Engine(const FetchLimits& limits, BlobStore& blobs, ResultsHandler on_results);
    ~Engine();  // stop() then join
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    // Thread-safe. A free slot goes to the queued request of the user, then
    // the job, then the host with the fewest transfers running (ties in turn;
    // fetch/fair_queue.hpp); within one group and host, in submission order.
    // Subject to the global (-j) and per-host limits, --per-host-rate and host
    // health (items of a host that is down fail at once with its reason; items
    // of a paused or probing host are parked and hold no share).
    void submit(std::vector<FetchRequest> requests);

    // Thread-safe. A queued or running request ends with reason `cancelled`.
    // Unknown or finished ids are ignored.
    void cancel(const std::vector<std::uint64_t>& ids);

    // Aborts everything still queued or running without reporting it (the
    // caller still owns those ids: the server requeues them, the CLI leaves
    // them out of the manifest), delivers results already durable, removes
    // every .part file, and joins the threads. Idempotent.
    void stop();

    // Blocks until nothing is queued, running, probing or uncommitted.
    void wait_idle();

    EngineStats stats() const;

    // Per group, requests submitted and not yet off the network: queued
    // (ready to start) or downloading. Parked requests (a retry wait, a
    // host's pause or probe) are left out, as in EngineStats::queued, and so
    // are groups with none.
    // The scheduler claims for the least loaded first. Thread-safe.
    std::vector<std::pair<DispatchKey, std::uint64_t>> network_load() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// libcurl's global setup, and the program name libvips will be started with
// (it is loaded on first use); call once from main before any Engine.
void init_fetch_libraries(const char* argv0);

}  // namespace litchi
