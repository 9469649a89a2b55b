// One download as the network thread sees it: the URL and its current hop,
// the easy handle, and what one attempt has read so far. The libcurl
// callbacks (the SSRF guard on every socket, the body writer) get the
// Transfer as their data, so each knows which download a socket or a chunk
// belongs to. Only the network thread touches a Transfer while it is queued
// or running; the probe pool owns it after that.
#pragma once

#include <curl/curl.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/image_format.hpp"
#include "core/reason.hpp"
#include "core/request_options.hpp"
#include "crypto/sha256.hpp"
#include "fetch/fair_queue.hpp"

namespace litchi {

class PartPool;

using EngineClock = std::chrono::steady_clock;

// Bodies of non-2xx responses are read (so the connection can be reused) but
// only this much; past it the transfer is cut and the connection dropped.
constexpr std::size_t kMaxDiscardedBody = 256 * 1024;

// The largest body kept in memory until the transfer ends (Transfer::memory),
// and the most all of one engine's such bodies hold at once (bodies waiting
// for the probe included; on a slow disk they queue up to it, so it is what
// peak RSS grows by: 16 MiB took `fetch` past 64 MiB there).
inline constexpr std::size_t kMemoryBody = 256 * 1024;
inline constexpr std::size_t kMemoryBodies = 8 * 1024 * 1024;

// A body kept in memory, counted in its engine's total (`held`).
class MemoryBody {
  public:
    MemoryBody() = default;
    MemoryBody(const MemoryBody&) = delete;
    MemoryBody& operator=(const MemoryBody&) = delete;
    ~MemoryBody() { release(); }

    void attach(std::atomic<std::size_t>* held) { held_ = held; }
    void reserve(std::size_t n) { bytes_.reserve(n); }
    // Appends when the body stays within kMemoryBody and the engine's bodies
    // within kMemoryBodies; false (nothing appended) otherwise.
    bool try_append(const char* data, std::size_t len);
    std::span<const unsigned char> bytes() const { return bytes_; }
    bool empty() const { return bytes_.empty(); }
    // Frees the bytes and takes them out of the engine's total.
    void release();

  private:
    std::vector<unsigned char> bytes_;
    std::atomic<std::size_t>* held_ = nullptr;
};

struct Transfer {
    // What the libcurl callbacks need. `limits` is the engine's, or
    // own_limits when the request's job has its own (tighter) ones.
    const FetchLimits* limits = nullptr;
    std::shared_ptr<const RequestOptions> options;  // the job's; nullptr: none
    std::unique_ptr<FetchLimits> own_limits;
    // The request headers curl sends (-H and the job's), freed with the transfer.
    struct HeaderListFree {
        void operator()(curl_slist* list) const { curl_slist_free_all(list); }
    };
    std::unique_ptr<curl_slist, HeaderListFree> header_list;
    std::atomic<std::uint64_t>* bytes_received = nullptr;
    std::atomic<std::size_t>* memory_held = nullptr;  // the engine's MemoryBody total
    PartPool* parts = nullptr;

    std::uint64_t id = 0;
    DispatchKey key;                       // whose: the fair dispatch's group
    bool on_network = true;                // counted in network_load (not parked, not off it)
    EngineClock::time_point started_at{};  // of the current hop (preemption takes the newest)
    std::string original_url;
    std::string url;   // current hop
    std::string host;  // per-host accounting key (scheme://host:port)
    CURL* easy = nullptr;
    // The engine's network thread whose multi handle runs it (engine.cpp);
    // null while it is not running. Set and read under the dispatch lock.
    void* lane = nullptr;
    int attempts = 0;
    int redirects = 0;
    bool cancelled = false;
    // The next start is a redirect hop or a preempted attempt again, not a new attempt.
    bool redirect_hop = false;
    bool is_probe = false;  // this attempt is its host's probe (host_health.hpp)

    // Per attempt.
    int fd = -1;
    std::filesystem::path part;
    // A body of up to kMemoryBody bytes (nearly every image) is kept here and
    // written to `part` once, by the probe thread, which checks it from memory
    // (no read back); a larger one, or one that would take the engine's bodies
    // past kMemoryBodies, goes to `part` as it arrives. `in_memory`: nothing
    // of the body is in the file yet.
    MemoryBody memory;
    bool in_memory = true;
    // The body's SHA-256: fed as the body arrives once it goes to the file;
    // a body kept in memory is hashed whole by the probe thread.
    Sha256 sha;
    std::uint64_t bytes = 0;
    std::size_t discarded = 0;
    unsigned char head[kSniffBytes]{};
    std::size_t head_len = 0;
    long status = 0;
    bool status_checked = false;
    bool body_wanted = false;
    bool blocked_seen = false;  // the guard refused at least one address
    FailureReason abort_reason = FailureReason::none;
    std::string detail;
    std::string retry_after;
    EngineClock::time_point not_before{};  // retry wait
};

// scheme://authority: what a connection is reused for, and the per-host key.
std::string host_key(const std::string& url);

// Sets every option of one attempt on `t.easy` (which must be fresh or reset):
// the URL of the current hop, limits and timeouts, the SSRF guard on every
// socket, and the body writer.
void configure_easy(Transfer& t, const FetchLimits& limits);

// Writes the body kept in memory to the .part file (the memory stays until
// the caller clears it); false (errno set) when the write fails.
bool write_memory_body(Transfer& t);

// Forgets what the previous attempt read (its .part file goes away).
void reset_attempt(Transfer& t);

// Closes and removes the attempt's .part file, if any.
void close_part(Transfer& t);

}  // namespace litchi
