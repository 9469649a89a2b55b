// Shared fixtures of the event hub unit tests: a fake clock, a fake store that
// plays the snapshot provider, job builders and helpers that pop and parse.
#pragma once

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "events/event_hub.hpp"

namespace litchi::events::testing {

namespace json = boost::json;
using namespace std::chrono_literals;

// Starts well away from the clock's zero so "never sent" and "sent at zero"
// cannot be confused by accident.
struct FakeClock {
    SteadyTime now = SteadyTime{} + 1000h;
    void advance(std::chrono::microseconds step) { now += step; }
};

// The hub's writers in these tests: a compact job and item object (the
// server's real shapes are tested in server_json_test).
inline json::object to_json(const JobSnapshot& job) {
    return json::object{
        {"id", job.id},
        {"name", job.name},
        {"state", to_string(job.state)},
        {"counts",
         {{"total", job.counts.total},
          {"queued", job.counts.queued},
          {"active", job.counts.active},
          {"done", job.counts.done},
          {"failed", job.counts.failed},
          {"cancelled", job.counts.cancelled}}},
        {"bytes", job.bytes},
    };
}

inline json::object to_json(const ItemRecord& item) {
    return json::object{{"id", item.id},
                        {"url", item.url},
                        {"state", to_string(item.state)},
                        {"attempts", item.attempts}};
}

// Job `id` of user 1 (see for_user) with `done` of `total` items finished.
inline JobSnapshot make_job(std::int64_t id, std::int64_t done, std::int64_t total,
                            std::string_view state = "running") {
    JobSnapshot job;
    job.id = id;
    job.user = 1;
    job.name = "job " + std::to_string(id);
    job.state = parse_job_state(state).value();
    job.counts = {total, total - done, 0, done, 0, 0};
    job.bytes = static_cast<std::uint64_t>(done * 1000);
    return job;
}

inline JobSnapshot for_user(UserId user, JobSnapshot job) {
    job.user = user;
    return job;
}

inline ItemRecord make_item(std::int64_t id, std::string_view state) {
    ItemRecord item;
    item.id = id;
    item.url = "http://127.0.0.1/" + std::to_string(id) + ".png";
    item.state = parse_item_state(state).value();
    item.attempts = 1;
    return item;
}

inline std::int64_t done_of(const json::object& job) {
    return job.at("counts").as_object().at("done").to_number<std::int64_t>();
}

inline json::object parse(const OutgoingMessage& message) {
    return json::parse(*message.text).as_object();
}

inline std::uint64_t seq_of(const json::object& message) {
    return message.at("seq").to_number<std::uint64_t>();
}

inline std::string type_of(const json::object& message) {
    return std::string(message.at("type").as_string());
}

// Pops until nothing is left (or a close), parsing every message.
inline std::vector<json::object> drain(Subscription& subscription) {
    std::vector<json::object> out;
    for (int round = 0; round < 10'000; ++round) {
        OutgoingBatch batch = subscription.pop(64);
        for (const OutgoingMessage& message : batch.messages) out.push_back(parse(message));
        if (!batch.more) break;
    }
    return out;
}

// A hub over a fake store and a fake clock, with a fixed wall clock so seq
// bases are predictable (1'000 ms → base 1'000'000).
class HubTest : public ::testing::Test {
  protected:
    static constexpr std::uint64_t wall_ms = 1'000;
    static constexpr std::uint64_t seq_base = wall_ms * 1000;

    void make_hub(EventLimits limits = {}) {
        EventHubHooks hooks;
        hooks.snapshot_provider = [this](UserId user, const SnapshotSink& sink) {
            ++provider_calls;
            if (provider_fails) return false;
            sink(store[user], as_of[user]);
            return true;
        };
        hooks.write_job = [](const JobSnapshot& job) { return json::serialize(to_json(job)); };
        hooks.write_item = [](const ItemRecord& item) { return json::serialize(to_json(item)); };
        hooks.steady_now = [this] { return clock.now; };
        hooks.wall_clock_ms = [] { return wall_ms; };
        hooks.on_deadline = [this](SteadyTime due) { deadlines.push_back(due); };
        hub = std::make_unique<EventHub>(limits, std::move(hooks));
    }

    std::shared_ptr<Subscription> watch(UserId user, std::string credential = "cred") {
        SubscribeOptions options;
        options.credential_id = std::move(credential);
        auto subscription = hub->subscribe(user, std::move(options));
        EXPECT_NE(subscription, nullptr);
        return subscription;
    }

    FakeClock clock;
    std::map<UserId, std::vector<JobSnapshot>> store;  // what the provider returns
    std::map<UserId, CommitId> as_of;                  // ... and as of which commit
    bool provider_fails = false;
    int provider_calls = 0;
    std::vector<SteadyTime> deadlines;
    std::unique_ptr<EventHub> hub;
};

}  // namespace litchi::events::testing
