// IP address parsing and classification for the SSRF guard.
//
// The guard judges the address a socket is about to connect to (see
// on_open_socket in fetch/transfer.cpp, through address_permitted in
// fetch/url_check.hpp), so DNS answers and redirects cannot sneak past it. The
// parsers here also accept the legacy IPv4 spellings that inet_aton and URL
// hosts allow (2130706433, 0177.1, 0x7f.0.0.1) so that a URL can be refused
// before any connection is tried.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace litchi {

struct IpAddress {
    enum class Family { v4, v6 } family = Family::v4;
    // v4 uses bytes[0..3]; v6 uses all 16 bytes. Network byte order.
    std::array<std::uint8_t, 16> bytes{};

    static IpAddress v4(std::uint32_t host_order);
    static IpAddress v6(const std::array<std::uint8_t, 16>& b);
    std::uint32_t v4_value() const;  // host order; only for Family::v4
    std::string to_string() const;
    bool operator==(const IpAddress&) const = default;
};

enum class AddressClass {
    global,
    unspecified,  // 0.0.0.0/8, ::
    loopback,     // 127/8, ::1
    private_use,  // 10/8, 172.16/12, 192.168/16, fc00::/7
    shared,       // 100.64/10 (carrier-grade NAT)
    link_local,   // 169.254/16, fe80::/10, fec0::/10 (site-local, deprecated)
    multicast,    // 224/4, ff00::/8
    reserved,     // 240/4, broadcast, IETF/documentation/benchmark ranges, ...
    translation,  // 64:ff9b::/96, 64:ff9b:1::/48, 2002::/16, 2001::/32 (tunnels)
};

std::string_view to_string(AddressClass c);

// Classifies an address. IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible
// (::a.b.c.d) IPv6 addresses are unwrapped and judged as the IPv4 inside.
AddressClass classify(const IpAddress& address);
inline bool is_global(const IpAddress& address) {
    return classify(address) == AddressClass::global;
}

// inet_aton-style IPv4: one to four parts, each decimal, octal (leading 0) or
// hex (0x). "127.1" and "2130706433" are 127.0.0.1. Returns nullopt otherwise.
std::optional<IpAddress> parse_ipv4(std::string_view text);

// RFC 4291 text form, with optional embedded dotted IPv4 at the end and an
// optional zone ("%eth0", ignored). No brackets.
std::optional<IpAddress> parse_ipv6(std::string_view text);

// A URL host: "[v6]" or anything parse_ipv4 accepts. nullopt for a name.
std::optional<IpAddress> parse_ip_host(std::string_view host);

// An address range, "127.0.0.1/32" or "::1/128" (a bare address is a /32 or /128).
// Used by --allow-cidr to let a few non-global ranges through the SSRF guard.
// An IPv4-mapped range (::ffff:10.0.0.0/104) is read as the IPv4 range it
// spells (10.0.0.0/8); one wider than /96 is refused.
struct CidrRange {
    IpAddress base;
    int prefix = 0;
    // IPv4-mapped IPv6 addresses match IPv4 ranges.
    bool contains(const IpAddress& address) const;
};
std::optional<CidrRange> parse_cidr(std::string_view text);

}  // namespace litchi
