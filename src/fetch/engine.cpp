// The download engine. Three stages, each on its own thread(s), joined by queues:
//
//   network thread  one libcurl multi handle driven by curl_multi_poll; new work
//                   and cancels arrive through `inbox` and curl_multi_wakeup.
//                   This file: dispatch (per-host queues, round robin, retry
//                   waits), redirects and the decision what a finished
//                   transfer becomes. transfer.cpp: the easy handle's options,
//                   the SSRF guard and the body writer; curl_errors.cpp: what
//                   a CURLcode means; part_pool.cpp: .part files made ahead.
//   probe pool      magic bytes, declared size, structure (libvips only for
//                   TIFF/HEIF/AVIF and --verify decode): per-file work, done
//                   off the network thread (committer.cpp).
//   committer       makes a whole batch durable at once (group commit), renames
//                   it into the blob store, then reports it (committer.cpp).
//
// Hosts: each has its queue, its health (host_health.hpp: down hosts fail
// their items at once, one probe brings them back), a Retry-After pause and a
// --per-host-rate bucket. A host that must not start anything now is
// "parked": its queued items count as waiting, not queued, and a timer (or the
// probe's end) wakes it.
//
// Each pass of the network loop hands what it finished to the next stage in
// one batch (hand_over): one lock and one wake-up per pass, not per image.
//
// Ownership: a Transfer is owned by exactly one place at a time, always by a
// unique_ptr: its host's pending queue, the retry queue, the running map (while
// its easy handle is in the multi handle), or the probe pool.
#include "fetch/engine.hpp"

#include <curl/curl.h>
#include <spdlog/spdlog.h>
#include <vips/vips.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>
#include <utility>

#include "blobs/blob_store.hpp"
#include "core/backoff.hpp"
#include "fetch/committer.hpp"
#include "fetch/curl_errors.hpp"
#include "fetch/host_health.hpp"
#include "fetch/part_pool.hpp"
#include "fetch/transfer.hpp"
#include "fetch/url_check.hpp"

namespace litchi {
namespace {

using Clock = EngineClock;

// Transfers waiting out a retry delay, earliest due first (a binary heap over
// a vector, so the queue can own its transfers and hand them back).
class RetryQueue {
  public:
    bool empty() const { return heap_.empty(); }
    Clock::time_point next_due() const { return heap_.front()->not_before; }

    void push(std::unique_ptr<Transfer> t) {
        heap_.push_back(std::move(t));
        std::push_heap(heap_.begin(), heap_.end(), later);
    }

    // The earliest transfer if it is due by `now`, else null.
    std::unique_ptr<Transfer> pop_due(Clock::time_point now) {
        if (heap_.empty() || heap_.front()->not_before > now) return nullptr;
        std::pop_heap(heap_.begin(), heap_.end(), later);
        auto t = std::move(heap_.back());
        heap_.pop_back();
        return t;
    }

    // Removes and returns every transfer `pred` picks.
    template <typename Pred>
    std::vector<std::unique_ptr<Transfer>> take_if(Pred pred) {
        auto keep =
            std::partition(heap_.begin(), heap_.end(), [&](const auto& t) { return !pred(*t); });
        std::vector<std::unique_ptr<Transfer>> taken(std::make_move_iterator(keep),
                                                     std::make_move_iterator(heap_.end()));
        heap_.erase(keep, heap_.end());
        std::make_heap(heap_.begin(), heap_.end(), later);
        return taken;
    }

    void clear() { heap_.clear(); }

  private:
    static bool later(const std::unique_ptr<Transfer>& a, const std::unique_ptr<Transfer>& b) {
        return a->not_before > b->not_before;
    }
    std::vector<std::unique_ptr<Transfer>> heap_;
};

}  // namespace

struct Engine::Impl {
    FetchLimits limits;
    BlobStore& blobs;

    // Stats, read from any thread.
    std::atomic<std::uint64_t> bytes_received{0};
    std::atomic<std::uint64_t> n_queued{0};
    std::atomic<std::uint64_t> n_active{0};
    std::atomic<std::uint64_t> n_waiting{0};

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
    CURLSH* share = nullptr;  // DNS cache and TLS sessions across easy handles
    std::vector<CURL*> spare_easy;
    struct HostQueue {
        std::deque<std::unique_ptr<Transfer>> pending;
        int active = 0;
        bool in_ready = false;
        bool parked = false;  // pending items count as waiting (paused, or the probe is out)
        HostHealth health;
        RateBucket rate;
        Clock::time_point paused_until{};  // Retry-After
        Clock::time_point wake_at{};       // the earliest timer set for this host
        // A job's own queue for the host (its per_host / per_host_rate,
        // core/request_options.hpp): its caps; 0 / <0: the engine's.
        int per_host_cap = 0;
        double rate_cap = -1;
    };
    std::unordered_map<std::string, HostQueue> hosts;
    std::deque<std::string> ready_hosts;  // hosts with pending work and room: round robin
    std::unordered_map<std::uint64_t, Transfer*> by_id;                // queued, waiting or running
    std::unordered_map<Transfer*, std::unique_ptr<Transfer>> running;  // in the multi handle
    RetryQueue retries;
    std::multimap<Clock::time_point, std::string> host_timers;  // pauses and rate waits
    std::vector<CommitItem> failed;  // this pass's failures, for the committer
    std::mt19937_64 rng{std::random_device{}()};
    int still_running = 0;

    // Later stages. Declared after what their threads touch, and before the
    // network thread starts.
    PartPool parts;
    Committer committer;
    ProbePool probes;
    std::thread network_thread;
    std::once_flag stop_once;

    static FetchLimits normalised(FetchLimits l) {
        if (l.concurrency < 1) l.concurrency = 1;
        if (l.per_host <= 0 || l.per_host > l.concurrency) l.per_host = l.concurrency;
        return l;
    }

    Impl(const FetchLimits& l, BlobStore& b, ResultsHandler h)
        : limits(normalised(l)),
          blobs(b),
          parts(b, std::size_t(limits.concurrency)),
          committer(b, std::move(h), [this](std::size_t n) { delivered(n); }),
          probes(limits, b, parts, committer, limits.probe_threads) {
        multi = curl_multi_init();
        if (!multi) throw std::runtime_error("curl_multi_init failed");
        curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, long(limits.concurrency));
        curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, long(limits.per_host));
        curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, long(limits.concurrency) * 2);
        curl_multi_setopt(multi, CURLMOPT_PIPELINING, long(CURLPIPE_MULTIPLEX));
        // The multi handle already pools connections (and DNS) for its easy
        // handles; a share adds TLS session resumption across them. Only the
        // network thread uses it, so it needs no lock callbacks.
        share = curl_share_init();
        if (share) {
            curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
            curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
        }
        network_thread = std::thread([this] { network_loop(); });
    }

    ~Impl() {
        stop();
        curl_multi_cleanup(multi);
        if (share) curl_share_cleanup(share);
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
            probes.close();
            parts.drain();
            committer.close();
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

    // Committer thread: `n` results reached the caller.
    void delivered(std::size_t n) {
        std::lock_guard lock(idle_mutex);
        outstanding = outstanding > n ? outstanding - n : 0;
        if (outstanding == 0) idle_cv.notify_all();
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
            if (!cancels.empty()) drop_cancelled_from_parked_hosts();
            promote_due_retries();
            wake_due_hosts();
            start_transfers();
            curl_multi_perform(multi, &still_running);
            reap_finished();
            start_transfers();
            hand_over();
            curl_multi_poll(multi, nullptr, 0, poll_timeout_ms(), nullptr);
        }
        hand_over();  // what finished before the stop is still reported
        abandon_everything();
    }

    void enqueue(FetchRequest r) {
        auto t = std::make_unique<Transfer>();
        t->limits = &limits;
        if (r.options) {  // the job's own headers and tighter limits
            t->options = std::move(r.options);
            t->own_limits =
                std::make_unique<FetchLimits>(apply_job_limits(limits, t->options->limits));
            t->limits = t->own_limits.get();
        }
        t->bytes_received = &bytes_received;
        t->parts = &parts;
        t->id = r.id;
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
        t->host = queue_key(*t);
        by_id[t->id] = t.get();
        push_pending(std::move(t), /*front=*/false);
    }

    HostQueue& host_queue(const std::string& host) {
        auto [it, fresh] = hosts.try_emplace(host);
        if (fresh)
            it->second.health = HostHealth(HostHealthPolicy{
                limits.host_failures, limits.host_cooloff, limits.host_cooloff_cap});
        return it->second;
    }

    // The host's queue, or for a job with its own per_host or per_host_rate
    // its own queue for the host: those caps count that job's requests only
    // (and it has its own health record). The server's --per-host still holds
    // for connections (CURLMOPT_MAX_HOST_CONNECTIONS).
    std::string queue_key(const Transfer& t) {
        std::string key = host_key(t.url);
        if (t.options && (t.options->limits.per_host || t.options->limits.per_host_rate))
            key += " job@" + std::to_string(reinterpret_cast<std::uintptr_t>(t.options.get()));
        return key;
    }

    int per_host_of(const HostQueue& hq) const {
        return hq.per_host_cap > 0 ? std::min(hq.per_host_cap, limits.per_host) : limits.per_host;
    }

    // `t` is counted as queued; it stays so unless its host is parked.
    void push_pending(std::unique_ptr<Transfer> t, bool front) {
        auto& hq = host_queue(t->host);
        if (t->options) {
            const auto& job = t->options->limits;
            if (job.per_host) hq.per_host_cap = *job.per_host;
            if (job.per_host_rate)
                hq.rate_cap = limits.per_host_rate > 0
                                  ? std::min(*job.per_host_rate, limits.per_host_rate)
                                  : *job.per_host_rate;
        }
        std::string host = t->host;
        if (front)
            hq.pending.push_front(std::move(t));
        else
            hq.pending.push_back(std::move(t));
        if (hq.parked) {
            --n_queued;
            ++n_waiting;
        }
        mark_ready(host, hq);
    }

    // Parks the host (its pending items become waiting) while it is paused
    // or its probe is out; unparks it (and offers it a slot) otherwise.
    void refresh_park(const std::string& host, HostQueue& hq, Clock::time_point now) {
        bool park = hq.paused_until > now || hq.health.probing();
        if (park != hq.parked) {
            auto n = hq.pending.size();
            if (park) {
                n_queued -= n;
                n_waiting += n;
            } else {
                n_waiting -= n;
                n_queued += n;
            }
            hq.parked = park;
        }
        mark_ready(host, hq);
    }

    void wake_host_at(const std::string& host, HostQueue& hq, Clock::time_point when) {
        if (hq.wake_at != Clock::time_point{} && hq.wake_at <= when) return;
        hq.wake_at = when;
        host_timers.emplace(when, host);
    }

    void wake_due_hosts() {
        auto now = Clock::now();
        while (!host_timers.empty() && host_timers.begin()->first <= now) {
            auto [when, host] = std::move(*host_timers.begin());
            host_timers.erase(host_timers.begin());
            auto it = hosts.find(host);
            if (it == hosts.end() || it->second.wake_at != when) continue;  // superseded
            auto& hq = it->second;
            hq.wake_at = {};
            refresh_park(host, hq, now);
            // A later Retry-After lengthened the pause meanwhile.
            if (hq.paused_until > now) wake_host_at(host, hq, hq.paused_until);
        }
    }

    // The host is down: everything of it that waits fails now, with its reason.
    void fail_host_queue(const std::string& host, HostQueue& hq, Clock::time_point now) {
        auto detail = hq.health.down_detail(now);
        auto reason = hq.health.reason();
        while (!hq.pending.empty()) {
            auto t = std::move(hq.pending.front());
            hq.pending.pop_front();
            --(hq.parked ? n_waiting : n_queued);
            auto why = t->cancelled ? FailureReason::cancelled : reason;
            finish_failed(std::move(t), why, 0, detail);
        }
        for (auto& t : retries.take_if([&](const Transfer& x) { return x.host == host; })) {
            --n_waiting;
            auto why = t->cancelled ? FailureReason::cancelled : reason;
            finish_failed(std::move(t), why, 0, detail);
        }
    }

    void mark_ready(const std::string& host, HostQueue& hq) {
        if (!hq.in_ready && !hq.parked && !hq.pending.empty() && hq.active < per_host_of(hq)) {
            hq.in_ready = true;
            ready_hosts.push_back(host);
        }
    }

    void start_transfers() {
        while (int(n_active) < limits.concurrency && !ready_hosts.empty()) {
            std::string host = std::move(ready_hosts.front());
            ready_hosts.pop_front();
            auto& hq = host_queue(host);
            hq.in_ready = false;
            while (!hq.pending.empty() && hq.pending.front()->cancelled) {
                auto t = std::move(hq.pending.front());
                hq.pending.pop_front();
                --(hq.parked ? n_waiting : n_queued);
                finish_failed(std::move(t), FailureReason::cancelled, 0);
            }
            if (hq.pending.empty() || hq.active >= per_host_of(hq) || hq.parked) continue;
            const auto now = Clock::now();
            if (hq.paused_until > now) {  // a Retry-After came back meanwhile
                refresh_park(host, hq, now);
                wake_host_at(host, hq, hq.paused_until);
                continue;
            }
            const auto gate = hq.health.gate(now);
            if (gate == HostHealth::Gate::down) {
                fail_host_queue(host, hq, now);
                continue;
            }
            if (gate == HostHealth::Gate::wait) {
                refresh_park(host, hq, now);
                continue;
            }
            if (auto when =
                    hq.rate.take(hq.rate_cap >= 0 ? hq.rate_cap : limits.per_host_rate, now)) {
                wake_host_at(host, hq, *when);
                continue;
            }
            auto t = std::move(hq.pending.front());
            hq.pending.pop_front();
            t->is_probe = gate == HostHealth::Gate::probe;
            if (t->is_probe) {
                hq.health.begin_probe();
                refresh_park(host, hq, now);  // the rest wait for the probe
            } else {
                mark_ready(host, hq);  // back of the line: round robin across hosts
            }
            if (!t->redirect_hop) ++t->attempts;
            t->redirect_hop = false;
            start(std::move(t));
            // After start() counted it active: queued + active never dips.
            --n_queued;
        }
        // Drop empty host entries so a long run over many hosts stays small.
        if (hosts.size() > 1024) {
            for (auto it = hosts.begin(); it != hosts.end();)
                it =
                    (it->second.pending.empty() && it->second.active == 0 && !it->second.in_ready &&
                     !it->second.parked && it->second.wake_at == Clock::time_point{} &&
                     it->second.health.healthy_and_quiet() &&
                     it->second.paused_until <= Clock::now())
                        ? hosts.erase(it)
                        : std::next(it);
        }
    }

    // Starts (or restarts, after a redirect) one transfer: the running map
    // owns it until it is reaped or cancelled.
    void start(std::unique_ptr<Transfer> owned) {
        Transfer& t = *owned;
        reset_attempt(t);
        if (!t.easy) {
            if (!spare_easy.empty()) {
                t.easy = spare_easy.back();
                spare_easy.pop_back();
                curl_easy_reset(t.easy);
            } else {
                t.easy = curl_easy_init();
            }
        }
        configure_easy(t, *t.limits);
        if (share) curl_easy_setopt(t.easy, CURLOPT_SHARE, share);
        running.emplace(&t, std::move(owned));
        ++host_queue(t.host).active;
        ++n_active;
        curl_multi_add_handle(multi, t.easy);
    }

    // Takes a running transfer out of the multi handle and back into our hands.
    std::unique_ptr<Transfer> take_running(Transfer* raw) {
        auto node = running.extract(raw);
        if (node.empty()) return nullptr;
        curl_multi_remove_handle(multi, raw->easy);
        return std::move(node.mapped());
    }

    int poll_timeout_ms() {
        auto next = Clock::now() + std::chrono::seconds(1);
        if (!retries.empty()) next = std::min(next, retries.next_due());
        if (!host_timers.empty()) next = std::min(next, host_timers.begin()->first);
        // Round up: waking a millisecond early would only spin.
        auto wait = std::chrono::ceil<std::chrono::milliseconds>(next - Clock::now());
        return int(std::clamp<long long>(wait.count(), 0, 1000));
    }

    void promote_due_retries() {
        auto now = Clock::now();
        while (auto t = retries.pop_due(now)) {
            --n_waiting;
            ++n_queued;
            push_pending(std::move(t), /*front=*/true);
        }
    }

    void cancel_one(std::uint64_t id) {
        auto it = by_id.find(id);
        if (it == by_id.end()) return;
        Transfer* raw = it->second;
        if (raw->cancelled) return;
        raw->cancelled = true;
        if (auto t = take_running(raw)) {
            if (t->is_probe) {
                auto& hq = host_queue(t->host);
                hq.health.on_probe_lost();
                refresh_park(t->host, hq, Clock::now());
            }
            release_slot(*t);
            int status = t->status_checked ? int(t->status) : 0;
            finish_failed(std::move(t), FailureReason::cancelled, status);
        }
        // A queued transfer is dropped when it next comes up. Waiting ones
        // (retry queue) would come up only when due; pull them forward now.
        for (auto& w : retries.take_if([](const Transfer& x) { return x.cancelled; })) {
            --n_waiting;
            finish_failed(std::move(w), FailureReason::cancelled, 0);
        }
    }

    // A parked host's queue does not move until it wakes (up to
    // --retry-after-cap away): its cancelled items end now instead.
    void drop_cancelled_from_parked_hosts() {
        for (auto& [host, hq] : hosts) {
            if (!hq.parked) continue;
            auto keep = std::stable_partition(hq.pending.begin(), hq.pending.end(),
                                              [](const auto& t) { return !t->cancelled; });
            std::vector<std::unique_ptr<Transfer>> gone(std::make_move_iterator(keep),
                                                        std::make_move_iterator(hq.pending.end()));
            hq.pending.erase(keep, hq.pending.end());
            for (auto& t : gone) {
                --n_waiting;
                finish_failed(std::move(t), FailureReason::cancelled, 0);
            }
        }
    }

    void release_slot(Transfer& t) {
        --n_active;
        auto& hq = host_queue(t.host);
        --hq.active;
        mark_ready(t.host, hq);
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
            if (auto t = take_running(raw)) on_done(std::move(t), rc);
        }
    }

    void on_done(std::unique_ptr<Transfer> t, CURLcode rc) {
        long status = 0;
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
        t->status = status;
        const auto now = Clock::now();
        const bool answered = status > 0;
        if (answered) {
            // Proof of life, whatever the status: the host is up (again).
            auto& hq = host_queue(t->host);
            if (hq.health.down() || hq.health.failures_in_row() > 0) {
                hq.health.on_answer();
                refresh_park(t->host, hq, now);
            }
        }
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
            if (auto secs = parse_retry_after_seconds(retry_after)) pause_host(*t, *secs, now);
        }
        release_slot(*t);

        if (rc == CURLE_OK && status >= 200 && status < 300) {
            if (t->bytes == 0) {
                finish_failed(std::move(t), FailureReason::not_image, int(status), "empty body");
                return;
            }
            by_id.erase(t->id);
            probes.add(std::move(t));  // handed over with the rest of this pass
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
        if (reason != FailureReason::cancelled && !answered) {
            auto& hq = host_queue(t->host);
            if (is_host_failure(reason, answered)) {
                if (hq.health.on_failure(reason, detail, now, t->is_probe)) {
                    spdlog::info("host {} is down: {}", t->host, hq.health.down_detail(now));
                    fail_host_queue(t->host, hq, now);
                    refresh_park(t->host, hq, now);
                }
                // Down: no retry; the probe decides when the host is back.
                if (hq.health.down()) {
                    finish_failed(std::move(t), reason, int(status), detail);
                    return;
                }
            } else if (t->is_probe) {
                hq.health.on_probe_lost();
                refresh_park(t->host, hq, now);
            }
        }
        if (reason != FailureReason::cancelled && is_transient(reason, int(status)) &&
            t->attempts <= t->limits->retries) {
            schedule_retry(std::move(t), reason, int(status), retry_after);
            return;
        }
        finish_failed(std::move(t), reason, int(status), detail);
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
        t->host = queue_key(*t);
        // A redirect hop keeps its turn: it goes to the front of its host's line.
        t->redirect_hop = true;
        push_pending(std::move(t), /*front=*/true);
    }

    // 429/503 with Retry-After: nothing more goes to the host until then
    // (what is in flight may still arrive); capped by --retry-after-cap.
    void pause_host(const Transfer& t, std::chrono::seconds secs, Clock::time_point now) {
        auto wanted = std::min<Clock::duration>(secs, limits.retry_after_cap);
        auto& hq = host_queue(t.host);
        if (now + wanted <= hq.paused_until) return;
        hq.paused_until = now + wanted;
        spdlog::debug("host {} paused for {} s (Retry-After)", t.host, secs.count());
        refresh_park(t.host, hq, now);
        wake_host_at(t.host, hq, hq.paused_until);
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
        ++n_waiting;
        retries.push(std::move(t));
    }

    void finish_failed(std::unique_ptr<Transfer> t, FailureReason reason, int status,
                       std::string detail = {}) {
        by_id.erase(t->id);
        close_part(*t);
        CommitItem item;
        item.result.id = t->id;
        item.result.url = t->original_url;
        item.result.reason = reason;
        item.result.http_status = status;
        item.result.attempts = t->attempts;
        item.result.detail = detail.empty() ? t->detail : std::move(detail);
        failed.push_back(std::move(item));  // handed over with the rest of this pass
    }

    // What one pass of the loop finished goes on in one hand-off per stage,
    // not one per image: a wake-up costs more than a header check.
    void hand_over() {
        probes.flush();
        committer.push(std::move(failed));
        failed.clear();
    }

    // Stop: nothing queued or running is reported; its .part files go away.
    void abandon_everything() {
        for (auto& [raw, t] : running) {
            curl_multi_remove_handle(multi, t->easy);
            close_part(*t);
            curl_easy_cleanup(t->easy);
        }
        running.clear();
        retries.clear();
        host_timers.clear();
        for (auto& [host, hq] : hosts) hq.pending.clear();
        hosts.clear();
        ready_hosts.clear();
        by_id.clear();
        n_active = 0;
        n_queued = 0;
        n_waiting = 0;
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
    s.waiting = impl_->n_waiting;
    s.probing = impl_->probes.in_flight();
    return s;
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
