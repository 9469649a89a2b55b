// What the PostgreSQL job store promises about its event log and about
// several nodes on one database (event_log.hpp, pg_job_store.hpp): per-user
// pos/seq contiguous and in commit order under concurrent commits of two
// nodes; progress coalesced per interval with an injected clock and flushed;
// item, job_created and job_deleted entries; the rate/eta rule; concurrent
// claims of two nodes never sharing an item; visit_jobs as of the user's
// position; and the multi-node side of leases (another node's expired claim
// requeued and fenced). Both-backend lease rules are in store_leases_test.cpp.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <map>
#include <set>
#include <thread>

#include "store/pg_connection.hpp"
#include "store/pg_event_codec.hpp"
#include "store/pg_job_store.hpp"
#include "store_backends.hpp"

namespace litchi {
namespace {

using testing::Backend;
using testing::new_job;
using testing::numbered_urls;
using testing::StoreBackend;

// Downloads are JPEGs here (the item entries are checked for it).
ItemOutcome done_outcome(const ClaimedItem& item) {
    return testing::done_outcome(item, ImageFormat::jpeg);
}

std::vector<ItemOutcome> all_done(const std::vector<ClaimedItem>& claimed) {
    return testing::done_outcomes(claimed, ImageFormat::jpeg);
}

struct Entry {
    std::uint64_t pos = 0, seq = 0;
    LoggedKind kind = LoggedKind::progress;
    JobId job = 0;
    TimeMs at = 0;
    std::string body;
};

class StorePgLog : public ::testing::Test {
  protected:
    void SetUp() override { alice = db.insert_user("alice"); }

    // A node on the shared database with the test's clock.
    std::unique_ptr<Store> node(const std::string& name) {
        StoreOptions options;
        options.node = name;
        options.clock = [this] { return clock.load(); };
        options.progress_interval = std::chrono::milliseconds(100);
        options.lease = std::chrono::milliseconds(1000);
        return db.open(options);
    }

    std::vector<Entry> entries(UserId user) {
        auto result =
            sql().exec("SELECT pos, seq, kind, job_id, at, body FROM events WHERE user_id = " +
                       std::to_string(user) + " ORDER BY pos");
        std::vector<Entry> out;
        for (int i = 0; i < result.rows(); ++i)
            out.push_back({static_cast<std::uint64_t>(result.int64(i, 0)),
                           static_cast<std::uint64_t>(result.int64(i, 1)),
                           static_cast<LoggedKind>(result.int64(i, 2)), result.int64(i, 3),
                           result.int64(i, 4), std::string(result.text(i, 5))});
        return out;
    }

    // Every item change logged for `user`, in log order (an item entry holds
    // one or more).
    std::vector<ItemRecord> logged_items(UserId user) {
        std::vector<ItemRecord> out;
        for (auto& e : of_kind(user, LoggedKind::item)) {
            auto items = pg::decode_items(e.body);
            EXPECT_TRUE(items) << e.body;
            if (items) out.insert(out.end(), items->begin(), items->end());
        }
        return out;
    }

    std::vector<Entry> of_kind(UserId user, LoggedKind kind) {
        std::vector<Entry> out;
        for (auto& e : entries(user))
            if (e.kind == kind) out.push_back(e);
        return out;
    }

    pg::Connection& sql() {
        if (!conn) conn = std::make_unique<pg::Connection>(db.location().uri);
        return *conn;
    }

    static std::optional<TimeMs> flush(Store& store) {
        return dynamic_cast<PgJobStore&>(store.jobs()).flush_progress();
    }

    std::atomic<TimeMs> clock{1'000'000};
    StoreBackend db{Backend::postgresql};
    std::unique_ptr<pg::Connection> conn;
    std::unique_ptr<Store> a = node("node-a");
    UserId alice = 0;
};

TEST_F(StorePgLog, PositionsAreContiguousAndInCommitOrderAcrossTwoNodes) {
    auto b = node("node-b");
    UserId bob = db.insert_user("bob");
    // Two nodes commit for the same users at the same time: creations, claims
    // and outcomes, each logging entries.
    auto work = [&](Store& store, UserId other) {
        for (int round = 0; round < 15; ++round) {
            store.jobs().create_job(new_job(round % 2 ? alice : other, "j", numbered_urls(4)));
            auto claimed = store.jobs().claim_next_items(3);
            store.jobs().apply_outcomes(all_done(claimed));
        }
    };
    std::thread first([&] { work(*a, bob); });
    std::thread second([&] { work(*b, bob); });
    first.join();
    second.join();
    for (UserId user : {alice, bob}) {
        auto log = entries(user);
        ASSERT_FALSE(log.empty());
        std::uint64_t seq = 0;
        std::set<JobId> created;
        std::map<ItemId, ItemState> item_state;
        for (std::size_t i = 0; i < log.size(); ++i) {
            EXPECT_EQ(log[i].pos, i + 1) << "pos has no gap and no repeat";
            if (is_job_level(log[i].kind)) {
                EXPECT_EQ(log[i].seq, ++seq) << "seq counts job-level entries only";
            } else {
                EXPECT_EQ(log[i].seq, 0u);
            }
            // Commit order: a job is created before any entry about it, and an
            // item is active before it is done.
            if (log[i].kind == LoggedKind::job_created) {
                created.insert(log[i].job);
            } else {
                EXPECT_TRUE(created.count(log[i].job)) << "entry before its job_created";
            }
            if (log[i].kind == LoggedKind::item) {
                auto items = pg::decode_items(log[i].body);
                ASSERT_TRUE(items);
                for (const ItemRecord& item : *items) {
                    EXPECT_EQ(item.job, log[i].job) << "an entry holds one job's items";
                    if (item.state == ItemState::done) {
                        EXPECT_EQ(item_state[item.id], ItemState::active);
                    }
                    item_state[item.id] = item.state;
                }
            }
        }
        EXPECT_EQ(static_cast<std::uint64_t>(
                      db.scalar("SELECT event_pos FROM users WHERE id = " + std::to_string(user))),
                  log.size());
        EXPECT_EQ(static_cast<std::uint64_t>(
                      db.scalar("SELECT event_seq FROM users WHERE id = " + std::to_string(user))),
                  seq);
    }
}

TEST_F(StorePgLog, ProgressIsCoalescedAndFlushed) {
    auto job = a->jobs().create_job(new_job(alice, "c", numbered_urls(10)));
    auto claimed = a->jobs().claim_next_items(10);  // queued -> running: logged at once
    ASSERT_EQ(claimed.size(), 10u);
    ASSERT_EQ(of_kind(alice, LoggedKind::progress).size(), 1u);

    clock += 10;
    a->jobs().apply_outcomes({done_outcome(claimed[0])});
    clock += 10;
    a->jobs().apply_outcomes({done_outcome(claimed[1])});
    EXPECT_EQ(of_kind(alice, LoggedKind::progress).size(), 1u) << "within the interval: pending";
    EXPECT_EQ(
        db.scalar("SELECT progress_pending::int FROM jobs WHERE id = " + std::to_string(job.id)),
        1);
    EXPECT_EQ(logged_items(alice).size(), 12u) << "item changes are never held back";
    EXPECT_EQ(of_kind(alice, LoggedKind::item).size(), 3u) << "one entry per claim or batch";

    clock += 30;  // 50 ms after the last progress entry: not due yet
    auto next = flush(*a);
    ASSERT_TRUE(next);
    EXPECT_EQ(*next, 1'000'000 + 100) << "due one interval after the last entry";
    EXPECT_EQ(of_kind(alice, LoggedKind::progress).size(), 1u);

    clock = *next;
    EXPECT_FALSE(flush(*a)) << "nothing pending after the flush";
    auto progress = of_kind(alice, LoggedKind::progress);
    ASSERT_EQ(progress.size(), 2u);
    auto snapshot = pg::decode_job(progress.back().body);
    ASSERT_TRUE(snapshot);
    EXPECT_EQ(snapshot->counts.done, 2);
    EXPECT_EQ(progress.back().at, clock.load());

    // A state change is logged at once, even within the interval.
    clock += 1;
    a->jobs().pause_job(alice, job.id);
    progress = of_kind(alice, LoggedKind::progress);
    ASSERT_EQ(progress.size(), 3u);
    EXPECT_EQ(pg::decode_job(progress.back().body)->state, JobState::paused);

    // A change after the interval is logged at once too.
    clock += 200;
    a->jobs().apply_outcomes({done_outcome(claimed[2])});
    EXPECT_EQ(of_kind(alice, LoggedKind::progress).size(), 4u);
}

TEST_F(StorePgLog, JobAndItemEntries) {
    auto job = a->jobs().create_job(new_job(alice, "e", numbered_urls(3)));
    auto created = of_kind(alice, LoggedKind::job_created);
    ASSERT_EQ(created.size(), 1u);
    EXPECT_EQ(created[0].job, job.id);
    EXPECT_EQ(created[0].seq, 1u);
    auto snapshot = pg::decode_job(created[0].body);
    ASSERT_TRUE(snapshot);
    EXPECT_EQ(snapshot->name, "e");
    EXPECT_EQ(snapshot->counts.queued, 3);

    auto claimed = a->jobs().claim_next_items(3);
    EXPECT_EQ(of_kind(alice, LoggedKind::item).size(), 1u) << "one entry for the claim's items";
    auto items = logged_items(alice);
    ASSERT_EQ(items.size(), 3u);
    for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(items[i].id, claimed[i].item);
        EXPECT_EQ(items[i].state, ItemState::active);
    }
    ItemOutcome failed;
    failed.item = claimed[1].item;
    failed.lease = claimed[1].lease;
    failed.reason = FailureReason::http;
    failed.http_status = 404;
    a->jobs().apply_outcomes({done_outcome(claimed[0]), failed});
    EXPECT_EQ(of_kind(alice, LoggedKind::item).size(), 2u) << "one more for the outcomes";
    items = logged_items(alice);
    ASSERT_EQ(items.size(), 5u);
    EXPECT_EQ(items[3].state, ItemState::done);
    EXPECT_EQ(items[3].format, ImageFormat::jpeg);
    EXPECT_EQ(items[4].state, ItemState::failed);
    EXPECT_EQ(items[4].http_status, 404);

    a->jobs().cancel_job(alice, job.id);
    EXPECT_EQ(of_kind(alice, LoggedKind::items_reset).size(), 1u) << "a bulk change: one entry";

    auto seq_before = db.scalar("SELECT event_seq FROM users WHERE id = " + std::to_string(alice));
    a->jobs().delete_job(alice, job.id);
    auto deleted = of_kind(alice, LoggedKind::job_deleted);
    ASSERT_EQ(deleted.size(), 1u);
    EXPECT_EQ(deleted[0].job, job.id);
    EXPECT_EQ(static_cast<std::int64_t>(deleted[0].seq), seq_before + 1);
    EXPECT_EQ(entries(alice).back().kind, LoggedKind::job_deleted);
}

TEST_F(StorePgLog, RateAndEtaFollowTheRule) {
    auto job = a->jobs().create_job(new_job(alice, "r", numbered_urls(10)));
    EXPECT_EQ(job.rate, 0);
    EXPECT_FALSE(job.eta);
    auto claimed = a->jobs().claim_next_items(10);  // running from now: the rate's start
    clock += 1000;
    a->jobs().apply_outcomes(
        {done_outcome(claimed[0]), done_outcome(claimed[1]), done_outcome(claimed[2])});
    // dt = 1000 ms, 3 finished: inst = 3/s, alpha = 1 - exp(-1/3).
    double alpha = 1 - std::exp(-1000 / 3000.0);
    double rate = shown_rate(alpha * 3.0);
    auto snap = *a->jobs().get_job(alice, job.id);
    EXPECT_DOUBLE_EQ(snap.rate, rate);
    ASSERT_TRUE(snap.eta);
    EXPECT_DOUBLE_EQ(*snap.eta, 7 / rate);
    auto logged = pg::decode_job(of_kind(alice, LoggedKind::progress).back().body);
    EXPECT_DOUBLE_EQ(logged->rate, rate) << "the entry carries what get_job shows";

    clock += 500;
    a->jobs().apply_outcomes({done_outcome(claimed[3])});
    double alpha2 = 1 - std::exp(-500 / 3000.0);
    double rate2 = shown_rate(alpha2 * 2.0 + (1 - alpha2) * rate);
    EXPECT_DOUBLE_EQ(a->jobs().get_job(alice, job.id)->rate, rate2);

    clock += 500;
    snap = *a->jobs().pause_job(alice, job.id).job;
    EXPECT_EQ(snap.rate, 0);
    EXPECT_FALSE(snap.eta) << "paused: no eta";
    // Ten minutes paused do not count: the rate restarts from the resume.
    clock += 600'000;
    snap = *a->jobs().resume_job(alice, job.id).job;
    EXPECT_EQ(snap.rate, 0);
    clock += 1000;
    std::vector<ItemOutcome> rest;
    for (std::size_t i = 4; i < 10; ++i) rest.push_back(done_outcome(claimed[i]));
    snap = *a->jobs().get_job(alice, job.id);
    a->jobs().apply_outcomes(rest);
    snap = *a->jobs().get_job(alice, job.id);
    EXPECT_EQ(snap.state, JobState::done);
    EXPECT_EQ(snap.rate, 0);
    ASSERT_TRUE(snap.eta);
    EXPECT_EQ(*snap.eta, 0) << "done: eta 0";
}

TEST_F(StorePgLog, TwoNodesClaimingAtOnceNeverShareAnItem) {
    auto b = node("node-b");
    UserId bob = db.insert_user("bob");
    std::vector<JobId> jobs;
    for (int i = 0; i < 3; ++i) {
        jobs.push_back(a->jobs().create_job(new_job(alice, "a", numbered_urls(200))).id);
        jobs.push_back(a->jobs().create_job(new_job(bob, "b", numbered_urls(150))).id);
    }
    std::vector<ClaimedItem> by_a, by_b;
    auto drain = [](Store& store, std::vector<ClaimedItem>& into) {
        while (true) {
            auto claimed = store.jobs().claim_next_items(7);
            if (claimed.empty() && !store.jobs().has_runnable()) break;
            into.insert(into.end(), claimed.begin(), claimed.end());
        }
    };
    std::thread first([&] { drain(*a, by_a); });
    std::thread second([&] { drain(*b, by_b); });
    first.join();
    second.join();
    EXPECT_FALSE(by_a.empty());
    EXPECT_FALSE(by_b.empty());
    std::set<ItemId> seen;
    for (const auto* list : {&by_a, &by_b})
        for (const auto& c : *list) EXPECT_TRUE(seen.insert(c.item).second) << "claimed twice";
    EXPECT_EQ(seen.size(), 3u * 350u);
    for (std::size_t i = 0; i < jobs.size(); ++i) {
        UserId owner = i % 2 ? bob : alice;
        auto snap = *a->jobs().get_job(owner, jobs[i]);
        EXPECT_EQ(snap.counts, db.recount(jobs[i]));
        EXPECT_EQ(snap.counts.queued, 0);
    }
    EXPECT_EQ(db.scalar("SELECT count(*) FROM items WHERE node = 'node-a' AND state = 'active'"),
              static_cast<std::int64_t>(by_a.size()));
    EXPECT_EQ(a->jobs().leased_total(), 3 * 350);
}

TEST_F(StorePgLog, VisitJobsIsAsOfTheUsersPosition) {
    auto job = a->jobs().create_job(new_job(alice, "v", numbered_urls(5)));
    auto claimed = a->jobs().claim_next_items(2);
    a->jobs().apply_outcomes(all_done(claimed));
    CommitId as_of = 0;
    std::vector<JobSnapshot> seen;
    a->jobs().visit_jobs(alice, [&](const std::vector<JobSnapshot>& jobs, CommitId commit) {
        seen = jobs;
        as_of = commit;
    });
    EXPECT_EQ(as_of, entries(alice).back().pos);
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].id, job.id);
    EXPECT_EQ(seen[0].counts.done, 2);
}

// The multi-node side of leases: node A's claim runs out, node B requeues
// and re-claims the item, and A's late outcome is fenced; each node's own
// requeue and renewal touch only its own claims.
TEST_F(StorePgLog, AnotherNodesExpiredClaimIsRequeuedAndItsOutcomeFenced) {
    auto b = node("node-b");
    auto job = a->jobs().create_job(new_job(alice, "l", numbered_urls(4)));
    auto held_by_a = a->jobs().claim_next_items(2);
    ASSERT_EQ(held_by_a.size(), 2u);
    EXPECT_EQ(b->jobs().requeue_active(), 0) << "B's requeue leaves A's claims alone";
    EXPECT_EQ(b->jobs().renew_leases(), 0);
    EXPECT_EQ(b->jobs().expire_leases(), 0) << "A's lease has not run out";

    clock += 600;
    EXPECT_EQ(a->jobs().renew_leases(), 2);  // A renews: now + 1000
    clock += 600;
    EXPECT_EQ(b->jobs().expire_leases(), 0) << "renewed";
    clock += 1000;
    EXPECT_EQ(b->jobs().expire_leases(), 2) << "A stopped renewing: its claims go back";
    auto snap = *b->jobs().get_job(alice, job.id);
    EXPECT_EQ(snap.counts.active, 0);
    EXPECT_EQ(snap.counts.queued, 4);
    auto requeued = logged_items(alice);
    ASSERT_FALSE(requeued.empty());
    EXPECT_EQ(requeued.back().state, ItemState::queued)
        << "a few expired items are logged one by one";

    auto held_by_b = b->jobs().claim_next_items(4);
    ASSERT_EQ(held_by_b.size(), 4u);
    auto late = a->jobs().apply_outcomes(all_done(held_by_a));
    EXPECT_EQ(late.fenced, 2u);
    EXPECT_EQ(late.done, 0u);
    EXPECT_EQ(late.orphaned.size(), 2u) << "A's blobs may be unreferenced";
    auto applied = b->jobs().apply_outcomes(all_done(held_by_b));
    EXPECT_EQ(applied.done, 4u);
    snap = *b->jobs().get_job(alice, job.id);
    EXPECT_EQ(snap.counts.done, 4) << "each item counted once";
    EXPECT_EQ(snap.counts, db.recount(job.id));
    EXPECT_EQ(a->jobs().apply_outcomes(all_done(held_by_a)).fenced, 2u)
        << "still fenced after B finished them";

    // A node (re)starting recovers its own claims, not another live node's.
    auto job2 = a->jobs().create_job(new_job(alice, "m", numbered_urls(4)));
    ASSERT_EQ(a->jobs().claim_next_items(2).size(), 2u);
    ASSERT_EQ(b->jobs().claim_next_items(2).size(), 2u);
    auto restarted_b = node("node-b");
    EXPECT_EQ(restarted_b->recovery().requeued, 2);
    EXPECT_EQ(db.scalar("SELECT count(*) FROM items WHERE state = 'active' AND node = 'node-a'"),
              2);
    EXPECT_EQ(a->jobs().get_job(alice, job2.id)->counts, db.recount(job2.id));
}

}  // namespace
}  // namespace litchi
