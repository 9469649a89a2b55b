// Unit tests of the protocol v1 message texts, reading job ids clients send, the
// replay ring and limit validation: the pieces the hub is built from.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "events/event_limits.hpp"
#include "events/protocol_messages.hpp"
#include "events/replay_ring.hpp"

namespace litchi::events {
namespace {

namespace json = boost::json;

json::object parse_text(const MessageText& text) {
    return json::parse(*text).as_object();
}

TEST(EventsJobId, IntegersAndDecimalStringsNameTheSameJob) {
    EXPECT_EQ(job_id_of(json::value(std::int64_t{7})), 7);
    EXPECT_EQ(job_id_of(json::value(std::uint64_t{7})), 7);
    EXPECT_EQ(job_id_of(json::value("7")), 7);
    EXPECT_EQ(job_id_of(json::value("-3")), -3);
    EXPECT_EQ(job_id_of(json::value(std::int64_t{-3})), -3);
}

TEST(EventsJobId, AnythingElseNamesNoJob) {
    // Ids are written canonically: another spelling is no id of ours.
    EXPECT_FALSE(job_id_of(json::value("007")));
    EXPECT_FALSE(job_id_of(json::value("j-abc")));
    EXPECT_FALSE(job_id_of(json::value(~std::uint64_t{0})));
    EXPECT_FALSE(job_id_of(json::value("")));
    EXPECT_FALSE(job_id_of(json::value(1.5)));
    EXPECT_FALSE(job_id_of(json::value(nullptr)));
    EXPECT_FALSE(job_id_of(json::value(json::array{1})));
}

TEST(EventsMessages, ProgressAndJobMessagesHaveTheDocumentedShape) {
    json::object job{{"id", 4}, {"state", "running"}, {"counts", {{"done", 2}}}};
    const std::string job_text = json::serialize(job);
    json::object progress = parse_text(make_progress_message(41, job_text));
    EXPECT_EQ(progress.at("type"), "progress");
    EXPECT_EQ(progress.at("seq"), 41);
    EXPECT_EQ(progress.at("job").as_object(), job);

    json::object created = parse_text(make_job_message(MessageKind::job_created, 42, job_text));
    EXPECT_EQ(created.at("type"), "job");
    EXPECT_EQ(created.at("event"), "created");
    EXPECT_EQ(created.at("seq"), 42);
    json::object deleted = parse_text(make_job_message(MessageKind::job_deleted, 43, job_text));
    EXPECT_EQ(deleted.at("event"), "deleted");
    EXPECT_EQ(deleted.at("job").as_object(), job);
}

TEST(EventsMessages, HelloAndSnapshotCarryEpochSeqAndJobsInOrder) {
    json::object first{{"id", 2}}, second{{"id", 3}};
    const std::string first_text = json::serialize(first), second_text = json::serialize(second);
    json::object hello = parse_text(make_hello_message("e-1", 9, {first_text, second_text}));
    EXPECT_EQ(hello.at("type"), "hello");
    EXPECT_EQ(hello.at("protocol"), 1);
    EXPECT_EQ(hello.at("epoch"), "e-1");
    EXPECT_EQ(hello.at("seq"), 9);
    ASSERT_EQ(hello.at("jobs").as_array().size(), 2u);
    EXPECT_EQ(hello.at("jobs").as_array()[0].as_object(), first);
    EXPECT_EQ(hello.at("jobs").as_array()[1].as_object(), second);

    json::object snapshot = parse_text(make_snapshot_message("e-\"2", 10, {}));
    EXPECT_EQ(snapshot.at("type"), "snapshot");
    EXPECT_EQ(snapshot.at("epoch"), "e-\"2");  // escaped, still valid JSON
    EXPECT_FALSE(snapshot.contains("protocol"));
    EXPECT_TRUE(snapshot.at("jobs").as_array().empty());
}

TEST(EventsMessages, ACutHelloSaysSoAndCountsAllJobs) {
    const std::string job = R"({"id":1})";
    json::object whole = parse_text(make_hello_message("e", 1, {job}, 1));
    EXPECT_FALSE(whole.contains("truncated"));
    EXPECT_FALSE(whole.contains("total"));
    json::object cut = parse_text(make_hello_message("e", 1, {job}, 5000));
    EXPECT_EQ(cut.at("truncated"), true);
    EXPECT_EQ(cut.at("total"), 5000);
    EXPECT_EQ(cut.at("jobs").as_array().size(), 1u);
    json::object snapshot = parse_text(make_snapshot_message("e", 2, {}, 3));
    EXPECT_EQ(snapshot.at("total"), 3);
}

TEST(EventsMessages, ItemAndAcknowledgementMessages) {
    json::object item = parse_text(make_item_message(5, 3, 8, R"({"id":1,"state":"done"})"));
    EXPECT_EQ(item.at("type"), "item");
    EXPECT_EQ(item.at("seq"), 5);
    EXPECT_EQ(item.at("iseq"), 3);
    EXPECT_EQ(item.at("job"), 8);
    EXPECT_EQ(item.at("item").at("state"), "done");

    json::object subscribed = parse_text(make_subscribed_message(5, 8));
    EXPECT_EQ(subscribed.at("type"), "subscribed");
    EXPECT_EQ(subscribed.at("job"), 8);
    EXPECT_EQ(subscribed.at("items"), true);

    json::object reset = parse_text(make_items_reset_message(7, 8));
    EXPECT_EQ(reset.at("type"), "items_reset");
    EXPECT_EQ(reset.at("seq"), 7);
    EXPECT_EQ(reset.at("job"), 8);

    json::object plain = parse_text(make_unsubscribed_message(6, json::value(8), ""));
    EXPECT_EQ(plain.at("job"), 8);
    json::object echoed = parse_text(make_unsubscribed_message(6, json::value("x"), ""));
    EXPECT_EQ(echoed.at("job"), "x") << "a value naming no job is echoed as sent";
    EXPECT_FALSE(plain.contains("reason"));
    json::object deleted = parse_text(make_unsubscribed_message(6, json::value(8), "deleted"));
    EXPECT_EQ(deleted.at("reason"), "deleted");
}

TEST(EventsMessages, OnlyJobLevelMessagesCarryAnEventId) {
    EXPECT_TRUE(carries_event_id(MessageKind::hello));
    EXPECT_TRUE(carries_event_id(MessageKind::progress));
    EXPECT_TRUE(carries_event_id(MessageKind::job_created));
    EXPECT_TRUE(carries_event_id(MessageKind::job_deleted));
    EXPECT_TRUE(carries_event_id(MessageKind::snapshot));
    EXPECT_FALSE(carries_event_id(MessageKind::item));
    EXPECT_FALSE(carries_event_id(MessageKind::subscribed));
    EXPECT_FALSE(carries_event_id(MessageKind::unsubscribed));
    EXPECT_FALSE(carries_event_id(MessageKind::items_reset));
}

TEST(EventsReplayRing, KeepsTheNewestCapacityEventsInOrder) {
    ReplayRing ring(4);
    EXPECT_TRUE(ring.empty());
    EXPECT_EQ(ring.find(1), nullptr);
    for (std::uint64_t seq = 101; seq <= 110; ++seq) {
        ring.push(
            {seq, MessageKind::progress, std::make_shared<const std::string>(std::to_string(seq))});
    }
    EXPECT_EQ(ring.size(), 4u);
    EXPECT_EQ(ring.first_seq(), 107u);
    EXPECT_EQ(ring.last_seq(), 110u);
    EXPECT_EQ(ring.find(106), nullptr);
    EXPECT_EQ(ring.find(111), nullptr);
    for (std::uint64_t seq = 107; seq <= 110; ++seq) {
        const RingEntry* entry = ring.find(seq);
        ASSERT_NE(entry, nullptr);
        EXPECT_EQ(entry->seq, seq);
        EXPECT_EQ(*entry->text, std::to_string(seq));
    }
}

TEST(EventsReplayRing, RefusesAGapOrAZeroCapacity) {
    ReplayRing ring(2);
    ring.push({5, MessageKind::progress, nullptr});
    EXPECT_THROW(ring.push({7, MessageKind::progress, nullptr}), std::logic_error);
    EXPECT_THROW(ReplayRing(0), std::invalid_argument);
}

TEST(EventsLimits, DefaultsAreValidAndNonsenseIsNamed) {
    EXPECT_EQ(validate_event_limits({}), "");
    EventLimits limits;
    EXPECT_EQ(limits.progress_interval, std::chrono::milliseconds(100));
    limits.replay_capacity = 1;
    EXPECT_NE(validate_event_limits(limits), "");
    limits = {};
    limits.side_queue_capacity = 0;
    EXPECT_NE(validate_event_limits(limits), "");
    limits = {};
    limits.max_item_subscriptions = 0;
    EXPECT_NE(validate_event_limits(limits), "");
    limits = {};
    limits.progress_interval = std::chrono::milliseconds(-1);
    EXPECT_NE(validate_event_limits(limits), "");
}

}  // namespace
}  // namespace litchi::events
