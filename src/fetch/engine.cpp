// The download engine. Three stages, each on its own thread(s), joined by queues:
//
//   network thread  one libcurl multi handle driven by curl_multi_poll; new work
//                   and cancels arrive through `inbox_` and curl_multi_wakeup.
//                   Bodies stream to .part files while SHA-256 is computed, so a
//                   body is never held in memory. The SSRF guard runs in the
//                   open-socket callback, on every connection of every hop.
//   probe pool      magic bytes, declared size, libvips header: per-file work,
//                   done in parallel and off the network thread.
//   committer       makes a whole batch durable at once (group commit: one
//                   syncfs, or an fsync per file for tiny batches), renames it
//                   into the blob store, syncs each folder once, then reports it.
//
// Failures skip the probe pool but still go through the committer, so results
// reach the caller on one thread, in batches, and only once durable.
#include "fetch/engine.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <vips/vips.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <queue>
#include <random>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "blobs/blob_store.hpp"
#include "core/address.hpp"
#include "core/backoff.hpp"
#include "core/version.hpp"
#include "crypto/sha256.hpp"
#include "fetch/probe.hpp"
#include "fetch/url_check.hpp"

namespace litchi {
namespace {

using Clock = std::chrono::steady_clock;

// Bodies of non-2xx responses are read (so the connection can be reused) but
// only this much; past it the transfer is cut and the connection dropped.
constexpr std::size_t kMaxDiscardedBody = 256 * 1024;

// Pre-created, open .part files. Creating a file takes a journal handle and
// can stall behind a commit of the filesystem journal (which our own syncfs
// triggers); that must never stall the network thread, so the probe threads
// create files ahead and the network thread only takes one.
class PartPool {
  public:
    PartPool(BlobStore& blobs, std::size_t target) : blobs_(blobs), target_(target) {}
    ~PartPool() { drain(); }

    // Network thread. Falls back to creating one inline when the pool is dry.
    // A pooled part that sat unwritten for half the orphan age is dropped:
    // another node sharing the blob folder may sweep it once it is as old as
    // the orphan age, and a download must not start into a file about to lose
    // its name (one already swept has no links left).
    int take(std::filesystem::path& path) {
        const auto now = std::chrono::system_clock::now();
        while (true) {
            int fd = -1;
            {
                std::lock_guard lock(mutex_);
                if (ready_.empty()) break;
                std::tie(fd, path) = std::move(ready_.back());
                ready_.pop_back();
            }
            struct stat st {};
            if (::fstat(fd, &st) == 0 && st.st_nlink > 0 &&
                now - std::chrono::system_clock::from_time_t(st.st_mtim.tv_sec) <
                    blobs_.orphan_age() / 2)
                return fd;
            ::close(fd);
            std::error_code ec;
            std::filesystem::remove(path, ec);
        }
        return blobs_.create_part(path);
    }

    // Probe threads, between jobs.
    void refill() {
        while (true) {
            {
                std::lock_guard lock(mutex_);
                if (ready_.size() >= target_ || closed_) return;
            }
            std::filesystem::path path;
            int fd = blobs_.create_part(path);
            if (fd < 0) return;  // the network thread will see the error itself
            std::lock_guard lock(mutex_);
            ready_.emplace_back(fd, std::move(path));
        }
    }

    void drain() {
        std::lock_guard lock(mutex_);
        closed_ = true;
        for (auto& [fd, path] : ready_) {
            ::close(fd);
            std::error_code ec;
            std::filesystem::remove(path, ec);
        }
        ready_.clear();
    }

  private:
    BlobStore& blobs_;
    std::size_t target_;
    std::mutex mutex_;
    std::vector<std::pair<int, std::filesystem::path>> ready_;
    bool closed_ = false;
};

struct Transfer {
    // What the libcurl callbacks need, since each easy handle's callback data
    // is its transfer (so the guard knows which transfer a socket is for).
    const FetchLimits* limits = nullptr;
    std::atomic<std::uint64_t>* bytes_received = nullptr;
    PartPool* parts = nullptr;

    std::uint64_t id = 0;
    DispatchKey key;                 // whose: the fair dispatch's group
    bool on_network = true;          // counted in network_load until probed or failed
    Clock::time_point started_at{};  // of the current hop (preemption takes the newest)
    std::string original_url;
    std::string url;   // current hop
    std::string host;  // per-host accounting key (scheme://host:port)
    CURL* easy = nullptr;
    int attempts = 0;
    int redirects = 0;
    bool cancelled = false;
    // The next start is a redirect hop or a preempted attempt again, not a new attempt.
    bool redirect_hop = false;

    // Per attempt.
    int fd = -1;
    std::filesystem::path part;
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
    Clock::time_point not_before{};  // retry wait
    char errbuf[CURL_ERROR_SIZE]{};
};

struct ProbeJob {
    std::unique_ptr<Transfer> t;
};

struct CommitItem {
    FetchResult result;
    std::optional<PendingBlob> blob;
};

std::string host_key(const std::string& url) {
    // scheme://authority is enough: it is what a connection is reused for.
    auto p = url.find("://");
    if (p == std::string::npos) return url;
    auto end = url.find_first_of("/?#", p + 3);
    return url.substr(0, end);
}

std::optional<IpAddress> sockaddr_to_ip(const struct sockaddr* sa) {
    if (sa->sa_family == AF_INET) {
        auto* in = reinterpret_cast<const sockaddr_in*>(sa);
        return IpAddress::v4(ntohl(in->sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
        std::array<std::uint8_t, 16> b{};
        std::memcpy(b.data(), in6->sin6_addr.s6_addr, 16);
        return IpAddress::v6(b);
    }
    return std::nullopt;
}

bool write_all(int fd, const char* data, std::size_t len) {
    while (len > 0) {
        ssize_t n = ::write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        data += n;
        len -= std::size_t(n);
    }
    return true;
}

// The SSRF guard: judges the address about to be connected, for every
// connection curl opens for this transfer (first hop, redirect hops, each
// happy-eyeballs candidate). Checking here, not the URL's host, is what makes
// DNS rebinding and redirects to internal addresses fail.
curl_socket_t on_open_socket(void* transfer, curlsocktype purpose, struct curl_sockaddr* addr) {
    auto* t = static_cast<Transfer*>(transfer);
    if (purpose == CURLSOCKTYPE_IPCXN) {
        auto ip = sockaddr_to_ip(&addr->addr);
        if (!ip || !address_permitted(*ip, *t->limits)) {
            t->blocked_seen = true;
            t->detail = "connection to " +
                        (ip ? ip->to_string() + " (" + std::string(to_string(classify(*ip))) + ")"
                            : std::string("a non-IP address")) +
                        " refused";
            return CURL_SOCKET_BAD;
        }
    }
    return ::socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

// Returning anything but `len` makes curl fail the transfer with
// CURLE_WRITE_ERROR; abort_reason says why.
std::size_t abort_body(Transfer& t, FailureReason reason, std::string detail) {
    t.abort_reason = reason;
    t.detail = std::move(detail);
    return 0;
}

// Less than --min-free left where the parts go? (A failing statvfs says no:
// the write itself then reports what is wrong.)
bool below_free_reserve(const std::filesystem::path& part, const FetchLimits& limits) {
    if (limits.min_free_bytes == 0) return false;
    struct statvfs fs {};
    if (::statvfs(part.c_str(), &fs) != 0) return false;
    return std::uint64_t(fs.f_bavail) * fs.f_frsize < limits.min_free_bytes;
}

std::string disk_full_message(const FetchLimits& limits) {
    return "disk full: less than " + std::to_string(limits.min_free_bytes) +
           " bytes free (--min-free)";
}

// Body bytes: counted, size-capped, sniffed early, hashed, streamed to disk.
std::size_t on_body(char* data, std::size_t size, std::size_t n, void* transfer) {
    auto* t = static_cast<Transfer*>(transfer);
    const std::size_t len = size * n;
    const FetchLimits& limits = *t->limits;
    if (!t->status_checked) {
        t->status_checked = true;
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &t->status);
        t->body_wanted = t->status >= 200 && t->status < 300;
        if (t->body_wanted) {
            curl_off_t declared = -1;
            curl_easy_getinfo(t->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &declared);
            if (declared > 0 && std::uint64_t(declared) > limits.max_bytes)
                return abort_body(
                    *t, FailureReason::too_large,
                    "Content-Length " + std::to_string(declared) + " is over the size limit");
            t->fd = t->parts->take(t->part);
            if (t->fd < 0)
                return abort_body(*t, FailureReason::io,
                                  std::string("open: ") + std::strerror(errno));
            if (below_free_reserve(t->part, limits))
                return abort_body(*t, FailureReason::io, disk_full_message(limits));
        }
    }
    t->bytes_received->fetch_add(len, std::memory_order_relaxed);
    if (!t->body_wanted) {
        // An error page: read a little so the connection stays reusable.
        t->discarded += len;
        if (t->discarded > kMaxDiscardedBody)
            return abort_body(*t, FailureReason::http, "HTTP " + std::to_string(t->status));
        return len;
    }
    // curl 7.88's MAXFILESIZE trusts Content-Length only; this catches the rest.
    if (t->bytes + len > limits.max_bytes)
        return abort_body(*t, FailureReason::too_large, "body is over the size limit");
    if (t->head_len < kSniffBytes) {
        std::size_t take = std::min(kSniffBytes - t->head_len, len);
        std::memcpy(t->head + t->head_len, data, take);
        t->head_len += take;
        // Stop downloading HTML error pages and the like as soon as we know.
        if (t->head_len == kSniffBytes &&
            sniff_image(std::span(t->head, t->head_len)) == ImageFormat::unknown)
            return abort_body(*t, FailureReason::not_image,
                              "content is not a supported image format");
    }
    // The reserve again every MiB: other downloads fill the disk meanwhile.
    if ((t->bytes >> 20) != ((t->bytes + len) >> 20) && below_free_reserve(t->part, limits))
        return abort_body(*t, FailureReason::io, disk_full_message(limits));
    if (!write_all(t->fd, data, len))
        return abort_body(*t, FailureReason::io, std::string("write: ") + std::strerror(errno));
    t->sha.update(data, len);
    t->bytes += len;
    return len;
}

}  // namespace

struct Engine::Impl {
    FetchLimits limits;
    BlobStore& blobs;
    ResultsHandler on_results;

    // Stats, read from any thread.
    std::atomic<std::uint64_t> bytes_received{0};
    std::atomic<std::uint64_t> n_queued{0};
    std::atomic<std::uint64_t> n_active{0};
    std::atomic<std::uint64_t> n_probing{0};
    std::atomic<std::uint64_t> n_preempted{0};
    // network_load(): per group, submitted and not yet probed or failed.
    mutable std::mutex load_mutex;
    std::map<DispatchKey, std::uint64_t> load;

    // Outstanding = submitted and not yet reported; wait_idle waits for zero.
    std::mutex idle_mutex;
    std::condition_variable idle_cv;
    std::uint64_t outstanding = 0;

    // Inbox: filled by any thread, drained by the network thread.
    std::mutex inbox_mutex;
    std::vector<FetchRequest> inbox;
    std::vector<std::uint64_t> inbox_cancels;
    bool stopping = false;

    // Network thread state (touched only there).
    CURLM* multi = nullptr;
    std::vector<CURL*> spare_easy;
    // Queued transfers (not the retry waits) and who runs how many: which
    // one starts next (max-min across users, jobs, hosts; --per-host).
    FairQueue<std::unique_ptr<Transfer>> queue;
    bool shares_changed = false;  // something was queued: look for a group above its share
    std::unordered_map<std::uint64_t, Transfer*> by_id;  // queued, waiting or running
    std::unordered_set<std::uint64_t> cancel_requested;
    struct RetryLess {
        bool operator()(const Transfer* a, const Transfer* b) const {
            return a->not_before > b->not_before;
        }
    };
    std::priority_queue<Transfer*, std::vector<Transfer*>, RetryLess>
        retry_heap;  // owns its pointers
    std::mt19937_64 rng{std::random_device{}()};
    int running = 0;

    // Probe pool.
    std::mutex probe_mutex;
    std::condition_variable probe_cv;
    std::deque<ProbeJob> probe_queue;
    bool probe_closing = false;

    // Committer.
    std::mutex commit_mutex;
    std::condition_variable commit_cv;
    std::vector<CommitItem> commit_queue;
    bool commit_closing = false;

    PartPool parts;
    std::thread network_thread;
    std::vector<std::thread> probe_threads;
    std::thread commit_thread;
    std::once_flag stop_once;

    Impl(const FetchLimits& l, BlobStore& b, ResultsHandler h)
        : limits(l),
          blobs(b),
          on_results(std::move(h)),
          queue(l.per_host <= 0 ? std::max(1, l.concurrency)
                                : std::min(l.per_host, std::max(1, l.concurrency))),
          parts(b, std::size_t(std::max(1, l.concurrency))) {
        if (limits.concurrency < 1) limits.concurrency = 1;
        if (limits.per_host <= 0 || limits.per_host > limits.concurrency)
            limits.per_host = limits.concurrency;
        multi = curl_multi_init();
        if (!multi) throw std::runtime_error("curl_multi_init failed");
        curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, long(limits.concurrency));
        curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, long(limits.per_host));
        curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, long(limits.concurrency) * 2);
        curl_multi_setopt(multi, CURLMOPT_PIPELINING, long(CURLPIPE_MULTIPLEX));
        network_thread = std::thread([this] { network_loop(); });
        int probes = std::max(1, limits.probe_threads);
        for (int i = 0; i < probes; ++i) probe_threads.emplace_back([this] { probe_loop(); });
        commit_thread = std::thread([this] { commit_loop(); });
    }

    ~Impl() {
        stop();
        curl_multi_cleanup(multi);
    }

    // ---- public entry points (any thread) ---------------------------------

    void submit(std::vector<FetchRequest> requests) {
        if (requests.empty()) return;
        {
            std::lock_guard lock(idle_mutex);
            outstanding += requests.size();
        }
        n_queued += requests.size();
        {
            std::lock_guard lock(load_mutex);
            for (const auto& r : requests) ++load[r.key];
        }
        {
            std::lock_guard lock(inbox_mutex);
            if (inbox.empty())
                inbox = std::move(requests);
            else
                inbox.insert(inbox.end(), std::make_move_iterator(requests.begin()),
                             std::make_move_iterator(requests.end()));
        }
        curl_multi_wakeup(multi);
    }

    void cancel(const std::vector<std::uint64_t>& ids) {
        {
            std::lock_guard lock(inbox_mutex);
            inbox_cancels.insert(inbox_cancels.end(), ids.begin(), ids.end());
        }
        curl_multi_wakeup(multi);
    }

    void stop() {
        std::call_once(stop_once, [this] {
            {
                std::lock_guard lock(inbox_mutex);
                stopping = true;
            }
            curl_multi_wakeup(multi);
            network_thread.join();
            {
                std::lock_guard lock(probe_mutex);
                probe_closing = true;
            }
            probe_cv.notify_all();
            for (auto& t : probe_threads) t.join();
            parts.drain();
            {
                std::lock_guard lock(commit_mutex);
                commit_closing = true;
            }
            commit_cv.notify_all();
            commit_thread.join();
            for (CURL* e : spare_easy) curl_easy_cleanup(e);
            spare_easy.clear();
            std::lock_guard lock(idle_mutex);
            outstanding = 0;
            idle_cv.notify_all();
        });
    }

    void wait_idle() {
        std::unique_lock lock(idle_mutex);
        idle_cv.wait(lock, [this] { return outstanding == 0; });
    }

    // ---- network thread ---------------------------------------------------

    void network_loop() {
        while (true) {
            std::vector<FetchRequest> fresh;
            std::vector<std::uint64_t> cancels;
            {
                std::lock_guard lock(inbox_mutex);
                if (stopping) break;
                fresh.swap(inbox);
                cancels.swap(inbox_cancels);
            }
            for (auto& r : fresh) enqueue(std::move(r));
            for (auto id : cancels) cancel_one(id);
            promote_due_retries();
            start_transfers();
            if (shares_changed) rebalance();
            curl_multi_perform(multi, &running);
            reap_finished();
            start_transfers();
            curl_multi_poll(multi, nullptr, 0, poll_timeout_ms(), nullptr);
        }
        abandon_everything();
    }

    void enqueue(FetchRequest r) {
        auto t = std::make_unique<Transfer>();
        t->limits = &limits;
        t->bytes_received = &bytes_received;
        t->parts = &parts;
        t->id = r.id;
        t->key = r.key;
        t->original_url = r.url;
        auto check = check_url(r.url, limits);
        if (!check.ok) {
            t->abort_reason = check.reason;
            t->detail = check.detail;
            --n_queued;
            finish_failed(std::move(t), check.reason, 0);
            return;
        }
        t->url = check.url;
        t->host = host_key(t->url);
        by_id[t->id] = t.get();
        push_pending(std::move(t), /*front=*/false);
    }

    void push_pending(std::unique_ptr<Transfer> t, bool front) {
        DispatchKey key = t->key;
        std::string host = t->host;
        queue.push(key, host, std::move(t), front);
        shares_changed = true;
    }

    // Every slot taken and a group waits below its share while another holds
    // more (FairQueue::over_share): that one's newest transfer that has had
    // no answer yet goes back to the front of its queue (no attempt spent)
    // and the freed slot goes to the one waiting. Transfers already
    // answering are never cut: what they read would be lost. The origin sees
    // a request given up before its answer: the price of a slow host not
    // keeping slots a newcomer is owed for as long as it takes to answer.
    void rebalance() {
        shares_changed = false;
        while (int(n_active) >= limits.concurrency) {
            auto over = queue.over_share(limits.concurrency);
            if (!over) return;
            Transfer* victim = nullptr;
            for (Transfer* t : running_set) {
                if (!(t->key == *over) || t->cancelled || t->bytes > 0 || t->discarded > 0 ||
                    t->status_checked)
                    continue;
                long status = 0;
                curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
                if (status == 0 && (!victim || t->started_at > victim->started_at)) victim = t;
            }
            if (!victim) return;  // all of it is answering: wait for it to end
            preempt(victim);
            start_transfers();
        }
    }

    void preempt(Transfer* t) {
        curl_multi_remove_handle(multi, t->easy);
        // Queued again before its slot is given up: queued + active never dips.
        ++n_queued;
        ++n_preempted;
        release_slot(*t);
        close_part(*t);
        t->redirect_hop = true;  // its next start goes on with this attempt: not counted again
        std::unique_ptr<Transfer> owned(t);
        push_pending(std::move(owned), /*front=*/true);
        shares_changed = false;  // rebalance() goes on looking itself
    }

    // Fills free slots, each with the next transfer the fair queue picks.
    void start_transfers() {
        while (int(n_active) < limits.concurrency) {
            auto next = queue.pop();
            if (!next) break;  // nothing queued, or only for hosts at their limit
            auto t = std::move(next->item);
            if (t->cancelled) {
                --n_queued;
                finish_failed(std::move(t), FailureReason::cancelled, 0);
                continue;
            }
            if (!t->redirect_hop) ++t->attempts;
            t->redirect_hop = false;
            start(std::move(t));
            // After start() counted it active: queued + active never dips.
            --n_queued;
        }
    }

    // Starts (or restarts, after a redirect) one transfer. Takes ownership:
    // the Transfer lives in the easy handle's CURLOPT_PRIVATE until reaped.
    void start(std::unique_ptr<Transfer> owned) {
        Transfer* t = owned.release();
        reset_attempt(*t);
        if (!t->easy) {
            if (!spare_easy.empty()) {
                t->easy = spare_easy.back();
                spare_easy.pop_back();
                curl_easy_reset(t->easy);
            } else {
                t->easy = curl_easy_init();
            }
        }
        CURL* e = t->easy;
        curl_easy_setopt(e, CURLOPT_URL, t->url.c_str());
        curl_easy_setopt(e, CURLOPT_PRIVATE, t);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);  // every hop is checked here, not by curl
        curl_easy_setopt(e, CURLOPT_USERAGENT, kServerName.data());
        // Prefer multiplexing on an HTTP/2 connection, but only for https, where
        // ALPN settles it in the handshake. On plain http curl learns it only
        // from the first response, so every other transfer to the host would
        // wait behind that one (a slow host would take N x its latency).
        curl_easy_setopt(e, CURLOPT_PIPEWAIT, t->url.starts_with("https:") ? 1L : 0L);
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION, long(CURL_HTTP_VERSION_2TLS));
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, long(limits.connect_timeout.count()));
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, long(limits.total_timeout.count()));
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, limits.low_speed_bytes);
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, long(limits.low_speed_time.count()));
        curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(limits.max_bytes));
        if (!limits.use_proxy_env) curl_easy_setopt(e, CURLOPT_PROXY, "");
        // No CURLOPT_ACCEPT_ENCODING: bodies are stored as sent, never inflated.
        curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, &on_open_socket);
        curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, t);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &on_body);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
        running_set.insert(t);
        t->started_at = Clock::now();
        queue.started(t->key, t->host);
        ++n_active;
        curl_multi_add_handle(multi, e);
    }

    void reset_attempt(Transfer& t) {
        close_part(t);
        t.sha.reset();
        t.bytes = 0;
        t.discarded = 0;
        t.head_len = 0;
        t.status = 0;
        t.status_checked = false;
        t.body_wanted = false;
        t.blocked_seen = false;
        t.abort_reason = FailureReason::none;
        t.detail.clear();
        t.retry_after.clear();
        t.errbuf[0] = 0;
    }

    static void close_part(Transfer& t) {
        if (t.fd >= 0) {
            ::close(t.fd);
            t.fd = -1;
        }
        if (!t.part.empty()) {
            std::error_code ec;
            std::filesystem::remove(t.part, ec);
            t.part.clear();
        }
    }

    int poll_timeout_ms() {
        if (retry_heap.empty()) return 1000;
        auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
            retry_heap.top()->not_before - Clock::now());
        return int(std::clamp<long long>(wait.count(), 0, 1000));
    }

    void promote_due_retries() {
        auto now = Clock::now();
        while (!retry_heap.empty() && retry_heap.top()->not_before <= now) {
            std::unique_ptr<Transfer> t(retry_heap.top());
            retry_heap.pop();
            push_pending(std::move(t), /*front=*/true);
        }
    }

    void cancel_one(std::uint64_t id) {
        auto it = by_id.find(id);
        if (it == by_id.end()) return;
        Transfer* t = it->second;
        if (t->cancelled) return;
        t->cancelled = true;
        if (is_running(t)) {
            curl_multi_remove_handle(multi, t->easy);
            release_slot(*t);
            finish_failed(std::unique_ptr<Transfer>(t), FailureReason::cancelled,
                          t->status_checked ? int(t->status) : 0);
        }
        // A queued or waiting transfer is dropped when it next comes up.
        // Waiting ones (retry heap) come up when due; pull them forward now.
        if (!retry_heap.empty()) {
            std::vector<Transfer*> keep;
            while (!retry_heap.empty()) {
                Transfer* w = retry_heap.top();
                retry_heap.pop();
                if (w->cancelled) {
                    --n_queued;
                    finish_failed(std::unique_ptr<Transfer>(w), FailureReason::cancelled, 0);
                } else {
                    keep.push_back(w);
                }
            }
            for (auto* w : keep) retry_heap.push(w);
        }
    }

    std::unordered_set<Transfer*> running_set;
    bool is_running(Transfer* t) const { return running_set.count(t) != 0; }

    void release_slot(Transfer& t) {
        running_set.erase(&t);
        --n_active;
        queue.finished(t.key, t.host);
        if (t.easy) {
            spare_easy.push_back(t.easy);
            t.easy = nullptr;
        }
    }

    void reap_finished() {
        int left = 0;
        while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
            if (msg->msg != CURLMSG_DONE) continue;
            Transfer* raw = nullptr;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &raw);
            CURLcode rc = msg->data.result;
            curl_multi_remove_handle(multi, msg->easy_handle);
            std::unique_ptr<Transfer> t(raw);
            on_done(std::move(t), rc);
        }
    }

    void on_done(std::unique_ptr<Transfer> t, CURLcode rc) {
        long status = 0;
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
        t->status = status;
        if (rc == CURLE_OK && status >= 300 && status < 400 && status != 304) {
            char* location = nullptr;
            curl_easy_getinfo(t->easy, CURLINFO_REDIRECT_URL, &location);
            if (location) {
                follow_redirect(std::move(t), location);
                return;
            }
        }
        std::string retry_after;
        if (rc == CURLE_OK && (status == 429 || status == 503)) {
            struct curl_header* h = nullptr;
            if (curl_easy_header(t->easy, "Retry-After", 0, CURLH_HEADER, -1, &h) == CURLHE_OK && h)
                retry_after = h->value;
        }
        release_slot(*t);

        if (rc == CURLE_OK && status >= 200 && status < 300) {
            if (t->bytes == 0) {
                finish_failed(std::move(t), FailureReason::not_image, int(status), "empty body");
                return;
            }
            hand_to_probe(std::move(t));
            return;
        }
        FailureReason reason = FailureReason::http;
        std::string detail;
        if (rc == CURLE_OK) {
            detail = "HTTP " + std::to_string(status);
            if (status >= 300 && status < 400) detail += " without a usable Location";
        } else {
            reason = classify_curl_error(*t, rc);
            detail = t->detail.empty() ? std::string(curl_easy_strerror(rc)) : t->detail;
        }
        if (t->cancelled) reason = FailureReason::cancelled;
        if (reason != FailureReason::cancelled && is_transient(reason, int(status)) &&
            t->attempts <= limits.retries) {
            schedule_retry(std::move(t), reason, int(status), retry_after);
            return;
        }
        finish_failed(std::move(t), reason, int(status), detail);
    }

    FailureReason classify_curl_error(Transfer& t, CURLcode rc) {
        if (t.abort_reason != FailureReason::none) return t.abort_reason;
        switch (rc) {
            case CURLE_COULDNT_RESOLVE_HOST:
            case CURLE_COULDNT_RESOLVE_PROXY:
                return FailureReason::dns;
            case CURLE_COULDNT_CONNECT:
                // Refused by the guard (every address it tried), not by the network.
                return t.blocked_seen ? FailureReason::blocked_address : FailureReason::connect;
            case CURLE_OPERATION_TIMEDOUT:
                return FailureReason::timeout;
            case CURLE_PARTIAL_FILE:
                return FailureReason::truncated;
            case CURLE_RECV_ERROR:
            case CURLE_SEND_ERROR:
            case CURLE_GOT_NOTHING:
                return (t.status_checked || t.bytes > 0) ? FailureReason::truncated
                                                         : FailureReason::connect;
            case CURLE_FILESIZE_EXCEEDED:
                return FailureReason::too_large;
            case CURLE_TOO_MANY_REDIRECTS:
                return FailureReason::too_many_redirects;
            case CURLE_UNSUPPORTED_PROTOCOL:
            case CURLE_URL_MALFORMAT:
                return FailureReason::bad_url;
            case CURLE_WRITE_ERROR:
                return FailureReason::io;
            case CURLE_SSL_CONNECT_ERROR:
            case CURLE_PEER_FAILED_VERIFICATION:
            case CURLE_SSL_CERTPROBLEM:
            case CURLE_SSL_CIPHER:
            case CURLE_SSL_CACERT_BADFILE:
            case CURLE_SSL_ISSUER_ERROR:
            case CURLE_SSL_ENGINE_INITFAILED:
            case CURLE_SSL_ENGINE_NOTFOUND:
            case CURLE_SSL_SHUTDOWN_FAILED:
            case CURLE_SSL_CRL_BADFILE:
            case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
            case CURLE_SSL_INVALIDCERTSTATUS:
            case CURLE_SSL_CLIENTCERT:
            case CURLE_USE_SSL_FAILED:
                return FailureReason::tls;
            default:
                return FailureReason::connect;
        }
    }

    void follow_redirect(std::unique_ptr<Transfer> t, const char* location) {
        if (t->cancelled) {
            release_slot(*t);
            finish_failed(std::move(t), FailureReason::cancelled, int(t->status));
            return;
        }
        if (++t->redirects > limits.max_redirects) {
            release_slot(*t);
            finish_failed(std::move(t), FailureReason::too_many_redirects, int(t->status),
                          "more than " + std::to_string(limits.max_redirects) + " redirects");
            return;
        }
        auto check = check_redirect(t->url, location, limits);
        if (!check.ok) {
            release_slot(*t);
            finish_failed(std::move(t), check.reason, int(t->status),
                          "redirect refused: " + check.detail);
            return;
        }
        // Counted as queued before its slot is given up, so that queued +
        // active (what the server's feeder reads) never dips mid-hop.
        ++n_queued;
        release_slot(*t);  // frees the old host's slot: before the host changes
        t->url = check.url;
        t->host = host_key(t->url);
        // A redirect hop keeps its turn: it goes to the front of its host's line.
        t->redirect_hop = true;
        push_pending(std::move(t), /*front=*/true);
    }

    void schedule_retry(std::unique_ptr<Transfer> t, FailureReason reason, int status,
                        const std::string& retry_after) {
        std::uniform_real_distribution<double> unit(0.0, 1.0);
        auto delay = backoff_delay(limits.backoff, t->attempts, unit(rng));
        if (auto secs = parse_retry_after_seconds(retry_after)) {
            auto wanted = std::chrono::duration_cast<std::chrono::milliseconds>(*secs);
            delay = std::min(std::max(delay, wanted), limits.retry_after_cap);
        }
        spdlog::debug("retry {} in {} ms after {} (HTTP {})", t->id, delay.count(),
                      to_string(reason), status);
        close_part(*t);
        t->not_before = Clock::now() + delay;
        ++n_queued;
        retry_heap.push(t.release());
    }

    // The transfer is off the network (downloaded, or failed for good).
    void leave_network(Transfer& t) {
        if (!t.on_network) return;
        t.on_network = false;
        std::lock_guard lock(load_mutex);
        auto it = load.find(t.key);
        if (it != load.end() && --it->second == 0) load.erase(it);
    }

    void hand_to_probe(std::unique_ptr<Transfer> t) {
        leave_network(*t);
        by_id.erase(t->id);
        ++n_probing;
        {
            std::lock_guard lock(probe_mutex);
            probe_queue.push_back(ProbeJob{std::move(t)});
        }
        probe_cv.notify_one();
    }

    void finish_failed(std::unique_ptr<Transfer> t, FailureReason reason, int status,
                       std::string detail = {}) {
        leave_network(*t);
        by_id.erase(t->id);
        close_part(*t);
        CommitItem item;
        item.result.id = t->id;
        item.result.url = t->original_url;
        item.result.reason = reason;
        item.result.http_status = status;
        item.result.attempts = t->attempts;
        item.result.detail = detail.empty() ? t->detail : std::move(detail);
        push_commit(std::move(item));
    }

    void push_commit(CommitItem item) {
        {
            std::lock_guard lock(commit_mutex);
            commit_queue.push_back(std::move(item));
        }
        commit_cv.notify_one();
    }

    // Stop: nothing queued or running is reported; its .part files go away.
    void abandon_everything() {
        for (Transfer* t : std::vector<Transfer*>(running_set.begin(), running_set.end())) {
            curl_multi_remove_handle(multi, t->easy);
            close_part(*t);
            curl_easy_cleanup(t->easy);
            delete t;
        }
        running_set.clear();
        while (!retry_heap.empty()) {
            delete retry_heap.top();
            retry_heap.pop();
        }
        queue.drain([](std::unique_ptr<Transfer>) {});
        by_id.clear();
        {
            std::lock_guard lock(load_mutex);
            load.clear();
        }
        n_active = 0;
        n_queued = 0;
    }

    // ---- probe pool -------------------------------------------------------

    void probe_loop() {
        while (true) {
            parts.refill();
            ProbeJob job;
            {
                std::unique_lock lock(probe_mutex);
                probe_cv.wait(lock, [this] { return probe_closing || !probe_queue.empty(); });
                if (probe_queue.empty()) return;  // closing and drained
                job = std::move(probe_queue.front());
                probe_queue.pop_front();
            }
            probe_one(std::move(job.t));
        }
    }

    void probe_one(std::unique_ptr<Transfer> t) {
        CommitItem item;
        auto& r = item.result;
        r.id = t->id;
        r.url = t->original_url;
        r.http_status = int(t->status);
        r.attempts = t->attempts;
        auto probe = probe_image_fd(t->fd, std::span(t->head, t->head_len), limits.max_pixels);
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
            r.file = blobs.relative_path(r.sha256, r.format);
            // The committer makes it durable together with its batch.
            item.blob = PendingBlob{t->part, r.sha256, r.format};
            t->part.clear();  // the committer owns the file now
        }
        close_part(*t);
        --n_probing;
        push_commit(std::move(item));
    }

    // ---- committer --------------------------------------------------------

    void commit_loop() {
        while (true) {
            std::vector<CommitItem> batch;
            {
                std::unique_lock lock(commit_mutex);
                commit_cv.wait(lock, [this] { return commit_closing || !commit_queue.empty(); });
                if (commit_queue.empty()) return;
                batch.swap(commit_queue);
            }
            commit_batch(batch);
        }
    }

    void commit_batch(std::vector<CommitItem>& batch) {
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
                auto errors = blobs.commit(pending);
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
        if (on_results) on_results(std::move(results));
        std::lock_guard lock(idle_mutex);
        outstanding = outstanding > n ? outstanding - n : 0;
        if (outstanding == 0) idle_cv.notify_all();
    }
};

Engine::Engine(const FetchLimits& limits, BlobStore& blobs, ResultsHandler on_results)
    : impl_(std::make_unique<Impl>(limits, blobs, std::move(on_results))) {}

Engine::~Engine() = default;

void Engine::submit(std::vector<FetchRequest> requests) {
    impl_->submit(std::move(requests));
}
void Engine::cancel(const std::vector<std::uint64_t>& ids) {
    impl_->cancel(ids);
}
void Engine::stop() {
    impl_->stop();
}
void Engine::wait_idle() {
    impl_->wait_idle();
}

EngineStats Engine::stats() const {
    EngineStats s;
    s.bytes_received = impl_->bytes_received;
    s.queued = impl_->n_queued;
    s.active = impl_->n_active;
    s.probing = impl_->n_probing;
    s.preempted = impl_->n_preempted;
    return s;
}

std::vector<std::pair<DispatchKey, std::uint64_t>> Engine::network_load() const {
    std::lock_guard lock(impl_->load_mutex);
    return {impl_->load.begin(), impl_->load.end()};
}

void init_fetch_libraries(const char* argv0) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    // Untrusted loaders (ImageMagick, PDF, ...) are a large attack surface for
    // files from the internet; the operation cache would keep images alive.
    setenv("VIPS_BLOCK_UNTRUSTED", "1", 0);
    setenv("VIPS_WARNING", "0", 0);  // decoder chatter is not for our users' terminals
    if (VIPS_INIT(argv0 ? argv0 : "litchi") != 0)
        throw std::runtime_error("libvips failed to initialise");
    vips_block_untrusted_set(TRUE);
    vips_cache_set_max(0);
    vips_cache_set_max_mem(0);
    vips_concurrency_set(1);
}

}  // namespace litchi
