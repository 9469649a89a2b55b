// See job_body.hpp.
#include "server/job_body.hpp"

#include <algorithm>
#include <boost/json/parse.hpp>
#include <cstdint>
#include <type_traits>

#include "jobs/url_list.hpp"

namespace litchi::server {

namespace json = boost::json;

namespace {

JobBodyError shape(std::string message) {
    return JobBodyError{ApiError::invalid_body, std::move(message)};
}

std::optional<std::int64_t> integer_of(const json::value& v) {
    if (v.is_int64()) return v.as_int64();
    if (v.is_uint64() && v.as_uint64() <= std::uint64_t(INT64_MAX))
        return static_cast<std::int64_t>(v.as_uint64());
    return std::nullopt;
}

std::optional<double> number_of(const json::value& v) {
    if (v.is_number()) return v.to_number<double>();
    return std::nullopt;
}

// A string field that ends up in a request header line.
std::optional<JobBodyError> header_text(const json::object& object, std::string_view key,
                                        std::string& out) {
    auto* v = object.if_contains(key);
    if (!v || v->is_null()) return std::nullopt;
    if (!v->is_string()) return shape("\"" + std::string(key) + "\" must be a string");
    std::string_view text = v->as_string();
    if (auto why = check_header_text(key, text); !why.empty())
        return JobBodyError{ApiError::bad_header, why};
    out = std::string(text);
    return std::nullopt;
}

std::optional<JobBodyError> read_limits(const json::object& object, JobLimits& limits) {
    auto integer = [&](std::string_view key, std::int64_t lo,
                       auto& field) -> std::optional<JobBodyError> {
        auto* v = object.if_contains(key);
        if (!v || v->is_null()) return std::nullopt;
        auto n = integer_of(*v);
        if (!n || *n < lo)
            return shape("\"" + std::string(key) + "\" must be an integer of at least " +
                         std::to_string(lo));
        using T = typename std::decay_t<decltype(field)>::value_type;
        if constexpr (std::is_same_v<T, int>) {
            if (*n > 1'000'000'000) return shape("\"" + std::string(key) + "\" is too large");
        }
        field = static_cast<T>(*n);
        return std::nullopt;
    };
    if (auto e = integer("per_host", 1, limits.per_host)) return e;
    if (auto e = integer("max_bytes", 1, limits.max_bytes)) return e;
    if (auto e = integer("max_pixels", 1, limits.max_pixels)) return e;
    if (auto e = integer("retries", 0, limits.retries)) return e;
    if (auto* v = object.if_contains("per_host_rate"); v && !v->is_null()) {
        auto rate = number_of(*v);
        if (!rate || !(*rate > 0) || *rate > 1e9)
            return shape("\"per_host_rate\" must be a positive number (requests per second)");
        limits.per_host_rate = *rate;
    }
    if (auto* v = object.if_contains("timeout"); v && !v->is_null()) {
        auto seconds = number_of(*v);
        if (!seconds || !(*seconds >= 0.1) || *seconds > 86'400)
            return shape("\"timeout\" must be a number of seconds from 0.1 to 86400");
        limits.timeout = std::chrono::milliseconds(static_cast<std::int64_t>(*seconds * 1000));
    }
    return std::nullopt;
}

std::optional<JobBodyError> read_webhook(const json::value& value, RequestOptions& out) {
    auto bad = [](std::string message) { return JobBodyError{ApiError::bad_webhook, message}; };
    auto* object = value.if_object();
    if (!object) return bad("\"webhook\" must be an object {\"url\", \"secret\"?, \"events\"?}");
    WebhookSpec hook;
    auto* url = object->if_contains("url");
    if (!url || !url->is_string()) return bad("\"webhook.url\" must be a string");
    hook.url = std::string(url->as_string());
    if (auto why = check_header_text("webhook.url", hook.url); !why.empty()) return bad(why);
    if (auto* secret = object->if_contains("secret"); secret && !secret->is_null()) {
        if (!secret->is_string()) return bad("\"webhook.secret\" must be a string");
        hook.secret = std::string(secret->as_string());
        if (hook.secret.size() > kMaxWebhookSecretBytes)
            return bad("\"webhook.secret\" is longer than " +
                       std::to_string(kMaxWebhookSecretBytes) + " bytes");
        if (auto why = check_header_text("webhook.secret", hook.secret); !why.empty())
            return bad(why);
    }
    if (auto* events = object->if_contains("events"); events && !events->is_null()) {
        if (!events->is_array()) return bad("\"webhook.events\" must be an array");
        for (const auto& event : events->as_array()) {
            std::string_view name = event.is_string() ? std::string_view(event.as_string()) : "";
            bool known = false;
            for (auto k : kWebhookEvents) known = known || k == name;
            if (!known) return bad("\"webhook.events\" may hold only done, failed, cancelled");
            if (std::find(hook.events.begin(), hook.events.end(), name) == hook.events.end())
                hook.events.emplace_back(name);
        }
        if (hook.events.empty()) return bad("\"webhook.events\" must name at least one event");
    } else {
        for (auto k : kWebhookEvents) hook.events.emplace_back(k);
    }
    out.webhook = std::move(hook);
    return std::nullopt;
}

}  // namespace

std::optional<JobBodyError> read_request_options(const json::object& object, RequestOptions& out) {
    if (auto e = header_text(object, "user_agent", out.user_agent)) return e;
    if (auto e = header_text(object, "referer", out.referer)) return e;
    if (auto* headers = object.if_contains("headers"); headers && !headers->is_null()) {
        if (!headers->is_object())
            return shape("\"headers\" must be an object of header names to string values");
        for (const auto& [name, value] : headers->as_object()) {
            if (!value.is_string())
                return shape("header \"" + std::string(name) + "\" must have a string value");
            if (auto why = check_header(name, value.as_string()); !why.empty())
                return JobBodyError{ApiError::bad_header, why};
            out.headers.push_back({std::string(name), std::string(value.as_string())});
        }
    }
    // The limits at the top level, or in a "limits" object (not both).
    if (auto e = read_limits(object, out.limits)) return e;
    if (auto* limits = object.if_contains("limits"); limits && !limits->is_null()) {
        if (!limits->is_object()) return shape("\"limits\" must be an object");
        if (out.limits != JobLimits{})
            return shape("give the limits at the top level or in \"limits\", not both");
        if (auto e = read_limits(limits->as_object(), out.limits)) return e;
    }
    if (auto* hook = object.if_contains("webhook"); hook && !hook->is_null()) {
        if (auto e = read_webhook(*hook, out)) return e;
    }
    return std::nullopt;
}

std::optional<JobBodyError> read_job_body(std::string_view media_type, std::string_view body,
                                          std::string_view query_name, const JobBodyLimits& limits,
                                          JobBody& out) {
    auto too_many = [&] {
        return JobBodyError{ApiError::too_many_urls,
                            "a job may have at most " + std::to_string(limits.max_urls) + " URLs"};
    };
    auto not_strings = [] {
        return JobBodyError{ApiError::invalid_body, "\"urls\" must be an array of strings"};
    };
    out.urls.clear();
    out.name.clear();
    out.duplicates = 0;
    out.options = {};
    if (media_type == "application/json") {
        json::error_code ec;
        json::parse_options options;
        options.max_depth = kMaxJobJsonDepth;
        out.json = json::parse(body, ec, {}, options);
        if (ec) return JobBodyError{ApiError::malformed_json, "the body is not valid JSON"};
        auto* object = out.json.if_object();
        if (!object) return JobBodyError{ApiError::invalid_body, "expected a JSON object"};
        auto* list = object->if_contains("urls");
        if (!list || !list->is_array()) return not_strings();
        if (list->as_array().size() > limits.max_urls) return too_many();
        std::vector<std::string_view> entries;
        entries.reserve(list->as_array().size());
        for (const auto& url : list->as_array()) {
            if (!url.is_string()) return not_strings();
            entries.emplace_back(url.as_string().data(), url.as_string().size());
        }
        // The list rule (jobs/url_list.hpp): blank, comment and duplicate entries go.
        auto kept = read_url_entries(entries);
        out.urls = std::move(kept.lines);
        out.duplicates = kept.duplicates;
        if (auto* name = object->if_contains("name"); name && !name->is_null()) {
            if (!name->is_string())
                return JobBodyError{ApiError::invalid_body, "\"name\" must be a string"};
            out.name = std::string(name->as_string());
        }
        if (auto error = read_request_options(*object, out.options)) return error;
    } else if (media_type == "text/plain") {
        auto kept = read_url_list(body);
        out.urls = std::move(kept.lines);
        out.duplicates = kept.duplicates;
        // Judged on what was sent, duplicates included, as for JSON.
        if (out.urls.size() + out.duplicates > limits.max_urls) return too_many();
        out.name = std::string(query_name);
    } else {
        return JobBodyError{
            ApiError::unsupported_media_type,
            "send application/json {\"urls\": [...]} or text/plain, one URL a line"};
    }
    if (out.urls.empty()) return JobBodyError{ApiError::no_urls, "the job has no URLs"};
    if (out.name.size() > limits.max_name_bytes) {
        return JobBodyError{
            ApiError::invalid_body,
            "the name is longer than " + std::to_string(limits.max_name_bytes) + " bytes"};
    }
    return std::nullopt;
}

}  // namespace litchi::server
