// JSON text of the protocol v1 server messages. Messages are assembled from
// pre-serialised parts with string appends: the parts come from
// boost::json::serialize, so the result is valid JSON, and `type` always comes
// first, which makes captured traffic easy to read.
#include "events/protocol_messages.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <charconv>
#include <cstdint>

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

std::optional<JobId> job_id_of(const json::value& id) {
    if (id.is_int64()) return id.get_int64();
    if (id.is_uint64()) {
        if (id.get_uint64() > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
        return static_cast<JobId>(id.get_uint64());
    }
    if (id.is_string()) {
        // "7" names job 7; "007", "7 " or "x" name no job (ids are written canonically).
        const json::string& text = id.get_string();
        JobId number = 0;
        const char* end = text.data() + text.size();
        auto [stop, error] = std::from_chars(text.data(), end, number);
        if (error == std::errc{} && stop == end && std::to_string(number) == text) return number;
    }
    return std::nullopt;
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

void append_number(std::string& out, std::int64_t number) {
    char digits[24];
    auto [end, error] = std::to_chars(digits, digits + sizeof digits, number);
    (void)error;
    out.append(digits, end);
}

MessageText make_full_state(std::string_view type, std::string_view epoch, std::uint64_t seq,
                            const std::vector<std::string_view>& jobs, bool with_protocol,
                            std::size_t total_jobs) {
    std::size_t size = 64;
    for (std::string_view job : jobs) size += job.size() + 1;
    std::string out;
    out.reserve(size);
    out += R"({"type":")";
    out += type;
    out += '"';
    if (with_protocol) out += R"(,"protocol":1)";
    out += R"(,"epoch":)";
    out += json::serialize(json::string(epoch));
    out += R"(,"seq":)";
    append_number(out, seq);
    if (total_jobs > jobs.size()) {
        out += R"(,"truncated":true,"total":)";
        append_number(out, static_cast<std::uint64_t>(total_jobs));
    }
    out += R"(,"jobs":[)";
    bool first = true;
    for (std::string_view job : jobs) {
        if (!first) out += ',';
        first = false;
        out += job;
    }
    out += "]}";
    return finish(std::move(out));
}

}  // namespace

MessageText make_hello_message(std::string_view epoch, std::uint64_t seq,
                               const std::vector<std::string_view>& jobs, std::size_t total_jobs) {
    return make_full_state("hello", epoch, seq, jobs, true, total_jobs);
}

MessageText make_snapshot_message(std::string_view epoch, std::uint64_t seq,
                                  const std::vector<std::string_view>& jobs,
                                  std::size_t total_jobs) {
    return make_full_state("snapshot", epoch, seq, jobs, false, total_jobs);
}

MessageText make_progress_message(std::uint64_t seq, std::string_view job_json) {
    std::string out;
    out.reserve(48 + job_json.size());
    out += R"({"type":"progress","seq":)";
    append_number(out, seq);
    out += R"(,"job":)";
    out += job_json;
    out += '}';
    return finish(std::move(out));
}

MessageText make_job_message(MessageKind created_or_deleted, std::uint64_t seq,
                             std::string_view job_json) {
    std::string out;
    out.reserve(64 + job_json.size());
    out += R"({"type":"job","seq":)";
    append_number(out, seq);
    out += created_or_deleted == MessageKind::job_deleted ? R"(,"event":"deleted","job":)"
                                                          : R"(,"event":"created","job":)";
    out += job_json;
    out += '}';
    return finish(std::move(out));
}

MessageText make_item_message(std::uint64_t seq, std::uint64_t iseq, JobId job,
                              std::string_view item_json) {
    std::string out;
    out.reserve(64 + item_json.size());
    out += R"({"type":"item","seq":)";
    append_number(out, seq);
    out += R"(,"iseq":)";
    append_number(out, iseq);
    out += R"(,"job":)";
    append_number(out, job);
    out += R"(,"item":)";
    out += item_json;
    out += '}';
    return finish(std::move(out));
}

MessageText make_subscribed_message(std::uint64_t seq, JobId job) {
    std::string out = R"({"type":"subscribed","seq":)";
    append_number(out, seq);
    out += R"(,"job":)";
    append_number(out, job);
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

MessageText make_items_reset_message(std::uint64_t seq, JobId job) {
    std::string out = R"({"type":"items_reset","seq":)";
    append_number(out, seq);
    out += R"(,"job":)";
    append_number(out, job);
    out += '}';
    return finish(std::move(out));
}

}  // namespace litchi::events
