// Fuzz target: what a progress client says over the WebSocket
// (server/client_message.hpp) and what the event hub does with it
// (events/event_hub.hpp, events/protocol_messages.hpp).
//
// Input: lines. A line starting with '!' is a server-side event for the
// user's jobs ("!c", "!p", "!d", "!i", "!r" create, progress, delete, item,
// items reset, the job picked by the next byte; "!t" lets time pass, "!x"
// closes the subscription); any other line is a client message, parsed as the
// session parses it and, when it has a valid shape, applied to a live
// subscription of a real hub. After each line the session's queue is popped.
// Besides "no crash, no sanitizer report" it checks that a refusal has a
// reason, that every message the hub sends is a JSON object with a "type", and
// that job ids read back from the message that echoes them.
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "events/event_hub.hpp"
#include "events/protocol_messages.hpp"
#include "server/client_message.hpp"

using namespace litchi;
namespace json = boost::json;

namespace {

constexpr UserId kUser = 7;
constexpr int kJobs = 4;

void require(bool ok, const char* what, std::string_view line) {
    if (ok) return;
    std::fprintf(stderr, "client_messages: %s for line [%.*s]\n", what, int(line.size()),
                 line.data());
    std::abort();
}

JobSnapshot job_number(JobId id, std::int64_t done = 0) {
    JobSnapshot job;
    job.id = id;
    job.user = kUser;
    job.name = "job " + std::to_string(id);
    job.state = JobState::running;
    job.counts = {10, 10 - done, 0, done, 0, 0};
    return job;
}

std::string job_text(const JobSnapshot& job) {
    return json::serialize(json::object{{"id", job.id}, {"name", job.name}});
}

void check_pops(events::Subscription& subscription, std::string_view line) {
    for (int round = 0; round < 64; ++round) {
        auto batch = subscription.pop(16);
        for (const auto& message : batch.messages) {
            require(message.text != nullptr, "a message without text", line);
            json::error_code ec;
            auto value = json::parse(*message.text, ec);
            require(!ec && value.is_object(), "the hub sent something that is not JSON", line);
            const auto* type = value.as_object().if_contains("type");
            require(type && type->is_string(), "the hub sent a message without a type", line);
        }
        if (!batch.more) return;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    auto now = events::SteadyTime{} + std::chrono::hours(1000);
    std::int64_t done = 0;

    events::EventHubHooks hooks;
    hooks.snapshot_provider = [](UserId user, const events::SnapshotSink& sink) {
        std::vector<JobSnapshot> jobs;
        if (user == kUser)
            for (JobId id = 1; id <= kJobs; ++id) jobs.push_back(job_number(id));
        sink(std::move(jobs), 0);
        return true;
    };
    hooks.write_job = job_text;
    hooks.write_item = [](const ItemRecord& item) {
        return json::serialize(json::object{{"id", item.id}, {"url", item.url}});
    };
    hooks.steady_now = [&now] { return now; };
    hooks.wall_clock_ms = [] { return std::uint64_t(1'700'000'000'000); };
    events::EventLimits limits;
    limits.replay_capacity = 8;
    limits.side_queue_capacity = 8;
    limits.max_item_subscriptions = 2;
    events::EventHub hub(limits, hooks);
    events::SubscribeOptions options;
    options.credential_id = "c";
    options.notify = [] {};
    auto subscription = hub.subscribe(kUser, std::move(options));
    if (!subscription) std::abort();
    check_pops(*subscription, "(hello)");

    while (!input.empty()) {
        const auto end = input.find('\n');
        std::string_view line = input.substr(0, end);
        input.remove_prefix(end == std::string_view::npos ? input.size() : end + 1);

        if (line.size() >= 2 && line[0] == '!') {
            const JobId id = line.size() > 2 ? JobId(static_cast<std::uint8_t>(line[2]) % 8) : 1;
            switch (line[1]) {
                case 'c':
                    hub.publish_job_created(job_number(id));
                    break;
                case 'p':
                    hub.publish_progress(job_number(id, ++done % 10));
                    break;
                case 'd':
                    hub.publish_job_deleted(kUser, id);
                    break;
                case 'i': {
                    ItemRecord item;
                    item.id = done++;
                    item.url = "http://127.0.0.1/x";
                    hub.publish_item(kUser, id, item);
                    break;
                }
                case 'r':
                    hub.publish_items_reset(kUser, id);
                    break;
                case 't':
                    now += std::chrono::milliseconds(250);
                    hub.tick();
                    break;
                case 'x':
                    subscription->cancel();
                    break;
            }
            check_pops(*subscription, line);
            continue;
        }

        using Kind = server::ClientMessage::Kind;
        auto message = server::parse_client_message(line);
        switch (message.kind) {
            case Kind::invalid:
                require(!message.why.empty(), "a refusal without a reason", line);
                break;
            case Kind::ping:
                break;
            case Kind::resume:
                subscription->resume({message.since, message.epoch});
                break;
            case Kind::subscribe:
            case Kind::unsubscribe: {
                require(
                    message.job.is_int64() || message.job.is_uint64() || message.job.is_string(),
                    "a job id of the wrong kind", line);
                // The echo of an id that names no job must read back as sent.
                auto echo = events::make_unsubscribed_message(1, message.job, "");
                json::error_code ec;
                auto value = json::parse(*echo, ec);
                require(!ec && value.as_object().at("job") == message.job,
                        "an echoed job id does not read back", line);
                auto id = events::job_id_of(message.job);
                if (id && message.job.is_string())
                    require(std::to_string(*id) == message.job.as_string(),
                            "a job id in text is not canonical", line);
                if (message.kind == Kind::subscribe)
                    (void)subscription->subscribe_items(message.job);
                else
                    (void)subscription->unsubscribe_items(message.job);
                break;
            }
        }
        check_pops(*subscription, line);
    }
    return 0;
}
