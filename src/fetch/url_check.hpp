// URL admission: what the engine will try to fetch at all. Parsed with
// Boost.URL. Only http and https, a host, no userinfo; an IP-literal host that
// is not global is refused here already (the connect-time guard catches names).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/address.hpp"
#include "core/config.hpp"
#include "core/reason.hpp"

struct sockaddr;

namespace litchi {

// The IP address of a socket address curl is about to connect to (IPv4 or
// IPv6; nullopt for any other family): what the connect-time guard judges.
std::optional<IpAddress> sockaddr_to_ip(const struct sockaddr* sa);

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

// check_url's verdict without the words: the same rule and the same normalised
// URL, but `url` is a view valid until the checker's next call, and no text is
// built for a refusal.
struct UrlVerdict {
    FailureReason reason = FailureReason::none;  // none: accepted
    std::string_view url;                        // normalised, when accepted
    bool ok() const { return reason == FailureReason::none; }
};

// For checking many URLs in a row (a new job's lines): check_url copies every
// URL to normalise it, and allocates its result and any refusal's text; this
// answers with the text itself when it is in normal form already (most are)
// and otherwise keeps one URL buffer for all calls. One thread at a time;
// `limits` must outlive it.
class UrlChecker {
  public:
    explicit UrlChecker(const FetchLimits& limits);
    ~UrlChecker();
    UrlChecker(const UrlChecker&) = delete;
    UrlChecker& operator=(const UrlChecker&) = delete;

    UrlVerdict check(std::string_view text);

  private:
    struct Scratch;
    const FetchLimits& limits_;
    std::unique_ptr<Scratch> scratch_;
};

// Resolves a redirect Location against the current URL and checks the result.
UrlCheck check_redirect(std::string_view base, std::string_view location,
                        const FetchLimits& limits);

}  // namespace litchi
