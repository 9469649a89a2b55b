// The download engine. Three stages, each on its own thread(s), joined by queues:
//
//   network threads --network-threads lanes (2), each a libcurl multi handle
//                   driven by socket actions over epoll (multi_loop.cpp) and
//                   its share of -j. The sockets' work (libcurl, the kernel's
//                   send and receive, the body writer) runs in parallel; the
//                   decisions below share one dispatch state under
//                   `dispatch_mutex`, taken by a lane between its socket
//                   waits. New work and cancels arrive through `inbox` and
//                   MultiLoop::wake; new work is queued as the fair queue
//                   needs it (requests_wanted: a slice a pass),
//                   so a long list's first transfers start at once and its
//                   rest waits as requests, not transfers (a few hundred
//                   bytes less each); a running transfer is touched only by
//                   its own lane (a cancel for it is forwarded there).
//                   This file: dispatch (fair_queue.hpp: max-min across
//                   users, jobs and hosts, putting back a transfer for a
//                   group below its share; host health, pauses and rates;
//                   retry waits), redirects and the decision what a finished
//                   transfer becomes. transfer.cpp: the easy handle's options,
//                   the SSRF guard and the body writer; curl_errors.cpp: what
//                   a CURLcode means; part_pool.cpp: .part files made ahead.
//   probe pool      magic bytes, declared size, structure (libvips only for
//                   TIFF/HEIF/AVIF and --verify decode): per-file work, done
//                   off the network thread (committer.cpp).
//   committer       makes a whole batch durable at once (group commit), renames
//                   it into the blob store, then reports it (committer.cpp).
//
// Hosts: each has its health (host_health.hpp: down hosts fail their items at
// once, one probe brings them back), a Retry-After pause and a --per-host-rate
// bucket. Their ready items wait in the fair queue, which skips a host that
// may not start anything now (paused, waiting for a rate token, at a job's own
// per-host cap). A host that is paused or whose probe is out is "parked": its
// items leave the fair queue for the host's own list, count as waiting, not
// queued, and not in network_load (so they hold no share); a timer (or the
// probe's end) wakes it and puts them back.
//
// Each lane hands what it finished to the next stage in batches
// (hand_over_if_due): one lock and one wake-up for -j transfers, or for what
// finished within 2 ms, or when nothing is downloading; not one per image.
//
// Ownership: a Transfer is owned by exactly one place at a time, always by a
// unique_ptr: the fair queue, its parked host's list, the retry queue, a lane's running map (while
// its easy handle is in the multi handle), or the probe pool.
#include "fetch/engine.hpp"

#include <curl/curl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <iterator>
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
#include "fetch/multi_loop.hpp"
#include "fetch/part_pool.hpp"
#include "fetch/transfer.hpp"
#include "fetch/url_check.hpp"
#include "fetch/vips_library.hpp"

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
    std::atomic<std::size_t> memory_held{0};  // bodies kept in memory (transfer.hpp)
    std::atomic<std::uint64_t> n_queued{0};
    std::atomic<std::uint64_t> n_active{0};
    std::atomic<std::uint64_t> n_waiting{0};
    std::atomic<std::uint64_t> n_preempted{0};
    // network_load(): per group, queued (not parked) or running.
    mutable std::mutex load_mutex;
    std::map<DispatchKey, std::uint64_t> load;

    // Outstanding = submitted and not yet reported; wait_idle waits for zero.
    std::mutex idle_mutex;
    std::condition_variable idle_cv;
    std::uint64_t outstanding = 0;

    // Inbox: filled by any thread, drained by the lanes a slice at a time
    // from inbox_next on (the rest moved out already). Requests are counted
    // as they are submitted and as they are taken: a cancel applies to the
    // requests submitted before it, also those still here (cancel_on_arrival).
    std::mutex inbox_mutex;
    std::vector<FetchRequest> inbox;
    std::size_t inbox_next = 0;
    std::uint64_t inbox_submitted = 0;
    std::uint64_t inbox_taken = 0;
    struct InboxCancel {
        std::uint64_t id;
        std::uint64_t submitted_before;  // inbox_submitted when it came
    };
    std::vector<InboxCancel> inbox_cancels;
    bool stopping = false;

    // A network thread: its multi handle, what runs in it, and what it
    // finished and has not handed over yet. Only its own thread touches its
    // multi handle and the transfers in `running`; the rest of it is read by
    // the others under dispatch_mutex (its count, wake_pending, cancels).
    struct Lane {
        CURLM* multi = nullptr;
        std::unique_ptr<MultiLoop> loop;  // waits for its sockets; wake() from any thread
        std::vector<CURL*> spare_easy;
        std::unordered_map<Transfer*, std::unique_ptr<Transfer>> running;  // in the multi handle
        int cap = 1;                                                       // its share of -j
        bool shares_changed = false;  // something was queued: look for a group above its share
        bool wake_pending = false;    // woken, and not yet through a pass since
        bool starved = false;         // its last pass had free slots the fair queue could not fill
        std::vector<std::uint64_t> cancels;  // ids running here, cancelled from another lane
        std::vector<std::unique_ptr<Transfer>> probe_batch;  // hand_over_if_due
        std::vector<CommitItem> failed;
        Clock::time_point held_since{};  // when the first of them was added

        std::size_t held() const { return probe_batch.size() + failed.size(); }
        std::thread thread;
    };
    std::vector<std::unique_ptr<Lane>> lanes;
    CURLSH* share = nullptr;  // DNS cache and TLS sessions across all easy handles
    std::array<std::mutex, CURL_LOCK_DATA_LAST> share_locks;

    // Dispatch state: everything below, up to the later stages, is touched
    // only under dispatch_mutex. `lane` is the lane holding it.
    std::mutex dispatch_mutex;
    Lane* lane = nullptr;
    struct HostQueue {
        std::size_t queued = 0;  // its items in the fair queue
        // While parked (paused, or the probe is out): its items, out of the
        // fair queue and counted as waiting.
        std::deque<std::unique_ptr<Transfer>> parked_items;
        int active = 0;
        bool parked = false;
        HostHealth health;
        RateBucket rate;
        Clock::time_point paused_until{};  // Retry-After
        Clock::time_point rate_wait{};     // no token before then (--per-host-rate)
        Clock::time_point wake_at{};       // the earliest timer set for this host
        // A job's own queue for the host (its per_host / per_host_rate,
        // core/request_options.hpp): its caps; 0 / <0: the engine's.
        int per_host_cap = 0;
        double rate_cap = -1;
    };
    std::unordered_map<std::string, HostQueue> hosts;
    // Ready transfers (not parked, not waiting for a retry) and who runs how
    // many: which one starts next (max-min across users, jobs, hosts;
    // --per-host; hosts closed for now are skipped: host_open).
    FairQueue<std::unique_ptr<Transfer>> queue{limits.per_host};
    // Cancelled while still in the inbox: id -> the inbox count when the
    // cancel came (a request of that id taken from the inbox at a lower
    // count ends as cancelled instead of being queued).
    std::unordered_map<std::uint64_t, std::uint64_t> cancel_on_arrival;
    Clock::time_point pass_now{};  // the time host_open() judges by (set per dispatch)
    bool lane_full = false;        // this pass stopped starting at its lane's cap
    std::unordered_map<std::uint64_t, Transfer*> by_id;  // queued, waiting or running
    RetryQueue retries;
    std::multimap<Clock::time_point, std::string> host_timers;  // pauses and rate waits
    std::mt19937_64 rng{std::random_device{}()};

    // Later stages. Declared after what their threads touch, and before the
    // network thread starts.
    PartPool parts;
    Committer committer;
    ProbePool probes;
    std::once_flag stop_once;

    static FetchLimits normalised(FetchLimits l) {
        if (l.concurrency < 1) l.concurrency = 1;
        if (l.per_host <= 0 || l.per_host > l.concurrency) l.per_host = l.concurrency;
        l.network_threads = std::clamp(l.network_threads, 1, l.concurrency);
        return l;
    }

    static void lock_share(CURL*, curl_lock_data data, curl_lock_access, void* self) {
        static_cast<Impl*>(self)->share_locks[std::size_t(data)].lock();
    }
    static void unlock_share(CURL*, curl_lock_data data, void* self) {
        static_cast<Impl*>(self)->share_locks[std::size_t(data)].unlock();
    }

    Impl(const FetchLimits& l, BlobStore& b, ResultsHandler h)
        : limits(normalised(l)),
          blobs(b),
          parts(b, std::size_t(limits.concurrency)),
          committer(b, std::move(h), [this](std::size_t n) { delivered(n); }),
          probes(limits, b, parts, committer, limits.probe_threads) {
        // -j split over the lanes: each runs at most its cap, so they never
        // run more than -j together. The fair queue and the hosts' limits
        // are shared: which lane starts a transfer changes nothing else.
        const int n = limits.network_threads;
        try {
            for (int i = 0; i < n; ++i) {
                Lane& lane = *lanes.emplace_back(std::make_unique<Lane>());
                lane.cap = limits.concurrency / n + (i < limits.concurrency % n ? 1 : 0);
                lane.multi = curl_multi_init();
                if (!lane.multi) throw std::runtime_error("curl_multi_init failed");
                curl_multi_setopt(lane.multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, long(lane.cap));
                curl_multi_setopt(lane.multi, CURLMOPT_MAX_HOST_CONNECTIONS, long(limits.per_host));
                curl_multi_setopt(lane.multi, CURLMOPT_MAXCONNECTS, long(lane.cap) * 2);
                curl_multi_setopt(lane.multi, CURLMOPT_PIPELINING, long(CURLPIPE_MULTIPLEX));
                lane.loop = std::make_unique<MultiLoop>(lane.multi);
            }
        } catch (...) {
            for (auto& lane : lanes) {
                lane->loop.reset();
                if (lane->multi) curl_multi_cleanup(lane->multi);
            }
            throw;
        }
        // Each multi handle pools its connections (and DNS) for its easy
        // handles; a share adds DNS and TLS session resumption across lanes,
        // locked per kind of data.
        share = curl_share_init();
        if (share) {
            curl_share_setopt(share, CURLSHOPT_LOCKFUNC, &Impl::lock_share);
            curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, &Impl::unlock_share);
            curl_share_setopt(share, CURLSHOPT_USERDATA, this);
            curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
            curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
        }
        queue.set_host_filter([this](const std::string& host) { return host_open(host); });
        for (auto& lane : lanes)
            lane->thread = std::thread([this, l = lane.get()] { lane_loop(*l); });
    }

    ~Impl() {
        stop();
        for (auto& lane : lanes) {
            lane->loop.reset();
            curl_multi_cleanup(lane->multi);
        }
        if (share) curl_share_cleanup(share);
    }

    void wake_all() {
        for (auto& lane : lanes) lane->loop->wake();
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
            // Counted at once, so the scheduler's next claim sees them.
            std::lock_guard lock(load_mutex);
            for (const auto& r : requests) ++load[r.key];
        }
        {
            std::lock_guard lock(inbox_mutex);
            inbox_submitted += requests.size();
            if (inbox_next == inbox.size()) {
                inbox = std::move(requests);
                inbox_next = 0;
            } else {
                inbox.insert(inbox.end(), std::make_move_iterator(requests.begin()),
                             std::make_move_iterator(requests.end()));
            }
        }
        wake_all();  // the first takes the inbox; each fills its own slots
    }

    void cancel(const std::vector<std::uint64_t>& ids) {
        {
            std::lock_guard lock(inbox_mutex);
            for (auto id : ids) inbox_cancels.push_back({id, inbox_submitted});
        }
        lanes.front()->loop->wake();  // it forwards what runs in another lane
    }

    void stop() {
        std::call_once(stop_once, [this] {
            {
                std::lock_guard lock(inbox_mutex);
                stopping = true;
            }
            wake_all();
            for (auto& lane : lanes) lane->thread.join();
            abandon_queued();
            probes.close();
            parts.drain();
            committer.close();
            for (auto& lane : lanes) {
                for (CURL* e : lane->spare_easy) curl_easy_cleanup(e);
                lane->spare_easy.clear();
            }
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

    // ---- network threads (lanes) -----------------------------------------

    // One lane's loop. Between its socket waits (outside the lock: libcurl,
    // the kernel and the body writer, in parallel with the other lanes) it
    // takes dispatch_mutex for a pass: new work and cancels, due timers,
    // what finished, and its free slots filled from the shared fair queue.
    void lane_loop(Lane& own) {
        while (true) {
            bool inbox_left = false;
            {
                // The inbox is taken under the dispatch lock: a cancel sent
                // after a submit must not be handled by one lane before
                // another has queued what the submit brought.
                std::lock_guard lock(dispatch_mutex);
                std::vector<FetchRequest> fresh;
                std::vector<InboxCancel> cancels;
                std::uint64_t taken_before = 0;
                {
                    std::lock_guard inbox_lock(inbox_mutex);
                    if (stopping) break;
                    taken_before = inbox_taken;
                    inbox_left = take_inbox(fresh, cancels, requests_wanted(own));
                }
                begin_pass(own);
                reap_finished();
                for (std::size_t i = 0; i < fresh.size(); ++i)
                    enqueue(std::move(fresh[i]), taken_before + i);
                const std::uint64_t taken = taken_before + fresh.size();
                for (const auto& c : cancels) {
                    cancel_one(c.id);
                    // Requests submitted before it are still in the inbox.
                    if (c.submitted_before > taken) {
                        auto& at = cancel_on_arrival[c.id];
                        at = std::max(at, c.submitted_before);
                    }
                }
                std::erase_if(cancel_on_arrival, [&](const auto& c) { return c.second <= taken; });
                for (auto id : own.cancels) cancel_one(id);
                if (!cancels.empty() || !own.cancels.empty()) drop_cancelled_from_parked_hosts();
                own.cancels.clear();
                promote_due_retries();
                wake_due_hosts();
                start_transfers();
                if (own.shares_changed) rebalance();
                end_pass();
            }
            own.loop->run_due_timer();  // transfers just added start at once
            std::chrono::milliseconds timeout;
            {
                std::lock_guard lock(dispatch_mutex);
                begin_pass(own);
                reap_finished();
                start_transfers();
                hand_over_if_due();
                end_pass();
                // Requests left that the queue wants now: no waiting on sockets.
                timeout = inbox_left && requests_wanted(own) > 0 ? std::chrono::milliseconds(0)
                                                                 : poll_timeout();
            }
            own.loop->wait(timeout);
        }
        std::lock_guard lock(dispatch_mutex);
        begin_pass(own);
        hand_over();  // what finished before the stop is still reported
        abandon_running();
        lane = nullptr;
    }

    // Queueing costs a few microseconds a request (its URL checked, its
    // transfer made, ~700 bytes with its strings): a pass that queued a long
    // list whole held the first transfer back (for a million URLs, seconds)
    // and kept a transfer per URL (a gigabyte). So a pass takes at most
    // kQueuedPerPass, only while the fair queue holds fewer than queue_ahead()
    // ready (enough to pick fairly among users, jobs and hosts) or while this
    // lane has free slots that the queue could not fill (its hosts at their
    // limits: more of the list may bring other hosts); the rest waits in the
    // inbox as requests.
    static constexpr std::size_t kQueuedPerPass = 512;
    std::size_t queue_ahead() const {
        return std::max<std::size_t>(4096, 16 * std::size_t(limits.concurrency));
    }

    std::size_t requests_wanted(const Lane& own) const {
        const std::size_t ready = queue.pending();
        if (ready < queue_ahead()) return std::min(kQueuedPerPass, queue_ahead() - ready);
        return own.starved ? kQueuedPerPass : 0;
    }

    // Under inbox_mutex: up to `want` of the next requests, and the cancels.
    // True while requests are left for a later pass.
    bool take_inbox(std::vector<FetchRequest>& fresh, std::vector<InboxCancel>& cancels,
                    std::size_t want) {
        cancels.swap(inbox_cancels);
        const std::size_t n = std::min(want, inbox.size() - inbox_next);
        if (inbox_next == 0 && n == inbox.size()) {
            fresh.swap(inbox);
        } else {
            auto from = inbox.begin() + std::ptrdiff_t(inbox_next);
            fresh.assign(std::make_move_iterator(from),
                         std::make_move_iterator(from + std::ptrdiff_t(n)));
            inbox_next += n;
        }
        inbox_taken += n;
        if (inbox_next < inbox.size()) return true;
        inbox.clear();
        inbox_next = 0;
        return false;
    }

    void begin_pass(Lane& own) {
        lane = &own;
        own.wake_pending = false;
    }

    // What this pass did that another lane must act on: a slot of its free
    // for what waits (this lane filled all of its own), or shares to
    // rebalance among the transfers it runs.
    void end_pass() {
        const bool queued_left = lane_full && n_queued > 0;
        lane_full = false;
        for (auto& other : lanes) {
            if (other.get() == lane) continue;
            const bool room = queued_left && int(other->running.size()) < other->cap;
            const bool rebalance_there =
                other->shares_changed && int(n_active) >= limits.concurrency;
            if (room || rebalance_there) wake_lane(*other);
        }
    }

    void wake_lane(Lane& other) {
        if (other.wake_pending) return;
        other.wake_pending = true;
        other.loop->wake();
    }

    // `order`: the request's place in everything ever submitted (for a
    // cancel that came while it was in the inbox).
    void enqueue(FetchRequest r, std::uint64_t order) {
        auto t = std::make_unique<Transfer>();
        t->limits = &limits;
        if (r.options) {  // the job's own headers and tighter limits
            t->options = std::move(r.options);
            t->own_limits =
                std::make_unique<FetchLimits>(apply_job_limits(limits, t->options->limits));
            t->limits = t->own_limits.get();
        }
        t->bytes_received = &bytes_received;
        t->memory_held = &memory_held;
        t->parts = &parts;
        t->id = r.id;
        t->key = r.key;
        t->original_url = std::move(r.url);
        if (auto it = cancel_on_arrival.find(t->id);
            it != cancel_on_arrival.end() && order < it->second) {
            cancel_on_arrival.erase(it);
            --n_queued;
            finish_failed(std::move(t), FailureReason::cancelled, 0);
            return;
        }
        auto check = check_url(t->original_url, limits);
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
        if (hq.parked) {
            --n_queued;
            ++n_waiting;
            leave_network(*t);
            if (front)
                hq.parked_items.push_front(std::move(t));
            else
                hq.parked_items.push_back(std::move(t));
            return;
        }
        join_network(*t);
        DispatchKey key = t->key;
        std::string host = t->host;
        ++hq.queued;
        queue.push(key, host, std::move(t), front);
        for (auto& l : lanes) l->shares_changed = true;
    }

    // May the fair queue start a transfer to `host` now? Its --per-host
    // limit the fair queue checks itself; here: parked, a pause, a rate wait,
    // a job's own lower per-host cap.
    bool host_open(const std::string& host) const {
        auto it = hosts.find(host);
        if (it == hosts.end()) return true;
        const auto& hq = it->second;
        if (hq.parked || hq.paused_until > pass_now || hq.rate_wait > pass_now) return false;
        return !(hq.per_host_cap > 0 && hq.per_host_cap < limits.per_host &&
                 hq.active >= hq.per_host_cap);
    }

    // Parks the host (its ready items leave the fair queue and become
    // waiting) while it is paused or its probe is out; unparks it (its items
    // go back to the fair queue, in their order) otherwise.
    void refresh_park(const std::string& host, HostQueue& hq, Clock::time_point now) {
        bool park = hq.paused_until > now || hq.health.probing();
        if (park == hq.parked) return;
        if (park) {
            std::deque<std::unique_ptr<Transfer>> taken;
            queue.take_host(host, [&](DispatchKey, std::unique_ptr<Transfer> t) {
                leave_network(*t);
                taken.push_back(std::move(t));
            });
            hq.queued = 0;
            n_queued -= taken.size();
            n_waiting += taken.size();
            // Ahead of anything parked already (none, as it was not parked).
            for (auto& t : hq.parked_items) taken.push_back(std::move(t));
            hq.parked_items = std::move(taken);
            hq.parked = true;
        } else {
            hq.parked = false;
            auto items = std::move(hq.parked_items);
            hq.parked_items.clear();
            n_waiting -= items.size();
            n_queued += items.size();
            for (auto& t : items) push_pending(std::move(t), /*front=*/false);
        }
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
        std::vector<std::unique_ptr<Transfer>> gone;
        queue.take_host(
            host, [&](DispatchKey, std::unique_ptr<Transfer> t) { gone.push_back(std::move(t)); });
        hq.queued = 0;
        n_queued -= gone.size();
        n_waiting -= hq.parked_items.size();
        for (auto& t : hq.parked_items) gone.push_back(std::move(t));
        hq.parked_items.clear();
        for (auto& t : retries.take_if([&](const Transfer& x) { return x.host == host; })) {
            --n_waiting;
            gone.push_back(std::move(t));
        }
        for (auto& t : gone) {
            auto why = t->cancelled ? FailureReason::cancelled : reason;
            finish_failed(std::move(t), why, 0, detail);
        }
    }

    // Fills this lane's free slots, each with the next transfer the fair
    // queue picks among the hosts open now.
    void start_transfers() {
        lane->starved = false;
        pass_now = Clock::now();
        const auto now = pass_now;
        while (int(n_active) < limits.concurrency) {
            if (int(lane->running.size()) >= lane->cap) {
                lane_full = true;  // another lane may have room (end_pass)
                break;
            }
            auto next = queue.pop();
            if (!next) {  // nothing queued, or only for hosts closed or at their limit
                lane->starved = true;
                break;
            }
            auto t = std::move(next->item);
            const std::string& host = next->host;
            auto& hq = host_queue(host);
            --hq.queued;
            if (t->cancelled) {
                --n_queued;
                finish_failed(std::move(t), FailureReason::cancelled, 0);
                continue;
            }
            const auto gate = hq.health.gate(now);
            if (gate == HostHealth::Gate::down) {
                --n_queued;
                fail_host_queue(host, hq, now);
                finish_failed(std::move(t), hq.health.reason(), 0, hq.health.down_detail(now));
                continue;
            }
            if (gate == HostHealth::Gate::wait) {  // the probe is out: wait behind it
                push_pending(std::move(t), /*front=*/true);
                refresh_park(host, hq, now);
                continue;
            }
            if (auto when =
                    hq.rate.take(hq.rate_cap >= 0 ? hq.rate_cap : limits.per_host_rate, now)) {
                hq.rate_wait = *when;  // host_open() skips the host until then
                wake_host_at(host, hq, *when);
                push_pending(std::move(t), /*front=*/true);
                continue;
            }
            t->is_probe = gate == HostHealth::Gate::probe;
            if (!t->redirect_hop) ++t->attempts;
            t->redirect_hop = false;
            const bool probe = t->is_probe;
            start(std::move(t));
            // After start() counted it active: queued + active never dips.
            --n_queued;
            if (probe) {
                hq.health.begin_probe();
                refresh_park(host, hq, now);  // the rest wait for the probe
            }
        }
        // Drop idle host entries so a long run over many hosts stays small.
        if (hosts.size() > 1024) {
            for (auto it = hosts.begin(); it != hosts.end();)
                it = (it->second.queued == 0 && it->second.parked_items.empty() &&
                      it->second.active == 0 && !it->second.parked &&
                      it->second.wake_at == Clock::time_point{} &&
                      it->second.health.healthy_and_quiet() && it->second.paused_until <= now &&
                      it->second.rate_wait <= now)
                         ? hosts.erase(it)
                         : std::next(it);
        }
    }

    // Every slot taken and a group waits below its share while another holds
    // more (FairQueue::over_share): that one's newest transfer that has had
    // no answer yet goes back to the front of its queue (no attempt spent)
    // and the freed slot goes to the one waiting. Transfers already
    // answering are never cut: what they read would be lost; nor is a host's
    // probe (its answer decides the host's health). The origin sees a request
    // given up before its answer: the price of a slow host not keeping slots
    // a newcomer is owed for as long as it takes to answer.
    // Each lane picks among its own transfers; end_pass() wakes another
    // lane whose transfers may hold the group's extra slots.
    void rebalance() {
        lane->shares_changed = false;
        pass_now = Clock::now();
        while (int(n_active) >= limits.concurrency) {
            auto over = queue.over_share(limits.concurrency);
            if (!over) return;
            Transfer* victim = nullptr;
            for (const auto& [raw, owned] : lane->running) {
                if (!(raw->key == *over) || raw->cancelled || raw->is_probe || raw->bytes > 0 ||
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
        lane->shares_changed = false;  // rebalance() goes on looking itself
    }

    // Starts (or restarts, after a redirect) one transfer in this lane: its
    // running map owns it until it is reaped or cancelled.
    void start(std::unique_ptr<Transfer> owned) {
        Transfer& t = *owned;
        reset_attempt(t);
        if (!t.easy) {
            if (!lane->spare_easy.empty()) {
                t.easy = lane->spare_easy.back();
                lane->spare_easy.pop_back();
                curl_easy_reset(t.easy);
            } else {
                t.easy = curl_easy_init();
            }
        }
        configure_easy(t, *t.limits);
        if (share) curl_easy_setopt(t.easy, CURLOPT_SHARE, share);
        t.lane = lane;
        lane->running.emplace(&t, std::move(owned));
        ++host_queue(t.host).active;
        t.started_at = Clock::now();
        queue.started(t.key, t.host);
        ++n_active;
        curl_multi_add_handle(lane->multi, t.easy);
    }

    // Takes a transfer running in this lane out of its multi handle and back
    // into our hands (null if it does not run here).
    std::unique_ptr<Transfer> take_running(Transfer* raw) {
        auto node = lane->running.extract(raw);
        if (node.empty()) return nullptr;
        curl_multi_remove_handle(lane->multi, raw->easy);
        raw->lane = nullptr;
        return std::move(node.mapped());
    }

    std::chrono::milliseconds poll_timeout() {
        auto next = Clock::now() + std::chrono::seconds(1);
        if (lane->held() > 0) next = std::min(next, lane->held_since + kHandOverDelay);
        if (!retries.empty()) next = std::min(next, retries.next_due());
        if (!host_timers.empty()) next = std::min(next, host_timers.begin()->first);
        // Round up: waking a millisecond early would only spin.
        auto wait = std::chrono::ceil<std::chrono::milliseconds>(next - Clock::now());
        return std::clamp(wait, std::chrono::milliseconds(0), std::chrono::milliseconds(1000));
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
        if (raw->lane && raw->lane != lane) {
            // Running in another lane: only that one may touch it.
            auto& owner = *static_cast<Lane*>(raw->lane);
            owner.cancels.push_back(id);
            wake_lane(owner);
            return;
        }
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
            auto& items = hq.parked_items;
            auto keep = std::stable_partition(items.begin(), items.end(),
                                              [](const auto& t) { return !t->cancelled; });
            std::vector<std::unique_ptr<Transfer>> gone(std::make_move_iterator(keep),
                                                        std::make_move_iterator(items.end()));
            items.erase(keep, items.end());
            for (auto& t : gone) {
                --n_waiting;
                finish_failed(std::move(t), FailureReason::cancelled, 0);
            }
        }
    }

    // Its easy handle stays with this lane (the one it ran in) for reuse.
    void release_slot(Transfer& t) {
        --n_active;
        --host_queue(t.host).active;
        queue.finished(t.key, t.host);
        if (t.easy) {
            lane->spare_easy.push_back(t.easy);
            t.easy = nullptr;
        }
    }

    void reap_finished() {
        int left = 0;
        while (CURLMsg* msg = curl_multi_info_read(lane->multi, &left)) {
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
            leave_network(*t);
            by_id.erase(t->id);
            note_held();
            probes.add(lane->probe_batch, std::move(t));  // handed over with the rest
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
        leave_network(*t);  // parked: no share until it is due
        retries.push(std::move(t));
    }

    // The transfer counts in network_load (ready or running) / no longer
    // (parked, or off the network: downloaded or failed).
    void join_network(Transfer& t) {
        if (t.on_network) return;
        t.on_network = true;
        std::lock_guard lock(load_mutex);
        ++load[t.key];
    }
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
        note_held();
        lane->failed.push_back(std::move(item));  // handed over with the rest (hand_over_if_due)
    }

    // What the loop finished goes on in one hand-off per stage, not one per
    // image: a wake-up costs more than a header check. Not even one per pass
    // while answers keep coming: 64 answers that arrive within a millisecond
    // or two take a dozen passes, and a wake-up of the probe thread per pass
    // (a futex wake and often a context switch on a small machine) held back
    // the next requests of that burst by ~100 us each. So what is finished is
    // held until a batch's worth (-j) is there, or kHandOverDelay has passed
    // since the first of it, or nothing is downloading.
    static constexpr auto kHandOverDelay = std::chrono::milliseconds(2);

    // Before adding to the lane's probe batch or failures.
    void note_held() {
        if (lane->held() == 0) lane->held_since = Clock::now();
    }

    void hand_over_if_due() {
        const std::size_t held = lane->held();
        if (held == 0) return;
        if (held < static_cast<std::size_t>(lane->cap) && !lane->running.empty() &&
            Clock::now() - lane->held_since < kHandOverDelay)
            return;
        hand_over();
    }

    void hand_over() {
        probes.flush(lane->probe_batch);
        committer.push(std::move(lane->failed));
        lane->failed.clear();
    }

    // Stop: nothing queued or running is reported; its .part files go away.
    // What this lane runs, on its own thread (which owns the multi handle),
    // forgotten by id too (the other lanes may still look ids up)...
    void abandon_running() {
        for (auto& [raw, t] : lane->running) {
            by_id.erase(t->id);
            curl_multi_remove_handle(lane->multi, t->easy);
            close_part(*t);
            curl_easy_cleanup(t->easy);
        }
        lane->running.clear();
    }

    // ... and, once every lane has stopped, what waits for one.
    void abandon_queued() {
        retries.clear();
        host_timers.clear();
        queue.drain([](std::unique_ptr<Transfer>) {});
        hosts.clear();
        by_id.clear();
        {
            std::lock_guard lock(load_mutex);
            load.clear();
        }
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
    s.preempted = impl_->n_preempted;
    return s;
}

std::vector<std::pair<DispatchKey, std::uint64_t>> Engine::network_load() const {
    std::lock_guard lock(impl_->load_mutex);
    return {impl_->load.begin(), impl_->load.end()};
}

void init_fetch_libraries(const char* argv0) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    prepare_vips(argv0);  // libvips itself starts on first use
}

}  // namespace litchi
