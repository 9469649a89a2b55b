// Jobs and items as rows, on both backends (store_backends.hpp): creation
// with refused lines, exact counters through every transition, crash
// recovery, isolation between users, fair claims, paging, blob references on
// delete, and batch throughput. The SQLite store's change notifications
// (numbered, in commit order, after the lock) are tested on SQLite alone; the
// PostgreSQL store's event log has its own tests (store_pg_log_test.cpp).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <set>
#include <thread>

#include "store/observer.hpp"
#include "store/sqlite_store.hpp"
#include "store_backends.hpp"
#include "store_test_support.hpp"

namespace litchi {
namespace {

using testing::Backend;
using testing::new_job;
using testing::numbered_urls;
using testing::StoreBackend;
using testing::TempDir;

ItemOutcome done_result(const ClaimedItem& item, std::string sha = "") {
    ItemOutcome r;
    r.item = item.item;
    r.lease = item.lease;
    r.http_status = 200;
    r.attempts = 1;
    if (sha.empty()) {
        char buffer[65];
        std::snprintf(buffer, sizeof buffer, "%064llx", static_cast<unsigned long long>(item.item));
        sha = buffer;
    }
    r.sha256 = sha;
    r.bytes = 1000;
    r.format = ImageFormat::png;
    r.width = 10;
    r.height = 20;
    return r;
}

ItemOutcome failed_result(const ClaimedItem& item, FailureReason reason, int status = 0) {
    ItemOutcome r;
    r.item = item.item;
    r.lease = item.lease;
    r.reason = reason;
    r.http_status = status;
    r.attempts = 2;
    return r;
}

// Records every notification, to check that each change produces one.
struct RecordingObserver : StoreObserver {
    std::vector<JobSnapshot> created, changed, deleted, bulk;
    std::vector<ItemRecord> items;
    std::vector<CommitId> commits;
    int state_changes = 0;
    void on_commit(StoreChanges& changes) override {
        commits.push_back(changes.commit);
        created.insert(created.end(), changes.created.begin(), changes.created.end());
        for (const auto& change : changes.items) items.push_back(change.item);
        bulk.insert(bulk.end(), changes.items_reset.begin(), changes.items_reset.end());
        for (const auto& change : changes.changed) {
            changed.push_back(change.job);
            state_changes += change.state_changed;
        }
        deleted.insert(deleted.end(), changes.deleted.begin(), changes.deleted.end());
    }
};

// The SQLite store's observer path (PostgreSQL delivers nothing in process).
class StoreJobsSqlite : public ::testing::Test {
  protected:
    void SetUp() override {
        alice = make_user("alice");
        bob = make_user("bob");
    }

    UserId make_user(std::string_view name) {
        // Direct insert: argon2 per test user would only slow the suite.
        std::lock_guard lock(store->database().mutex());
        auto stmt = store->database().prepare(
            "INSERT INTO users(name, password_hash, created) VALUES (?, 'x', 0)");
        stmt.bind(1, name).run();
        return store->database().last_insert_rowid();
    }

    JobStore& jobs() { return store->jobs(); }

    TempDir dir;
    std::unique_ptr<SqliteStore> store = std::make_unique<SqliteStore>(dir.path());
    UserId alice = 0, bob = 0;
};

class StoreJobs : public ::testing::TestWithParam<Backend> {
  protected:
    void SetUp() override {
        // Direct inserts: argon2 per test user would only slow the suite.
        alice = db.insert_user("alice");
        bob = db.insert_user("bob");
    }

    void expect_counts_exact(JobId job, UserId owner) {
        auto snapshot = jobs().get_job(owner, job);
        ASSERT_TRUE(snapshot);
        EXPECT_EQ(snapshot->counts, db.recount(job));
        const auto& c = snapshot->counts;
        EXPECT_EQ(c.total, c.queued + c.active + c.done + c.failed + c.cancelled);
    }

    void reopen() {
        store.reset();
        store = db.open();
    }

    // The observer sees changes on SQLite only.
    bool observed() const { return !db.is_postgresql(); }

    JobStore& jobs() { return store->jobs(); }

    StoreBackend db{GetParam()};
    std::unique_ptr<Store> store = db.open();
    UserId alice = 0, bob = 0;
};

LITCHI_BOTH_BACKENDS(StoreJobs);

TEST_P(StoreJobs, RefusedLinesAreStoredFailedAndCounted) {
    NewJob request =
        new_job(alice, "mixed", {"http://example.com/a.jpg", "https://example.com/c.png"});
    request.items.insert(request.items.begin() + 1,
                         {"ftp://example.com/b.jpg", FailureReason::bad_url});
    request.items.push_back({"http://127.0.0.2/private.jpg", FailureReason::blocked_address});
    auto job = jobs().create_job(request);
    EXPECT_EQ(job.name, "mixed");
    EXPECT_EQ(job.state, JobState::queued);
    EXPECT_EQ(job.counts.total, 4);
    EXPECT_EQ(job.counts.queued, 2);
    EXPECT_EQ(job.counts.failed, 2);
    expect_counts_exact(job.id, alice);

    auto page = jobs().list_items(alice, job.id, {});
    ASSERT_TRUE(page);
    ASSERT_EQ(page->items.size(), 4u);
    for (std::size_t i = 0; i < page->items.size(); ++i)
        EXPECT_EQ(page->items[i].position, static_cast<std::int64_t>(i)) << "input order kept";
    EXPECT_EQ(page->items[0].state, ItemState::queued);
    EXPECT_EQ(page->items[1].state, ItemState::failed);
    EXPECT_EQ(page->items[1].reason, FailureReason::bad_url);
    EXPECT_EQ(page->items[1].url, "ftp://example.com/b.jpg") << "the refused text is kept";
    EXPECT_EQ(page->items[3].reason, FailureReason::blocked_address);

    auto unnamed = jobs().create_job(new_job(alice, "", {"http://example.com/x.jpg"}));
    EXPECT_EQ(unnamed.name, "job " + std::to_string(unnamed.id));
}

TEST_P(StoreJobs, AllRefusedMeansDoneAtOnce) {
    NewJob request{
        alice, "bad", {{"nope", FailureReason::bad_url}, {"ftp://x/y", FailureReason::bad_url}}};
    auto job = jobs().create_job(request);
    EXPECT_EQ(job.state, JobState::done);
    EXPECT_EQ(job.counts.failed, 2);
    EXPECT_FALSE(jobs().has_runnable());
}

TEST_F(StoreJobsSqlite, ChangesAreNumberedInCommitOrderAndDeliveredOutsideTheLock) {
    // An observer that calls back into the store from its callback: under the
    // old publish-under-the-lock scheme that deadlocked; now the lock is free.
    struct ReadingObserver : StoreObserver {
        JobStore* jobs = nullptr;
        UserId user = 0;
        std::vector<CommitId> commits;
        std::vector<std::int64_t> done_seen;
        void on_commit(StoreChanges& changes) override {
            commits.push_back(changes.commit);
            for (const auto& change : changes.changed) {
                auto now = jobs->get_job(user, change.job.id);  // takes the database lock
                ASSERT_TRUE(now);
                done_seen.push_back(now->counts.done);
            }
        }
    } observer;
    observer.jobs = &jobs();
    observer.user = alice;
    jobs().set_observer(&observer);
    auto job = jobs().create_job(new_job(alice, "n", numbered_urls(4)));
    auto claimed = jobs().claim_next_items(4);
    jobs().apply_outcomes({done_result(claimed[0]), done_result(claimed[1])});
    jobs().apply_outcomes({done_result(claimed[2])});
    jobs().set_observer(nullptr);
    ASSERT_EQ(observer.commits.size(), 4u) << "create, claim, two applies";
    for (std::size_t i = 1; i < observer.commits.size(); ++i)
        EXPECT_EQ(observer.commits[i], observer.commits[i - 1] + 1);
    EXPECT_EQ(observer.done_seen, (std::vector<std::int64_t>{0, 2, 3}));

    // A snapshot says which commit it is as of: the last one delivered.
    CommitId as_of = 0;
    std::size_t listed = 0;
    jobs().visit_jobs(alice, [&](const std::vector<JobSnapshot>& list, CommitId commit) {
        as_of = commit;
        listed = list.size();
    });
    EXPECT_EQ(as_of, observer.commits.back());
    EXPECT_EQ(listed, 1u);
    EXPECT_EQ(job.counts.total, 4);
}

TEST_F(StoreJobsSqlite, ConcurrentCommitsReachTheObserverOneAtATimeInOrder) {
    struct OrderObserver : StoreObserver {
        std::atomic<int> inside{0};
        std::atomic<bool> overlapped{false};
        std::vector<CommitId> commits;
        void on_commit(StoreChanges& changes) override {
            if (inside.fetch_add(1) != 0) overlapped = true;
            commits.push_back(changes.commit);
            std::this_thread::yield();
            inside.fetch_sub(1);
        }
    } observer;
    jobs().set_observer(&observer);
    std::vector<std::thread> writers;
    for (int t = 0; t < 4; ++t) {
        writers.emplace_back([&, t] {
            for (int i = 0; i < 20; ++i)
                jobs().create_job(new_job(t % 2 ? alice : bob, "c", numbered_urls(2)));
        });
    }
    for (auto& writer : writers) writer.join();
    jobs().set_observer(nullptr);
    EXPECT_FALSE(observer.overlapped) << "deliveries never overlap";
    ASSERT_EQ(observer.commits.size(), 80u) << "every commit delivered before its call returned";
    for (std::size_t i = 0; i < observer.commits.size(); ++i)
        EXPECT_EQ(observer.commits[i], observer.commits[0] + i) << "in commit order";
}

TEST_P(StoreJobs, CountersStayExactThroughEveryTransition) {
    RecordingObserver observer;
    jobs().set_observer(&observer);
    auto job = jobs().create_job(new_job(alice, "j", numbered_urls(10)));
    if (observed()) {
        ASSERT_EQ(observer.created.size(), 1u);
    }

    auto claimed = jobs().claim_next_items(6);
    ASSERT_EQ(claimed.size(), 6u);
    expect_counts_exact(job.id, alice);
    auto snap = *jobs().get_job(alice, job.id);
    EXPECT_EQ(snap.state, JobState::running);
    EXPECT_EQ(snap.counts.active, 6);
    EXPECT_EQ(snap.counts.queued, 4);
    if (observed()) {
        EXPECT_EQ(observer.items.size(), 6u);
        EXPECT_EQ(observer.changed.back().counts.active, 6);
    }

    std::vector<ItemOutcome> batch = {
        done_result(claimed[0]),
        done_result(claimed[1]),
        failed_result(claimed[2], FailureReason::http, 404),
        failed_result(claimed[3], FailureReason::not_image),
    };
    auto summary = jobs().apply_outcomes(batch);
    EXPECT_EQ(summary.done, 2u);
    EXPECT_EQ(summary.failed, 2u);
    EXPECT_EQ(summary.bytes, 2000u);
    expect_counts_exact(job.id, alice);
    snap = *jobs().get_job(alice, job.id);
    EXPECT_EQ(snap.counts.done, 2);
    EXPECT_EQ(snap.counts.failed, 2);
    EXPECT_EQ(snap.counts.active, 2);
    EXPECT_EQ(snap.bytes, 2000u);
    if (observed()) {
        EXPECT_EQ(observer.changed.back().counts, snap.counts)
            << "observer saw the committed counts";
    }

    // Applying the same results again changes nothing (items no longer active).
    summary = jobs().apply_outcomes(batch);
    EXPECT_EQ(summary.ignored, 4u);
    expect_counts_exact(job.id, alice);
    EXPECT_EQ(jobs().get_job(alice, job.id)->counts, snap.counts);

    auto item = jobs().get_item(alice, job.id, claimed[2].item);
    ASSERT_TRUE(item);
    EXPECT_EQ(item->state, ItemState::failed);
    EXPECT_EQ(item->reason, FailureReason::http);
    EXPECT_EQ(item->http_status, 404);
    EXPECT_EQ(item->attempts, 2);
    auto done_item = jobs().get_item(alice, job.id, claimed[0].item);
    EXPECT_EQ(done_item->format, ImageFormat::png);
    EXPECT_EQ(done_item->width, 10);
    EXPECT_EQ(done_item->sha256.size(), 64u);

    // Finish everything: the rest claimed and done; the job is done with failures.
    auto rest = jobs().claim_next_items(100);
    EXPECT_EQ(rest.size(), 4u);
    batch.clear();
    batch.push_back(done_result(claimed[4]));
    batch.push_back(failed_result(claimed[5], FailureReason::timeout));
    for (const auto& c : rest) batch.push_back(done_result(c));
    jobs().apply_outcomes(batch);
    expect_counts_exact(job.id, alice);
    snap = *jobs().get_job(alice, job.id);
    EXPECT_EQ(snap.state, JobState::done);
    EXPECT_EQ(snap.counts.done, 7);
    EXPECT_EQ(snap.counts.failed, 3);
    if (observed()) {
        EXPECT_EQ(observer.changed.back().state, JobState::done);
    }

    // Retry puts the failed ones back; the job runs again.
    auto retried = jobs().retry_job(alice, job.id);
    EXPECT_EQ(retried.status, JobOpStatus::ok);
    EXPECT_EQ(retried.job->state, JobState::running);
    EXPECT_EQ(retried.job->counts.queued, 3);
    EXPECT_EQ(retried.job->counts.failed, 0);
    expect_counts_exact(job.id, alice);
    auto again = jobs().claim_next_items(10);
    ASSERT_EQ(again.size(), 3u);
    batch.clear();
    for (const auto& c : again) batch.push_back(done_result(c));
    jobs().apply_outcomes(batch);
    snap = *jobs().get_job(alice, job.id);
    EXPECT_EQ(snap.state, JobState::done);
    EXPECT_EQ(snap.counts.done, 10);
    auto retried_item = jobs().get_item(alice, job.id, claimed[2].item);
    EXPECT_EQ(retried_item->attempts, 3) << "attempts accumulate over retries";
    EXPECT_EQ(retried_item->reason, FailureReason::none);
    expect_counts_exact(job.id, alice);

    // The counts the observer saw never went backwards for done.
    std::int64_t last_done = 0;
    for (const auto& s : observer.changed) {
        EXPECT_GE(s.counts.done, last_done);
        last_done = s.counts.done;
    }
    jobs().set_observer(nullptr);
}

TEST_P(StoreJobs, PauseResumeCancel) {
    auto job = jobs().create_job(new_job(alice, "p", numbered_urls(6)));
    auto claimed = jobs().claim_next_items(2);
    ASSERT_EQ(claimed.size(), 2u);

    auto paused = jobs().pause_job(alice, job.id);
    EXPECT_EQ(paused.status, JobOpStatus::ok);
    EXPECT_EQ(paused.job->state, JobState::paused);
    EXPECT_EQ(paused.in_flight.size(), 2u) << "the scheduler cancels these in the engine";
    EXPECT_TRUE(jobs().claim_next_items(10).empty()) << "a paused job is not claimed";
    EXPECT_EQ(jobs().pause_job(alice, job.id).status, JobOpStatus::ok) << "idempotent";

    // The engine's cancelled results for a paused job go back to the queue.
    auto summary = jobs().apply_outcomes(
        {failed_result(claimed[0], FailureReason::cancelled), done_result(claimed[1])});
    EXPECT_EQ(summary.requeued, 1u);
    EXPECT_EQ(summary.done, 1u);
    auto snap = *jobs().get_job(alice, job.id);
    EXPECT_EQ(snap.state, JobState::paused);
    EXPECT_EQ(snap.counts.queued, 5);
    EXPECT_EQ(snap.counts.cancelled, 0);
    EXPECT_EQ(snap.counts.done, 1);
    expect_counts_exact(job.id, alice);

    auto resumed = jobs().resume_job(alice, job.id);
    EXPECT_EQ(resumed.status, JobOpStatus::ok);
    EXPECT_EQ(resumed.job->state, JobState::running);
    auto more = jobs().claim_next_items(3);
    ASSERT_EQ(more.size(), 3u);

    auto cancelled = jobs().cancel_job(alice, job.id);
    EXPECT_EQ(cancelled.status, JobOpStatus::ok);
    EXPECT_EQ(cancelled.in_flight.size(), 3u);
    EXPECT_EQ(cancelled.job->state, JobState::cancelled);
    EXPECT_EQ(cancelled.job->counts.cancelled, 5);
    EXPECT_EQ(cancelled.job->counts.queued + cancelled.job->counts.active, 0);
    expect_counts_exact(job.id, alice);

    // Late results for cancelled items change nothing.
    summary = jobs().apply_outcomes(
        {done_result(more[0]), failed_result(more[1], FailureReason::cancelled)});
    EXPECT_EQ(summary.ignored, 2u);
    ASSERT_EQ(summary.orphaned.size(), 1u) << "the late download's blob is reported for removal";
    EXPECT_EQ(summary.orphaned[0].sha256, done_result(more[0]).sha256);
    expect_counts_exact(job.id, alice);
    EXPECT_EQ(jobs().get_job(alice, job.id)->counts.cancelled, 5);

    EXPECT_EQ(jobs().resume_job(alice, job.id).status, JobOpStatus::conflict);
    EXPECT_EQ(jobs().pause_job(alice, job.id).status, JobOpStatus::conflict);
    EXPECT_EQ(jobs().retry_job(alice, job.id).status, JobOpStatus::conflict);
    EXPECT_EQ(jobs().cancel_job(alice, job.id).status, JobOpStatus::ok) << "idempotent";
}

TEST_P(StoreJobs, ResumeBeforeStartGoesBackToQueued) {
    auto job = jobs().create_job(new_job(alice, "q", numbered_urls(3)));
    EXPECT_EQ(jobs().pause_job(alice, job.id).job->state, JobState::paused);
    EXPECT_EQ(jobs().resume_job(alice, job.id).job->state, JobState::queued);
}

TEST_P(StoreJobs, PausedJobWhoseLastItemsFinishIsDone) {
    auto job = jobs().create_job(new_job(alice, "d", numbered_urls(2)));
    auto claimed = jobs().claim_next_items(2);
    jobs().pause_job(alice, job.id);
    jobs().apply_outcomes({done_result(claimed[0]), done_result(claimed[1])});
    EXPECT_EQ(jobs().get_job(alice, job.id)->state, JobState::done);
}

TEST_P(StoreJobs, CrashRecoveryRequeuesActiveAndRecomputesCounters) {
    auto job = jobs().create_job(new_job(alice, "crash", numbered_urls(20)));
    auto claimed = jobs().claim_next_items(8);
    jobs().apply_outcomes({done_result(claimed[0]), failed_result(claimed[1], FailureReason::dns)});
    // Simulate a crash that left a counter wrong (as if the process died in a
    // version that kept counters elsewhere) and a job state stale.
    { db.exec("UPDATE jobs SET done = 17, queued = 0, active = 99, bytes = 5"); }
    reopen();  // a kill -9 leaves no chance for a graceful stop; reopening is the restart
    EXPECT_GE(store->recovery().requeued, 6);
    EXPECT_EQ(store->recovery().jobs_repaired, 1);
    auto snap = *jobs().get_job(alice, job.id);
    EXPECT_EQ(snap.counts.active, 0);
    EXPECT_EQ(snap.counts.done, 1);
    EXPECT_EQ(snap.counts.failed, 1);
    EXPECT_EQ(snap.counts.queued, 18);
    EXPECT_EQ(snap.bytes, 1000u);
    EXPECT_EQ(snap.state, JobState::running);
    expect_counts_exact(job.id, alice);

    // Everything claimable again, each item exactly once.
    std::set<ItemId> seen;
    while (true) {
        auto batch = jobs().claim_next_items(5);
        if (batch.empty()) break;
        std::vector<ItemOutcome> results;
        for (const auto& c : batch) {
            EXPECT_TRUE(seen.insert(c.item).second) << "item claimed twice";
            results.push_back(done_result(c));
        }
        jobs().apply_outcomes(results);
    }
    EXPECT_EQ(seen.size(), 18u);
    snap = *jobs().get_job(alice, job.id);
    EXPECT_EQ(snap.state, JobState::done);
    EXPECT_EQ(snap.counts.done, 19);
    expect_counts_exact(job.id, alice);

    // Recovery is idempotent: a clean reopen repairs nothing.
    reopen();
    EXPECT_EQ(store->recovery().requeued, 0);
    EXPECT_EQ(store->recovery().jobs_repaired, 0);
}

// A second process (user/token commands, a tool) opening the file while the
// server downloads must leave the server's in-flight items alone. Two
// connections in one process stand in for two processes: SQLite cannot tell.
TEST_P(StoreJobs, OpeningWithoutRecoveryLeavesInFlightItemsAlone) {
    auto job = jobs().create_job(new_job(alice, "live", numbered_urls(10)));
    auto claimed = jobs().claim_next_items(4);
    ASSERT_EQ(claimed.size(), 4u);

    auto bystander = db.open(tool_store_options());
    EXPECT_EQ(bystander->recovery().requeued, 0);
    EXPECT_EQ(bystander->recovery().jobs_repaired, 0);
    auto seen = bystander->jobs().get_job(alice, job.id);  // usable for what tools do
    ASSERT_TRUE(seen);
    EXPECT_EQ(seen->counts.active, 4);
    EXPECT_EQ(db.recount(job.id).active, 4);

    // The server's transfers finish normally: each item counted once.
    std::vector<ItemOutcome> results;
    for (const auto& c : claimed) results.push_back(done_result(c));
    auto applied = jobs().apply_outcomes(results);
    EXPECT_EQ(applied.done, 4u);
    EXPECT_EQ(applied.ignored, 0u);
    expect_counts_exact(job.id, alice);

    // What the flag prevents: a recovering opener requeues live items, which
    // the server would then download a second time.
    auto more = jobs().claim_next_items(2);
    ASSERT_EQ(more.size(), 2u);
    auto recovering = db.open();  // the same node name: its claims died with it
    EXPECT_EQ(recovering->recovery().requeued, 2);
    EXPECT_EQ(db.recount(job.id).active, 0);
}

TEST_P(StoreJobs, UsersSeeOnlyTheirOwnJobs) {
    auto a = jobs().create_job(new_job(alice, "a", numbered_urls(3)));
    auto claimed = jobs().claim_next_items(1);
    jobs().apply_outcomes({done_result(claimed[0], std::string(64, 'a'))});

    EXPECT_EQ(jobs().list_jobs(alice).size(), 1u);
    EXPECT_TRUE(jobs().list_jobs(bob).empty());
    EXPECT_FALSE(jobs().get_job(bob, a.id));
    EXPECT_FALSE(jobs().list_items(bob, a.id, {}));
    EXPECT_FALSE(jobs().get_item(bob, a.id, claimed[0].item));
    EXPECT_EQ(jobs().pause_job(bob, a.id).status, JobOpStatus::not_found);
    EXPECT_EQ(jobs().resume_job(bob, a.id).status, JobOpStatus::not_found);
    EXPECT_EQ(jobs().cancel_job(bob, a.id).status, JobOpStatus::not_found);
    EXPECT_EQ(jobs().retry_job(bob, a.id).status, JobOpStatus::not_found);
    EXPECT_EQ(jobs().delete_job(bob, a.id).status, JobOpStatus::not_found);
    EXPECT_FALSE(jobs().find_user_blob(bob, std::string(64, 'a')));
    EXPECT_EQ(jobs().find_user_blob(alice, std::string(64, 'a')), ImageFormat::png);
    EXPECT_FALSE(jobs().find_user_blob(alice, "../../etc/passwd"));
    EXPECT_FALSE(jobs().get_job(alice, 424242));
    // Nothing of alice's changed.
    EXPECT_EQ(jobs().get_job(alice, a.id)->state, JobState::running);
    std::vector<JobSnapshot> visited;
    jobs().visit_jobs(bob, [&](const std::vector<JobSnapshot>& all, CommitId) { visited = all; });
    EXPECT_TRUE(visited.empty());
}

TEST_P(StoreJobs, ClaimsAreFairAcrossUsersAndJobs) {
    auto big =
        jobs().create_job(new_job(alice, "big", numbered_urls(100, "http://example.com/big/")));
    auto small =
        jobs().create_job(new_job(alice, "small", numbered_urls(10, "http://example.com/small/")));
    auto other =
        jobs().create_job(new_job(bob, "bob", numbered_urls(5, "http://example.com/bob/")));

    // The first round gives one slot to each user; alice's slots alternate jobs.
    auto first = jobs().claim_next_items(4);
    ASSERT_EQ(first.size(), 4u);
    std::set<JobId> first_jobs;
    for (const auto& c : first) first_jobs.insert(c.job);
    EXPECT_TRUE(first_jobs.count(other.id)) << "bob is served in the first round";
    EXPECT_TRUE(first_jobs.count(small.id)) << "a later job of the same user gets its turn";
    EXPECT_TRUE(first_jobs.count(big.id));

    std::vector<ClaimedItem> all(first);
    while (all.size() < 30) {
        auto batch = jobs().claim_next_items(3);
        ASSERT_FALSE(batch.empty());
        all.insert(all.end(), batch.begin(), batch.end());
    }
    auto s = *jobs().get_job(alice, small.id);
    auto b = *jobs().get_job(alice, big.id);
    auto o = *jobs().get_job(bob, other.id);
    EXPECT_EQ(s.counts.queued, 0) << "the small job was fully claimed within 30 slots";
    EXPECT_EQ(o.counts.queued, 0);
    EXPECT_GE(b.counts.queued, 80) << "while the big job waited its turn";

    // Within a job, items are claimed in input order.
    ItemId last = 0;
    for (const auto& c : all)
        if (c.job == small.id) {
            EXPECT_GT(c.item, last);
            last = c.item;
        }
}

TEST_P(StoreJobs, ItemPagesFollowTheCursor) {
    auto job = jobs().create_job(new_job(alice, "pages", numbered_urls(25)));
    jobs().create_job(new_job(alice, "neighbour", numbered_urls(5)));  // ids after ours
    std::vector<ItemId> ids;
    ItemQuery query;
    query.limit = 10;
    int pages = 0;
    while (true) {
        auto page = jobs().list_items(alice, job.id, query);
        ASSERT_TRUE(page);
        ++pages;
        for (const auto& item : page->items) {
            EXPECT_EQ(item.job, job.id);
            ids.push_back(item.id);
        }
        if (!page->next) break;
        EXPECT_EQ(*page->next, page->items.back().id);
        query.after = *page->next;
    }
    EXPECT_EQ(pages, 3);
    ASSERT_EQ(ids.size(), 25u);
    EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));

    // A page that ends exactly at the last item has no next.
    query = {};
    query.limit = 25;
    EXPECT_FALSE(jobs().list_items(alice, job.id, query)->next);

    // State filter.
    auto claimed = jobs().claim_next_items(30);
    std::vector<ItemOutcome> results;
    for (const auto& c : claimed)
        if (c.job == job.id && c.item % 2 == 0)
            results.push_back(failed_result(c, FailureReason::dns));
    jobs().apply_outcomes(results);
    query = {};
    query.state = ItemState::failed;
    query.limit = 4;
    std::size_t failed_seen = 0;
    while (true) {
        auto page = jobs().list_items(alice, job.id, query);
        for (const auto& item : page->items) EXPECT_EQ(item.state, ItemState::failed);
        failed_seen += page->items.size();
        if (!page->next) break;
        query.after = *page->next;
    }
    EXPECT_EQ(failed_seen, results.size());

    // Limits are clamped, not trusted.
    query = {};
    query.limit = -5;
    EXPECT_EQ(jobs().list_items(alice, job.id, query)->items.size(), 1u);
    query.limit = 1'000'000;
    EXPECT_EQ(jobs().list_items(alice, job.id, query)->items.size(), 25u);
}

TEST_P(StoreJobs, DeleteReturnsOnlyBlobsNoOtherItemReferences) {
    std::string shared(64, 'b'), own(64, 'c');
    auto a = jobs().create_job(new_job(alice, "a", numbered_urls(2)));
    auto b = jobs().create_job(new_job(bob, "b", numbered_urls(1)));
    auto claimed = jobs().claim_next_items(10);
    ASSERT_EQ(claimed.size(), 3u);
    std::vector<ItemOutcome> results;
    bool used_own = false;
    for (const auto& c : claimed) {
        if (c.job == a.id && !used_own) {
            results.push_back(done_result(c, own));
            used_own = true;
        } else {
            results.push_back(done_result(c, shared));
        }
    }
    jobs().apply_outcomes(results);
    RecordingObserver observer;
    jobs().set_observer(&observer);
    auto deleted = jobs().delete_job(alice, a.id);
    EXPECT_EQ(deleted.status, JobOpStatus::ok);
    ASSERT_EQ(deleted.unreferenced.size(), 1u);
    EXPECT_EQ(deleted.unreferenced[0].sha256, own);
    EXPECT_EQ(deleted.unreferenced[0].format, ImageFormat::png);
    EXPECT_TRUE(jobs().blob_referenced(shared));
    EXPECT_FALSE(jobs().blob_referenced(own));
    EXPECT_FALSE(jobs().get_job(alice, a.id));
    EXPECT_EQ(jobs().delete_job(alice, a.id).status, JobOpStatus::not_found);
    if (observed()) {
        ASSERT_EQ(observer.deleted.size(), 1u);
        EXPECT_EQ(observer.deleted[0].id, a.id);
    }
    EXPECT_EQ(db.scalar("SELECT count(*) FROM items WHERE job_id = " + std::to_string(a.id)), 0);
    EXPECT_TRUE(jobs().get_job(bob, b.id));
    jobs().set_observer(nullptr);
}

// Retry picks failed items by reason: the transient ones by default (HTTP
// only for 408/429/5xx), exactly the asked-for ones otherwise; never bad_url.
TEST_P(StoreJobs, RetrySelectsFailedItemsByReason) {
    auto job = jobs().create_job(new_job(alice, "r", numbered_urls(5)));
    auto claimed = jobs().claim_next_items(10);
    ASSERT_EQ(claimed.size(), 5u);
    auto fail_all = [&](const std::vector<ClaimedItem>& items) {
        std::vector<ItemOutcome> batch;
        for (const auto& c : items) {
            switch ((c.item - claimed[0].item) % 5) {
                case 0:
                    batch.push_back(failed_result(c, FailureReason::http, 404));
                    break;
                case 1:
                    batch.push_back(failed_result(c, FailureReason::http, 503));
                    break;
                case 2:
                    batch.push_back(failed_result(c, FailureReason::not_image));
                    break;
                case 3:
                    batch.push_back(failed_result(c, FailureReason::timeout));
                    break;
                default:
                    batch.push_back(failed_result(c, FailureReason::io));
                    break;
            }
        }
        jobs().apply_outcomes(batch);
    };
    fail_all(claimed);
    ASSERT_EQ(jobs().get_job(alice, job.id)->counts.failed, 5);

    auto transient = jobs().retry_job(alice, job.id, RetrySelection::transient());
    ASSERT_EQ(transient.status, JobOpStatus::ok);
    EXPECT_EQ(transient.requeued, 3);  // the 503, the timeout, io
    EXPECT_EQ(transient.job->counts.queued, 3);
    expect_counts_exact(job.id, alice);
    auto again = jobs().claim_next_items(10);
    ASSERT_EQ(again.size(), 3u);
    fail_all(again);

    RetrySelection http;
    http.reasons = {FailureReason::http, FailureReason::bad_url};
    auto by_reason = jobs().retry_job(alice, job.id, http);
    EXPECT_EQ(by_reason.requeued, 2);  // every HTTP failure, the 404 too
    expect_counts_exact(job.id, alice);
    fail_all(jobs().claim_next_items(10));

    RetrySelection none;
    none.reasons = {FailureReason::bad_url};
    EXPECT_EQ(jobs().retry_job(alice, job.id, none).requeued, 0);
    EXPECT_EQ(jobs().retry_job(alice, job.id).requeued, 5) << "no selection: every reason";
    expect_counts_exact(job.id, alice);
}

// Rename changes the name only; the counts and state stay.
TEST_P(StoreJobs, RenameKeepsEverythingButTheName) {
    auto job = jobs().create_job(new_job(alice, "before", numbered_urls(2)));
    auto renamed = jobs().rename_job(alice, job.id, "after");
    ASSERT_EQ(renamed.status, JobOpStatus::ok);
    EXPECT_EQ(renamed.job->name, "after");
    auto read = jobs().get_job(alice, job.id);
    EXPECT_EQ(read->name, "after");
    EXPECT_EQ(read->counts, job.counts);
    EXPECT_EQ(read->state, job.state);
    EXPECT_EQ(jobs().rename_job(bob, job.id, "mine").status, JobOpStatus::not_found);
    EXPECT_EQ(jobs().get_job(alice, job.id)->name, "after");
}

// Ids are never reused: deleting the newest job must not hand its id to the
// next one (an old link would open the new job; a repeated DELETE remove it).
TEST_P(StoreJobs, DeletedNewestJobIdIsNeverReused) {
    auto a = jobs().create_job(new_job(alice, "a", numbered_urls(1)));
    auto b = jobs().create_job(new_job(alice, "b", numbered_urls(1)));
    ASSERT_GT(b.id, a.id);
    ASSERT_EQ(jobs().delete_job(alice, b.id).status, JobOpStatus::ok);
    auto c = jobs().create_job(new_job(alice, "c", numbered_urls(1)));
    EXPECT_GT(c.id, b.id);
    EXPECT_FALSE(jobs().get_job(alice, b.id));
    EXPECT_EQ(jobs().delete_job(alice, b.id).status, JobOpStatus::not_found);
    EXPECT_TRUE(jobs().get_job(alice, c.id)) << "a repeated DELETE of the old id left it alone";
}

TEST_P(StoreJobs, BatchThroughput) {
    // Numbers only: sanitizer builds are slow, and timing asserts flake.
    auto request =
        new_job(alice, "big", numbered_urls(100'000, "https://images.example.com/photos/"));
    auto t0 = std::chrono::steady_clock::now();
    auto job = jobs().create_job(request);
    auto t1 = std::chrono::steady_clock::now();
    EXPECT_EQ(job.counts.queued, 100'000);
    // 30,000 completions are enough to see the rate and keep the sanitizer
    // build quick; the rest are cancelled in one statement.
    constexpr std::size_t kApplied = 30'000;
    std::size_t applied = 0;
    auto t2 = std::chrono::steady_clock::now();
    while (applied < kApplied) {
        auto claimed = jobs().claim_next_items(500);
        if (claimed.empty()) break;
        std::vector<ItemOutcome> results;
        results.reserve(claimed.size());
        for (const auto& c : claimed) results.push_back(done_result(c));
        applied += jobs().apply_outcomes(results).done;
    }
    auto t3 = std::chrono::steady_clock::now();
    EXPECT_EQ(applied, kApplied);
    expect_counts_exact(job.id, alice);
    auto cancelled = jobs().cancel_job(alice, job.id);
    auto t4 = std::chrono::steady_clock::now();
    EXPECT_EQ(cancelled.job->counts.cancelled, static_cast<std::int64_t>(100'000 - kApplied));
    expect_counts_exact(job.id, alice);
    auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
    std::printf("[ bench    ] create_job(100000 URLs): %.0f ms\n", ms(t1 - t0));
    std::printf("[ bench    ] claim+apply %zu results in batches of 500: %.0f ms (%.0f items/s)\n",
                kApplied, ms(t3 - t2), kApplied / (ms(t3 - t2) / 1000));
    std::printf("[ bench    ] cancel the remaining %zu items: %.0f ms\n", 100'000 - kApplied,
                ms(t4 - t3));
}

// A schema-2 file (plain INTEGER PRIMARY KEY ids) keeps its jobs and items
// through the rebuild to AUTOINCREMENT, and from then on ids are not reused.
TEST(StoreJobsMigration, SchemaTwoFileKeepsDataAndStopsReusingIds) {
    TempDir dir;
    auto path = SqliteStore::database_path(dir.path());
    {
        Database old(path);
        migrate(old, 2);
        std::lock_guard lock(old.mutex());
        ASSERT_EQ(old.user_version(), 2);
        old.exec(
            "INSERT INTO users(id, name, password_hash, created) VALUES (1, 'alice', 'x', 0);"
            "INSERT INTO jobs(id, user_id, name, state, created, updated, first_item, last_item, "
            "total, queued, done) VALUES (1, 1, 'one', 'running', 0, 0, 1, 2, 2, 1, 1),"
            "(2, 1, 'two', 'queued', 0, 0, 3, 3, 1, 1, 0);"
            "INSERT INTO items(id, job_id, position, url, state, updated) VALUES "
            "(1, 1, 0, 'http://example.com/0.jpg', 'done', 0),"
            "(2, 1, 1, 'http://example.com/1.jpg', 'queued', 0),"
            "(3, 2, 0, 'http://example.com/2.jpg', 'queued', 0);");
    }
    SqliteStore store(dir.path());
    {
        std::lock_guard lock(store.database().mutex());
        EXPECT_EQ(store.database().user_version(), kSchemaVersion);
        EXPECT_EQ(store.database().query_int64("SELECT count(*) FROM items"), 3);
    }
    auto one = store.jobs().get_job(1, 1);
    ASSERT_TRUE(one);
    EXPECT_EQ(one->name, "one");
    EXPECT_EQ(one->counts.done, 1);
    ASSERT_EQ(store.jobs().delete_job(1, 2).status, JobOpStatus::ok);
    {
        std::lock_guard lock(store.database().mutex());
        EXPECT_EQ(store.database().query_int64("SELECT count(*) FROM items"), 2)
            << "deleting job 2 cascades to its items: foreign keys are back on";
    }
    auto next = store.jobs().create_job(testing::new_job(1, "three", numbered_urls(1)));
    EXPECT_EQ(next.id, 3);
}

}  // namespace
}  // namespace litchi
