// The download engine. Three stages, each on its own thread(s), joined by queues:
//
//   network thread  one libcurl multi handle driven by curl_multi_poll; new work
//                   and cancels arrive through `inbox` and curl_multi_wakeup.
//                   This file: dispatch (fair_queue.hpp: max-min across
//                   users, jobs and hosts, putting back a transfer for a
//                   group below its share; retry waits), redirects and the
//                   decision what a finished transfer becomes. transfer.cpp: the easy handle's
//                   options, the SSRF guard and the body writer; curl_errors.cpp: what a CURLcode
//                   means; part_pool.cpp: .part files made ahead.
//   probe pool      magic bytes, declared size, libvips header: per-file work,
//                   done in parallel and off the network thread (committer.cpp).
//   committer       makes a whole batch durable at once (group commit), renames
//                   it into the blob store, then reports it (committer.cpp).
//
// Ownership: a Transfer is owned by exactly one place at a time, always by a
// unique_ptr: the fair queue, the retry queue, the running map (while
// its easy handle is in the multi handle), or the probe pool.
#include "fetch/engine.hpp"

#include <curl/curl.h>
#include <spdlog/spdlog.h>
#include <vips/vips.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
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
    FairQueue<std::unique_ptr<Transfer>> queue{limits.per_host};
    bool shares_changed = false;  // something was queued: look for a group above its share
    std::unordered_map<std::uint64_t, Transfer*> by_id;                // queued, waiting or running
    std::unordered_map<Transfer*, std::unique_ptr<Transfer>> running;  // in the multi handle
    RetryQueue retries;
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
        network_thread = std::thread([this] { network_loop(); });
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
            promote_due_retries();
            start_transfers();
            if (shares_changed) rebalance();
            curl_multi_perform(multi, &still_running);
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
            for (const auto& [raw, owned] : running) {
                if (!(raw->key == *over) || raw->cancelled || raw->bytes > 0 ||
                    raw->discarded > 0 || raw->status_checked)
                    continue;
                long status = 0;
                curl_easy_getinfo(raw->easy, CURLINFO_RESPONSE_CODE, &status);
                if (status == 0 && (!victim || raw->started_at > victim->started_at)) victim = raw;
            }
            if (!victim) return;  // all of it is answering: wait for it to end
            preempt(take_running(victim));
            start_transfers();
        }
    }

    void preempt(std::unique_ptr<Transfer> t) {
        // Queued again before its slot is given up: queued + active never dips.
        ++n_queued;
        ++n_preempted;
        release_slot(*t);
        close_part(*t);
        t->redirect_hop = true;  // its next start goes on with this attempt: not counted again
        push_pending(std::move(t), /*front=*/true);
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
        configure_easy(t, limits);
        running.emplace(&t, std::move(owned));
        t.started_at = Clock::now();
        queue.started(t.key, t.host);
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
        if (retries.empty()) return 1000;
        auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(retries.next_due() -
                                                                          Clock::now());
        return int(std::clamp<long long>(wait.count(), 0, 1000));
    }

    void promote_due_retries() {
        auto now = Clock::now();
        while (auto t = retries.pop_due(now)) push_pending(std::move(t), /*front=*/true);
    }

    void cancel_one(std::uint64_t id) {
        auto it = by_id.find(id);
        if (it == by_id.end()) return;
        Transfer* raw = it->second;
        if (raw->cancelled) return;
        raw->cancelled = true;
        if (auto t = take_running(raw)) {
            release_slot(*t);
            int status = t->status_checked ? int(t->status) : 0;
            finish_failed(std::move(t), FailureReason::cancelled, status);
        }
        // A queued transfer is dropped when it next comes up. Waiting ones
        // (retry queue) would come up only when due; pull them forward now.
        for (auto& w : retries.take_if([](const Transfer& x) { return x.cancelled; })) {
            --n_queued;
            finish_failed(std::move(w), FailureReason::cancelled, 0);
        }
    }

    void release_slot(Transfer& t) {
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
            if (auto t = take_running(raw)) on_done(std::move(t), rc);
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
            leave_network(*t);
            by_id.erase(t->id);
            probes.push(std::move(t));
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
        retries.push(std::move(t));
    }

    // The transfer is off the network (downloaded, or failed for good).
    void leave_network(Transfer& t) {
        if (!t.on_network) return;
        t.on_network = false;
        std::lock_guard lock(load_mutex);
        auto it = load.find(t.key);
        if (it != load.end() && --it->second == 0) load.erase(it);
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
        committer.push(std::move(item));
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
        queue.drain([](std::unique_ptr<Transfer>) {});
        by_id.clear();
        {
            std::lock_guard lock(load_mutex);
            load.clear();
        }
        n_active = 0;
        n_queued = 0;
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
    s.probing = impl_->probes.in_flight();
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
