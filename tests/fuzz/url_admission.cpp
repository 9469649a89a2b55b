// Fuzz target: URL admission (fetch/url_check.hpp) and the address parsing and
// classification under it (core/address.hpp), the SSRF guard's front door.
//
// Input: one byte of flags, then text. Flags: bit 0 --allow-private, bit 1 an
// --allow-cidr range (the text's first line, when it parses as one). The text
// (all of it, and its two first lines as a redirect's base and Location) goes
// through every entry point. Besides "no crash, no sanitizer report" it checks:
//  - check_url and UrlChecker::check agree on the verdict and the URL;
//  - an admitted URL is in normal form (admitting it again changes nothing);
//  - an admitted URL whose host is an IP literal names a permitted address;
//  - an address prints as text that parses back to the same address, and a
//    range contains its own base address.
#include <boost/url/parse.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/address.hpp"
#include "fetch/url_check.hpp"

using namespace litchi;

namespace {

void require(bool ok, const char* what, std::string_view input) {
    if (ok) return;
    std::fprintf(stderr, "url_admission: %s for input [%.*s]\n", what, int(input.size()),
                 input.data());
    std::abort();
}

void check_address(std::string_view text) {
    for (auto ip : {parse_ipv4(text), parse_ipv6(text), parse_ip_host(text)}) {
        if (!ip) continue;
        auto printed = ip->to_string();
        auto again =
            ip->family == IpAddress::Family::v4 ? parse_ipv4(printed) : parse_ipv6(printed);
        require(again && *again == *ip, "an address does not read back from its text", text);
        (void)classify(*ip);
    }
    if (auto range = parse_cidr(text)) {
        require(range->prefix >= 0 &&
                    range->prefix <= (range->base.family == IpAddress::Family::v4 ? 32 : 128),
                "a range's prefix is out of bounds", text);
        require(range->contains(range->base), "a range does not contain its own base", text);
    }
}

// The URL as admitted: its host, when that is an IP literal, must be one the guard lets through.
void check_admitted(std::string_view url, const FetchLimits& limits, std::string_view input) {
    auto parsed = boost::urls::parse_uri(url);
    require(parsed.has_value(), "an admitted URL does not parse", input);
    if (auto ip = parse_ip_host(parsed->encoded_host_address()))
        require(address_permitted(*ip, limits), "an admitted URL names a blocked address", input);
    auto again = check_url(url, limits);
    require(again.ok && again.url == url, "an admitted URL is not in normal form", input);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const std::uint8_t flags = data[0];
    std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
    const auto newline = text.find('\n');
    std::string_view first = text.substr(0, newline);
    std::string_view rest =
        newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);

    FetchLimits limits;
    limits.allow_private = flags & 1;
    if (flags & 2) {
        if (auto range = parse_cidr(first)) limits.allowed_ranges.push_back(*range);
    }

    check_address(text);
    check_address(first);

    auto checked = check_url(text, limits);
    UrlChecker checker(limits);
    auto verdict = checker.check(text);
    require(checked.ok == verdict.ok() && checked.reason == verdict.reason,
            "check_url and UrlChecker disagree on the verdict", text);
    if (checked.ok) {
        require(checked.url == verdict.url, "check_url and UrlChecker disagree on the URL", text);
        check_admitted(checked.url, limits, text);
    } else {
        require(checked.reason == FailureReason::bad_url ||
                    checked.reason == FailureReason::blocked_address,
                "a refusal with an unexpected reason", text);
    }

    auto redirect = check_redirect(first, rest, limits);
    if (redirect.ok) check_admitted(redirect.url, limits, text);
    return 0;
}
