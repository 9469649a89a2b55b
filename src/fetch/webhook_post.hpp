// One HTTP POST of a small JSON body to a URL a user gave (a completion
// webhook), through the same SSRF guard as every download: the URL passes
// check_url, and every address curl connects to passes address_permitted
// (so a name that resolves to a blocked address is refused at connect time,
// as in the engine). No redirects are followed (a 3xx is an answer like any
// other non-2xx), no proxy unless FetchLimits::use_proxy_env. Blocking: the
// caller runs it on its own thread, one at a time.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"
#include "core/reason.hpp"

namespace litchi {

struct PostResult {
    FailureReason reason = FailureReason::none;  // none: an HTTP answer came (any status)
    int http_status = 0;
    std::string detail;  // why it failed, for the delivery's `error` (never a secret)
    bool ok() const { return reason == FailureReason::none && http_status / 100 == 2; }
};

// `headers`: "Name: value" lines, sent as given (Content-Type is added).
PostResult post_json(std::string_view url, std::string_view body,
                     const std::vector<std::string>& headers, const FetchLimits& limits,
                     std::chrono::milliseconds timeout);

}  // namespace litchi
