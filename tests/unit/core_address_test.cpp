// The SSRF guard's address table: every range from issue 2, the odd IPv4
// spellings URL hosts allow, and IPv4 hidden inside IPv6.
#include <gtest/gtest.h>

#include "core/address.hpp"

namespace litchi {
namespace {

AddressClass class_of(const char* host) {
    auto ip = parse_ip_host(host);
    EXPECT_TRUE(ip.has_value()) << host;
    return ip ? classify(*ip) : AddressClass::global;
}

TEST(AddressTest, BlockedIpv4RangesAreNotGlobal) {
    for (const char* host :
         {"0.0.0.0",         "0.1.2.3",        "10.0.0.1",        "10.255.255.255",  "100.64.0.1",
          "100.127.255.254", "127.0.0.1",      "127.255.255.254", "169.254.169.254", "172.16.0.1",
          "172.31.255.255",  "192.0.0.8",      "192.0.2.1",       "192.88.99.1",     "192.168.1.1",
          "198.18.0.1",      "198.19.255.255", "198.51.100.7",    "203.0.113.9",     "224.0.0.1",
          "239.255.255.255", "240.0.0.1",      "255.255.255.255"}) {
        EXPECT_NE(class_of(host), AddressClass::global) << host;
    }
}

TEST(AddressTest, NeighboursOfBlockedRangesAreGlobal) {
    for (const char* host :
         {"1.1.1.1", "8.8.8.8", "9.255.255.255", "11.0.0.0", "100.63.255.255", "100.128.0.0",
          "126.255.255.255", "128.0.0.0", "169.253.255.255", "172.15.255.255", "172.32.0.0",
          "192.0.1.0", "192.88.98.255", "192.167.255.255", "192.169.0.0", "198.17.255.255",
          "198.20.0.0", "203.0.112.255", "223.255.255.255"}) {
        EXPECT_EQ(class_of(host), AddressClass::global) << host;
    }
}

TEST(AddressTest, LegacyIpv4SpellingsAreUnderstood) {
    const char* loopbacks[] = {"2130706433", "017700000001", "0x7f000001",   "0x7f.1",    "127.1",
                               "127.0.1",    "0177.0.0.1",   "0x7F.0.0.0x1", "127.0.0.1."};
    for (const char* host : loopbacks) {
        auto ip = parse_ip_host(host);
        ASSERT_TRUE(ip) << host;
        EXPECT_EQ(ip->to_string(), "127.0.0.1") << host;
        EXPECT_EQ(classify(*ip), AddressClass::loopback) << host;
    }
    EXPECT_EQ(parse_ip_host("10.1")->to_string(), "10.0.0.1");
    EXPECT_EQ(parse_ip_host("0")->to_string(), "0.0.0.0");
}

TEST(AddressTest, NamesAndMalformedNumbersAreNotAddresses) {
    for (const char* host : {"example.com", "localhost", "1.2.3.4.5", "256.1.1.1", "1.2.3.256",
                             "0x", "08.1.1.1", "1..2", "", "[::1", "1.2.3.4a", "0x1g"}) {
        auto ip = parse_ip_host(host);
        // "0x" alone is 0 to inet_aton; everything else here is not an address.
        if (std::string_view(host) == "0x") continue;
        EXPECT_FALSE(ip.has_value()) << host;
    }
}

TEST(AddressTest, BlockedIpv6Ranges) {
    for (const char* host :
         {"[::]", "[::1]", "[64:ff9b::1.2.3.4]", "[64:ff9b:1::1]", "[100::1]", "[2001::1]",
          "[2001:db8::1]", "[2002::1]", "[fc00::1]", "[fd12:3456::1]", "[fe80::1]",
          "[fe80::1%eth0]", "[fec0::1]", "[ff02::1]", "[::ffff:127.0.0.1]", "[::ffff:10.0.0.1]",
          "[::ffff:7f00:1]", "[::127.0.0.1]", "[::ffff:169.254.169.254]"}) {
        EXPECT_NE(class_of(host), AddressClass::global) << host;
    }
}

TEST(AddressTest, GlobalIpv6AndMappedGlobalIpv4) {
    for (const char* host :
         {"[2606:4700:4700::1111]", "[2a00:1450:4001::200e]", "[::ffff:8.8.8.8]", "[2003::1]"}) {
        EXPECT_EQ(class_of(host), AddressClass::global) << host;
    }
}

TEST(AddressTest, Ipv6ParserRejectsMalformedText) {
    for (const char* text : {"", ":", ":::", "1::2::3", "1:2:3:4:5:6:7:8:9", "12345::", "::g",
                             "1:2:3:4:5:6:7", "::1.2.3", "1.2.3.4::", "::ffff:0x7f.1"}) {
        EXPECT_FALSE(parse_ipv6(text).has_value()) << text;
    }
    EXPECT_TRUE(parse_ipv6("1:2:3:4:5:6:7:8"));
    EXPECT_TRUE(parse_ipv6("1::"));
    EXPECT_TRUE(parse_ipv6("::ffff:1.2.3.4"));
}

TEST(AddressTest, CidrRanges) {
    auto r = parse_cidr("127.0.0.1/32");
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->contains(*parse_ip_host("127.0.0.1")));
    EXPECT_TRUE(r->contains(*parse_ip_host("[::ffff:127.0.0.1]")));
    EXPECT_FALSE(r->contains(*parse_ip_host("127.0.0.2")));
    auto net = parse_cidr("10.0.0.0/8");
    ASSERT_TRUE(net);
    EXPECT_TRUE(net->contains(*parse_ip_host("10.200.1.1")));
    EXPECT_FALSE(net->contains(*parse_ip_host("11.0.0.0")));
    auto v6 = parse_cidr("fd00::/8");
    ASSERT_TRUE(v6);
    EXPECT_TRUE(v6->contains(*parse_ip_host("[fd12::1]")));
    EXPECT_FALSE(v6->contains(*parse_ip_host("[fe80::1]")));
    EXPECT_EQ(parse_cidr("::1")->prefix, 128);
    for (const char* bad : {"127.1/8", "1.2.3.4/33", "::1/129", "x/8", "1.2.3.4/", "1.2.3.4/-1"})
        EXPECT_FALSE(parse_cidr(bad).has_value()) << bad;
}

// Found by tests/fuzz/url_admission.cpp: an IPv4-mapped range
// (::ffff:10.0.0.0/104) contained nothing, its own base included, because
// contains() judges a mapped address as the IPv4 inside. Such a range is
// the IPv4 range it spells; a mapped base under /96 names no IPv4 range.
TEST(AddressTest, MappedRangesAreIpv4Ranges) {
    auto mapped = parse_cidr("::ffff:10.0.0.0/104");
    ASSERT_TRUE(mapped);
    EXPECT_TRUE(mapped->contains(mapped->base));
    EXPECT_TRUE(mapped->contains(*parse_ip_host("10.1.2.3")));
    EXPECT_TRUE(mapped->contains(*parse_ip_host("[::ffff:10.1.2.3]")));
    EXPECT_FALSE(mapped->contains(*parse_ip_host("11.0.0.1")));
    auto one = parse_cidr("[::ffff:127.0.0.1]");
    ASSERT_TRUE(one);
    EXPECT_TRUE(one->contains(*parse_ip_host("127.0.0.1")));
    EXPECT_FALSE(one->contains(*parse_ip_host("127.0.0.2")));
    EXPECT_FALSE(parse_cidr("::ffff:10.0.0.0/80").has_value());
    // Not mapped: ::/0 is every IPv6 address, not every IPv4 one.
    EXPECT_FALSE(parse_cidr("::/0")->contains(*parse_ip_host("127.0.0.1")));
}

}  // namespace
}  // namespace litchi
