// URL admission: what the engine will try to fetch at all. Parsed with
// Boost.URL. Only http and https, a host, no userinfo; an IP-literal host that
// is not global is refused here already (the connect-time guard catches names).
#pragma once

#include <string>
#include <string_view>

#include "core/address.hpp"
#include "core/config.hpp"
#include "core/reason.hpp"

namespace litchi {

struct UrlCheck {
    bool ok = false;
    std::string url;                             // normalised when ok
    FailureReason reason = FailureReason::none;  // bad_url or blocked_address when !ok
    std::string detail;                          // why, for humans
};

// Whether the SSRF guard lets a connection to `address` through.
bool address_permitted(const IpAddress& address, const FetchLimits& limits);

UrlCheck check_url(std::string_view text, const FetchLimits& limits);
UrlCheck check_url(std::string_view text, bool allow_private);

// Resolves a redirect Location against the current URL and checks the result.
UrlCheck check_redirect(std::string_view base, std::string_view location,
                        const FetchLimits& limits);

}  // namespace litchi
