// The PostgreSQL event log's reading side (store/pg_event_log.hpp), against
// a real server: entries written with raw SQL, as the job store writes them,
// are read back in order and decoded (a corrupt row is skipped, not fatal);
// user_state is one consistent snapshot; prune honours the injected clock;
// and wait_for_entries wakes on NOTIFY, times out, is interrupted, and
// reconnects (resync) after the server restarted or while it is down.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <thread>

#include "store/pg_event_codec.hpp"
#include "store/pg_event_log.hpp"
#include "store_backends.hpp"

namespace litchi {
namespace {

using namespace std::chrono_literals;
using testing::Backend;
using testing::StoreBackend;

constexpr TimeMs kNow = 1'700'000'000'000;

JobSnapshot job_body(JobId id, UserId user, std::int64_t done) {
    JobSnapshot job;
    job.id = id;
    job.user = user;
    job.name = "job " + std::to_string(id);
    job.state = JobState::running;
    job.created = kNow - 5000;
    job.updated = kNow;
    job.counts.total = 10;
    job.counts.done = done;
    job.counts.queued = 10 - done;
    job.rate = 2.5;
    job.eta = 4.0;
    return job;
}

ItemRecord item_body(ItemId id, JobId job) {
    ItemRecord item;
    item.id = id;
    item.job = job;
    item.position = id - 1;
    item.url = "http://127.0.0.1/" + std::to_string(id) + ".png";
    item.state = ItemState::done;
    item.sha256 = std::string(64, 'a');
    item.bytes = 1234;
    item.width = 3;
    item.height = 4;
    item.format = ImageFormat::png;
    item.attempts = 1;
    item.updated = kNow;
    return item;
}

std::string quoted(const std::string& text) {
    std::string out = "'";
    for (char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
    return out + "'";
}

// Options with a clock the test sets.
struct TestClock {
    std::shared_ptr<std::atomic<TimeMs>> now = std::make_shared<std::atomic<TimeMs>>(kNow);
    StoreOptions options() const {
        auto options = tool_store_options();
        options.pool_size = 2;
        options.clock = [now = now] { return now->load(); };
        return options;
    }
};

class PgEventLogTest : public ::testing::Test {
  protected:
    StoreBackend db{Backend::postgresql};
    TestClock clock;
    std::unique_ptr<Store> store = db.open(clock.options());
    EventLog& log = *store->event_log();

    // One entry as the job store logs it, the user's counters advanced with it.
    void log_entry(UserId user, std::uint64_t pos, std::uint64_t seq, LoggedKind kind, JobId job,
                   TimeMs at, const std::string& body) {
        db.exec("INSERT INTO events(user_id, pos, seq, kind, job_id, at, body) VALUES (" +
                std::to_string(user) + ", " + std::to_string(pos) + ", " + std::to_string(seq) +
                ", " + std::to_string(static_cast<int>(kind)) + ", " + std::to_string(job) + ", " +
                std::to_string(at) + ", " + quoted(body) + ")");
        db.exec("UPDATE users SET event_pos = " + std::to_string(pos) +
                (seq ? ", event_seq = " + std::to_string(seq) : std::string()) +
                " WHERE id = " + std::to_string(user));
    }

    void insert_job(const JobSnapshot& job, bool null_eta = false) {
        db.exec(
            "INSERT INTO jobs(id, user_id, name, state, created, updated, total, queued, active, "
            "done, failed, cancelled, bytes, rate, eta) VALUES (" +
            std::to_string(job.id) + ", " + std::to_string(job.user) + ", " + quoted(job.name) +
            ", " + quoted(std::string(to_string(job.state))) + ", " + std::to_string(job.created) +
            ", " + std::to_string(job.updated) + ", " + std::to_string(job.counts.total) + ", " +
            std::to_string(job.counts.queued) + ", " + std::to_string(job.counts.active) + ", " +
            std::to_string(job.counts.done) + ", " + std::to_string(job.counts.failed) + ", " +
            std::to_string(job.counts.cancelled) + ", " + std::to_string(job.bytes) + ", " +
            std::to_string(job.rate) + ", " +
            (null_eta || !job.eta ? std::string("NULL") : std::to_string(*job.eta)) + ")");
    }
};

TEST_F(PgEventLogTest, EpochIsTheDatabasesAndStable) {
    auto epoch = log.epoch();
    EXPECT_FALSE(epoch.empty());
    EXPECT_EQ(log.epoch(), epoch);
    auto reopened = db.open(clock.options());
    EXPECT_EQ(reopened->event_log()->epoch(), epoch);
    // Another database is another history.
    StoreBackend other{Backend::postgresql};
    EXPECT_NE(other.open(clock.options())->event_log()->epoch(), epoch);
}

TEST_F(PgEventLogTest, ReadAfterReturnsTheUsersEntriesInOrder) {
    UserId alice = db.insert_user("alice");
    UserId bob = db.insert_user("bob");
    log_entry(alice, 1, 1, LoggedKind::job_created, 5, kNow, pg::encode_job(job_body(5, alice, 0)));
    log_entry(bob, 1, 1, LoggedKind::job_created, 6, kNow, pg::encode_job(job_body(6, bob, 0)));
    log_entry(alice, 2, 0, LoggedKind::item, 5, kNow + 1, pg::encode_item(item_body(1, 5)));
    log_entry(alice, 3, 2, LoggedKind::progress, 5, kNow + 2,
              pg::encode_job(job_body(5, alice, 1)));
    log_entry(alice, 4, 0, LoggedKind::items_reset, 5, kNow + 3,
              pg::encode_job(job_body(5, alice, 1)));
    log_entry(alice, 5, 3, LoggedKind::job_deleted, 5, kNow + 4, "{}");

    auto all = log.read_after(alice, 0, 100);
    ASSERT_EQ(all.size(), 5u);
    for (std::size_t i = 0; i < all.size(); ++i) {
        EXPECT_EQ(all[i].user, alice);
        EXPECT_EQ(all[i].pos, i + 1);
        EXPECT_EQ(all[i].job, 5);
        EXPECT_EQ(all[i].at, kNow + static_cast<TimeMs>(i));
    }
    EXPECT_EQ(all[0].kind, LoggedKind::job_created);
    EXPECT_EQ(all[0].seq, 1u);
    ASSERT_TRUE(all[0].snapshot);
    EXPECT_EQ(all[0].snapshot->name, "job 5");
    EXPECT_DOUBLE_EQ(all[0].snapshot->rate, 2.5);
    EXPECT_EQ(all[0].snapshot->eta, 4.0);

    EXPECT_EQ(all[1].kind, LoggedKind::item);
    EXPECT_EQ(all[1].seq, 0u);
    ASSERT_EQ(all[1].items.size(), 1u);
    EXPECT_EQ(all[1].items[0].format, ImageFormat::png);
    EXPECT_EQ(all[1].items[0].bytes, 1234u);
    EXPECT_FALSE(all[1].snapshot);

    EXPECT_EQ(all[2].kind, LoggedKind::progress);
    EXPECT_EQ(all[2].seq, 2u);
    ASSERT_TRUE(all[2].snapshot);
    EXPECT_EQ(all[2].snapshot->counts.done, 1);
    EXPECT_EQ(all[3].kind, LoggedKind::items_reset);
    EXPECT_EQ(all[4].kind, LoggedKind::job_deleted);
    EXPECT_EQ(all[4].seq, 3u);

    auto middle = log.read_after(alice, 2, 2);
    ASSERT_EQ(middle.size(), 2u);
    EXPECT_EQ(middle[0].pos, 3u);
    EXPECT_EQ(middle[1].pos, 4u);
    EXPECT_TRUE(log.read_after(alice, 5, 100).empty());
    EXPECT_TRUE(log.read_after(alice, 0, 0).empty());
    EXPECT_TRUE(log.read_after(999, 0, 100).empty());

    auto bobs = log.read_after(bob, 0, 100);
    ASSERT_EQ(bobs.size(), 1u);
    EXPECT_EQ(bobs[0].job, 6);
}

TEST_F(PgEventLogTest, CorruptRowsAreSkippedNotFatal) {
    UserId alice = db.insert_user("alice");
    log_entry(alice, 1, 1, LoggedKind::job_created, 5, kNow, pg::encode_job(job_body(5, alice, 0)));
    log_entry(alice, 2, 2, LoggedKind::progress, 5, kNow, "not json at all");
    log_entry(alice, 3, 0, LoggedKind::item, 5, kNow, R"({"id":1,"s":"exploded"})");
    db.exec("INSERT INTO events(user_id, pos, seq, kind, job_id, at, body) VALUES (" +
            std::to_string(alice) + ", 4, 0, 99, 5, " + std::to_string(kNow) + ", '{}')");
    log_entry(alice, 5, 3, LoggedKind::progress, 5, kNow, pg::encode_job(job_body(5, alice, 2)));

    auto entries = log.read_after(alice, 0, 100);
    ASSERT_EQ(entries.size(), 2u);
    EXPECT_EQ(entries[0].pos, 1u);
    EXPECT_EQ(entries[1].pos, 5u);
    auto state = log.user_state(alice, 10);
    ASSERT_EQ(state.recent.size(), 2u);
    EXPECT_EQ(state.recent[0].seq, 1u);
    EXPECT_EQ(state.recent[1].seq, 3u);
}

// A claim or a batch of outcomes logs one entry per job holding all its
// items, in order; one corrupt item makes the whole entry unreadable.
TEST_F(PgEventLogTest, AnItemEntryHoldsSeveralItemsInOrder) {
    UserId alice = db.insert_user("alice");
    std::string body;
    for (ItemId id : {7, 3, 9}) pg::append_item(body, item_body(id, 5));
    log_entry(alice, 1, 0, LoggedKind::item, 5, kNow, body);
    log_entry(alice, 2, 0, LoggedKind::item, 5, kNow,
              pg::encode_item(item_body(1, 5)) + "\n" + R"({"id":2,"s":"exploded"})");

    auto entries = log.read_after(alice, 0, 100);
    ASSERT_EQ(entries.size(), 1u);
    ASSERT_EQ(entries[0].items.size(), 3u);
    EXPECT_EQ(entries[0].items[0].id, 7);
    EXPECT_EQ(entries[0].items[1].id, 3);
    EXPECT_EQ(entries[0].items[2].id, 9);
    EXPECT_EQ(entries[0].items[2].url, "http://127.0.0.1/9.png");
}

TEST_F(PgEventLogTest, UserStateIsOneConsistentSnapshot) {
    UserId alice = db.insert_user("alice");
    UserId bob = db.insert_user("bob");
    auto first = job_body(11, alice, 3);
    auto second = job_body(12, alice, 0);
    second.state = JobState::paused;
    second.rate = 0;
    second.eta.reset();
    insert_job(first);
    insert_job(second, true);
    insert_job(job_body(13, bob, 0));

    log_entry(alice, 1, 1, LoggedKind::job_created, 11, kNow,
              pg::encode_job(job_body(11, alice, 0)));
    log_entry(alice, 2, 0, LoggedKind::item, 11, kNow, pg::encode_item(item_body(1, 11)));
    log_entry(alice, 3, 2, LoggedKind::progress, 11, kNow, pg::encode_job(first));
    log_entry(alice, 4, 3, LoggedKind::job_created, 12, kNow, pg::encode_job(second));
    log_entry(alice, 5, 0, LoggedKind::item, 12, kNow, pg::encode_item(item_body(2, 12)));
    log_entry(bob, 1, 1, LoggedKind::job_created, 13, kNow, pg::encode_job(job_body(13, bob, 0)));

    auto state = log.user_state(alice, 2);
    EXPECT_EQ(state.pos, 5u);
    EXPECT_EQ(state.seq, 3u);
    ASSERT_EQ(state.jobs.size(), 2u);
    EXPECT_EQ(state.jobs[0].id, 12) << "newest first";
    EXPECT_EQ(state.jobs[0].state, JobState::paused);
    EXPECT_FALSE(state.jobs[0].eta);
    EXPECT_EQ(state.jobs[1].id, 11);
    EXPECT_EQ(state.jobs[1].user, alice);
    EXPECT_EQ(state.jobs[1].counts.done, 3);
    EXPECT_EQ(state.jobs[1].counts.total, 10);
    EXPECT_DOUBLE_EQ(state.jobs[1].rate, 2.5) << "the stored rate";
    EXPECT_EQ(state.jobs[1].eta, 4.0) << "the stored eta";
    ASSERT_EQ(state.recent.size(), 2u) << "the last 2 job-level entries";
    EXPECT_EQ(state.recent[0].seq, 2u);
    EXPECT_EQ(state.recent[0].kind, LoggedKind::progress);
    EXPECT_EQ(state.recent[1].seq, 3u);
    EXPECT_EQ(state.recent[1].pos, 4u);

    auto everything = log.user_state(alice, 100);
    ASSERT_EQ(everything.recent.size(), 3u);
    EXPECT_EQ(everything.recent.front().seq, 1u);
    EXPECT_TRUE(log.user_state(alice, 0).recent.empty());

    auto nobody = log.user_state(999, 10);
    EXPECT_EQ(nobody.pos, 0u);
    EXPECT_EQ(nobody.seq, 0u);
    EXPECT_TRUE(nobody.jobs.empty());
    EXPECT_TRUE(nobody.recent.empty());
}

TEST_F(PgEventLogTest, UserStateDoesNotSeeLaterCommits) {
    // A writer that commits between user_state's reads must not show up in
    // only some of them. Hammer it: a thread keeps adding a job and its entry
    // in one transaction; every state read must have as many jobs as seq.
    UserId alice = db.insert_user("alice");
    std::atomic<bool> stop{false};
    std::thread writer([&] {
        pg::Connection conn(db.location().uri);
        for (int i = 1; i <= 200 && !stop; ++i) {
            auto job = job_body(100 + i, alice, 0);
            conn.exec("BEGIN");
            conn.exec("INSERT INTO jobs(id, user_id, name, state, created, updated) VALUES (" +
                      std::to_string(job.id) + ", " + std::to_string(alice) +
                      ", 'j', 'queued', 0, 0)");
            conn.exec(
                "UPDATE users SET event_pos = event_pos + 1, event_seq = event_seq + 1 "
                "WHERE id = " +
                std::to_string(alice));
            conn.exec("INSERT INTO events(user_id, pos, seq, kind, job_id, at, body) VALUES (" +
                      std::to_string(alice) + ", " + std::to_string(i) + ", " + std::to_string(i) +
                      ", 0, " + std::to_string(job.id) + ", 0, " + quoted(pg::encode_job(job)) +
                      ")");
            conn.exec("COMMIT");
        }
    });
    int reads = 0;
    for (; reads < 300; ++reads) {
        auto state = log.user_state(alice, 1000);
        ASSERT_EQ(state.jobs.size(), state.seq);
        ASSERT_EQ(state.recent.size(), state.seq);
        ASSERT_EQ(state.pos, state.seq);
        if (state.seq == 200) break;
    }
    stop = true;
    writer.join();
}

TEST_F(PgEventLogTest, PruneRemovesOnlyEntriesOlderThanTheRetention) {
    UserId alice = db.insert_user("alice");
    TimeMs retention = std::chrono::milliseconds(StoreOptions{}.event_retention).count();
    auto body = pg::encode_job(job_body(5, alice, 0));
    log_entry(alice, 1, 1, LoggedKind::job_created, 5, kNow - retention - 60'000, body);
    log_entry(alice, 2, 2, LoggedKind::progress, 5, kNow - retention - 1, body);
    log_entry(alice, 3, 3, LoggedKind::progress, 5, kNow - retention, body);
    log_entry(alice, 4, 4, LoggedKind::progress, 5, kNow, body);

    EXPECT_EQ(log.prune(), 2);
    auto left = log.read_after(alice, 0, 100);
    ASSERT_EQ(left.size(), 2u);
    EXPECT_EQ(left[0].pos, 3u);
    EXPECT_EQ(left[1].pos, 4u);
    EXPECT_EQ(log.prune(), 0) << "nothing more is old yet";

    clock.now->store(kNow + 1);  // the clock is the store's, not the system's
    EXPECT_EQ(log.prune(), 1);
    EXPECT_EQ(log.read_after(alice, 0, 100).size(), 1u);
    EXPECT_EQ(log.user_state(alice, 10).pos, 4u) << "counters are never pruned";
}

TEST_F(PgEventLogTest, WaitWakesOnNotifyTimesOutAndIsInterrupted) {
    auto first = log.wait_for_entries(5s);
    EXPECT_TRUE(first.resync) << "the first wait cannot know what it missed";

    db.exec("NOTIFY litchi_events, '7'");
    auto woke = log.wait_for_entries(10s);
    EXPECT_FALSE(woke.resync);
    ASSERT_EQ(woke.users.size(), 1u);
    EXPECT_EQ(woke.users[0], 7);

    // Several, and garbage (ignored), at once.
    db.exec("SELECT pg_notify('litchi_events', x) FROM unnest(ARRAY['3', 'junk', '4']) x");
    std::vector<UserId> seen;
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (seen.size() < 2 && std::chrono::steady_clock::now() < deadline) {
        auto more = log.wait_for_entries(1s);
        seen.insert(seen.end(), more.users.begin(), more.users.end());
    }
    EXPECT_EQ(seen, (std::vector<UserId>{3, 4}));

    auto started = std::chrono::steady_clock::now();
    auto quiet = log.wait_for_entries(150ms);
    auto took = std::chrono::steady_clock::now() - started;
    EXPECT_TRUE(quiet.users.empty());
    EXPECT_FALSE(quiet.resync);
    EXPECT_GE(took, 140ms);

    // interrupt_wait from another thread ends a long wait.
    auto waiting = std::async(std::launch::async, [&] {
        auto begin = std::chrono::steady_clock::now();
        auto result = log.wait_for_entries(60s);
        return std::make_pair(result, std::chrono::steady_clock::now() - begin);
    });
    log.interrupt_wait();
    ASSERT_EQ(waiting.wait_for(20s), std::future_status::ready);
    auto [interrupted, waited] = waiting.get();
    EXPECT_TRUE(interrupted.users.empty());
    EXPECT_LT(waited, 20s);

    // And the connection still listens afterwards.
    db.exec("NOTIFY litchi_events, '9'");
    auto again = log.wait_for_entries(10s);
    ASSERT_EQ(again.users.size(), 1u);
    EXPECT_EQ(again.users[0], 9);
}

// A pause, cancel or delete of a job with items in flight wakes every node's
// waiter with the job's id (so each stops its transfers); one with nothing in
// flight does not. Notifications come in commit order on one session, so
// once the last job's has come, every earlier one has too.
TEST_F(PgEventLogTest, StoppingAJobWithItemsInFlightNamesIt) {
    ASSERT_TRUE(log.wait_for_entries(5s).resync);
    UserId alice = db.insert_user("alice");
    std::vector<JobId> busy;
    for (const char* name : {"paused", "cancelled", "deleted"}) {
        busy.push_back(
            store->jobs().create_job(testing::new_job(alice, name, testing::numbered_urls(2))).id);
        ASSERT_EQ(store->jobs().claim_next_items(2).size(), 2u);
    }
    auto idle =
        store->jobs().create_job(testing::new_job(alice, "idle", testing::numbered_urls(2)));
    EXPECT_EQ(store->jobs().pause_job(alice, idle.id).status, JobOpStatus::ok);
    EXPECT_EQ(store->jobs().pause_job(alice, busy[0]).status, JobOpStatus::ok);
    EXPECT_EQ(store->jobs().cancel_job(alice, busy[1]).status, JobOpStatus::ok);
    EXPECT_EQ(store->jobs().delete_job(alice, busy[2]).status, JobOpStatus::ok);

    std::vector<JobId> stopped;
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::find(stopped.begin(), stopped.end(), busy[2]) == stopped.end() &&
           std::chrono::steady_clock::now() < deadline) {
        auto woke = log.wait_for_entries(1s);
        stopped.insert(stopped.end(), woke.stopped_jobs.begin(), woke.stopped_jobs.end());
    }
    EXPECT_EQ(stopped, busy);
}

// The server goes away under a wait: restart (clean) and crash (down for a
// while). A private server: restarting the shared one would break every
// other test using it.
TEST(PgEventLogRestart, ReconnectsAfterTheServerRestartsAndSaysResync) {
    testing::PrivatePgServer server;
    StoreLocation location;
    location.kind = StoreLocation::Kind::postgresql;
    location.uri = server.uri();
    auto options = tool_store_options();
    auto store = open_store(location, options);
    EventLog& log = *store->event_log();
    ASSERT_TRUE(log.wait_for_entries(1s).resync);

    server.restart();
    auto after = log.wait_for_entries(10s);
    EXPECT_TRUE(after.resync);
    // Listening again: a notification gets through.
    {
        pg::Connection other(server.uri());
        other.exec("NOTIFY litchi_events, '12'");
    }
    auto woke = log.wait_for_entries(10s);
    EXPECT_FALSE(woke.resync);
    ASSERT_EQ(woke.users.size(), 1u);
    EXPECT_EQ(woke.users[0], 12);

    // Down: every wait throws StoreUnavailable (and returns at once: the
    // caller backs off), until the server is back.
    server.kill();
    EXPECT_THROW(log.wait_for_entries(10s), StoreUnavailable);
    auto started = std::chrono::steady_clock::now();
    EXPECT_THROW(log.wait_for_entries(10s), StoreUnavailable);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
    EXPECT_THROW(log.read_after(1, 0, 10), StoreUnavailable);
    server.restart();
    EXPECT_TRUE(log.wait_for_entries(10s).resync);
    EXPECT_FALSE(log.epoch().empty()) << "the pool reconnects too";
}

// The pool's idle connections die with a server restart; the first call
// after it must not fail for that (a node answered 503 to the first request
// after PostgreSQL came back): the dead ones are dropped when taken.
TEST(PgPoolRestart, TheFirstCallAfterARestartWorks) {
    testing::PrivatePgServer server;
    pg::Pool pool(server.uri(), 3);
    {
        // Three connections open and back in the pool, idle.
        auto a = pool.acquire();
        auto b = pool.acquire();
        auto c = pool.acquire();
        for (auto* h : {&a, &b, &c}) EXPECT_EQ((*h)->exec("SELECT 1").int64(0, 0), 1);
    }
    server.restart();
    for (int i = 0; i < 5; ++i) {
        auto value = pool.transaction(
            [](pg::Connection& conn) { return conn.exec("SELECT 41 + 1").int64(0, 0); });
        EXPECT_EQ(value, 42) << "call " << i;
    }
}

}  // namespace
}  // namespace litchi
