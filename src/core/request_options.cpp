// See request_options.hpp.
#include "core/request_options.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>

namespace litchi {
namespace {

char lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                              [](char x, char y) { return lower(x) == lower(y); });
}

bool istarts_with(std::string_view text, std::string_view prefix) {
    return text.size() >= prefix.size() && iequals(text.substr(0, prefix.size()), prefix);
}

bool iends_with(std::string_view text, std::string_view suffix) {
    return text.size() >= suffix.size() &&
           iequals(text.substr(text.size() - suffix.size()), suffix);
}

// RFC 9110 5.6.2: tchar.
bool is_token_char(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Headers the transfer itself owns: sending the user's would break framing or
// routing (Host, Content-Length, Transfer-Encoding, Connection) or reach a
// proxy (Proxy-*); Cookie2 is obsolete and refused by modern agents.
bool is_transfer_header(std::string_view name) {
    for (std::string_view owned :
         {"Host", "Content-Length", "Transfer-Encoding", "Connection", "Cookie2"}) {
        if (iequals(name, owned)) return true;
    }
    return istarts_with(name, "Proxy-");
}

template <class T>
bool parse_number(std::string_view text, T& out) {
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

std::string check_header_text(std::string_view what, std::string_view value) {
    for (char c : value) {
        if (c == '\r' || c == '\n') return std::string(what) + " must not contain CR or LF";
        auto u = static_cast<unsigned char>(c);
        if ((u < 0x20 && c != '\t') || u == 0x7F)
            return std::string(what) + " must not contain control characters";
    }
    return {};
}

std::string check_header(std::string_view name, std::string_view value) {
    if (name.empty()) return "a header name must not be empty";
    for (char c : name) {
        if (c == '\r' || c == '\n') return "a header name must not contain CR or LF";
    }
    if (!std::all_of(name.begin(), name.end(), is_token_char))
        return "header name \"" + std::string(name) + "\" is not a token (RFC 9110)";
    if (is_transfer_header(name))
        return "header \"" + std::string(name) + "\" is set by the transfer itself";
    return check_header_text("header \"" + std::string(name) + "\"", value);
}

std::optional<HeaderField> parse_header_line(std::string_view line, std::string* error) {
    auto colon = line.find(':');
    if (colon == std::string_view::npos) {
        if (error) *error = "a header must be written 'Name: value'";
        return std::nullopt;
    }
    HeaderField field{std::string(line.substr(0, colon)),
                      std::string(trim(line.substr(colon + 1)))};
    if (auto why = check_header(field.name, field.value); !why.empty()) {
        if (error) *error = why;
        return std::nullopt;
    }
    return field;
}

bool is_credential_header(std::string_view name) {
    return iequals(name, "Authorization") || iequals(name, "Cookie") ||
           iends_with(name, "-Token") || iends_with(name, "-Key");
}

std::string check_tighter(const JobLimits& job, const FetchLimits& server, double server_rate) {
    auto looser = [](std::string_view what, const std::string& server_value) {
        return std::string(what) + " may only be tighter than the server's limit (" + server_value +
               ")";
    };
    if (job.per_host) {
        int server_per_host = server.per_host > 0 ? server.per_host : server.concurrency;
        if (*job.per_host < 1 || *job.per_host > server_per_host)
            return looser("per_host", std::to_string(server_per_host) + " at once per host");
    }
    if (job.per_host_rate) {
        double rate = *job.per_host_rate;
        if (!std::isfinite(rate) || rate <= 0) return "per_host_rate must be a positive number";
        if (server_rate > 0 && rate > server_rate) {
            std::ostringstream text;
            text << server_rate << " requests/s per host";
            return looser("per_host_rate", text.str());
        }
    }
    if (job.max_bytes && (*job.max_bytes < 1 || *job.max_bytes > server.max_bytes))
        return looser("max_bytes", std::to_string(server.max_bytes) + " bytes");
    if (job.max_pixels && (*job.max_pixels < 1 || *job.max_pixels > server.max_pixels))
        return looser("max_pixels", std::to_string(server.max_pixels) + " pixels");
    if (job.retries && (*job.retries < 0 || *job.retries > server.retries))
        return looser("retries", std::to_string(server.retries) + " retries");
    if (job.timeout && (job.timeout->count() < 100 || *job.timeout > server.total_timeout)) {
        std::ostringstream text;
        text << std::chrono::duration<double>(server.total_timeout).count() << " s";
        return job.timeout->count() < 100 ? std::string("timeout must be at least 0.1 s")
                                          : looser("timeout", text.str());
    }
    return {};
}

FetchLimits apply_job_limits(FetchLimits limits, const JobLimits& job) {
    if (job.per_host) limits.per_host = *job.per_host;
    if (job.max_bytes) limits.max_bytes = std::min(limits.max_bytes, *job.max_bytes);
    if (job.max_pixels) limits.max_pixels = std::min(limits.max_pixels, *job.max_pixels);
    if (job.retries) limits.retries = std::min(limits.retries, *job.retries);
    if (job.timeout) limits.total_timeout = std::min(limits.total_timeout, *job.timeout);
    return limits;
}

std::string encode_request_options(const RequestOptions& o) {
    std::string out = "v1\n";
    auto line = [&](std::string_view key, std::string_view value) {
        out.append(key).append(" ").append(value).append("\n");
    };
    if (!o.user_agent.empty()) line("user_agent", o.user_agent);
    for (const auto& h : o.headers) line("header", h.name + ": " + h.value);
    if (!o.referer.empty()) line("referer", o.referer);
    const auto& l = o.limits;
    if (l.per_host) line("per_host", std::to_string(*l.per_host));
    if (l.per_host_rate) {
        std::ostringstream text;
        text.precision(17);
        text << *l.per_host_rate;
        line("per_host_rate", text.str());
    }
    if (l.max_bytes) line("max_bytes", std::to_string(*l.max_bytes));
    if (l.max_pixels) line("max_pixels", std::to_string(*l.max_pixels));
    if (l.retries) line("retries", std::to_string(*l.retries));
    if (l.timeout) line("timeout_ms", std::to_string(l.timeout->count()));
    if (o.webhook) {
        line("webhook_url", o.webhook->url);
        line("webhook_secret", o.webhook->secret);
        std::string events;
        for (const auto& e : o.webhook->events) events += (events.empty() ? "" : ",") + e;
        line("webhook_events", events);
    }
    return out;
}

std::optional<RequestOptions> decode_request_options(std::string_view text) {
    RequestOptions o;
    if (text.empty()) return o;
    if (!text.starts_with("v1\n")) return std::nullopt;
    text.remove_prefix(3);
    while (!text.empty()) {
        auto end = text.find('\n');
        if (end == std::string_view::npos) return std::nullopt;
        auto line = text.substr(0, end);
        text.remove_prefix(end + 1);
        auto space = line.find(' ');
        if (space == std::string_view::npos) return std::nullopt;
        auto key = line.substr(0, space);
        auto value = line.substr(space + 1);
        auto hook = [&]() -> WebhookSpec& {
            if (!o.webhook) o.webhook.emplace();
            return *o.webhook;
        };
        if (key == "user_agent") {
            o.user_agent = value;
        } else if (key == "header") {
            auto colon = value.find(": ");
            if (colon == std::string_view::npos) return std::nullopt;
            o.headers.push_back(
                {std::string(value.substr(0, colon)), std::string(value.substr(colon + 2))});
        } else if (key == "referer") {
            o.referer = value;
        } else if (key == "per_host") {
            int n = 0;
            if (!parse_number(value, n)) return std::nullopt;
            o.limits.per_host = n;
        } else if (key == "per_host_rate") {
            try {
                o.limits.per_host_rate = std::stod(std::string(value));
            } catch (...) {
                return std::nullopt;
            }
        } else if (key == "max_bytes" || key == "max_pixels") {
            std::uint64_t n = 0;
            if (!parse_number(value, n)) return std::nullopt;
            (key == "max_bytes" ? o.limits.max_bytes : o.limits.max_pixels) = n;
        } else if (key == "retries") {
            int n = 0;
            if (!parse_number(value, n)) return std::nullopt;
            o.limits.retries = n;
        } else if (key == "timeout_ms") {
            std::int64_t n = 0;
            if (!parse_number(value, n)) return std::nullopt;
            o.limits.timeout = std::chrono::milliseconds(n);
        } else if (key == "webhook_url") {
            hook().url = value;
        } else if (key == "webhook_secret") {
            hook().secret = value;
        } else if (key == "webhook_events") {
            auto& events = hook().events;
            while (!value.empty()) {
                auto comma = value.find(',');
                events.emplace_back(value.substr(0, comma));
                if (comma == std::string_view::npos) break;
                value.remove_prefix(comma + 1);
            }
        } else {
            return std::nullopt;
        }
    }
    return o;
}

std::string webhook_event_list(const RequestOptions& options) {
    if (!options.webhook) return {};
    std::string out = ",";
    for (const auto& e : options.webhook->events) out += e + ",";
    return out;
}

}  // namespace litchi
