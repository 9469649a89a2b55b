// Unit tests of the hub's answer to watchers that read slowly or not at all:
// their memory stays within the configured bounds, they are resynced by one
// snapshot when they fall off the replay ring, and closed with 1013 when they
// do not even take that; watchers that keep up are never affected.
#include <gtest/gtest.h>

#include "unit/events_test_support.hpp"

namespace litchi::events::testing {
namespace {

class SlowConsumerTest : public HubTest {
  protected:
    void SetUp() override {
        store[1] = {make_job(10, 0, 100000), make_job(11, 0, 100000)};
        EventLimits limits;
        limits.replay_capacity = 8;
        limits.side_queue_capacity = 4;
        make_hub(limits);
    }

    // One job-level event, sent at once (each call changes the job's state).
    // A watcher in `steady_` reads everything after every event.
    void publish_one_event() {
        ++done_;
        hub->publish_progress(
            for_user(1, make_job(10, done_, 100000, done_ % 2 ? "paused" : "running")));
        hub->publish_item(1, 10, make_item(done_, "done"));
        if (steady_) {
            for (auto& message : drain(*steady_)) steady_stream_.push_back(std::move(message));
        }
    }

    std::int64_t done_ = 0;
    std::shared_ptr<Subscription> steady_;
    std::vector<json::object> steady_stream_;
};

TEST_F(SlowConsumerTest, BacklogFallsBackToASnapshotThenToA1013Close) {
    auto slow = watch(1);
    steady_ = watch(1);
    steady_stream_ = drain(*steady_);  // its hello, at seq_base
    drain(*slow);
    ASSERT_EQ(slow->subscribe_items(json::value(10)), ItemSubscribeResult::subscribed);

    for (int i = 0; i < 8; ++i) {
        publish_one_event();
        EXPECT_LE(slow->backlog(), 8u);
        EXPECT_LE(slow->side_queue_size(), 4u);
    }
    EXPECT_EQ(slow->backlog(), 8u);  // exactly the ring: still replayable
    EXPECT_EQ(hub->stats().resyncs, 0u);
    EXPECT_EQ(hub->stats().item_events_dropped, 5u);  // ack kept, the 3 newest items kept

    publish_one_event();  // the ring drops the slow watcher's next event
    EXPECT_EQ(hub->stats().resyncs, 1u);
    EXPECT_EQ(slow->backlog(), 0u);
    EXPECT_LE(slow->side_queue_size(), 4u);

    // The snapshot comes first; the item events queued before it were dropped
    // with the backlog (the ack was not), so the next item shows an iseq gap.
    std::vector<json::object> after_resync = drain(*slow);
    ASSERT_EQ(after_resync.size(), 3u);
    EXPECT_EQ(type_of(after_resync[0]), "snapshot");
    EXPECT_EQ(seq_of(after_resync[0]), seq_base + 9);
    const json::array& jobs = after_resync[0].at("jobs").as_array();
    EXPECT_EQ(done_of(jobs[0].as_object()), done_);  // the newest value of every job
    EXPECT_EQ(type_of(after_resync[1]), "subscribed");
    EXPECT_EQ(type_of(after_resync[2]), "item");
    EXPECT_EQ(after_resync[2].at("iseq"), 9);

    // It stops reading again: resync once more, then a whole ring passes
    // while the snapshot is waiting and it is closed.
    for (int i = 0; i < 9; ++i) publish_one_event();
    EXPECT_EQ(hub->stats().resyncs, 2u);
    for (int i = 0; i < 7; ++i) publish_one_event();
    EXPECT_EQ(hub->stats().slow_closes, 0u);
    publish_one_event();
    EXPECT_EQ(hub->stats().slow_closes, 1u);
    OutgoingBatch closed = slow->pop();
    ASSERT_TRUE(closed.close);
    EXPECT_EQ(closed.close->code, close_code::try_again_later);
    EXPECT_TRUE(closed.messages.empty());
    EXPECT_EQ(slow->side_queue_size(), 0u);

    // The watcher that kept up saw every event, gapless, and was never resynced.
    ASSERT_EQ(steady_stream_.size(), 1u + static_cast<std::size_t>(done_));
    EXPECT_EQ(type_of(steady_stream_[0]), "hello");
    for (std::size_t i = 1; i < steady_stream_.size(); ++i) {
        EXPECT_EQ(seq_of(steady_stream_[i]), seq_base + i);
        EXPECT_EQ(type_of(steady_stream_[i]), "progress");
    }
}

TEST_F(SlowConsumerTest, AWatcherThatNeverReadsCostsBoundedMemoryAndIsClosed) {
    auto never_reads = watch(1);  // not even its hello
    ASSERT_EQ(never_reads->subscribe_items(json::value(10)), ItemSubscribeResult::subscribed);
    std::size_t max_backlog = 0, max_side = 0;
    for (int i = 0; i < 10'000; ++i) {
        publish_one_event();
        max_backlog = std::max(max_backlog, never_reads->backlog());
        max_side = std::max(max_side, never_reads->side_queue_size());
    }
    EXPECT_LE(max_backlog, 8u);
    EXPECT_LE(max_side, 4u);
    EXPECT_EQ(hub->stats().slow_closes, 1u);
    OutgoingBatch batch = never_reads->pop();
    ASSERT_TRUE(batch.close);
    EXPECT_EQ(batch.close->code, 1013);
}

TEST_F(SlowConsumerTest, AWatcherThatReadsInBurstsWithinTheRingIsNeverResynced) {
    auto bursty = watch(1);
    std::vector<json::object> stream = drain(*bursty);
    for (int round = 0; round < 50; ++round) {
        for (int i = 0; i < 8; ++i) publish_one_event();  // exactly one ring between reads
        for (auto& message : drain(*bursty)) stream.push_back(std::move(message));
    }
    EXPECT_EQ(hub->stats().resyncs, 0u);
    std::size_t progress = 0;
    std::uint64_t position = seq_of(stream.front());
    for (const json::object& message : stream) {
        if (type_of(message) != "progress") continue;
        EXPECT_EQ(seq_of(message), ++position);
        ++progress;
    }
    EXPECT_EQ(progress, 400u);
}

TEST_F(SlowConsumerTest, AResumeWithinTheRingCancelsAPendingResync) {
    auto slow = watch(1);
    drain(*slow);
    for (int i = 0; i < 9; ++i) publish_one_event();
    EXPECT_EQ(hub->stats().resyncs, 1u);
    // The client says it has everything up to seq_base + 5 (it read them on
    // another path); the ring still holds 6..9, so a replay replaces the snapshot.
    EXPECT_EQ(slow->resume({seq_base + 5, std::nullopt}), ResumeOutcome::replay);
    std::vector<json::object> stream = drain(*slow);
    ASSERT_EQ(stream.size(), 4u);
    EXPECT_EQ(seq_of(stream[0]), seq_base + 6);
}

TEST_F(SlowConsumerTest, AClientSendingCommandsWithoutReadingIsClosed) {
    auto spammer = watch(1);
    drain(*spammer);
    for (int i = 0; i < 10; ++i) {
        spammer->subscribe_items(json::value(10));
        spammer->unsubscribe_items(json::value(10));
    }
    EXPECT_LE(spammer->side_queue_size(), 4u);
    OutgoingBatch batch = spammer->pop();
    ASSERT_TRUE(batch.close);
    EXPECT_EQ(batch.close->code, 1013);
}

}  // namespace
}  // namespace litchi::events::testing
