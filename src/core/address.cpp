#include "core/address.hpp"

#include <charconv>
#include <cstdio>
#include <vector>

namespace litchi {
namespace {

struct V4Range {
    std::uint32_t base;
    int prefix;
    AddressClass cls;
};

constexpr std::uint32_t ip4(unsigned a, unsigned b, unsigned c, unsigned d) {
    return (a << 24) | (b << 16) | (c << 8) | d;
}

// IANA IPv4 special-purpose registry, as far as it matters for "not global".
constexpr V4Range kV4Blocked[] = {
    {ip4(0, 0, 0, 0), 8, AddressClass::unspecified},
    {ip4(10, 0, 0, 0), 8, AddressClass::private_use},
    {ip4(100, 64, 0, 0), 10, AddressClass::shared},
    {ip4(127, 0, 0, 0), 8, AddressClass::loopback},
    {ip4(169, 254, 0, 0), 16, AddressClass::link_local},
    {ip4(172, 16, 0, 0), 12, AddressClass::private_use},
    {ip4(192, 0, 0, 0), 24, AddressClass::reserved},
    {ip4(192, 0, 2, 0), 24, AddressClass::reserved},
    {ip4(192, 88, 99, 0), 24, AddressClass::translation},
    {ip4(192, 168, 0, 0), 16, AddressClass::private_use},
    {ip4(198, 18, 0, 0), 15, AddressClass::reserved},
    {ip4(198, 51, 100, 0), 24, AddressClass::reserved},
    {ip4(203, 0, 113, 0), 24, AddressClass::reserved},
    {ip4(224, 0, 0, 0), 4, AddressClass::multicast},
    {ip4(240, 0, 0, 0), 4, AddressClass::reserved},  // includes 255.255.255.255
};

AddressClass classify_v4(std::uint32_t v) {
    for (const auto& r : kV4Blocked) {
        std::uint32_t mask = r.prefix == 0 ? 0 : ~std::uint32_t(0) << (32 - r.prefix);
        if ((v & mask) == r.base) return r.cls;
    }
    return AddressClass::global;
}

bool v6_prefix(const std::array<std::uint8_t, 16>& b, std::initializer_list<std::uint8_t> head,
               int bits) {
    // Compares the first `bits` bits of b with `head` (head padded with zeros).
    std::array<std::uint8_t, 16> want{};
    std::size_t i = 0;
    for (auto x : head) want[i++] = x;
    int full = bits / 8, rest = bits % 8;
    for (int k = 0; k < full; ++k)
        if (b[k] != want[k]) return false;
    if (rest) {
        std::uint8_t mask = std::uint8_t(0xFF << (8 - rest));
        if ((b[full] & mask) != (want[full] & mask)) return false;
    }
    return true;
}

std::optional<std::uint32_t> parse_v4_part(std::string_view s) {
    if (s.empty()) return std::nullopt;
    int base = 10;
    if (s.size() > 1 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s.remove_prefix(2);
        if (s.empty()) return 0u;  // "0x" is 0 to inet_aton
    } else if (s.size() > 1 && s[0] == '0') {
        base = 8;
        s.remove_prefix(1);
    }
    std::uint64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
    if (ec != std::errc() || p != s.data() + s.size() || v > 0xFFFFFFFFull) return std::nullopt;
    return std::uint32_t(v);
}

}  // namespace

IpAddress IpAddress::v4(std::uint32_t v) {
    IpAddress a;
    a.family = Family::v4;
    a.bytes[0] = std::uint8_t(v >> 24);
    a.bytes[1] = std::uint8_t(v >> 16);
    a.bytes[2] = std::uint8_t(v >> 8);
    a.bytes[3] = std::uint8_t(v);
    return a;
}

IpAddress IpAddress::v6(const std::array<std::uint8_t, 16>& b) {
    IpAddress a;
    a.family = Family::v6;
    a.bytes = b;
    return a;
}

std::uint32_t IpAddress::v4_value() const {
    return (std::uint32_t(bytes[0]) << 24) | (std::uint32_t(bytes[1]) << 16) |
           (std::uint32_t(bytes[2]) << 8) | std::uint32_t(bytes[3]);
}

std::string IpAddress::to_string() const {
    char buf[64];
    if (family == Family::v4) {
        std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", bytes[0], bytes[1], bytes[2], bytes[3]);
        return buf;
    }
    std::string out;
    for (int i = 0; i < 8; ++i) {
        std::snprintf(buf, sizeof buf, "%s%x", i ? ":" : "",
                      (bytes[2 * i] << 8) | bytes[2 * i + 1]);
        out += buf;
    }
    return out;
}

std::string_view to_string(AddressClass c) {
    switch (c) {
        case AddressClass::global:
            return "global";
        case AddressClass::unspecified:
            return "unspecified";
        case AddressClass::loopback:
            return "loopback";
        case AddressClass::private_use:
            return "private";
        case AddressClass::shared:
            return "shared";
        case AddressClass::link_local:
            return "link_local";
        case AddressClass::multicast:
            return "multicast";
        case AddressClass::reserved:
            return "reserved";
        case AddressClass::translation:
            return "translation";
    }
    return "reserved";
}

AddressClass classify(const IpAddress& a) {
    if (a.family == IpAddress::Family::v4) return classify_v4(a.v4_value());
    const auto& b = a.bytes;
    bool first10_zero = true;
    for (int i = 0; i < 10; ++i) first10_zero &= b[i] == 0;
    auto tail_v4 = [&] {
        return (std::uint32_t(b[12]) << 24) | (b[13] << 16) | (b[14] << 8) | b[15];
    };
    if (first10_zero && b[10] == 0xFF && b[11] == 0xFF)
        return classify_v4(tail_v4());  // ::ffff:a.b.c.d
    if (first10_zero && b[10] == 0 && b[11] == 0) {
        std::uint32_t v = tail_v4();
        if (v == 0) return AddressClass::unspecified;  // ::
        if (v == 1) return AddressClass::loopback;     // ::1
        return classify_v4(v);                         // ::a.b.c.d (deprecated compatible form)
    }
    if (v6_prefix(b, {0x00, 0x64, 0xff, 0x9b}, 96)) return AddressClass::translation;
    if (v6_prefix(b, {0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48)) return AddressClass::translation;
    if (v6_prefix(b, {0x01, 0x00}, 64)) return AddressClass::reserved;              // discard-only
    if (v6_prefix(b, {0x20, 0x01, 0x0d, 0xb8}, 32)) return AddressClass::reserved;  // documentation
    if (v6_prefix(b, {0x20, 0x01, 0x00, 0x00}, 32)) return AddressClass::translation;  // Teredo
    if (v6_prefix(b, {0x20, 0x02}, 16)) return AddressClass::translation;              // 6to4
    if (v6_prefix(b, {0xfc}, 7)) return AddressClass::private_use;
    if (v6_prefix(b, {0xfe, 0x80}, 10)) return AddressClass::link_local;
    if (v6_prefix(b, {0xfe, 0xc0}, 10)) return AddressClass::link_local;
    if (v6_prefix(b, {0xff}, 8)) return AddressClass::multicast;
    // Only 2000::/3 is allocated as global unicast; the rest is reserved.
    if (!v6_prefix(b, {0x20}, 3)) return AddressClass::reserved;
    return AddressClass::global;
}

std::optional<IpAddress> parse_ipv4(std::string_view text) {
    std::vector<std::uint32_t> parts;
    std::size_t start = 0;
    while (true) {
        std::size_t dot = text.find('.', start);
        auto part =
            parse_v4_part(text.substr(start, dot == std::string_view::npos ? dot : dot - start));
        if (!part) return std::nullopt;
        parts.push_back(*part);
        if (parts.size() > 4) return std::nullopt;
        if (dot == std::string_view::npos) break;
        start = dot + 1;
    }
    std::uint32_t v = 0;
    switch (parts.size()) {
        case 1:
            v = parts[0];
            break;
        case 2:
            if (parts[0] > 0xFF || parts[1] > 0xFFFFFF) return std::nullopt;
            v = (parts[0] << 24) | parts[1];
            break;
        case 3:
            if (parts[0] > 0xFF || parts[1] > 0xFF || parts[2] > 0xFFFF) return std::nullopt;
            v = (parts[0] << 24) | (parts[1] << 16) | parts[2];
            break;
        case 4:
            for (auto p : parts)
                if (p > 0xFF) return std::nullopt;
            v = (parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3];
            break;
    }
    return IpAddress::v4(v);
}

std::optional<IpAddress> parse_ipv6(std::string_view text) {
    if (auto pct = text.find('%'); pct != std::string_view::npos) text = text.substr(0, pct);
    if (text.empty()) return std::nullopt;
    std::array<std::uint8_t, 16> out{};
    std::vector<std::uint16_t> head, tail;
    bool compressed = false;
    std::optional<std::uint32_t> embedded_v4;
    std::size_t i = 0;
    if (text.starts_with("::")) {
        compressed = true;
        i = 2;
    } else if (text.starts_with(":")) {
        return std::nullopt;
    }
    while (i < text.size()) {
        std::size_t colon = text.find(':', i);
        std::string_view group =
            text.substr(i, colon == std::string_view::npos ? colon : colon - i);
        if (group.find('.') != std::string_view::npos) {
            // Dotted IPv4 only as the last group and only in strict a.b.c.d form.
            if (colon != std::string_view::npos) return std::nullopt;
            int dots = 0;
            for (char c : group) dots += c == '.';
            for (char c : group)
                if (!(c == '.' || (c >= '0' && c <= '9'))) return std::nullopt;
            auto v4 = dots == 3 ? parse_ipv4(group) : std::nullopt;
            if (!v4) return std::nullopt;
            embedded_v4 = v4->v4_value();
            i = text.size();
            break;
        }
        if (group.empty() || group.size() > 4) return std::nullopt;
        unsigned v = 0;
        auto [p, ec] = std::from_chars(group.data(), group.data() + group.size(), v, 16);
        if (ec != std::errc() || p != group.data() + group.size()) return std::nullopt;
        (compressed ? tail : head).push_back(std::uint16_t(v));
        if (colon == std::string_view::npos) {
            i = text.size();
            break;
        }
        i = colon + 1;
        if (i < text.size() && text[i] == ':') {
            if (compressed) return std::nullopt;  // a second "::"
            compressed = true;
            ++i;
        } else if (i == text.size()) {
            return std::nullopt;  // trailing single ':'
        }
    }
    std::size_t groups = head.size() + tail.size() + (embedded_v4 ? 2 : 0);
    if (groups > 8 || (!compressed && groups != 8) || (compressed && groups == 8))
        return std::nullopt;
    std::vector<std::uint16_t> all = head;
    if (compressed) all.resize(8 - tail.size() - (embedded_v4 ? 2 : 0), 0);
    all.insert(all.end(), tail.begin(), tail.end());
    if (embedded_v4) {
        all.push_back(std::uint16_t(*embedded_v4 >> 16));
        all.push_back(std::uint16_t(*embedded_v4 & 0xFFFF));
    }
    for (int g = 0; g < 8; ++g) {
        out[2 * g] = std::uint8_t(all[g] >> 8);
        out[2 * g + 1] = std::uint8_t(all[g] & 0xFF);
    }
    return IpAddress::v6(out);
}

std::optional<IpAddress> parse_ip_host(std::string_view host) {
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        return parse_ipv6(host.substr(1, host.size() - 2));
    if (host.find(':') != std::string_view::npos) return parse_ipv6(host);
    // A trailing dot is allowed in hosts ("127.0.0.1.").
    if (!host.empty() && host.back() == '.') host.remove_suffix(1);
    return parse_ipv4(host);
}

namespace {

// ::ffff:a.b.c.d → a.b.c.d; anything else unchanged.
IpAddress unwrap_mapped(const IpAddress& a) {
    if (a.family != IpAddress::Family::v6) return a;
    for (int i = 0; i < 10; ++i)
        if (a.bytes[i] != 0) return a;
    if (a.bytes[10] != 0xFF || a.bytes[11] != 0xFF) return a;
    return IpAddress::v4((std::uint32_t(a.bytes[12]) << 24) | (a.bytes[13] << 16) |
                         (a.bytes[14] << 8) | a.bytes[15]);
}

}  // namespace

bool CidrRange::contains(const IpAddress& address) const {
    IpAddress a = unwrap_mapped(address);
    if (a.family != base.family) return false;
    int full = prefix / 8, rest = prefix % 8;
    for (int k = 0; k < full; ++k)
        if (a.bytes[k] != base.bytes[k]) return false;
    if (rest) {
        auto mask = std::uint8_t(0xFF << (8 - rest));
        if ((a.bytes[full] & mask) != (base.bytes[full] & mask)) return false;
    }
    return true;
}

std::optional<CidrRange> parse_cidr(std::string_view text) {
    auto slash = text.find('/');
    std::string_view addr = text.substr(0, slash);
    std::optional<IpAddress> ip;
    if (addr.find(':') != std::string_view::npos) {
        if (addr.size() >= 2 && addr.front() == '[' && addr.back() == ']')
            addr = addr.substr(1, addr.size() - 2);
        ip = parse_ipv6(addr);
    } else {
        // Strict dotted quad here: a range is configuration, not a URL host.
        int dots = 0;
        for (char c : addr) {
            if (c == '.')
                ++dots;
            else if (c < '0' || c > '9')
                return std::nullopt;
        }
        if (dots == 3) ip = parse_ipv4(addr);
    }
    if (!ip) return std::nullopt;
    const bool mapped = ip->family == IpAddress::Family::v6 && unwrap_mapped(*ip) != *ip;
    int max = ip->family == IpAddress::Family::v4 ? 32 : 128;
    int prefix = max;
    if (slash != std::string_view::npos) {
        std::string_view p = text.substr(slash + 1);
        auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
        if (p.empty() || ec != std::errc() || end != p.data() + p.size() || prefix < 0 ||
            prefix > max)
            return std::nullopt;
    }
    // contains() judges a mapped address as the IPv4 inside, so a range of
    // mapped addresses (::ffff:10.0.0.0/104) is the IPv4 range it spells. One
    // wider than the mapped block (/96) names no IPv4 range: refused.
    if (mapped) {
        if (prefix < 96) return std::nullopt;
        return CidrRange{unwrap_mapped(*ip), prefix - 96};
    }
    return CidrRange{*ip, prefix};
}

}  // namespace litchi
