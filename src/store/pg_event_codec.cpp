// Event-log bodies (pg_event_codec.hpp).
#include "store/pg_event_codec.hpp"

#include <boost/json.hpp>

namespace litchi::pg {
namespace json = boost::json;

namespace {

std::int64_t get_int(const json::object& o, std::string_view key) {
    auto* v = o.if_contains(key);
    if (!v) return 0;
    if (v->is_int64()) return v->as_int64();
    if (v->is_uint64()) return static_cast<std::int64_t>(v->as_uint64());
    if (v->is_double()) return static_cast<std::int64_t>(v->as_double());
    return 0;
}

double get_double(const json::object& o, std::string_view key) {
    auto* v = o.if_contains(key);
    if (!v) return 0;
    if (v->is_double()) return v->as_double();
    if (v->is_int64()) return static_cast<double>(v->as_int64());
    if (v->is_uint64()) return static_cast<double>(v->as_uint64());
    return 0;
}

std::string get_string(const json::object& o, std::string_view key) {
    auto* v = o.if_contains(key);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

std::optional<json::object> parse_object(std::string_view body) {
    boost::system::error_code ec;
    auto value = json::parse(body, ec);
    if (ec || !value.is_object()) return std::nullopt;
    return std::move(value.as_object());
}

}  // namespace

std::string encode_job(const JobSnapshot& job) {
    json::object o;
    o["id"] = job.id;
    o["u"] = job.user;
    o["n"] = job.name;
    o["s"] = std::string(to_string(job.state));
    o["c"] = job.created;
    o["up"] = job.updated;
    o["t"] = job.counts.total;
    o["q"] = job.counts.queued;
    o["a"] = job.counts.active;
    o["d"] = job.counts.done;
    o["f"] = job.counts.failed;
    o["x"] = job.counts.cancelled;
    o["b"] = job.bytes;
    o["r"] = job.rate;
    if (job.eta) o["e"] = *job.eta;
    return json::serialize(o);
}

std::optional<JobSnapshot> decode_job(std::string_view body) {
    auto o = parse_object(body);
    if (!o) return std::nullopt;
    auto state = parse_job_state(get_string(*o, "s"));
    if (!state) return std::nullopt;
    JobSnapshot job;
    job.id = get_int(*o, "id");
    job.user = get_int(*o, "u");
    job.name = get_string(*o, "n");
    job.state = *state;
    job.created = get_int(*o, "c");
    job.updated = get_int(*o, "up");
    job.counts.total = get_int(*o, "t");
    job.counts.queued = get_int(*o, "q");
    job.counts.active = get_int(*o, "a");
    job.counts.done = get_int(*o, "d");
    job.counts.failed = get_int(*o, "f");
    job.counts.cancelled = get_int(*o, "x");
    job.bytes = static_cast<std::uint64_t>(get_int(*o, "b"));
    job.rate = get_double(*o, "r");
    if (o->contains("e")) job.eta = get_double(*o, "e");
    return job;
}

std::string encode_item(const ItemRecord& item) {
    json::object o;
    o["id"] = item.id;
    o["j"] = item.job;
    o["p"] = item.position;
    o["url"] = item.url;
    o["s"] = std::string(to_string(item.state));
    if (item.reason != FailureReason::none) o["r"] = std::string(to_string(item.reason));
    if (item.http_status) o["h"] = item.http_status;
    if (!item.sha256.empty()) o["sha"] = item.sha256;
    if (item.bytes) o["b"] = item.bytes;
    if (item.width) o["w"] = item.width;
    if (item.height) o["ht"] = item.height;
    if (item.format != ImageFormat::unknown) o["fmt"] = std::string(format_name(item.format));
    o["at"] = item.attempts;
    o["up"] = item.updated;
    return json::serialize(o);
}

std::optional<ItemRecord> decode_item(std::string_view body) {
    auto o = parse_object(body);
    if (!o) return std::nullopt;
    auto state = parse_item_state(get_string(*o, "s"));
    if (!state) return std::nullopt;
    ItemRecord item;
    item.id = get_int(*o, "id");
    item.job = get_int(*o, "j");
    item.position = get_int(*o, "p");
    item.url = get_string(*o, "url");
    item.state = *state;
    if (o->contains("r")) {
        auto reason = parse_failure_reason(get_string(*o, "r"));
        if (!reason) return std::nullopt;
        item.reason = *reason;
    }
    item.http_status = static_cast<int>(get_int(*o, "h"));
    item.sha256 = get_string(*o, "sha");
    item.bytes = static_cast<std::uint64_t>(get_int(*o, "b"));
    item.width = static_cast<int>(get_int(*o, "w"));
    item.height = static_cast<int>(get_int(*o, "ht"));
    if (o->contains("fmt"))
        item.format = parse_format_name(get_string(*o, "fmt")).value_or(ImageFormat::unknown);
    item.attempts = static_cast<int>(get_int(*o, "at"));
    item.updated = get_int(*o, "up");
    return item;
}

void append_item(std::string& body, const ItemRecord& item) {
    if (!body.empty()) body += '\n';
    body += encode_item(item);
}

std::optional<std::vector<ItemRecord>> decode_items(std::string_view body) {
    std::vector<ItemRecord> items;
    while (true) {
        auto end = body.find('\n');
        auto item = decode_item(body.substr(0, end));
        if (!item) return std::nullopt;
        items.push_back(std::move(*item));
        if (end == std::string_view::npos) return items;
        body.remove_prefix(end + 1);
    }
}

}  // namespace litchi::pg
