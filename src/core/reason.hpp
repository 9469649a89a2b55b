// The shared failure vocabulary: one fixed set of reasons used by the CLI
// manifest, the HTTP API and the web UI (see docs/api.md).
#pragma once

#include <optional>
#include <string_view>

namespace litchi {

enum class FailureReason {
    none,
    bad_url,
    dns,
    connect,
    tls,
    timeout,
    http,
    too_large,
    truncated,
    too_many_redirects,
    blocked_address,
    not_image,
    too_many_pixels,
    io,
    cancelled,
};

std::string_view to_string(FailureReason reason);
std::optional<FailureReason> parse_failure_reason(std::string_view text);

// Transient failures are worth another attempt; the rest are final.
// `http_status` only matters for FailureReason::http (5xx and 429 are transient).
bool is_transient(FailureReason reason, int http_status);

}  // namespace litchi
