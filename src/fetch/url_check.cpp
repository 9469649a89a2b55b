#include "fetch/url_check.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>

namespace litchi {
namespace {

UrlCheck refuse(FailureReason reason, std::string detail) {
    UrlCheck c;
    c.reason = reason;
    c.detail = std::move(detail);
    return c;
}

UrlCheck admit(boost::urls::url u, const FetchLimits& limits) {
    if (u.scheme_id() != boost::urls::scheme::http && u.scheme_id() != boost::urls::scheme::https)
        return refuse(FailureReason::bad_url, "only http and https URLs are fetched");
    if (!u.has_authority() || u.encoded_host().empty())
        return refuse(FailureReason::bad_url, "the URL has no host");
    // Credentials in URLs leak into logs and manifests; refuse them outright.
    if (u.has_userinfo())
        return refuse(FailureReason::bad_url, "URLs with a user name or password are refused");
    if (u.has_port() && (u.port().empty() || u.port_number() == 0))
        return refuse(FailureReason::bad_url, "the URL has an invalid port");
    if (u.host_type() == boost::urls::host_type::ipvfuture)
        return refuse(FailureReason::bad_url, "IPvFuture hosts are not supported");
    std::string host(u.encoded_host_address());
    if (u.host_type() == boost::urls::host_type::name) {
        for (char ch : host)
            if (ch == '%' || ch == ' ')
                return refuse(FailureReason::bad_url, "the host name is not valid");
    }
    // Numeric hosts in any spelling curl would accept (2130706433, 0x7f.1) are
    // judged now; names are judged at connect time by the socket guard.
    if (auto ip = parse_ip_host(u.host_type() == boost::urls::host_type::ipv6 ? "[" + host + "]"
                                                                              : host)) {
        if (!address_permitted(*ip, limits))
            return refuse(
                FailureReason::blocked_address,
                "address " + ip->to_string() + " is " + std::string(to_string(classify(*ip))));
    }
    u.remove_fragment();
    u.normalize_scheme();
    u.normalize_authority();
    if (u.encoded_path().empty()) u.set_path_absolute(true);
    UrlCheck c;
    c.ok = true;
    c.url = std::string(u.buffer());
    return c;
}

}  // namespace

bool address_permitted(const IpAddress& address, const FetchLimits& limits) {
    if (limits.allow_private) return true;
    if (is_global(address)) return true;
    for (const auto& range : limits.allowed_ranges)
        if (range.contains(address)) return true;
    return false;
}

UrlCheck check_url(std::string_view text, const FetchLimits& limits) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r'))
        text.remove_suffix(1);
    if (text.empty()) return refuse(FailureReason::bad_url, "empty URL");
    if (text.size() > 8192) return refuse(FailureReason::bad_url, "URL longer than 8192 bytes");
    auto parsed = boost::urls::parse_uri(text);
    if (!parsed) return refuse(FailureReason::bad_url, "not a valid absolute URL");
    return admit(boost::urls::url(*parsed), limits);
}

UrlCheck check_url(std::string_view text, bool allow_private) {
    FetchLimits limits;
    limits.allow_private = allow_private;
    return check_url(text, limits);
}

UrlCheck check_redirect(std::string_view base, std::string_view location,
                        const FetchLimits& limits) {
    auto b = boost::urls::parse_uri(base);
    auto ref = boost::urls::parse_uri_reference(location);
    if (!b || !ref) return refuse(FailureReason::bad_url, "redirect to an invalid URL");
    boost::urls::url dest;
    if (!boost::urls::resolve(*b, *ref, dest))
        return refuse(FailureReason::bad_url, "redirect to an invalid URL");
    return admit(std::move(dest), limits);
}

}  // namespace litchi
