#include "core/reason.hpp"

#include <array>
#include <utility>

namespace litchi {
namespace {

constexpr std::array<std::pair<FailureReason, std::string_view>, 15> kNames{{
    {FailureReason::none, "none"},
    {FailureReason::bad_url, "bad_url"},
    {FailureReason::dns, "dns"},
    {FailureReason::connect, "connect"},
    {FailureReason::tls, "tls"},
    {FailureReason::timeout, "timeout"},
    {FailureReason::http, "http"},
    {FailureReason::too_large, "too_large"},
    {FailureReason::truncated, "truncated"},
    {FailureReason::too_many_redirects, "too_many_redirects"},
    {FailureReason::blocked_address, "blocked_address"},
    {FailureReason::not_image, "not_image"},
    {FailureReason::too_many_pixels, "too_many_pixels"},
    {FailureReason::io, "io"},
    {FailureReason::cancelled, "cancelled"},
}};

}  // namespace

std::string_view to_string(FailureReason reason) {
    for (const auto& [r, name] : kNames)
        if (r == reason) return name;
    return "none";
}

std::optional<FailureReason> parse_failure_reason(std::string_view text) {
    for (const auto& [r, name] : kNames)
        if (name == text) return r;
    return std::nullopt;
}

bool is_transient(FailureReason reason, int http_status) {
    switch (reason) {
        case FailureReason::connect:
        case FailureReason::timeout:
        case FailureReason::truncated:
        case FailureReason::dns:  // resolvers fail transiently; capped by --retries anyway
            return true;
        case FailureReason::http:
            return http_status == 429 || http_status == 408 ||
                   (http_status >= 500 && http_status <= 599);
        default:
            return false;
    }
}

}  // namespace litchi
