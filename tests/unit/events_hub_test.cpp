// Unit tests of the event hub's core promises, on a fake clock: hello first,
// seq +1 per user with no gaps, isolation between users, exact replay,
// snapshot for resumes it cannot serve, coalescing of progress with state
// changes at once, item events only to subscribers, revocation and expiry.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "unit/events_test_support.hpp"

namespace litchi::events::testing {
namespace {

bool is_job_level(const std::string& type) {
    return type == "progress" || type == "job";
}

// Checks a watcher's stream the way a client applies it: hello/snapshot set
// the position, every job-level message must be the next seq, side messages
// (item/subscribed/unsubscribed) carry the current seq without moving it.
void expect_gapless(const std::vector<json::object>& stream) {
    ASSERT_FALSE(stream.empty());
    ASSERT_EQ(type_of(stream.front()), "hello");
    std::uint64_t position = seq_of(stream.front());
    for (std::size_t i = 1; i < stream.size(); ++i) {
        const std::string type = type_of(stream[i]);
        const std::uint64_t seq = seq_of(stream[i]);
        if (type == "snapshot" || type == "hello") {
            EXPECT_GE(seq, position) << "message " << i;
            position = seq;
        } else if (is_job_level(type)) {
            EXPECT_EQ(seq, position + 1) << "message " << i << " (" << type << ")";
            position = seq;
        } else {
            EXPECT_LE(seq, position) << "side message " << i << " claims a future seq";
        }
    }
}

// ---- hello and seq -------------------------------------------------------------------------

TEST_F(HubTest, HelloIsFirstAndIsTheProvidersSnapshot) {
    store[1] = {make_job(10, 3, 9), make_job(11, 0, 5, "queued")};
    make_hub();
    auto watcher = watch(1);
    OutgoingBatch batch = watcher->pop();
    ASSERT_EQ(batch.messages.size(), 1u);
    EXPECT_EQ(batch.messages[0].kind, MessageKind::hello);
    json::object hello = parse(batch.messages[0]);
    EXPECT_EQ(hello.at("protocol"), 1);
    EXPECT_EQ(seq_of(hello), seq_base);
    EXPECT_FALSE(hello.at("epoch").as_string().empty());
    const json::array& jobs = hello.at("jobs").as_array();
    ASSERT_EQ(jobs.size(), 2u);
    EXPECT_EQ(jobs[0].as_object(), to_json(store[1][0]));  // provider order kept
    EXPECT_EQ(jobs[1].as_object(), to_json(store[1][1]));
    EXPECT_EQ(watcher->pop().messages.size(), 0u);
    EXPECT_EQ(provider_calls, 1);
    // A second watcher of the same user reuses the hub's view: no store read.
    auto second = watch(1);
    EXPECT_EQ(seq_of(drain(*second).at(0)), seq_base);
    EXPECT_EQ(provider_calls, 1);
}

TEST_F(HubTest, EverySeqRisesByOneAndAllWatchersSeeTheSameStream) {
    store[1] = {make_job(10, 0, 100)};
    make_hub();
    auto first = watch(1);
    auto second = watch(1);
    std::vector<json::object> a = drain(*first);
    std::vector<json::object> b = drain(*second);
    hub->publish_progress(for_user(1, make_job(10, 1, 100)));
    hub->publish_job_created(for_user(1, make_job(11, 0, 4, "queued")));
    clock.advance(150ms);
    hub->publish_progress(for_user(1, make_job(10, 2, 100)));
    hub->publish_progress(for_user(1, make_job(10, 2, 100, "paused")));  // state change: at once
    hub->publish_job_deleted(1, 11);
    clock.advance(150ms);
    hub->publish_progress(for_user(1, make_job(10, 3, 100, "paused")));

    for (auto& message : drain(*first)) a.push_back(std::move(message));
    for (auto& message : drain(*second)) b.push_back(std::move(message));
    expect_gapless(a);
    ASSERT_EQ(a.size(), 7u);
    EXPECT_EQ(a, b);
    EXPECT_EQ(seq_of(a.back()), seq_base + 6);
    EXPECT_EQ(type_of(a[2]), "job");
    EXPECT_EQ(a[2].at("event"), "created");
    EXPECT_EQ(a[5].at("event"), "deleted");
    EXPECT_EQ(a[5].at("job").at("id"), 11);
    EXPECT_EQ(hub->stats().events, 6u);
}

TEST_F(HubTest, ALateWatchersHelloEqualsEverythingBeforeIt) {
    store[1] = {make_job(10, 0, 100)};
    make_hub();
    auto early = watch(1);
    hub->publish_job_created(for_user(1, make_job(12, 0, 1, "queued")));
    hub->publish_progress(for_user(1, make_job(10, 5, 100)));
    hub->publish_job_deleted(1, 12);
    auto late = watch(1);
    json::object hello = drain(*late).at(0);
    EXPECT_EQ(seq_of(hello), seq_base + 3);
    const json::array& jobs = hello.at("jobs").as_array();
    ASSERT_EQ(jobs.size(), 1u);
    EXPECT_EQ(done_of(jobs[0].as_object()), 5);
}

TEST_F(HubTest, ProgressForAJobClientsNeverSawIsAnnouncedAsCreated) {
    make_hub();
    auto watcher = watch(1);
    drain(*watcher);
    hub->publish_progress(for_user(1, make_job(30, 1, 2)));
    std::vector<json::object> stream = drain(*watcher);
    ASSERT_EQ(stream.size(), 1u);
    EXPECT_EQ(type_of(stream[0]), "job");
    EXPECT_EQ(stream[0].at("event"), "created");
    // And a "created" for a job the view already has is only an update.
    hub->publish_job_created(for_user(1, make_job(30, 1, 2)));
    EXPECT_TRUE(drain(*watcher).empty());
}

TEST_F(HubTest, IdenticalUpdatesAreNotResent) {
    store[1] = {make_job(10, 4, 9)};
    make_hub();
    auto watcher = watch(1);
    drain(*watcher);
    hub->publish_progress(for_user(1, make_job(10, 4, 9)));
    EXPECT_TRUE(drain(*watcher).empty());
    EXPECT_EQ(hub->stats().events, 0u);
}

// ---- isolation -----------------------------------------------------------------------------

TEST_F(HubTest, UsersNeverSeeEachOthersEvents) {
    store[1] = {make_job(10, 0, 10)};
    store[2] = {make_job(20, 0, 10)};
    make_hub();
    auto alice = watch(1);
    auto bob = watch(2);
    json::object alice_hello = drain(*alice).at(0);
    json::object bob_hello = drain(*bob).at(0);
    EXPECT_EQ(alice_hello.at("jobs").as_array().size(), 1u);
    EXPECT_EQ(bob_hello.at("jobs").as_array()[0].at("id"), 20);
    EXPECT_NE(alice_hello.at("epoch"), bob_hello.at("epoch"));

    for (int done = 1; done <= 3; ++done) {
        hub->publish_progress(
            for_user(1, make_job(10, done, 10, done == 3 ? "paused" : "running")));
        clock.advance(200ms);
    }
    hub->publish_job_created(for_user(1, make_job(11, 0, 1)));
    EXPECT_TRUE(drain(*bob).empty());
    EXPECT_EQ(drain(*alice).size(), 4u);

    // Bob's counter is his own: his first event is his base + 1.
    hub->publish_progress(for_user(2, make_job(20, 1, 10)));
    std::vector<json::object> bobs = drain(*bob);
    ASSERT_EQ(bobs.size(), 1u);
    EXPECT_EQ(seq_of(bobs[0]), seq_of(bob_hello) + 1);
    // Alice's job ids mean nothing to Bob's watcher.
    EXPECT_EQ(bob->subscribe_items(json::value(10)), ItemSubscribeResult::not_found);
    hub->publish_item(1, 10, make_item(1, "done"));
    EXPECT_TRUE(drain(*bob).empty());
}

TEST_F(HubTest, EventsForAUserNobodyWatchesAreDroppedAndTheSnapshotCoversThem) {
    make_hub();
    hub->publish_progress(for_user(5, make_job(50, 1, 2)));  // nobody watches user 5: no state kept
    EXPECT_EQ(hub->stats().users, 0u);
    store[5] = {make_job(50, 2, 2, "done")};
    auto watcher = watch(5);
    std::vector<json::object> stream = drain(*watcher);
    ASSERT_EQ(stream.size(), 1u);
    EXPECT_EQ(seq_of(stream[0]), seq_base);
    EXPECT_EQ(done_of(stream[0].at("jobs").as_array()[0].as_object()), 2);
}

// ---- resume --------------------------------------------------------------------------------

TEST_F(HubTest, ResumeReplaysEveryMissedEventExactlyOnce) {
    store[1] = {make_job(10, 0, 100)};
    make_hub();
    auto before = watch(1);
    for (int done = 1; done <= 3; ++done) {
        hub->publish_progress(for_user(1, make_job(10, done, 100)));
        clock.advance(100ms);
    }
    std::vector<json::object> seen = drain(*before);
    const std::uint64_t last_applied = seq_of(seen.back());
    const std::string epoch(seen.front().at("epoch").as_string());
    before.reset();  // the connection drops

    for (int done = 4; done <= 10; ++done) {
        hub->publish_progress(for_user(1, make_job(10, done, 100)));
        clock.advance(100ms);
    }
    auto after = watch(1);
    EXPECT_EQ(after->resume({last_applied, epoch}), ResumeOutcome::replay);
    std::vector<json::object> stream = drain(*after);
    ASSERT_EQ(type_of(stream.at(0)), "hello");  // hello is always first on a connection
    std::vector<std::uint64_t> replayed;
    for (std::size_t i = 1; i < stream.size(); ++i) replayed.push_back(seq_of(stream[i]));
    std::vector<std::uint64_t> expected;
    for (std::uint64_t seq = last_applied + 1; seq <= seq_base + 10; ++seq) expected.push_back(seq);
    EXPECT_EQ(replayed, expected);
    EXPECT_EQ(done_of(stream.back().at("job").as_object()), 10);

    // Live events continue right after the replay.
    hub->publish_progress(for_user(1, make_job(10, 11, 100)));
    std::vector<json::object> live = drain(*after);
    ASSERT_EQ(live.size(), 1u);
    EXPECT_EQ(seq_of(live[0]), seq_base + 11);
}

TEST_F(HubTest, ResumeOnTheSameConnectionRewindsToTheRequestedSeq) {
    store[1] = {make_job(10, 0, 100)};
    make_hub();
    auto watcher = watch(1);
    drain(*watcher);
    for (int done = 1; done <= 5; ++done) {
        hub->publish_progress(for_user(1, make_job(10, done, 100)));
        clock.advance(100ms);
    }
    drain(*watcher);
    EXPECT_EQ(watcher->resume({seq_base + 2, std::nullopt}), ResumeOutcome::replay);
    std::vector<json::object> replay = drain(*watcher);
    ASSERT_EQ(replay.size(), 3u);
    EXPECT_EQ(seq_of(replay[0]), seq_base + 3);
    EXPECT_EQ(seq_of(replay[2]), seq_base + 5);
    // Resuming exactly where we are sends nothing.
    EXPECT_EQ(watcher->resume({seq_base + 5, std::nullopt}), ResumeOutcome::replay);
    EXPECT_TRUE(drain(*watcher).empty());
}

TEST_F(HubTest, ResumeFromBeforeTheRingGetsOneSnapshot) {
    store[1] = {make_job(10, 0, 100)};
    EventLimits limits;
    limits.replay_capacity = 8;
    make_hub(limits);
    auto watcher = watch(1);
    drain(*watcher);
    for (int done = 1; done <= 20; ++done) {
        hub->publish_progress(for_user(1, make_job(10, done, 100)));
        clock.advance(100ms);
        drain(*watcher);
    }
    // The ring holds seq_base + 13 .. + 20, so + 12 is the oldest point to resume from.
    EXPECT_EQ(watcher->resume({seq_base + 12, std::nullopt}), ResumeOutcome::replay);
    EXPECT_EQ(drain(*watcher).size(), 8u);
    EXPECT_EQ(watcher->resume({seq_base + 11, std::nullopt}), ResumeOutcome::snapshot);
    std::vector<json::object> stream = drain(*watcher);
    ASSERT_EQ(stream.size(), 1u);
    EXPECT_EQ(type_of(stream[0]), "snapshot");
    EXPECT_EQ(seq_of(stream[0]), seq_base + 20);
    EXPECT_EQ(done_of(stream[0].at("jobs").as_array()[0].as_object()), 20);
}

TEST_F(HubTest, ResumeFromTheFutureOrAnotherEpochGetsASnapshot) {
    store[1] = {make_job(10, 0, 100)};
    make_hub();
    auto watcher = watch(1);
    const std::string epoch(drain(*watcher).at(0).at("epoch").as_string());
    hub->publish_progress(for_user(1, make_job(10, 1, 100)));
    drain(*watcher);
    // A seq we never issued (e.g. from before a restart whose clock ran ahead).
    EXPECT_EQ(watcher->resume({seq_base + 99, std::nullopt}), ResumeOutcome::snapshot);
    EXPECT_EQ(type_of(drain(*watcher).at(0)), "snapshot");
    // A seq that exists here, but of another process: never continued.
    EXPECT_EQ(watcher->resume({seq_base, "0000000000000000-1"}), ResumeOutcome::snapshot);
    EXPECT_EQ(type_of(drain(*watcher).at(0)), "snapshot");
    EXPECT_EQ(watcher->resume({seq_base, epoch}), ResumeOutcome::replay);
    EXPECT_EQ(drain(*watcher).size(), 1u);
}

TEST_F(HubTest, ASubscribeWithAResumePointContinuesWithoutHello) {
    store[1] = {make_job(10, 0, 100)};
    make_hub();
    auto first = watch(1);
    drain(*first);
    for (int done = 1; done <= 4; ++done) {
        hub->publish_progress(for_user(1, make_job(10, done, 100)));
        clock.advance(100ms);
    }
    SubscribeOptions options;
    options.resume_from = ResumePoint{seq_base + 2, std::nullopt};  // SSE Last-Event-ID
    auto sse = hub->subscribe(1, options);
    ASSERT_NE(sse, nullptr);
    EXPECT_EQ(sse->initial_outcome(), ResumeOutcome::replay);
    std::vector<json::object> stream = drain(*sse);
    ASSERT_EQ(stream.size(), 2u);
    EXPECT_EQ(seq_of(stream[0]), seq_base + 3);
    EXPECT_EQ(seq_of(stream[1]), seq_base + 4);

    options.resume_from = ResumePoint{seq_base - 5, std::nullopt};  // from an older process
    auto fresh = hub->subscribe(1, options);
    EXPECT_EQ(fresh->initial_outcome(), ResumeOutcome::snapshot);
    EXPECT_EQ(type_of(drain(*fresh).at(0)), "hello");
}

// ---- coalescing ----------------------------------------------------------------------------

TEST_F(HubTest, FiveThousandCompletionsASecondCostAtMostTenMessagesPerJob) {
    store[1] = {make_job(10, 0, 5000), make_job(11, 0, 5000)};
    make_hub();
    auto watcher = watch(1);
    drain(*watcher);
    std::vector<json::object> stream;
    std::vector<SteadyTime> sent_at_10;
    // Draining right after each publish and tick stamps every message with
    // the moment the hub sent it.
    auto collect = [&] {
        for (json::object& message : drain(*watcher)) {
            if (message.at("job").at("id") == 10) sent_at_10.push_back(clock.now);
            stream.push_back(std::move(message));
        }
    };
    // 5,000 completions per job in one second: one every 200 µs, a tick every 5 ms.
    for (int done = 1; done <= 5000; ++done) {
        hub->publish_progress(for_user(1, make_job(10, done, 5000)));
        hub->publish_progress(for_user(1, make_job(11, done, 5000)));
        collect();
        clock.advance(200us);
        if (done % 25 == 0) {
            hub->tick();
            collect();
        }
    }
    for (int round = 0; round < 30; ++round) {  // let the trailing update out
        clock.advance(5ms);
        hub->tick();
        collect();
    }

    std::map<std::int64_t, std::vector<std::int64_t>> done_by_job;
    for (const json::object& message : stream) {
        ASSERT_EQ(type_of(message), "progress");
        const json::object& job = message.at("job").as_object();
        done_by_job[job.at("id").to_number<std::int64_t>()].push_back(done_of(job));
    }
    for (auto& [job, values] : done_by_job) {
        EXPECT_LE(values.size(), 11u) << "job " << job;  // 0, 100, ..., 1000 ms
        EXPECT_GE(values.size(), 9u) << "job " << job;   // and coalescing is not starving it
        EXPECT_TRUE(std::is_sorted(values.begin(), values.end())) << "a count went backwards";
        EXPECT_EQ(values.back(), 5000) << "the last value must always be delivered";
    }
    // No two progress messages of one job closer than the interval.
    for (std::size_t i = 1; i < sent_at_10.size(); ++i) {
        EXPECT_GE(sent_at_10[i] - sent_at_10[i - 1], 100ms);
    }
    EXPECT_GT(hub->stats().coalesced_updates, 9000u);
}

TEST_F(HubTest, TheNewestValueWaitsForTheIntervalAndIsThenSent) {
    store[1] = {make_job(10, 0, 9)};
    make_hub();
    auto watcher = watch(1);
    drain(*watcher);
    hub->publish_progress(for_user(1, make_job(10, 1, 9)));  // leading edge: at once
    EXPECT_EQ(drain(*watcher).size(), 1u);
    const SteadyTime first_sent = clock.now;
    clock.advance(10ms);
    hub->publish_progress(for_user(1, make_job(10, 2, 9)));
    hub->publish_progress(for_user(1, make_job(10, 3, 9)));
    ASSERT_EQ(deadlines.size(), 1u);  // one deadline per scheduled update, not per publish
    EXPECT_EQ(deadlines[0], first_sent + 100ms);
    EXPECT_EQ(hub->next_due(), first_sent + 100ms);
    hub->tick();
    EXPECT_TRUE(drain(*watcher).empty());
    clock.advance(89ms);
    hub->tick();
    EXPECT_TRUE(drain(*watcher).empty());
    clock.advance(1ms);
    hub->tick();
    std::vector<json::object> stream = drain(*watcher);
    ASSERT_EQ(stream.size(), 1u);
    EXPECT_EQ(done_of(stream[0].at("job").as_object()), 3);
    EXPECT_FALSE(hub->next_due());
}

TEST_F(HubTest, ANewWatcherFlushesWaitingUpdatesSoItsHelloIsExact) {
    store[1] = {make_job(10, 0, 9)};
    make_hub();
    auto first = watch(1);
    drain(*first);
    hub->publish_progress(for_user(1, make_job(10, 1, 9)));  // leading edge: at once
    clock.advance(10ms);
    hub->publish_progress(for_user(1, make_job(10, 2, 9)));  // waits for the interval
    EXPECT_EQ(drain(*first).size(), 1u);
    auto second = watch(1);  // connecting sends the waiting update to everyone first
    std::vector<json::object> hello = drain(*second);
    ASSERT_EQ(hello.size(), 1u);
    EXPECT_EQ(done_of(hello[0].at("jobs").as_array()[0].as_object()), 2);
    std::vector<json::object> stream = drain(*first);
    ASSERT_EQ(stream.size(), 1u);
    EXPECT_EQ(done_of(stream[0].at("job").as_object()), 2);
    EXPECT_EQ(seq_of(stream[0]), seq_of(hello[0]));
    EXPECT_FALSE(hub->next_due());
}

TEST_F(HubTest, AChangeOfStateIsSentAtOnceAndSupersedesTheWaitingUpdate) {
    store[1] = {make_job(10, 0, 9)};
    make_hub();
    auto watcher = watch(1);
    drain(*watcher);
    hub->publish_progress(for_user(1, make_job(10, 1, 9)));
    clock.advance(1ms);
    hub->publish_progress(for_user(1, make_job(10, 8, 9)));          // waits
    hub->publish_progress(for_user(1, make_job(10, 9, 9, "done")));  // at once, no tick needed
    std::vector<json::object> stream = drain(*watcher);
    ASSERT_EQ(stream.size(), 2u);
    EXPECT_EQ(stream[1].at("job").at("state"), "done");
    EXPECT_EQ(done_of(stream[1].at("job").as_object()), 9);
    // The superseded update never shows up later.
    clock.advance(1s);
    hub->tick();
    EXPECT_TRUE(drain(*watcher).empty());
}

TEST_F(HubTest, AWaitingUpdateThatReturnsToTheSentValueIsDropped) {
    store[1] = {make_job(10, 0, 9)};
    make_hub();
    auto watcher = watch(1);
    drain(*watcher);
    hub->publish_progress(for_user(1, make_job(10, 1, 9)));
    hub->publish_progress(for_user(1, make_job(10, 2, 9)));  // waits
    hub->publish_progress(for_user(1, make_job(10, 1, 9)));  // back to what clients have
    clock.advance(1s);
    hub->tick();
    EXPECT_EQ(drain(*watcher).size(), 1u);
}

TEST_F(HubTest, DeletingAJobDropsItsWaitingUpdate) {
    store[1] = {make_job(10, 0, 9)};
    make_hub();
    auto watcher = watch(1);
    drain(*watcher);
    hub->publish_progress(for_user(1, make_job(10, 1, 9)));
    hub->publish_progress(for_user(1, make_job(10, 2, 9)));  // waits
    hub->publish_job_deleted(1, 10);                         // string spelling of the same id
    clock.advance(1s);
    hub->tick();
    std::vector<json::object> stream = drain(*watcher);
    ASSERT_EQ(stream.size(), 2u);
    EXPECT_EQ(stream[1].at("event"), "deleted");
    EXPECT_EQ(stream[1].at("job").at("id"), 10);
}

// ---- items ---------------------------------------------------------------------------------

TEST_F(HubTest, ItemEventsGoOnlyToSubscribersAndDoNotAdvanceSeq) {
    store[1] = {make_job(10, 0, 9), make_job(11, 0, 9)};
    make_hub();
    auto follower = watch(1);
    auto other = watch(1);
    drain(*follower);
    drain(*other);
    EXPECT_EQ(follower->subscribe_items(json::value("10")), ItemSubscribeResult::subscribed);
    EXPECT_EQ(follower->subscribe_items(json::value(99)), ItemSubscribeResult::not_found);
    hub->publish_item(1, 10, make_item(1, "active"));
    hub->publish_progress(for_user(1, make_job(10, 1, 9)));
    hub->publish_item(1, 10, make_item(1, "done"));
    hub->publish_item(1, 11, make_item(7, "done"));  // a job it does not follow

    std::vector<json::object> stream = drain(*follower);
    ASSERT_EQ(stream.size(), 4u);
    EXPECT_EQ(type_of(stream[0]), "subscribed");
    EXPECT_EQ(stream[0].at("job"), 10);  // the job's own spelling of its id
    EXPECT_EQ(type_of(stream[1]), "item");
    EXPECT_EQ(stream[1].at("iseq"), 1);
    EXPECT_EQ(seq_of(stream[1]), seq_base);
    EXPECT_EQ(type_of(stream[2]), "progress");
    EXPECT_EQ(seq_of(stream[2]), seq_base + 1);  // items did not consume a seq
    EXPECT_EQ(stream[3].at("iseq"), 2);
    EXPECT_EQ(stream[3].at("item").at("state"), "done");
    EXPECT_EQ(seq_of(stream[3]), seq_base + 1);

    std::vector<json::object> others = drain(*other);
    ASSERT_EQ(others.size(), 1u);
    EXPECT_EQ(type_of(others[0]), "progress");

    EXPECT_TRUE(follower->unsubscribe_items(json::value(10)));
    hub->publish_item(1, 10, make_item(2, "done"));
    std::vector<json::object> after = drain(*follower);
    ASSERT_EQ(after.size(), 1u);
    EXPECT_EQ(type_of(after[0]), "unsubscribed");
    EXPECT_FALSE(after[0].contains("reason"));
}

TEST_F(HubTest, DeletingAFollowedJobEndsTheItemSubscription) {
    store[1] = {make_job(10, 0, 9)};
    make_hub();
    auto follower = watch(1);
    drain(*follower);
    follower->subscribe_items(json::value(10));
    hub->publish_job_deleted(1, 10);
    std::vector<json::object> stream = drain(*follower);
    ASSERT_EQ(stream.size(), 3u);
    EXPECT_EQ(type_of(stream[1]), "job");
    EXPECT_EQ(type_of(stream[2]), "unsubscribed");
    EXPECT_EQ(stream[2].at("reason"), "deleted");
    EXPECT_EQ(seq_of(stream[2]), seq_of(stream[1]));
}

TEST_F(HubTest, ABulkChangeTellsFollowersToReReadAndDropsTheirStaleItemEvents) {
    store[1] = {make_job(10, 0, 9), make_job(11, 0, 9)};
    make_hub();
    auto follower = watch(1);
    auto bystander = watch(1);
    drain(*follower);
    drain(*bystander);
    follower->subscribe_items(json::value(10));
    follower->subscribe_items(json::value(11));
    hub->publish_item(1, 10, make_item(1, "active"));
    hub->publish_item(1, 11, make_item(5, "active"));
    hub->publish_item(1, 10, make_item(2, "active"));
    hub->publish_items_reset(1, 10);  // e.g. cancel: every queued item changed
    hub->publish_items_reset(1, 12);  // unknown job: nothing, no error

    std::vector<json::object> stream = drain(*follower);
    std::vector<std::string> types;
    for (const json::object& message : stream) types.push_back(type_of(message));
    EXPECT_EQ(types, (std::vector<std::string>{"subscribed", "subscribed", "item", "items_reset"}));
    EXPECT_EQ(stream[2].at("job"), 11);  // the other job's item event survives
    EXPECT_EQ(stream[3].at("job"), 10);
    EXPECT_EQ(seq_of(stream[3]), seq_base);
    EXPECT_TRUE(drain(*bystander).empty());
}

TEST_F(HubTest, ItemSubscriptionsPerWatcherAreLimited) {
    store[1] = {make_job(1, 0, 1), make_job(2, 0, 1), make_job(3, 0, 1)};
    EventLimits limits;
    limits.max_item_subscriptions = 2;
    make_hub(limits);
    auto watcher = watch(1);
    EXPECT_EQ(watcher->subscribe_items(json::value(1)), ItemSubscribeResult::subscribed);
    EXPECT_EQ(watcher->subscribe_items(json::value(2)), ItemSubscribeResult::subscribed);
    EXPECT_EQ(watcher->subscribe_items(json::value(3)), ItemSubscribeResult::too_many);
    EXPECT_EQ(watcher->subscribe_items(json::value(2)),
              ItemSubscribeResult::subscribed);  // again: fine
    EXPECT_EQ(watcher->subscribe_items(json::value(json::array{})), ItemSubscribeResult::not_found);
}

// ---- notify, revocation, lifecycle ---------------------------------------------------------

TEST_F(HubTest, NotifyIsEdgeTriggeredAndRunsOutsideTheHubsLocks) {
    store[1] = {make_job(10, 0, 100)};
    make_hub();
    auto holder = std::make_shared<std::shared_ptr<Subscription>>();
    int notifies = 0;
    std::vector<json::object> popped_in_callback;
    SubscribeOptions options;
    options.notify = [&notifies, &popped_in_callback, weak = std::weak_ptr(holder)] {
        ++notifies;
        // Popping from inside the callback would deadlock if it ran under a lock.
        if (auto subscription = weak.lock(); subscription && *subscription && notifies == 3) {
            for (auto& message : drain(**subscription)) popped_in_callback.push_back(message);
        }
    };
    *holder = hub->subscribe(1, options);
    Subscription& watcher = **holder;
    EXPECT_EQ(notifies, 0);  // the subscriber pops its hello itself
    drain(watcher);
    hub->publish_progress(for_user(1, make_job(10, 1, 100)));
    hub->publish_progress(for_user(1, make_job(10, 2, 100, "paused")));
    hub->publish_progress(for_user(1, make_job(10, 3, 100, "running")));
    EXPECT_EQ(notifies, 1);  // one wake-up until the next pop
    EXPECT_EQ(drain(watcher).size(), 3u);
    hub->publish_progress(for_user(1, make_job(10, 4, 100, "paused")));
    EXPECT_EQ(notifies, 2);
    drain(watcher);
    hub->publish_progress(for_user(1, make_job(10, 5, 100, "running")));
    EXPECT_EQ(notifies, 3);
    EXPECT_EQ(popped_in_callback.size(), 1u);
}

TEST_F(HubTest, RevokingACredentialClosesOnlyItsWatchersWith1008) {
    store[1] = {make_job(10, 0, 100)};
    store[2] = {make_job(20, 0, 100)};
    make_hub();
    auto by_token_a = watch(1, "token-a");
    auto by_token_b = watch(1, "token-b");
    auto other_user = watch(2, "token-c");
    hub->close_credential("token-a", {close_code::policy_violation, "token revoked"});
    hub->publish_progress(for_user(1, make_job(10, 1, 100)));
    OutgoingBatch closed = by_token_a->pop();
    EXPECT_TRUE(closed.messages.empty());  // not even the pending hello
    ASSERT_TRUE(closed.close);
    EXPECT_EQ(closed.close->code, 1008);
    EXPECT_EQ(by_token_a->subscribe_items(json::value(10)), ItemSubscribeResult::closed);
    EXPECT_EQ(by_token_a->resume({seq_base, std::nullopt}), ResumeOutcome::closed);
    EXPECT_FALSE(by_token_b->pop().close);
    EXPECT_FALSE(other_user->pop().close);
    hub->close_credential("", {close_code::policy_violation, "x"});  // matches nobody
    EXPECT_FALSE(by_token_b->pop().close);

    hub->close_user(1, {close_code::policy_violation, "user removed"});
    EXPECT_EQ(by_token_b->pop().close->reason, "user removed");
    EXPECT_FALSE(other_user->pop().close);
}

TEST_F(HubTest, DestroyingTheHubClosesEveryWatcherWith1001) {
    make_hub();
    auto watcher = watch(1);
    hub.reset();
    OutgoingBatch batch = watcher->pop();
    ASSERT_TRUE(batch.close);
    EXPECT_EQ(batch.close->code, 1001);
    watcher->cancel();  // still safe after the hub is gone
}

TEST_F(HubTest, AFailingSnapshotProviderRefusesTheSubscribeAndIsRetried) {
    make_hub();
    provider_fails = true;
    SubscribeOptions options;
    EXPECT_EQ(hub->subscribe(1, options), nullptr);
    EXPECT_EQ(hub->stats().users, 0u);
    provider_fails = false;
    store[1] = {make_job(10, 0, 1)};
    auto watcher = hub->subscribe(1, options);
    ASSERT_NE(watcher, nullptr);
    EXPECT_EQ(drain(*watcher).at(0).at("jobs").as_array().size(), 1u);
    EXPECT_EQ(provider_calls, 2);
}

TEST_F(HubTest, ChangesTheSnapshotAlreadyHoldsAreSkipped) {
    // The store delivers changes after releasing its lock, so a snapshot taken
    // as of commit 7 may be followed by the delivery of commits 6 and 7: they
    // must not take clients back, nor be counted twice.
    make_hub();
    store[1] = {make_job(10, 7, 100)};
    as_of[1] = 7;
    auto watcher = watch(1);
    auto hello = drain(*watcher);
    ASSERT_EQ(hello.size(), 1u);
    hub->publish_progress(for_user(1, make_job(10, 6, 100)), 6);
    hub->publish_progress(for_user(1, make_job(10, 7, 100)), 7);
    hub->publish_job_created(for_user(1, make_job(12, 0, 1, "queued")), 7);
    hub->publish_job_deleted(1, 10, 5);
    EXPECT_TRUE(drain(*watcher).empty()) << "nothing at or below as_of goes out";
    hub->publish_progress(for_user(1, make_job(10, 8, 100)), 8);
    hub->publish_progress(for_user(1, make_job(10, 9, 100)), 0);  // 0: unnumbered, always applied
    auto after = drain(*watcher);
    ASSERT_EQ(after.size(), 1u) << "8 goes at once, 9 waits for the interval";
    EXPECT_EQ(done_of(after[0].at("job").as_object()), 8);
    EXPECT_EQ(seq_of(after[0]), seq_of(hello[0]) + 1);
}

TEST_F(HubTest, UnusableLimitsOrNoProviderStopTheStart) {
    EventLimits limits;
    limits.replay_capacity = 0;
    EventHubHooks hooks;
    hooks.snapshot_provider = [](UserId, const SnapshotSink& sink) {
        sink({}, 0);
        return true;
    };
    EXPECT_THROW({ EventHub no_writers(EventLimits{}, hooks); }, std::invalid_argument);
    hooks.write_job = [](const JobSnapshot&) { return std::string("{}"); };
    hooks.write_item = [](const ItemRecord&) { return std::string("{}"); };
    EXPECT_NO_THROW({ EventHub fine(EventLimits{}, hooks); });
    EXPECT_THROW({ EventHub refused(limits, hooks); }, std::invalid_argument);
    EXPECT_THROW({ EventHub refused(EventLimits{}, EventHubHooks{}); }, std::invalid_argument);
}

TEST_F(HubTest, AnIdleUserExpiresAndComesBackWithANewEpochAndHigherSeqs) {
    store[1] = {make_job(10, 0, 100)};
    EventLimits limits;
    limits.idle_user_ttl = std::chrono::seconds(60);
    make_hub(limits);
    auto watcher = watch(1);
    const json::object old_hello = drain(*watcher).at(0);
    for (int done = 1; done <= 5; ++done) {
        hub->publish_progress(
            for_user(1, make_job(10, done, 100, done % 2 ? "running" : "paused")));
    }
    const std::uint64_t old_last = seq_of(drain(*watcher).back());
    watcher.reset();
    clock.advance(30s);
    hub->tick();
    EXPECT_EQ(hub->stats().users, 1u);  // the replay buffer outlives the last watcher for a while
    clock.advance(31s);
    hub->tick();
    EXPECT_EQ(hub->stats().users, 0u);

    // The wall clock did not move (fixed in the fixture), yet the new seqs
    // start above the old ones and the epoch differs: an old resume point can
    // never be mistaken for a current one.
    store[1] = {make_job(10, 5, 100, "running")};
    auto back = watch(1);
    const json::object new_hello = drain(*back).at(0);
    EXPECT_NE(new_hello.at("epoch"), old_hello.at("epoch"));
    EXPECT_GT(seq_of(new_hello), old_last);
    EXPECT_EQ(back->resume({old_last, std::string(old_hello.at("epoch").as_string())}),
              ResumeOutcome::snapshot);
}

TEST_F(HubTest, AHelloNotYetPoppedIsBuiltAtPopTimeAndCoversEverythingBefore) {
    store[1] = {make_job(10, 0, 100)};
    make_hub();
    auto watcher = watch(1);
    for (int done = 1; done <= 5; ++done) {
        hub->publish_progress(
            for_user(1, make_job(10, done, 100, done % 2 ? "paused" : "running")));
    }
    // Nothing was sent yet, so one hello at the current seq replaces all five events.
    std::vector<json::object> stream = drain(*watcher);
    ASSERT_EQ(stream.size(), 1u);
    EXPECT_EQ(seq_of(stream[0]), seq_base + 5);
    EXPECT_EQ(done_of(stream[0].at("jobs").as_array()[0].as_object()), 5);
}

TEST_F(HubTest, PopStopsAtItsLimitAndSaysThereIsMore) {
    store[1] = {make_job(10, 0, 100)};
    make_hub();
    auto watcher = watch(1);
    OutgoingBatch hello = watcher->pop(0);  // a limit below one still delivers one message
    ASSERT_EQ(hello.messages.size(), 1u);
    EXPECT_EQ(hello.messages[0].kind, MessageKind::hello);
    EXPECT_FALSE(hello.more);
    for (int done = 1; done <= 5; ++done) {
        hub->publish_progress(
            for_user(1, make_job(10, done, 100, done % 2 ? "paused" : "running")));
    }
    OutgoingBatch first = watcher->pop(2);
    ASSERT_EQ(first.messages.size(), 2u);
    EXPECT_EQ(first.messages[0].seq, seq_base + 1);
    EXPECT_TRUE(first.more);
    OutgoingBatch rest = watcher->pop(100);
    ASSERT_EQ(rest.messages.size(), 3u);
    EXPECT_FALSE(rest.more);
    EXPECT_EQ(rest.messages.front().seq, seq_base + 3);
    EXPECT_EQ(rest.messages.back().seq, seq_base + 5);
}

}  // namespace
}  // namespace litchi::events::testing
