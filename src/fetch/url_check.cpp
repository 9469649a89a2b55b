#include "fetch/url_check.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>
#include <cstring>

namespace litchi {

std::optional<IpAddress> sockaddr_to_ip(const struct sockaddr* sa) {
    if (sa->sa_family == AF_INET) {
        auto* in = reinterpret_cast<const sockaddr_in*>(sa);
        return IpAddress::v4(ntohl(in->sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
        std::array<std::uint8_t, 16> b{};
        std::memcpy(b.data(), in6->sin6_addr.s6_addr, 16);
        return IpAddress::v6(b);
    }
    return std::nullopt;
}

namespace {

// Whether the engine may fetch `u` at all. On refusal returns the reason and,
// when `detail` is given, says why there (only then is that text built: the
// admission of a large job asks for none).
FailureReason judge(const boost::urls::url_view_base& u, const FetchLimits& limits,
                    std::string* detail) {
    auto refuse = [&](FailureReason reason, auto&& why) {
        if (detail) *detail = why();
        return reason;
    };
    auto text = [](const char* what) { return [what] { return std::string(what); }; };
    if (u.scheme_id() != boost::urls::scheme::http && u.scheme_id() != boost::urls::scheme::https)
        return refuse(FailureReason::bad_url, text("only http and https URLs are fetched"));
    if (!u.has_authority() || u.encoded_host().empty())
        return refuse(FailureReason::bad_url, text("the URL has no host"));
    // Credentials in URLs leak into logs and manifests; refuse them outright.
    if (u.has_userinfo())
        return refuse(FailureReason::bad_url,
                      text("URLs with a user name or password are refused"));
    if (u.has_port() && (u.port().empty() || u.port_number() == 0))
        return refuse(FailureReason::bad_url, text("the URL has an invalid port"));
    if (u.host_type() == boost::urls::host_type::ipvfuture)
        return refuse(FailureReason::bad_url, text("IPvFuture hosts are not supported"));
    std::string_view host = u.encoded_host_address();
    if (u.host_type() == boost::urls::host_type::name) {
        for (char ch : host)
            if (ch == '%' || ch == ' ')
                return refuse(FailureReason::bad_url, text("the host name is not valid"));
    }
    // Numeric hosts in any spelling curl would accept (2130706433, 0x7f.1) are
    // judged now; names are judged at connect time by the socket guard.
    // (parse_ip_host takes an IPv6 address with or without its brackets.)
    if (auto ip = parse_ip_host(host)) {
        if (!address_permitted(*ip, limits))
            return refuse(FailureReason::blocked_address, [&] {
                return "address " + ip->to_string() + " is " +
                       std::string(to_string(classify(*ip)));
            });
    }
    return FailureReason::none;
}

// The form a URL is fetched and stored in.
void normalise(boost::urls::url& u) {
    u.remove_fragment();
    u.normalize_scheme();
    u.normalize_authority();
    if (u.encoded_path().empty()) u.set_path_absolute(true);
}

// Whether normalise() would change `u`, judged without copying it: a fragment
// to remove, an empty path, or an upper-case letter or percent sign in the
// scheme or authority (normalize_scheme lower-cases the scheme;
// normalize_authority lower-cases the host and rewrites percent escapes in
// host and userinfo, and leaves an authority without either alone). May say
// yes when the result would be the same; never says no when it would differ.
bool needs_normalising(const boost::urls::url_view_base& u) {
    auto plain = [](std::string_view part) {
        return std::none_of(part.begin(), part.end(),
                            [](char c) { return c == '%' || (c >= 'A' && c <= 'Z'); });
    };
    return u.has_fragment() || u.encoded_path().empty() || !plain(u.scheme()) ||
           !plain(u.encoded_authority());
}

// The text check_url parses: without surrounding blanks.
std::string_view trim_url(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r'))
        text.remove_suffix(1);
    return text;
}

constexpr std::size_t kMaxUrlBytes = 8192;

UrlCheck refuse(FailureReason reason, std::string detail) {
    UrlCheck c;
    c.reason = reason;
    c.detail = std::move(detail);
    return c;
}

UrlCheck admit(boost::urls::url u, const FetchLimits& limits) {
    UrlCheck c;
    c.reason = judge(u, limits, &c.detail);
    c.ok = c.reason == FailureReason::none;
    if (!c.ok) return c;
    normalise(u);
    c.url = std::string(u.buffer());
    return c;
}

}  // namespace

struct UrlChecker::Scratch {
    boost::urls::url url;
};

UrlChecker::UrlChecker(const FetchLimits& limits)
    : limits_(limits), scratch_(std::make_unique<Scratch>()) {}

UrlChecker::~UrlChecker() = default;

UrlVerdict UrlChecker::check(std::string_view text) {
    text = trim_url(text);
    if (text.empty() || text.size() > kMaxUrlBytes) return {FailureReason::bad_url, {}};
    auto parsed = boost::urls::parse_uri(text);
    if (!parsed) return {FailureReason::bad_url, {}};
    auto reason = judge(*parsed, limits_, nullptr);
    if (reason != FailureReason::none) return {reason, {}};
    // Most URLs are in normal form already: then the text itself is the answer.
    if (!needs_normalising(*parsed)) return {FailureReason::none, text};
    // Assigning reuses the buffer the last URL left: no allocation per line.
    scratch_->url = *parsed;
    normalise(scratch_->url);
    return {FailureReason::none, scratch_->url.buffer()};
}

bool address_permitted(const IpAddress& address, const FetchLimits& limits) {
    if (limits.allow_private) return true;
    if (is_global(address)) return true;
    for (const auto& range : limits.allowed_ranges)
        if (range.contains(address)) return true;
    return false;
}

UrlCheck check_url(std::string_view text, const FetchLimits& limits) {
    text = trim_url(text);
    if (text.empty()) return refuse(FailureReason::bad_url, "empty URL");
    if (text.size() > kMaxUrlBytes)
        return refuse(FailureReason::bad_url, "URL longer than 8192 bytes");
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
