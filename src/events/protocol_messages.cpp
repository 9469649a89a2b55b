// JSON text of the protocol v1 server messages. Messages are assembled from
// pre-serialised parts with string appends: the parts come from
// boost::json::serialize, so the result is valid JSON, and `type` always comes
// first, which makes captured traffic easy to read.
#include "events/protocol_messages.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <charconv>

namespace litchi::events {

namespace json = boost::json;

std::string_view to_string(MessageKind kind) {
    switch (kind) {
        case MessageKind::hello:
            return "hello";
        case MessageKind::progress:
            return "progress";
        case MessageKind::job_created:
            return "job_created";
        case MessageKind::job_deleted:
            return "job_deleted";
        case MessageKind::snapshot:
            return "snapshot";
        case MessageKind::item:
            return "item";
        case MessageKind::subscribed:
            return "subscribed";
        case MessageKind::unsubscribed:
            return "unsubscribed";
        case MessageKind::items_reset:
            return "items_reset";
    }
    return "unknown";
}

bool carries_event_id(MessageKind kind) {
    switch (kind) {
        case MessageKind::hello:
        case MessageKind::progress:
        case MessageKind::job_created:
        case MessageKind::job_deleted:
        case MessageKind::snapshot:
            return true;
        case MessageKind::item:
        case MessageKind::subscribed:
        case MessageKind::unsubscribed:
        case MessageKind::items_reset:
            return false;
    }
    return false;
}

std::optional<JobKey> job_key_of(const json::value& id) {
    if (id.is_int64()) return std::to_string(id.get_int64());
    if (id.is_uint64()) return std::to_string(id.get_uint64());
    if (id.is_string()) {
        const json::string& text = id.get_string();
        if (text.empty()) return std::nullopt;
        // "7" and 7 must meet in one key; "007" stays a distinct string id.
        std::int64_t number = 0;
        const char* end = text.data() + text.size();
        auto [stop, error] = std::from_chars(text.data(), end, number);
        if (error == std::errc{} && stop == end && std::to_string(number) == text) {
            return std::to_string(number);
        }
        return std::string(text.data(), text.size());
    }
    return std::nullopt;
}

std::optional<JobKey> job_key_of(const json::object& job) {
    const json::value* id = job.if_contains("id");
    if (id == nullptr) return std::nullopt;
    return job_key_of(*id);
}

namespace {

void append_number(std::string& out, std::uint64_t number) {
    char digits[24];
    auto [end, error] = std::to_chars(digits, digits + sizeof digits, number);
    (void)error;  // 24 characters always hold a uint64
    out.append(digits, end);
}

MessageText finish(std::string&& text) {
    return std::make_shared<const std::string>(std::move(text));
}

MessageText make_full_state(std::string_view type, std::string_view epoch, std::uint64_t seq,
                            const std::vector<const json::object*>& jobs, bool with_protocol) {
    std::string out;
    out.reserve(64 + jobs.size() * 256);
    out += R"({"type":")";
    out += type;
    out += '"';
    if (with_protocol) out += R"(,"protocol":1)";
    out += R"(,"epoch":)";
    out += json::serialize(json::string(epoch));
    out += R"(,"seq":)";
    append_number(out, seq);
    out += R"(,"jobs":[)";
    bool first = true;
    for (const json::object* job : jobs) {
        if (!first) out += ',';
        first = false;
        out += json::serialize(*job);
    }
    out += "]}";
    return finish(std::move(out));
}

}  // namespace

MessageText make_hello_message(std::string_view epoch, std::uint64_t seq,
                               const std::vector<const json::object*>& jobs) {
    return make_full_state("hello", epoch, seq, jobs, true);
}

MessageText make_snapshot_message(std::string_view epoch, std::uint64_t seq,
                                  const std::vector<const json::object*>& jobs) {
    return make_full_state("snapshot", epoch, seq, jobs, false);
}

MessageText make_progress_message(std::uint64_t seq, const json::object& job) {
    std::string out = R"({"type":"progress","seq":)";
    append_number(out, seq);
    out += R"(,"job":)";
    out += json::serialize(job);
    out += '}';
    return finish(std::move(out));
}

MessageText make_job_message(MessageKind created_or_deleted, std::uint64_t seq,
                             const json::object& job) {
    std::string out = R"({"type":"job","seq":)";
    append_number(out, seq);
    out += created_or_deleted == MessageKind::job_deleted ? R"(,"event":"deleted","job":)"
                                                          : R"(,"event":"created","job":)";
    out += json::serialize(job);
    out += '}';
    return finish(std::move(out));
}

MessageText make_item_message(std::uint64_t seq, std::uint64_t iseq, const json::value& job_id,
                              std::string_view item_json) {
    std::string out;
    out.reserve(64 + item_json.size());
    out += R"({"type":"item","seq":)";
    append_number(out, seq);
    out += R"(,"iseq":)";
    append_number(out, iseq);
    out += R"(,"job":)";
    out += json::serialize(job_id);
    out += R"(,"item":)";
    out += item_json;
    out += '}';
    return finish(std::move(out));
}

MessageText make_subscribed_message(std::uint64_t seq, const json::value& job_id) {
    std::string out = R"({"type":"subscribed","seq":)";
    append_number(out, seq);
    out += R"(,"job":)";
    out += json::serialize(job_id);
    out += R"(,"items":true})";
    return finish(std::move(out));
}

MessageText make_unsubscribed_message(std::uint64_t seq, const json::value& job_id,
                                      std::string_view reason) {
    std::string out = R"({"type":"unsubscribed","seq":)";
    append_number(out, seq);
    out += R"(,"job":)";
    out += json::serialize(job_id);
    if (!reason.empty()) {
        out += R"(,"reason":)";
        out += json::serialize(json::string(reason));
    }
    out += '}';
    return finish(std::move(out));
}

MessageText make_items_reset_message(std::uint64_t seq, const json::value& job_id) {
    std::string out = R"({"type":"items_reset","seq":)";
    append_number(out, seq);
    out += R"(,"job":)";
    out += json::serialize(job_id);
    out += '}';
    return finish(std::move(out));
}

}  // namespace litchi::events
