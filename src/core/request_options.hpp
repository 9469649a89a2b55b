// What one job (or one `litchi fetch` run) asks of every request it makes:
// a User-Agent, extra headers, a Referer, and limits that may only be
// tighter than the server's; plus where to report the job's end (a webhook).
//
// The header rules live here so `POST /api/jobs` and `litchi fetch -H` refuse
// the same things for the same reasons: a header the transfer itself owns
// (Host, Content-Length, Transfer-Encoding, Connection, Cookie2, Proxy-*),
// a name that is not an RFC 9110 token, and any CR or LF (header injection).
// Credential-looking headers (Authorization, Cookie, *-Token, *-Key) are sent
// as given but shown as "<redacted>" everywhere else (logs, API answers).
//
// Stored with the job as text (encode/decode below): one `key value` line
// per field; the rules above make CR and LF impossible inside a value.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"

namespace litchi {

inline constexpr std::string_view kRedacted = "<redacted>";

// Why a header may not be sent as given; empty when it may.
std::string check_header(std::string_view name, std::string_view value);
// "Name: value" (as `-H` takes it) into a field, checked by check_header.
std::optional<HeaderField> parse_header_line(std::string_view line, std::string* error);
// Authorization, Cookie, *-Token, *-Key (any case).
bool is_credential_header(std::string_view name);
// A value for a User-Agent or Referer: printable text, no CR/LF; empty when fine.
std::string check_header_text(std::string_view what, std::string_view value);

// Limits a job sets for itself; each may only be tighter than the server's.
struct JobLimits {
    std::optional<int> per_host;          // transfers at once to one host, this job
    std::optional<double> per_host_rate;  // requests per second to one host, this job
    std::optional<std::uint64_t> max_bytes;
    std::optional<std::uint64_t> max_pixels;
    std::optional<int> retries;
    std::optional<std::chrono::milliseconds> timeout;  // whole transfer
    bool operator==(const JobLimits&) const = default;
};

// Empty when every limit set is at most the server's; otherwise a message
// naming the first that is not and the server's value. `server_rate` is the
// server's --per-host-rate (0: none, any rate is tighter).
std::string check_tighter(const JobLimits& job, const FetchLimits& server, double server_rate = 0);

// The server's limits with the job's applied.
FetchLimits apply_job_limits(FetchLimits limits, const JobLimits& job);

// Job end events a webhook may ask for. `failed`: the job finished (done)
// with at least one failed item; `done`: finished with none failed.
inline constexpr std::string_view kWebhookEvents[] = {"done", "failed", "cancelled"};

struct WebhookSpec {
    std::string url;
    std::string secret;               // may be empty (the signature is then keyed with "")
    std::vector<std::string> events;  // subset of kWebhookEvents; all when not given
    bool operator==(const WebhookSpec&) const = default;
};

struct RequestOptions {
    std::string user_agent;  // empty: the server's (--user-agent)
    std::vector<HeaderField> headers;
    std::string referer;
    JobLimits limits;
    std::optional<WebhookSpec> webhook;

    bool empty() const {
        return user_agent.empty() && headers.empty() && referer.empty() && limits == JobLimits{} &&
               !webhook;
    }
    bool operator==(const RequestOptions&) const = default;
};

// The stored form; decode(encode(o)) == o. decode returns nullopt for text
// no version of encode wrote.
std::string encode_request_options(const RequestOptions& options);
std::optional<RequestOptions> decode_request_options(std::string_view text);

// ",done,failed," for a webhook's events (what the stores' triggers match);
// empty without a webhook.
std::string webhook_event_list(const RequestOptions& options);

}  // namespace litchi
