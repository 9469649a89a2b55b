// JSON shapes of jobs and items for the API and the event hub: see json.hpp.
#include "server/json.hpp"

#include <boost/json/serialize.hpp>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <stdexcept>
#include <system_error>

namespace litchi {

std::string format_time_iso8601(TimeMs time) {
    std::time_t seconds = static_cast<std::time_t>(time / 1000);
    int millis = static_cast<int>(time % 1000);
    if (millis < 0) {
        millis += 1000;
        --seconds;
    }
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char buffer[96];  // roomy: the compiler cannot bound tm_year
    std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                  utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, millis);
    return buffer;
}

boost::json::object counts_to_json(const JobCounts& counts) {
    boost::json::object out;
    out["total"] = counts.total;
    out["queued"] = counts.queued;
    out["active"] = counts.active;
    out["done"] = counts.done;
    out["failed"] = counts.failed;
    out["cancelled"] = counts.cancelled;
    return out;
}

void add_request_options(boost::json::object& job, const RequestOptions& options,
                         const std::optional<WebhookDelivery>& last_delivery) {
    if (!options.user_agent.empty()) job["user_agent"] = options.user_agent;
    if (!options.headers.empty()) {
        boost::json::object headers;
        for (const auto& h : options.headers)
            headers[h.name] = is_credential_header(h.name) ? kRedacted : std::string_view(h.value);
        job["headers"] = std::move(headers);
    }
    if (!options.referer.empty()) job["referer"] = options.referer;
    const auto& l = options.limits;
    if (l.per_host) job["per_host"] = *l.per_host;
    if (l.per_host_rate) job["per_host_rate"] = *l.per_host_rate;
    if (l.max_bytes) job["max_bytes"] = *l.max_bytes;
    if (l.max_pixels) job["max_pixels"] = *l.max_pixels;
    if (l.retries) job["retries"] = *l.retries;
    if (l.timeout) job["timeout"] = std::chrono::duration<double>(*l.timeout).count();
    if (options.webhook) {
        boost::json::object hook{{"url", options.webhook->url}};
        boost::json::array events;
        for (const auto& e : options.webhook->events) events.emplace_back(e);
        hook["events"] = std::move(events);
        hook["secret"] = !options.webhook->secret.empty();  // whether one is set, never its value
        if (last_delivery) hook["last_delivery"] = webhook_delivery_to_json(*last_delivery);
        job["webhook"] = std::move(hook);
    }
}

boost::json::object webhook_delivery_to_json(const WebhookDelivery& d) {
    boost::json::object out{{"id", d.delivery},
                            {"event", d.event},
                            {"state", d.state},
                            {"attempts", d.attempts},
                            {"created", format_time_iso8601(d.created)},
                            {"updated", format_time_iso8601(d.updated)}};
    if (d.http_status) out["http_status"] = d.http_status;
    if (!d.error.empty()) out["error"] = d.error;
    return out;
}

boost::json::object job_to_json(const JobSnapshot& job) {
    boost::json::object out;
    out["id"] = job.id;
    out["name"] = job.name;
    out["state"] = to_string(job.state);
    out["created"] = format_time_iso8601(job.created);
    // A finished job's last change is when it finished (the web app's duration).
    if ((job.state == JobState::done || job.state == JobState::cancelled) && job.updated > 0)
        out["finished"] = format_time_iso8601(job.updated);
    out["counts"] = counts_to_json(job.counts);
    out["bytes"] = static_cast<std::int64_t>(job.bytes);
    out["rate"] = rate_to_json(job.rate);
    if (job.eta && std::isfinite(*job.eta) && *job.eta >= 0 && *job.eta < 9e15)
        out["eta"] = static_cast<std::int64_t>(std::llround(*job.eta));
    else
        out["eta"] = nullptr;
    return out;
}

boost::json::value rate_to_json(double items_per_second) {
    double rounded = shown_rate(items_per_second);
    if (rounded == std::trunc(rounded) && rounded < 9e15) return static_cast<std::int64_t>(rounded);
    return rounded;
}

namespace {

void append_json_text(std::string& out, const boost::json::value& value) {
    switch (value.kind()) {
        case boost::json::kind::object: {
            out += '{';
            bool first = true;
            for (const auto& member : value.get_object()) {
                if (!first) out += ',';
                first = false;
                out += boost::json::serialize(member.key());
                out += ':';
                append_json_text(out, member.value());
            }
            out += '}';
            return;
        }
        case boost::json::kind::array: {
            out += '[';
            bool first = true;
            for (const auto& element : value.get_array()) {
                if (!first) out += ',';
                first = false;
                append_json_text(out, element);
            }
            out += ']';
            return;
        }
        case boost::json::kind::double_: {
            double number = value.get_double();
            if (!std::isfinite(number)) {
                out += "null";
                return;
            }
            // The shortest text that reads back the same, fixed unless the
            // exponent form is shorter (1e+21): that one is at most 24 chars.
            char buffer[64];
            auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, number);
            if (ec != std::errc()) throw std::logic_error("to_chars: double does not fit");
            out.append(buffer, end);
            return;
        }
        default:  // strings, integers, booleans and null: Boost.JSON's own text
            out += boost::json::serialize(value);
            return;
    }
}

}  // namespace

std::string to_json_text(const boost::json::value& value) {
    std::string out;
    append_json_text(out, value);
    return out;
}

boost::json::object item_to_json(const ItemRecord& item) {
    boost::json::object out;
    out["id"] = item.id;
    out["url"] = item.url;
    out["state"] = to_string(item.state);
    if (item.reason != FailureReason::none) out["reason"] = to_string(item.reason);
    if (item.http_status != 0) out["http_status"] = item.http_status;
    if (!item.sha256.empty()) out["sha256"] = item.sha256;
    if (item.state == ItemState::done) {
        out["bytes"] = static_cast<std::int64_t>(item.bytes);
        if (item.width > 0) out["width"] = item.width;
        if (item.height > 0) out["height"] = item.height;
        if (item.format != ImageFormat::unknown) out["format"] = format_name(item.format);
    }
    out["attempts"] = item.attempts;
    return out;
}

}  // namespace litchi
