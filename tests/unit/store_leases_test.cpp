// Leases and fences in the job store, on both backends: every claim gets a
// fresh lease id; an outcome is applied only under the lease its item is still
// claimed with (otherwise fenced, counted nowhere); leases run out on the
// store's clock (injected here) and go back to the queue with exact counters,
// unless renewed; a node's requeue and recovery touch only its own claims.
// Two nodes are two store instances on one database with different node
// names. Plus the SQLite schema 1 -> 2 migration of an existing file.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <set>

#include "store/observer.hpp"
#include "store/sqlite_store.hpp"
#include "store_backends.hpp"

namespace litchi {
namespace {

using namespace std::chrono_literals;
using testing::Backend;
using testing::new_job;
using testing::numbered_urls;
using testing::StoreBackend;
using testing::TempDir;

struct RecordingObserver : StoreObserver {
    std::vector<JobSnapshot> items_reset;
    std::vector<JobSnapshot> changed;
    void on_commit(StoreChanges& changes) override {
        items_reset.insert(items_reset.end(), changes.items_reset.begin(),
                           changes.items_reset.end());
        for (const auto& change : changes.changed) changed.push_back(change.job);
    }
};

class StoreLeases : public ::testing::TestWithParam<Backend> {
  protected:
    static constexpr TimeMs kStart = 1'700'000'000'000;

    void SetUp() override {
        a = open_node("a", true);
        alice = db.insert_user("alice");
    }

    // A store for one node on the shared database, on the test's clock with
    // a 1 s lease. Only the first opener recovers (as a node starting up).
    std::unique_ptr<Store> open_node(const std::string& node, bool recover = false) {
        StoreOptions options;
        options.node = node;
        options.lease = 1000ms;
        options.clock = [this] { return clock.load(); };
        options.recover_on_open = recover;
        options.pool_size = 2;
        return db.open(std::move(options));
    }

    void expect_exact(JobId job) {
        auto snap = a->jobs().get_job(alice, job);
        ASSERT_TRUE(snap);
        EXPECT_EQ(snap->counts, db.recount(job));
    }

    JobCounts counts(JobId job) { return a->jobs().get_job(alice, job)->counts; }

    StoreBackend db{GetParam()};
    std::atomic<TimeMs> clock{kStart};
    std::unique_ptr<Store> a;
    UserId alice = 0;
};

TEST_P(StoreLeases, ClaimsGetDistinctLeaseIds) {
    auto b = open_node("b");
    a->jobs().create_job(new_job(alice, "j", numbered_urls(12)));
    std::set<LeaseId> leases;
    std::vector<ClaimedItem> all;
    for (auto* store : {a.get(), b.get(), a.get(), b.get()}) {
        auto claimed = store->jobs().claim_next_items(3);
        ASSERT_EQ(claimed.size(), 3u);
        all.insert(all.end(), claimed.begin(), claimed.end());
    }
    for (const auto& c : all) {
        EXPECT_NE(c.lease, 0) << "item " << c.item;
        EXPECT_TRUE(leases.insert(c.lease).second) << "lease " << c.lease << " handed out twice";
    }
    EXPECT_EQ(a->jobs().leased_total(), 12);
    EXPECT_EQ(b->jobs().leased_total(), 12) << "all nodes' leases";
}

TEST_P(StoreLeases, OnlyTheCurrentLeaseAppliesAnOutcome) {
    auto job = a->jobs().create_job(new_job(alice, "j", numbered_urls(3)));
    auto claimed = a->jobs().claim_next_items(3);
    ASSERT_EQ(claimed.size(), 3u);

    auto wrong = testing::done_outcome(claimed[0]);
    wrong.lease = claimed[0].lease + 1000;
    auto none = testing::done_outcome(claimed[1]);
    none.lease = 0;
    auto older = testing::done_outcome(claimed[2]);
    older.lease = claimed[0].lease;  // another item's lease
    auto summary = a->jobs().apply_outcomes({wrong, none, older});
    EXPECT_EQ(summary.fenced, 3u);
    EXPECT_EQ(summary.done + summary.failed + summary.ignored, 0u);
    EXPECT_EQ(summary.orphaned.size(), 3u) << "their blobs are candidates for removal";
    EXPECT_EQ(counts(job.id).active, 3) << "fenced outcomes change nothing";
    EXPECT_EQ(counts(job.id).done, 0);
    expect_exact(job.id);

    summary = a->jobs().apply_outcomes(testing::done_outcomes(claimed));
    EXPECT_EQ(summary.done, 3u);
    EXPECT_EQ(summary.fenced, 0u);
    EXPECT_EQ(counts(job.id).done, 3);
    EXPECT_EQ(a->jobs().get_job(alice, job.id)->state, JobState::done);

    // The same outcomes again: their claim is over, nothing is counted twice.
    summary = a->jobs().apply_outcomes(testing::done_outcomes(claimed));
    EXPECT_EQ(summary.done, 0u);
    EXPECT_EQ(summary.ignored + summary.fenced, 3u);
    EXPECT_EQ(counts(job.id).done, 3);
    expect_exact(job.id);
    EXPECT_EQ(a->jobs().leased_total(), 0);
}

TEST_P(StoreLeases, ExpiredLeasesGoBackAndTheLateOutcomeIsFenced) {
    auto b = open_node("b");
    RecordingObserver observer;
    if (!db.is_postgresql()) b->jobs().set_observer(&observer);  // PostgreSQL logs events instead
    auto job = a->jobs().create_job(new_job(alice, "j", numbered_urls(3)));
    auto first = a->jobs().claim_next_items(2);
    ASSERT_EQ(first.size(), 2u);

    clock += 999;
    EXPECT_EQ(b->jobs().expire_leases(), 0) << "not yet";
    EXPECT_EQ(counts(job.id).active, 2);

    clock += 2;  // past the lease
    EXPECT_EQ(b->jobs().expire_leases(), 2) << "any node returns expired leases";
    auto c = counts(job.id);
    EXPECT_EQ(c.active, 0);
    EXPECT_EQ(c.queued, 3);
    expect_exact(job.id);
    EXPECT_EQ(b->jobs().leased_total(), 0);
    if (!db.is_postgresql()) {
        ASSERT_EQ(observer.items_reset.size(), 1u);
        EXPECT_EQ(observer.items_reset[0].id, job.id);
        ASSERT_FALSE(observer.changed.empty());
        EXPECT_EQ(observer.changed.back().counts, c);
    }

    // Node b takes them (and the third) under new leases.
    auto second = b->jobs().claim_next_items(10);
    ASSERT_EQ(second.size(), 3u);
    for (const auto& old : first)
        for (const auto& now : second)
            if (now.item == old.item) {
                EXPECT_NE(now.lease, old.lease);
            }

    // a's transfers finish late: refused, nothing counted.
    auto late = a->jobs().apply_outcomes(testing::done_outcomes(first));
    EXPECT_EQ(late.fenced, 2u);
    EXPECT_EQ(late.done, 0u);
    EXPECT_EQ(counts(job.id).active, 3);
    EXPECT_EQ(counts(job.id).done, 0);
    expect_exact(job.id);

    auto applied = b->jobs().apply_outcomes(testing::done_outcomes(second));
    EXPECT_EQ(applied.done, 3u);
    EXPECT_EQ(counts(job.id).done, 3);
    EXPECT_EQ(a->jobs().get_job(alice, job.id)->state, JobState::done);
    expect_exact(job.id);

    // Even after b finished, a's outcome stays refused.
    late = a->jobs().apply_outcomes(testing::done_outcomes(first));
    EXPECT_EQ(late.done, 0u);
    EXPECT_EQ(late.fenced, 2u);
    EXPECT_EQ(counts(job.id).done, 3);
    b->jobs().set_observer(nullptr);
}

TEST_P(StoreLeases, RenewalKeepsALeasePastItsFirstExpiry) {
    auto b = open_node("b");
    auto job = a->jobs().create_job(new_job(alice, "j", numbered_urls(4)));
    auto mine = a->jobs().claim_next_items(2);
    auto theirs = b->jobs().claim_next_items(2);
    ASSERT_EQ(mine.size(), 2u);
    ASSERT_EQ(theirs.size(), 2u);

    clock += 800;
    EXPECT_EQ(a->jobs().renew_leases(), 2) << "only this node's";
    clock += 700;  // 1500: b's ran out, a's runs to 1800
    EXPECT_EQ(a->jobs().expire_leases(), 2);
    EXPECT_EQ(counts(job.id).active, 2);
    EXPECT_EQ(counts(job.id).queued, 2);
    expect_exact(job.id);

    auto summary = a->jobs().apply_outcomes(testing::done_outcomes(mine));
    EXPECT_EQ(summary.done, 2u) << "a renewed lease still fences in its holder";
    summary = b->jobs().apply_outcomes(testing::done_outcomes(theirs));
    EXPECT_EQ(summary.fenced, 2u);
    expect_exact(job.id);

    auto again = a->jobs().claim_next_items(2);
    ASSERT_EQ(again.size(), 2u);
    clock += 900;
    a->jobs().renew_leases();
    clock += 900;
    EXPECT_EQ(b->jobs().expire_leases(), 0);
    clock += 200;
    EXPECT_EQ(b->jobs().expire_leases(), 2) << "a lease lasts `lease` after the last renewal";
    expect_exact(job.id);
}

// What a node hears through released_claims when another node pauses,
// cancels or deletes a job it downloads, or took over its expired claims:
// each claim it should stop, and none it should go on with.
TEST_P(StoreLeases, ReleasedClaimsAreWhatAnotherNodeStopped) {
    auto b = open_node("b");
    auto c = open_node("c");
    auto held = [](const std::vector<ClaimedItem>& claims) {
        std::vector<HeldClaim> out;
        for (const auto& claim : claims) out.push_back({claim.item, claim.lease});
        return out;
    };
    auto ids = [](std::initializer_list<const std::vector<ClaimedItem>*> lists) {
        std::vector<ItemId> out;
        for (const auto* list : lists)
            for (const auto& claim : *list) out.push_back(claim.item);
        std::sort(out.begin(), out.end());
        return out;
    };

    // c's claims run out and a takes them over.
    a->jobs().create_job(new_job(alice, "expired", numbered_urls(2)));
    auto lost = c->jobs().claim_next_items(2);
    ASSERT_EQ(lost.size(), 2u);
    clock += 1500;
    EXPECT_EQ(a->jobs().expire_leases(), 2);
    ASSERT_EQ(a->jobs().claim_next_items(2).size(), 2u);
    EXPECT_EQ(c->jobs().released_claims(held(lost)), ids({&lost}));

    // b downloads four jobs; a pauses one, cancels one, deletes one.
    std::vector<JobId> jobs;
    std::vector<std::vector<ClaimedItem>> claims;
    for (const char* name : {"paused", "cancelled", "deleted", "kept"}) {
        jobs.push_back(a->jobs().create_job(new_job(alice, name, numbered_urls(2))).id);
        claims.push_back(b->jobs().claim_next_items(2));
        ASSERT_EQ(claims.back().size(), 2u) << name;
    }
    std::vector<HeldClaim> all;
    for (const auto& list : claims)
        for (const auto& claim : held(list)) all.push_back(claim);
    EXPECT_TRUE(b->jobs().released_claims(all).empty()) << "nothing stopped yet";

    EXPECT_EQ(a->jobs().pause_job(alice, jobs[0]).status, JobOpStatus::ok);
    EXPECT_EQ(a->jobs().cancel_job(alice, jobs[1]).status, JobOpStatus::ok);
    EXPECT_EQ(a->jobs().delete_job(alice, jobs[2]).status, JobOpStatus::ok);
    EXPECT_EQ(b->jobs().released_claims(all), ids({&claims[0], &claims[1], &claims[2]}));
    EXPECT_TRUE(b->jobs().released_claims({}).empty());

    // Resumed before b heard of the pause: its claims are b's to finish.
    EXPECT_EQ(a->jobs().resume_job(alice, jobs[0]).status, JobOpStatus::ok);
    EXPECT_EQ(b->jobs().released_claims(all), ids({&claims[1], &claims[2]}));
    auto summary = b->jobs().apply_outcomes(testing::done_outcomes(claims[0]));
    EXPECT_EQ(summary.done, 2u);
    EXPECT_EQ(b->jobs().released_claims(held(claims[0])), ids({&claims[0]}))
        << "an item already done is no longer held either";
}

TEST_P(StoreLeases, RequeueActiveTouchesOnlyThisNodesItems) {
    auto b = open_node("b");
    auto job = a->jobs().create_job(new_job(alice, "j", numbered_urls(6)));
    auto mine = a->jobs().claim_next_items(2);
    auto theirs = b->jobs().claim_next_items(3);
    ASSERT_EQ(mine.size(), 2u);
    ASSERT_EQ(theirs.size(), 3u);

    EXPECT_EQ(a->jobs().requeue_active(), 2);
    auto c = counts(job.id);
    EXPECT_EQ(c.active, 3);
    EXPECT_EQ(c.queued, 3);
    expect_exact(job.id);
    EXPECT_EQ(a->jobs().requeue_active(), 0) << "nothing of a's left";

    auto summary = b->jobs().apply_outcomes(testing::done_outcomes(theirs));
    EXPECT_EQ(summary.done, 3u) << "b's claims survived a's requeue";
    summary = a->jobs().apply_outcomes(testing::done_outcomes(mine));
    EXPECT_EQ(summary.fenced, 2u) << "a's requeued claims are over";
    expect_exact(job.id);
    EXPECT_EQ(counts(job.id).done, 3);
    EXPECT_EQ(counts(job.id).queued, 3);
}

TEST_P(StoreLeases, RecoveryRequeuesOwnClaimsAndOthersExpiredOnes) {
    auto b = open_node("b");
    auto job = a->jobs().create_job(new_job(alice, "j", numbered_urls(6)));
    ASSERT_EQ(a->jobs().claim_next_items(2).size(), 2u);
    auto theirs = b->jobs().claim_next_items(2);
    ASSERT_EQ(theirs.size(), 2u);

    // Node a restarts (its claims are from its previous run); b's are live.
    clock += 500;
    a.reset();
    a = open_node("a", true);
    EXPECT_EQ(a->recovery().requeued, 2);
    EXPECT_EQ(counts(job.id).active, 2);
    expect_exact(job.id);

    // Node c starts after b's leases ran out (b died): they come back too.
    clock += 1000;
    auto c = open_node("c", true);
    EXPECT_EQ(c->recovery().requeued, 2);
    EXPECT_EQ(counts(job.id).active, 0);
    EXPECT_EQ(counts(job.id).queued, 6);
    expect_exact(job.id);
}

// Claims find queued items wherever they are: items put back in the queue
// behind the head (expired leases, requeued outcomes, a retry) are claimed
// again, before or after the rest, and so is an item left queued behind
// PostgreSQL's claim cursor without telling it (a claim that had locked it
// and then rolled back: simulated by hand here). Every item is claimed
// exactly once per time it is queued.
TEST_P(StoreLeases, ItemsBackInTheQueueAreClaimedWhereverTheyAre) {
    auto job = a->jobs().create_job(new_job(alice, "j", numbered_urls(12)));
    auto first = a->jobs().claim_next_items(6);
    ASSERT_EQ(first.size(), 6u);
    // Item 2 comes back to the queue (a cancelled outcome while its job
    // runs: the scheduler gave it back), item 4's lease runs out; the rest of
    // the first six are done.
    std::vector<ItemOutcome> outcomes;
    for (const auto& c : first) {
        if (c.item == first[3].item) continue;  // its lease runs out below
        auto outcome = testing::done_outcome(c);
        if (c.item == first[1].item) {
            outcome = {};
            outcome.item = c.item;
            outcome.lease = c.lease;
            outcome.reason = FailureReason::cancelled;
        }
        outcomes.push_back(outcome);
    }
    a->jobs().apply_outcomes(outcomes);
    clock += 60'000;  // past the lease
    EXPECT_EQ(a->jobs().expire_leases(), 1);
    expect_exact(job.id);

    // Simulated: item 1, below everything put back, is queued again without
    // any of the store's paths (as a claim that locked it and rolled back
    // would leave it).
    const auto stray = first[0].item;
    db.exec("UPDATE items SET state = 'queued' WHERE id = " + std::to_string(stray));
    db.exec("UPDATE jobs SET queued = queued + 1, done = done - 1 WHERE id = " +
            std::to_string(job.id));
    expect_exact(job.id);

    std::multiset<ItemId> got;
    for (int round = 0; round < 10 && got.size() < 9; ++round) {
        auto claimed = a->jobs().claim_next_items(4);
        for (const auto& c : claimed) got.insert(c.item);
    }
    std::multiset<ItemId> want{first[1].item, first[3].item, stray};
    for (std::size_t i = 6; i < 12; ++i) want.insert(stray + static_cast<ItemId>(i));
    EXPECT_EQ(got, want) << "the six never claimed, the two put back, and the stray one";
    EXPECT_EQ(counts(job.id).queued, 0);
    EXPECT_TRUE(a->jobs().claim_next_items(4).empty());
}

LITCHI_BOTH_BACKENDS(StoreLeases);

// A file written by a Litchi with schema 1 (no leases) opens, migrates and
// works: its in-flight items (a crash left them) come back on recovery.
TEST(StoreLeasesMigration, SchemaOneFileMigratesAndRecovers) {
    TempDir dir;
    auto path = SqliteStore::database_path(dir.path());
    {
        Database old(path);
        migrate(old, 1);
        std::lock_guard lock(old.mutex());
        ASSERT_EQ(old.user_version(), 1);
        old.exec(
            "INSERT INTO users(id, name, password_hash, created) VALUES (1, 'alice', 'x', 0);"
            "INSERT INTO jobs(id, user_id, name, state, created, updated, first_item, last_item, "
            "total, queued, active, done) VALUES (1, 1, 'old', 'running', 0, 0, 1, 4, 4, 1, 2, 1);"
            "INSERT INTO items(id, job_id, position, url, state, updated) VALUES "
            "(1, 1, 0, 'http://example.com/0.jpg', 'done', 0),"
            "(2, 1, 1, 'http://example.com/1.jpg', 'active', 0),"
            "(3, 1, 2, 'http://example.com/2.jpg', 'active', 0),"
            "(4, 1, 3, 'http://example.com/3.jpg', 'queued', 0);");
    }

    SqliteStore store(dir.path());
    {
        std::lock_guard lock(store.database().mutex());
        EXPECT_EQ(store.database().user_version(), kSchemaVersion);
    }
    EXPECT_EQ(store.recovery().requeued, 2) << "schema 1's in-flight items belong to no node";
    auto snap = store.jobs().get_job(1, 1);
    ASSERT_TRUE(snap);
    EXPECT_EQ(snap->counts.queued, 3);
    EXPECT_EQ(snap->counts.active, 0);
    EXPECT_EQ(snap->counts, testing::recount(store.database(), 1));

    auto claimed = store.jobs().claim_next_items(10);
    ASSERT_EQ(claimed.size(), 3u);
    for (const auto& c : claimed) EXPECT_GT(c.lease, 0);
    EXPECT_EQ(store.jobs().leased_total(), 3);
    EXPECT_EQ(store.jobs().apply_outcomes(testing::done_outcomes(claimed)).done, 3u);
    EXPECT_EQ(store.jobs().get_job(1, 1)->state, JobState::done);

    // Opening again (already at schema 2) changes nothing.
    std::int64_t next_lease = 0;
    {
        std::lock_guard lock(store.database().mutex());
        next_lease =
            store.database().query_int64("SELECT value FROM meta WHERE key = 'last_lease_id'");
    }
    EXPECT_EQ(next_lease, 3);
}

}  // namespace
}  // namespace litchi
