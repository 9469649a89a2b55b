// Stress test of the hub under real threads and the real clock: publishers
// (as the store's commit threads), a ticker (as the server's timer) and
// watchers woken by notify (as sessions on their strands) run at once, some
// joining mid-run. Like the real store, publishers commit under the store's
// lock, queue the change with its commit number, and deliver the queue after
// releasing the lock, one delivery at a time; the snapshot provider reads
// while no delivery runs and says as of which commit, so changes it already
// holds may still arrive afterwards and must be skipped. Every watcher must see
// a gapless seq, counts that never go backwards (its hello included), and the
// final value of every job. Bounded: fixed work and a 20 s deadline.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "unit/events_test_support.hpp"

namespace litchi::events::testing {
namespace {

constexpr int publisher_count = 3;
constexpr int watcher_count = 4;
constexpr std::int64_t updates_per_job = 20'000;

// The store's side (store/change_queue.hpp in miniature): rows and a queue of
// numbered changes under the database lock, delivered outside it.
struct FakeStore {
    std::mutex mutex;     // the database lock
    std::mutex delivery;  // one delivery at a time; snapshots hold it too
    std::map<std::int64_t, JobSnapshot> jobs;
    CommitId last_commit = 0;
    struct Change {
        CommitId commit;
        JobSnapshot job;
        std::optional<ItemRecord> item;
    };
    std::deque<Change> queue;

    void commit(JobSnapshot job, std::optional<ItemRecord> item) {
        std::lock_guard lock(mutex);
        jobs[job.id] = job;
        queue.push_back({++last_commit, std::move(job), std::move(item)});
    }

    void deliver(EventHub& hub) {
        std::lock_guard lock(delivery);
        while (true) {
            std::deque<Change> batch;
            {
                std::lock_guard db(mutex);
                if (queue.empty()) return;
                batch.swap(queue);
            }
            for (const Change& change : batch) {
                if (change.item) hub.publish_item(1, change.job.id, *change.item, change.commit);
                hub.publish_progress(change.job, change.commit);
            }
        }
    }
};

struct WatcherThread {
    std::chrono::milliseconds join_after{0};
    std::shared_ptr<Subscription> subscription;
    std::mutex mutex;
    std::condition_variable wake;
    bool notified = false;
    // Results, read after join.
    std::vector<std::string> failures;
    std::map<std::int64_t, json::object> final_jobs;
    std::uint64_t messages = 0, snapshots = 0, items = 0;
};

void add_failure(WatcherThread& watcher, std::string what) {
    if (watcher.failures.size() < 10) watcher.failures.push_back(std::move(what));
}

// Applies the stream like a client would and records any broken promise.
void run_watcher(WatcherThread& watcher, std::chrono::steady_clock::time_point deadline) {
    std::optional<std::uint64_t> position;
    std::map<std::int64_t, std::int64_t> last_done;
    auto finished = [&] {
        if (watcher.final_jobs.size() != publisher_count) return false;
        for (const auto& [id, job] : watcher.final_jobs) {
            if (job.at("state") != "done") return false;
        }
        return true;
    };
    while (!finished() && std::chrono::steady_clock::now() < deadline) {
        {
            std::unique_lock lock(watcher.mutex);
            watcher.wake.wait_for(lock, std::chrono::milliseconds(5),
                                  [&] { return watcher.notified; });
            watcher.notified = false;
        }
        for (bool more = true; more;) {
            OutgoingBatch batch = watcher.subscription->pop(128);
            more = batch.more;
            if (batch.close) {
                add_failure(watcher, "closed with " + std::to_string(batch.close->code));
                return;
            }
            for (const OutgoingMessage& raw : batch.messages) {
                ++watcher.messages;
                json::object message = parse(raw);
                const std::string type = type_of(message);
                const std::uint64_t seq = seq_of(message);
                if (type == "hello" || type == "snapshot") {
                    if (type == "hello" && position) add_failure(watcher, "second hello");
                    if (type == "snapshot") ++watcher.snapshots;
                    position = seq;
                    for (const json::value& job : message.at("jobs").as_array()) {
                        const std::int64_t id = job.at("id").to_number<std::int64_t>();
                        if (done_of(job.as_object()) < last_done[id])
                            add_failure(watcher, "snapshot went back");
                        last_done[id] = done_of(job.as_object());
                        watcher.final_jobs[id] = job.as_object();
                    }
                    continue;
                }
                if (!position) {
                    add_failure(watcher, "message before hello");
                    continue;
                }
                if (type == "item" || type == "subscribed") {
                    ++watcher.items;
                    if (seq > *position) add_failure(watcher, "item from the future");
                    continue;
                }
                if (seq != *position + 1) {
                    add_failure(watcher,
                                "gap: " + std::to_string(*position) + " -> " + std::to_string(seq));
                }
                position = seq;
                const json::object& job = message.at("job").as_object();
                const std::int64_t id = job.at("id").to_number<std::int64_t>();
                if (done_of(job) < last_done[id]) add_failure(watcher, "count went backwards");
                last_done[id] = done_of(job);
                watcher.final_jobs[id] = job;
            }
        }
    }
}

TEST(EventsConcurrency, PublishersTickerAndWatchersTogetherKeepEveryPromise) {
    FakeStore store;
    for (int job = 0; job < publisher_count; ++job)
        store.jobs[job] = make_job(job, 0, updates_per_job);
    EventHubHooks hooks;
    hooks.snapshot_provider = [&store](UserId, const SnapshotSink& sink) {
        std::lock_guard delivery(store.delivery);  // as JobStore::visit_jobs does
        std::lock_guard lock(store.mutex);
        std::vector<JobSnapshot> jobs;
        for (const auto& [id, job] : store.jobs) jobs.push_back(job);
        sink(std::move(jobs), store.last_commit);
        return true;
    };
    hooks.write_job = [](const JobSnapshot& job) { return json::serialize(to_json(job)); };
    hooks.write_item = [](const ItemRecord& item) { return json::serialize(to_json(item)); };
    EventLimits limits;
    limits.progress_interval = std::chrono::milliseconds(2);
    EventHub hub(limits, hooks);

    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    std::vector<std::unique_ptr<WatcherThread>> watchers;
    for (int i = 0; i < watcher_count; ++i) {
        watchers.push_back(std::make_unique<WatcherThread>());
        // Half subscribe before the first publish, half while publishing runs.
        watchers.back()->join_after = std::chrono::milliseconds(i % 2 ? 20 * i : 0);
    }
    auto subscribe = [&hub](WatcherThread& watcher, bool follow_items) {
        SubscribeOptions options;
        WatcherThread* raw = &watcher;
        options.notify = [raw] {
            {
                std::lock_guard lock(raw->mutex);
                raw->notified = true;
            }
            raw->wake.notify_one();
        };
        watcher.subscription = hub.subscribe(1, options);
        if (watcher.subscription && follow_items)
            watcher.subscription->subscribe_items(json::value(0));
    };
    for (int i = 0; i < watcher_count; ++i) {
        if (watchers[i]->join_after.count() == 0) subscribe(*watchers[i], i == 0);
    }

    std::atomic<bool> stop_ticker{false};
    std::thread ticker([&] {
        while (!stop_ticker.load()) {
            hub.tick();
            std::this_thread::sleep_for(std::chrono::microseconds(500));
        }
    });
    std::vector<std::thread> watcher_threads;
    for (auto& watcher : watchers) {
        watcher_threads.emplace_back([&watcher, &subscribe, deadline] {
            if (!watcher->subscription) {
                std::this_thread::sleep_for(watcher->join_after);
                subscribe(*watcher, false);
                if (!watcher->subscription) {
                    add_failure(*watcher, "subscribe refused");
                    return;
                }
            }
            run_watcher(*watcher, deadline);
        });
    }
    std::vector<std::thread> publishers;
    for (int job = 0; job < publisher_count; ++job) {
        publishers.emplace_back([&hub, &store, job] {
            for (std::int64_t done = 1; done <= updates_per_job; ++done) {
                // Commit under the lock, deliver after it, as the store does.
                store.commit(
                    make_job(job, done, updates_per_job,
                             done == updates_per_job ? "done" : "running"),
                    done % 10 == 0 ? std::optional(make_item(done, "done")) : std::nullopt);
                store.deliver(hub);
            }
        });
    }
    for (std::thread& publisher : publishers) publisher.join();
    for (std::thread& thread : watcher_threads) thread.join();
    stop_ticker = true;
    ticker.join();

    for (auto& watcher : watchers) {
        EXPECT_TRUE(watcher->failures.empty()) << watcher->failures.front();
        ASSERT_EQ(watcher->final_jobs.size(), static_cast<std::size_t>(publisher_count));
        for (const auto& [id, job] : watcher->final_jobs) {
            EXPECT_EQ(job.at("state"), "done") << "job " << id;
            EXPECT_EQ(done_of(job), updates_per_job) << "job " << id;
        }
        // Coalescing did its job: far fewer messages than updates.
        EXPECT_LT(watcher->messages, static_cast<std::uint64_t>(publisher_count * updates_per_job));
    }
    EXPECT_GT(watchers[0]->items, 0u);
    EXPECT_EQ(watchers[1]->items, 0u);  // it subscribed to no job's items
    EXPECT_EQ(hub.stats().watchers, static_cast<std::size_t>(watcher_count));
}

}  // namespace
}  // namespace litchi::events::testing
