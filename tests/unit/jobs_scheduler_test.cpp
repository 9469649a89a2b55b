// The scheduler with the real download engine against a tiny HTTP origin on
// 127.0.0.1 inside the test: jobs run to done with exact counts and durable
// blobs, failures carry their reason, a small job overtakes a big one, pause
// puts in-flight items back in the queue (not cancelled), cancel and stop do
// what they promise, and delete removes blobs nobody else uses. Leases: the
// upkeep renews and expires them (and runs what expired), an idle feeder
// polls for work nobody told it about, and results the store refuses are
// kept and retried (or, beyond the bound, dropped and their items redone).
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "blobs/blob_store.hpp"
#include "jobs/job_service.hpp"
#include "jobs/scheduler.hpp"
#include "loopback_listener.hpp"
#include "store/observer.hpp"
#include "store/sqlite_store.hpp"
#include "store_test_support.hpp"

namespace litchi {
namespace {

using namespace std::chrono_literals;
using testing::recount;
using testing::TempDir;

class FetchLibraries : public ::testing::Environment {
  public:
    void SetUp() override { init_fetch_libraries("jobs_scheduler_test"); }
};
const auto* const kFetchLibraries = ::testing::AddGlobalTestEnvironment(new FetchLibraries);

// A valid 1x1 RGBA PNG.
const unsigned char kPng[] = {
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48,
    0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00,
    0x00, 0x1F, 0x15, 0xC4, 0x89, 0x00, 0x00, 0x00, 0x0A, 0x49, 0x44, 0x41, 0x54, 0x78,
    0x9C, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00,
    0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82};

// One thread, one connection at a time, Connection: close. Paths:
//   /img/...  200 with the PNG      /missing/...  404
//   /hang/... reads the request, never answers (held open until stop)
class TestOrigin {
  public:
    TestOrigin() {
        const auto listener = listen_on_loopback(128);
        listener_ = listener.fd;
        port_ = listener.port;
        thread_ = std::thread([this] { run(); });
    }
    ~TestOrigin() {
        stop_ = true;
        thread_.join();
        for (int fd : held_) ::close(fd);
        ::close(listener_);
    }
    std::string url(std::string_view path) const {
        return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
    }
    int requests() const { return requests_; }

  private:
    void run() {
        while (!stop_) {
            pollfd pfd{listener_, POLLIN, 0};
            if (::poll(&pfd, 1, 20) <= 0) continue;
            int fd = ::accept(listener_, nullptr, nullptr);
            if (fd < 0) continue;
            serve(fd);
        }
    }

    void serve(int fd) {
        std::string request;
        char buffer[4096];
        auto deadline = std::chrono::steady_clock::now() + 2s;
        while (request.find("\r\n\r\n") == std::string::npos &&
               std::chrono::steady_clock::now() < deadline && !stop_) {
            pollfd pfd{fd, POLLIN, 0};
            if (::poll(&pfd, 1, 20) <= 0) continue;
            auto n = ::recv(fd, buffer, sizeof buffer, 0);
            if (n <= 0) break;
            request.append(buffer, static_cast<std::size_t>(n));
        }
        ++requests_;
        auto path_start = request.find(' ') + 1;
        std::string path = request.substr(path_start, request.find(' ', path_start) - path_start);
        if (path.rfind("/hang/", 0) == 0) {
            held_.push_back(fd);  // answered never; closed when the origin stops
            return;
        }
        std::string response;
        if (path.rfind("/img/", 0) == 0) {
            response = "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: " +
                       std::to_string(sizeof kPng) + "\r\nConnection: close\r\n\r\n";
            response.append(reinterpret_cast<const char*>(kPng), sizeof kPng);
        } else {
            response = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        }
        std::size_t sent = 0;
        while (sent < response.size()) {
            auto n = ::send(fd, response.data() + sent, response.size() - sent, MSG_NOSIGNAL);
            if (n <= 0) break;
            sent += static_cast<std::size_t>(n);
        }
        ::close(fd);
    }

    int listener_ = -1;
    int port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<int> requests_{0};
    std::vector<int> held_;
    std::thread thread_;
};

// Remembers when each job first reached done.
struct DoneOrder : StoreObserver {
    std::mutex mutex;
    std::vector<JobId> done;
    void on_commit(StoreChanges& changes) override {
        std::lock_guard lock(mutex);
        for (const auto& change : changes.changed)
            if (change.state_changed && change.job.state == JobState::done)
                done.push_back(change.job.id);
    }
};

// A JobStore that forwards to a real one, refuses apply_outcomes while told
// to (as an unreachable database or a full disk would) and counts the lease
// upkeep calls. Only for these tests.
class FlakyJobs final : public JobStore {
  public:
    explicit FlakyJobs(JobStore& inner) : inner_(inner) {}

    std::atomic<int> fail_next_applies{0};    // throw on the next N calls
    std::atomic<bool> refuse_applies{false};  // throw on every call while set
    std::atomic<int> apply_calls{0}, failed_applies{0}, renewals{0}, expiries{0};
    // When set: the scheduler's clock, read at every apply and renewal.
    std::function<std::chrono::steady_clock::time_point()> clock;
    std::mutex times_mutex;
    std::vector<std::chrono::steady_clock::duration> apply_times, renewal_times;

    void set_observer(StoreObserver* observer) override { inner_.set_observer(observer); }
    JobSnapshot create_job(const NewJob& job) override { return inner_.create_job(job); }
    std::vector<JobSnapshot> list_jobs(UserId user) override { return inner_.list_jobs(user); }
    std::optional<JobSnapshot> get_job(UserId user, JobId job) override {
        return inner_.get_job(user, job);
    }
    void visit_jobs(UserId user, const JobsVisitor& visit) override {
        inner_.visit_jobs(user, visit);
    }
    std::optional<ItemPage> list_items(UserId user, JobId job, const ItemQuery& query) override {
        return inner_.list_items(user, job, query);
    }
    std::optional<ItemRecord> get_item(UserId user, JobId job, ItemId item) override {
        return inner_.get_item(user, job, item);
    }
    std::optional<ImageFormat> find_user_blob(UserId user, std::string_view sha256) override {
        return inner_.find_user_blob(user, sha256);
    }
    bool blob_referenced(std::string_view sha256) override {
        return inner_.blob_referenced(sha256);
    }
    JobOpResult pause_job(UserId user, JobId job) override { return inner_.pause_job(user, job); }
    JobOpResult resume_job(UserId user, JobId job) override { return inner_.resume_job(user, job); }
    JobOpResult cancel_job(UserId user, JobId job) override { return inner_.cancel_job(user, job); }
    JobOpResult retry_job(UserId user, JobId job, const RetrySelection& which) override {
        return inner_.retry_job(user, job, which);
    }
    JobOpResult rename_job(UserId user, JobId job, std::string_view name) override {
        return inner_.rename_job(user, job, name);
    }
    JobOpResult delete_job(UserId user, JobId job) override { return inner_.delete_job(user, job); }
    std::optional<RequestOptions> request_options(JobId job) override {
        return inner_.request_options(job);
    }
    std::vector<WebhookDelivery> claim_webhooks(std::size_t max) override {
        return inner_.claim_webhooks(max);
    }
    void keep_webhook_body(std::int64_t id, const std::string& body) override {
        inner_.keep_webhook_body(id, body);
    }
    void finish_webhook_attempt(const WebhookAttempt& attempt) override {
        inner_.finish_webhook_attempt(attempt);
    }
    std::optional<WebhookDelivery> last_webhook(JobId job) override {
        return inner_.last_webhook(job);
    }
    std::optional<JobSnapshot> find_job(JobId job) override { return inner_.find_job(job); }
    std::vector<ClaimedItem> claim_next_items(std::size_t max, const SlotLoad& load) override {
        return inner_.claim_next_items(max, load);
    }
    ApplySummary apply_outcomes(const std::vector<ItemOutcome>& outcomes) override {
        record(apply_times);
        ++apply_calls;
        if (refuse_applies || fail_next_applies.fetch_sub(1) > 0) {
            ++failed_applies;
            throw std::runtime_error("database unreachable (test)");
        }
        return inner_.apply_outcomes(outcomes);
    }
    std::int64_t requeue_active() override { return inner_.requeue_active(); }
    std::int64_t renew_leases() override {
        record(renewal_times);
        ++renewals;
        return inner_.renew_leases();
    }
    std::int64_t expire_leases() override {
        ++expiries;
        return inner_.expire_leases();
    }
    std::vector<ItemId> released_claims(const std::vector<HeldClaim>& held) override {
        return inner_.released_claims(held);
    }
    RecoverySummary recover() override { return inner_.recover(); }
    std::int64_t queued_total() override { return inner_.queued_total(); }
    std::int64_t leased_total() override { return inner_.leased_total(); }
    bool has_runnable() override { return inner_.has_runnable(); }

  private:
    void record(std::vector<std::chrono::steady_clock::duration>& times) {
        if (!clock) return;
        std::lock_guard lock(times_mutex);
        times.push_back(clock().time_since_epoch());
    }

    JobStore& inner_;
};

// A clock the test moves by hand (SchedulerOptions::clock), from 0.
struct DrivenClock {
    std::atomic<std::chrono::steady_clock::rep> ticks{0};
    std::chrono::steady_clock::time_point now() const {
        return std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(ticks));
    }
    void advance(std::chrono::steady_clock::duration by, Scheduler& scheduler) {
        ticks += by.count();
        scheduler.clock_moved();
    }
};

// Polls `condition` until true or 15 s; returns its last value.
template <class Condition>
bool eventually(Condition condition) {
    auto deadline = std::chrono::steady_clock::now() + 15s;
    while (!condition()) {
        if (std::chrono::steady_clock::now() > deadline) return condition();
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

class JobsScheduler : public ::testing::Test {
  protected:
    void SetUp() override {
        std::lock_guard lock(store.database().mutex());
        store.database().exec(
            "INSERT INTO users(name, password_hash, created) VALUES ('alice', 'x', 0), ('bob', "
            "'x', 0)");
        alice = 1;
        bob = 2;
    }

    SchedulerOptions options(int concurrency) {
        SchedulerOptions o;
        o.limits.concurrency = concurrency;
        o.limits.allow_private = true;  // the origin is on 127.0.0.1
        o.limits.retries = 0;
        o.limits.connect_timeout = 2000ms;
        o.limits.total_timeout = 20'000ms;
        // /hang/ transfers must stay active however slow this machine is (a
        // loaded CI box can take >10 s to reach a wait_for condition).
        o.limits.low_speed_bytes = 0;
        o.limits.probe_threads = 1;
        return o;
    }

    std::vector<std::string_view> views(const std::vector<std::string>& urls) {
        return {urls.begin(), urls.end()};
    }

    std::vector<std::string> urls(std::string_view kind, int n) {
        std::vector<std::string> out;
        for (int i = 0; i < n; ++i)
            out.push_back(origin.url(std::string(kind) + std::to_string(i) + ".png"));
        return out;
    }

    // A job of `n` images put in the store behind every scheduler's back (as
    // another node would): nobody is woken.
    JobSnapshot create_unannounced(UserId user, const std::string& name, std::string_view kind,
                                   int n) {
        auto lines = urls(kind, n);  // NewItem::url views these: alive until created
        std::vector<NewItem> items;
        for (const auto& url : lines) items.push_back({url, FailureReason::none});
        return store.jobs().create_job({user, name, items});
    }

    // Polls until `predicate(job)` or 15 s; returns the last snapshot.
    template <class Predicate>
    JobSnapshot wait_for(UserId user, JobId job, Predicate predicate) {
        auto deadline = std::chrono::steady_clock::now() + 15s;
        while (true) {
            auto snap = store.jobs().get_job(user, job);
            if (!snap) throw std::runtime_error("job vanished");
            if (predicate(*snap) || std::chrono::steady_clock::now() > deadline) return *snap;
            std::this_thread::sleep_for(10ms);
        }
    }

    void expect_exact(UserId user, JobId job) {
        EXPECT_EQ(store.jobs().get_job(user, job)->counts, recount(store.database(), job));
    }

    TempDir dir;
    TestOrigin origin;
    SqliteStore store{dir.path()};
    BlobStore blobs{dir.path() / "blobs", BlobLayout::sharded};
    UserId alice = 0, bob = 0;
};

TEST_F(JobsScheduler, RunsJobsToDoneWithDurableBlobs) {
    Scheduler scheduler(store.jobs(), blobs, options(4));
    JobService service(store.jobs(), scheduler);
    scheduler.start();
    auto ok = urls("/img/", 12);
    ok.push_back(origin.url("/missing/x.png"));
    ok.push_back("http://127.0.0.1:1/refused.png");  // nothing listens on port 1
    ok.push_back("not a url");
    auto job = service.create_job({alice, "run", views(ok)});
    EXPECT_EQ(job.counts.failed, 1) << "the bad line failed at admission";
    ASSERT_TRUE(scheduler.wait_idle(20s));
    auto snap = *store.jobs().get_job(alice, job.id);
    EXPECT_EQ(snap.state, JobState::done);
    EXPECT_EQ(snap.counts.done, 12);
    EXPECT_EQ(snap.counts.failed, 3);
    EXPECT_EQ(snap.bytes, 12 * sizeof kPng);
    expect_exact(alice, job.id);

    ItemQuery failed;
    failed.state = ItemState::failed;
    auto page = store.jobs().list_items(alice, job.id, failed);
    ASSERT_EQ(page->items.size(), 3u);
    EXPECT_EQ(page->items[0].reason, FailureReason::http);
    EXPECT_EQ(page->items[0].http_status, 404);
    EXPECT_EQ(page->items[1].reason, FailureReason::connect);
    EXPECT_EQ(page->items[2].reason, FailureReason::bad_url);

    ItemQuery done;
    done.state = ItemState::done;
    page = store.jobs().list_items(alice, job.id, done);
    ASSERT_EQ(page->items.size(), 12u);
    const auto& item = page->items[0];
    EXPECT_EQ(item.format, ImageFormat::png);
    EXPECT_EQ(item.width, 1);
    EXPECT_TRUE(blobs.contains(item.sha256, ImageFormat::png))
        << "the blob is durable before the item is done";
    EXPECT_EQ(store.jobs().find_user_blob(alice, item.sha256), ImageFormat::png);

    auto stats = scheduler.stats();
    EXPECT_EQ(stats.done, 12u);
    EXPECT_EQ(stats.failed, 2u) << "engine failures (the bad line never reached it)";
    EXPECT_EQ(stats.failed_by_reason[static_cast<std::size_t>(FailureReason::http)], 1u);
    EXPECT_EQ(stats.in_flight, 0u);
    EXPECT_EQ(stats.queued, 0);
    scheduler.stop();
}

TEST_F(JobsScheduler, SmallJobSubmittedLaterFinishesFirst) {
    DoneOrder order;
    Scheduler scheduler(store.jobs(), blobs, options(2));
    JobService service(store.jobs(), scheduler);
    service.set_observer(&order);
    auto big_urls = urls("/img/big", 150);
    auto small_urls = urls("/img/small", 6);
    auto big = service.create_job({alice, "big", views(big_urls)});
    auto small = service.create_job({alice, "small", views(small_urls)});
    scheduler.start();
    ASSERT_TRUE(scheduler.wait_idle(60s));
    {
        std::lock_guard lock(order.mutex);
        ASSERT_EQ(order.done.size(), 2u);
        EXPECT_EQ(order.done[0], small.id);
        EXPECT_EQ(order.done[1], big.id);
    }
    expect_exact(alice, big.id);
    expect_exact(alice, small.id);
    scheduler.stop();
}

TEST_F(JobsScheduler, PauseRequeuesInFlightItemsAndCancelFinishesThem) {
    Scheduler scheduler(store.jobs(), blobs, options(3));
    JobService service(store.jobs(), scheduler);
    scheduler.start();
    auto hang = urls("/hang/", 3);
    auto job = service.create_job({alice, "hang", views(hang)});
    auto snap = wait_for(alice, job.id, [](const JobSnapshot& s) { return s.counts.active == 3; });
    ASSERT_EQ(snap.counts.active, 3);
    EXPECT_EQ(snap.state, JobState::running);

    auto paused = service.pause_job(alice, job.id);
    EXPECT_EQ(paused.status, JobOpStatus::ok);
    EXPECT_EQ(paused.in_flight.size(), 3u);
    snap = wait_for(alice, job.id, [](const JobSnapshot& s) { return s.counts.active == 0; });
    EXPECT_EQ(snap.state, JobState::paused);
    EXPECT_EQ(snap.counts.queued, 3) << "paused items wait in the queue";
    EXPECT_EQ(snap.counts.cancelled, 0);
    expect_exact(alice, job.id);

    // Resume: they go out again; cancel then ends them for good.
    EXPECT_EQ(service.resume_job(alice, job.id).status, JobOpStatus::ok);
    snap = wait_for(alice, job.id, [](const JobSnapshot& s) { return s.counts.active == 3; });
    ASSERT_EQ(snap.counts.active, 3);
    auto cancelled = service.cancel_job(alice, job.id);
    EXPECT_EQ(cancelled.job->state, JobState::cancelled);
    EXPECT_EQ(cancelled.job->counts.cancelled, 3);
    ASSERT_TRUE(scheduler.wait_idle(15s));
    snap = *store.jobs().get_job(alice, job.id);
    EXPECT_EQ(snap.counts.cancelled, 3);
    EXPECT_EQ(snap.counts.active, 0);
    expect_exact(alice, job.id);
    scheduler.stop();
}

TEST_F(JobsScheduler, StopPutsInFlightItemsBackInTheQueue) {
    JobId job_id = 0;
    {
        Scheduler scheduler(store.jobs(), blobs, options(2));
        JobService service(store.jobs(), scheduler);
        scheduler.start();
        auto hang = urls("/hang/", 4);
        job_id = service.create_job({bob, "stop", views(hang)}).id;
        auto snap =
            wait_for(bob, job_id, [](const JobSnapshot& s) { return s.counts.active == 4; });
        ASSERT_EQ(snap.counts.active, 4) << "2x concurrency outstanding";
        scheduler.stop();
    }
    auto snap = *store.jobs().get_job(bob, job_id);
    EXPECT_EQ(snap.counts.active, 0);
    EXPECT_EQ(snap.counts.queued, 4);
    EXPECT_EQ(snap.state, JobState::running);
    expect_exact(bob, job_id);
}

// The feeder re-reads the engine's counters every feeder_poll while the
// network is full; that must never hand out more than the fairness buffer
// (outstanding_per_slot x concurrency), however long transfers hang, even
// though the bound on everything in the engine is larger.
TEST_F(JobsScheduler, PollingFeederKeepsTheNetworkBufferBounded) {
    auto opts = options(2);
    opts.outstanding_per_slot = 2;
    opts.in_engine_per_slot = 8;
    opts.feeder_poll = 1ms;
    // The hanging transfers must outlive every wait below, however slow this machine is.
    opts.limits.total_timeout = 600'000ms;
    Scheduler scheduler(store.jobs(), blobs, opts);
    JobService service(store.jobs(), scheduler);
    scheduler.start();
    auto hang = urls("/hang/", 20);
    auto job = service.create_job({alice, "bounded", views(hang)});
    auto snap = wait_for(alice, job.id, [](const JobSnapshot& s) { return s.counts.active == 4; });
    ASSERT_EQ(snap.counts.active, 4);
    std::this_thread::sleep_for(300ms);  // ~300 polls
    snap = *store.jobs().get_job(alice, job.id);
    EXPECT_EQ(snap.counts.active, 4) << "2 downloading + 2 queued in the engine, no more";
    EXPECT_EQ(snap.counts.queued, 16);
    EXPECT_EQ(scheduler.stats().in_flight, 4u);
    // A job submitted now gets its share of the buffer at once, though the
    // buffer is full (not behind alice's queue, nor behind 8 x concurrency),
    // and of the slots (a hanging transfer of alice's is put back for it).
    auto quick = urls("/img/q", 2);
    auto small = service.create_job({bob, "small", views(quick)});
    auto bobs = wait_for(bob, small.id,
                         [](const JobSnapshot& s) { return s.counts.active + s.counts.done == 2; });
    EXPECT_EQ(bobs.counts.active + bobs.counts.done, 2) << "bob's half of the buffer of 4, at once";
    EXPECT_EQ(store.jobs().get_job(alice, job.id)->counts.active, 4) << "alice keeps hers";
    EXPECT_LE(scheduler.stats().in_flight, 6u) << "the buffer and the newcomer's share, no more";
    service.cancel_job(alice, job.id);
    snap = wait_for(bob, small.id, [](const JobSnapshot& s) { return s.state == JobState::done; });
    EXPECT_EQ(snap.counts.done, 2);
    expect_exact(alice, job.id);
    expect_exact(bob, small.id);
    scheduler.stop();
}

TEST_F(JobsScheduler, DeleteRemovesBlobsNoOtherJobUses) {
    Scheduler scheduler(store.jobs(), blobs, options(2));
    JobService service(store.jobs(), scheduler);
    scheduler.start();
    auto one = urls("/img/a", 1);
    auto a = service.create_job({alice, "a", views(one)});
    auto b = service.create_job({bob, "b", views(one)});
    ASSERT_TRUE(scheduler.wait_idle(20s));
    ItemQuery query;
    auto item = store.jobs().list_items(alice, a.id, query)->items.at(0);
    ASSERT_EQ(item.state, ItemState::done);
    ASSERT_TRUE(blobs.contains(item.sha256, item.format));

    // Same bytes in bob's job: alice's delete keeps the file.
    auto deleted = service.delete_job(alice, a.id);
    EXPECT_EQ(deleted.status, JobOpStatus::ok);
    EXPECT_TRUE(deleted.unreferenced.empty());
    EXPECT_TRUE(blobs.contains(item.sha256, item.format));
    EXPECT_FALSE(store.jobs().find_user_blob(alice, item.sha256)) << "alice no longer owns it";
    EXPECT_TRUE(store.jobs().find_user_blob(bob, item.sha256));

    deleted = service.delete_job(bob, b.id);
    ASSERT_EQ(deleted.unreferenced.size(), 1u);
    EXPECT_FALSE(blobs.contains(item.sha256, item.format)) << "the last user's delete removes it";
    scheduler.stop();
}

TEST_F(JobsScheduler, RefusedResultsAreKeptAndRetriedUntilStored) {
    FlakyJobs flaky(store.jobs());
    flaky.fail_next_applies = 3;
    auto opts = options(2);
    opts.apply_retry_min = 20ms;
    opts.apply_retry_max = 50ms;
    Scheduler scheduler(flaky, blobs, opts);
    JobService service(flaky, scheduler);
    scheduler.start();
    auto ok = urls("/img/retry", 6);
    auto job = service.create_job({alice, "retry", views(ok)});
    // Nothing else arrives after the engine is done: the retries come from
    // the scheduler's own timer.
    auto snap =
        wait_for(alice, job.id, [](const JobSnapshot& s) { return s.state == JobState::done; });
    EXPECT_EQ(snap.state, JobState::done);
    EXPECT_EQ(snap.counts.done, 6) << "no result lost, none counted twice";
    expect_exact(alice, job.id);
    EXPECT_EQ(flaky.failed_applies, 3);
    EXPECT_GT(flaky.apply_calls, 3);
    ASSERT_TRUE(scheduler.wait_idle(15s));
    auto stats = scheduler.stats();
    EXPECT_EQ(stats.done, 6u);
    EXPECT_EQ(stats.pending_results, 0u);
    EXPECT_EQ(stats.dropped_results, 0u);
    EXPECT_EQ(stats.leased, 0u);
    ItemQuery done;
    done.state = ItemState::done;
    auto page = store.jobs().list_items(alice, job.id, done);
    ASSERT_TRUE(page);
    for (const auto& item : page->items) EXPECT_TRUE(blobs.contains(item.sha256, item.format));
    scheduler.stop();
}

TEST_F(JobsScheduler, ResultsBeyondTheBoundAreDroppedAndTheirItemsRedone) {
    FlakyJobs flaky(store.jobs());
    flaky.refuse_applies = true;
    auto opts = options(4);
    opts.max_pending_results = 2;
    opts.apply_retry_min = 10ms;
    opts.apply_retry_max = 20ms;
    Scheduler scheduler(flaky, blobs, opts);
    JobService service(flaky, scheduler);
    scheduler.start();
    auto ok = urls("/img/drop", 5);
    auto job = service.create_job({alice, "drop", views(ok)});
    // All five come back from the engine; the store takes none of them.
    ASSERT_TRUE(eventually([&] {
        auto stats = scheduler.stats();
        return stats.in_flight == 0 && stats.pending_results + stats.dropped_results == 5;
    }));
    auto stats = scheduler.stats();
    EXPECT_EQ(stats.pending_results, 2u) << "bounded";
    EXPECT_EQ(stats.dropped_results, 3u);
    EXPECT_EQ(stats.leased, 5u) << "all still leased to this node";
    EXPECT_EQ(store.jobs().get_job(alice, job.id)->counts.active, 5);

    // The store is back: the two kept results are stored, the three dropped
    // items go back to the queue and are downloaded again.
    flaky.refuse_applies = false;
    auto snap =
        wait_for(alice, job.id, [](const JobSnapshot& s) { return s.state == JobState::done; });
    EXPECT_EQ(snap.counts.done, 5);
    expect_exact(alice, job.id);
    ASSERT_TRUE(scheduler.wait_idle(15s));
    EXPECT_EQ(scheduler.stats().leased, 0u);
    EXPECT_EQ(scheduler.stats().done, 5u);
    scheduler.stop();
}

TEST_F(JobsScheduler, UpkeepRenewsAndExpiresEveryThirdOfTheLease) {
    FlakyJobs flaky(store.jobs());
    auto opts = options(1);
    opts.lease = 30ms;
    Scheduler scheduler(flaky, blobs, opts);
    scheduler.start();
    EXPECT_TRUE(eventually([&] { return flaky.renewals >= 3 && flaky.expiries >= 3; }));
    scheduler.stop();
    int renewals = flaky.renewals;
    EXPECT_EQ(renewals, flaky.renewals) << "no upkeep after stop";
}

// Another node (a second store on the same file) claimed items and died: once
// their leases run out this node's upkeep returns them and its feeder, which
// nobody woke and which does not poll here, runs them.
TEST_F(JobsScheduler, ExpiredClaimsOfADeadNodeAreRunHere) {
    StoreOptions other;
    other.node = "dead";
    other.lease = 100ms;
    other.recover_on_open = false;
    SqliteStore dead(dir.path(), other);
    auto ok = urls("/img/dead", 3);
    std::vector<NewItem> items;
    for (const auto& url : ok) items.push_back({url, FailureReason::none});
    auto job = dead.jobs().create_job({alice, "orphaned", items});
    ASSERT_EQ(dead.jobs().claim_next_items(10).size(), 3u);

    auto opts = options(2);
    opts.lease = 60ms;
    opts.claim_poll = 0ms;
    Scheduler scheduler(store.jobs(), blobs, opts);
    scheduler.start();
    auto snap =
        wait_for(alice, job.id, [](const JobSnapshot& s) { return s.state == JobState::done; });
    EXPECT_EQ(snap.counts.done, 3);
    expect_exact(alice, job.id);
    scheduler.stop();
}

// Another node (a second store on the same file) pauses a job whose items
// this node downloads. stop_jobs is how its notification arrives; without
// one, the lease upkeep finds the claims released (on the scheduler's clock:
// nothing happens before a third of the lease) and stops the transfers.
TEST_F(JobsScheduler, AJobPausedOnAnotherNodeStopsHereOnNoticeOrByTheUpkeep) {
    DrivenClock clock;
    StoreOptions other_options;
    other_options.node = "other";
    other_options.recover_on_open = false;
    SqliteStore other(dir.path(), other_options);
    auto opts = options(3);
    opts.lease = 30s;
    opts.clock = [&] { return clock.now(); };
    Scheduler scheduler(store.jobs(), blobs, opts);
    JobService service(store.jobs(), scheduler);
    scheduler.start();
    auto hang = urls("/hang/paused", 3);
    auto noticed = service.create_job({alice, "noticed", views(hang)});
    auto snap =
        wait_for(alice, noticed.id, [](const JobSnapshot& s) { return s.counts.active == 3; });
    ASSERT_EQ(snap.counts.active, 3);

    ASSERT_EQ(other.jobs().pause_job(alice, noticed.id).status, JobOpStatus::ok);
    scheduler.stop_jobs({noticed.id + 1000, noticed.id});
    snap = wait_for(alice, noticed.id, [](const JobSnapshot& s) { return s.counts.active == 0; });
    EXPECT_EQ(snap.state, JobState::paused);
    EXPECT_EQ(snap.counts.queued, 3);
    expect_exact(alice, noticed.id);

    auto more = urls("/hang/unnoticed", 3);
    auto unnoticed = service.create_job({alice, "unnoticed", views(more)});
    snap = wait_for(alice, unnoticed.id, [](const JobSnapshot& s) { return s.counts.active == 3; });
    ASSERT_EQ(snap.counts.active, 3);
    ASSERT_EQ(other.jobs().pause_job(alice, unnoticed.id).status, JobOpStatus::ok);
    clock.advance(9'999ms, scheduler);
    EXPECT_EQ(store.jobs().get_job(alice, unnoticed.id)->counts.active, 3)
        << "nothing told this node yet";
    clock.advance(1ms, scheduler);
    snap = wait_for(alice, unnoticed.id, [](const JobSnapshot& s) { return s.counts.active == 0; });
    EXPECT_EQ(snap.state, JobState::paused);
    EXPECT_EQ(snap.counts.queued, 3);
    expect_exact(alice, unnoticed.id);
    scheduler.stop();
}

// A cancel for items this node does not hold (another node's, or already
// back) must not cancel them when this node claims them later, after a
// resume: each runs once.
TEST_F(JobsScheduler, ACancelForItemsNotHeldHereDoesNotFollowThemIntoALaterClaim) {
    auto opts = options(2);
    opts.claim_poll = 0ms;
    Scheduler scheduler(store.jobs(), blobs, opts);
    scheduler.start();
    ASSERT_TRUE(scheduler.wait_idle(15s));
    auto job = create_unannounced(bob, "later", "/img/later", 2);  // no wake() yet
    auto page = store.jobs().list_items(bob, job.id, ItemQuery{});
    ASSERT_TRUE(page);
    std::vector<ItemId> ids;
    for (const auto& item : page->items) ids.push_back(item.id);
    ASSERT_EQ(ids.size(), 2u);
    const int before = origin.requests();
    scheduler.cancel_in_engine(ids);
    scheduler.wake();
    auto snap =
        wait_for(bob, job.id, [](const JobSnapshot& s) { return s.state == JobState::done; });
    EXPECT_EQ(snap.counts.done, 2);
    ASSERT_TRUE(scheduler.wait_idle(15s));
    EXPECT_EQ(origin.requests() - before, 2) << "each item fetched once, none cancelled first";
    scheduler.stop();
}

// Work added to the store behind the scheduler's back (by another node) is
// found by the idle feeder's poll.
TEST_F(JobsScheduler, IdleFeederPollsForWorkNobodyToldItAbout) {
    auto opts = options(2);
    opts.claim_poll = 20ms;
    Scheduler scheduler(store.jobs(), blobs, opts);
    scheduler.start();
    ASSERT_TRUE(scheduler.wait_idle(15s));
    auto job = create_unannounced(bob, "unannounced", "/img/poll", 2);
    auto snap =
        wait_for(bob, job.id, [](const JobSnapshot& s) { return s.state == JobState::done; });
    EXPECT_EQ(snap.counts.done, 2);
    scheduler.stop();
}

// The scheduler's timers run on SchedulerOptions::clock: a driven clock
// decides when the upkeep renews (every third of the lease, counted from
// start), never the real time the test takes.
TEST_F(JobsScheduler, UpkeepRunsEveryThirdOfTheLeaseOnTheSchedulersClock) {
    DrivenClock clock;
    FlakyJobs flaky(store.jobs());
    flaky.clock = [&] { return clock.now(); };
    auto opts = options(1);
    opts.lease = 30s;
    opts.clock = [&] { return clock.now(); };
    Scheduler scheduler(flaky, blobs, opts);
    scheduler.start();
    clock.advance(9s, scheduler);
    clock.advance(1s, scheduler);
    ASSERT_TRUE(eventually([&] { return flaky.renewals >= 1; }));
    clock.advance(9'999ms, scheduler);
    clock.advance(1ms, scheduler);
    ASSERT_TRUE(eventually([&] { return flaky.renewals >= 2; }));
    scheduler.stop();
    std::lock_guard lock(flaky.times_mutex);
    EXPECT_EQ(flaky.renewal_times, (std::vector<std::chrono::steady_clock::duration>{10s, 20s}))
        << "due at 10 s and 20 s by the clock, not a moment earlier";
}

// Results the store refuses are retried after 1, 2, 4 s (apply_retry_min
// doubling up to apply_retry_max) by the scheduler's clock.
TEST_F(JobsScheduler, RefusedResultsAreRetriedWithDoublingDelaysOnTheSchedulersClock) {
    DrivenClock clock;
    FlakyJobs flaky(store.jobs());
    flaky.fail_next_applies = 3;
    flaky.clock = [&] { return clock.now(); };
    auto opts = options(1);
    opts.lease = 0ms;  // no lease upkeep: the upkeep thread only retries
    opts.apply_retry_min = 1s;
    opts.apply_retry_max = 4s;
    opts.clock = [&] { return clock.now(); };
    Scheduler scheduler(flaky, blobs, opts);
    JobService service(flaky, scheduler);
    scheduler.start();
    auto one = urls("/img/clock", 1);
    auto job = service.create_job({alice, "clock", views(one)});
    ASSERT_TRUE(eventually([&] { return flaky.failed_applies >= 1; }));  // at 0 s
    clock.advance(999ms, scheduler);
    clock.advance(1ms, scheduler);
    ASSERT_TRUE(eventually([&] { return flaky.failed_applies >= 2; }));  // at 1 s
    clock.advance(1'500ms, scheduler);
    clock.advance(500ms, scheduler);
    ASSERT_TRUE(eventually([&] { return flaky.failed_applies >= 3; }));  // at 3 s
    clock.advance(3'999ms, scheduler);
    clock.advance(1ms, scheduler);
    auto snap =
        wait_for(alice, job.id, [](const JobSnapshot& s) { return s.state == JobState::done; });
    EXPECT_EQ(snap.counts.done, 1);
    scheduler.stop();
    std::lock_guard lock(flaky.times_mutex);
    EXPECT_EQ(flaky.apply_times,
              (std::vector<std::chrono::steady_clock::duration>{0s, 1s, 3s, 7s}));
}

// Two users, one slot each way: a user whose transfers never end (a host
// that does not answer) keeps half the slots, and the other user's job runs
// to done on the other half, though the first took every slot before it came.
TEST_F(JobsScheduler, AHostThatNeverAnswersKeepsOnlyItsShareOfTheSlots) {
    auto opts = options(2);
    opts.limits.total_timeout = 600'000ms;
    Scheduler scheduler(store.jobs(), blobs, opts);
    JobService service(store.jobs(), scheduler);
    scheduler.start();
    auto hang = urls("/hang/fair", 6);
    auto slow = service.create_job({alice, "slow", views(hang)});
    ASSERT_TRUE(eventually([&] { return scheduler.stats().engine.active == 2; }))
        << "alone, alice takes both slots";
    auto quick = urls("/img/fair", 8);
    auto fast = service.create_job({bob, "fast", views(quick)});
    auto snap =
        wait_for(bob, fast.id, [](const JobSnapshot& s) { return s.state == JobState::done; });
    EXPECT_EQ(snap.counts.done, 8);
    EXPECT_GE(scheduler.stats().engine.preempted, 1u);
    auto held = *store.jobs().get_job(alice, slow.id);
    EXPECT_EQ(held.counts.done + held.counts.failed, 0) << "alice's host never answered";
    service.cancel_job(alice, slow.id);
    ASSERT_TRUE(scheduler.wait_idle(15s));
    expect_exact(alice, slow.id);
    expect_exact(bob, fast.id);
    scheduler.stop();
}

}  // namespace
}  // namespace litchi
