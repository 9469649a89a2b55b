// URL admission: what the engine agrees to fetch, and redirect resolution.
#include <gtest/gtest.h>

#include "fetch/url_check.hpp"

namespace litchi {
namespace {

TEST(UrlCheckTest, AcceptsAndNormalisesHttpUrls) {
    auto c = check_url("HTTP://Example.COM/a/b.png?x=1#frag", false);
    ASSERT_TRUE(c.ok) << c.detail;
    EXPECT_EQ(c.url, "http://example.com/a/b.png?x=1");
    EXPECT_TRUE(check_url("https://example.com", false).ok);
    EXPECT_EQ(check_url("https://example.com", false).url, "https://example.com/");
    EXPECT_TRUE(check_url("  https://example.com/x.jpg \r", false).ok);
    EXPECT_TRUE(check_url("http://[2606:4700:4700::1111]:8080/x", false).ok);
}

TEST(UrlCheckTest, RefusesWhatIsNotHttp) {
    for (const char* bad :
         {"ftp://example.com/a.png", "file:///etc/passwd", "gopher://x/", "javascript:alert(1)",
          "data:image/png;base64,AAAA", "example.com/a.png", "/relative.png", "", "http://",
          "http:///nohost", "not a url", "http://exa mple.com/", "http://example.com:0/",
          "http://example.com:99999999/"}) {
        auto c = check_url(bad, true);
        EXPECT_FALSE(c.ok) << bad;
        EXPECT_EQ(c.reason, FailureReason::bad_url) << bad;
        EXPECT_FALSE(c.detail.empty()) << bad;
    }
}

TEST(UrlCheckTest, RefusesUserinfo) {
    auto c = check_url("http://user:secret@example.com/a.png", true);
    EXPECT_FALSE(c.ok);
    EXPECT_EQ(c.reason, FailureReason::bad_url);
    EXPECT_EQ(c.detail.find("secret"), std::string::npos);  // never echo credentials
    EXPECT_FALSE(check_url("http://user@example.com/", true).ok);
}

TEST(UrlCheckTest, BlocksNonGlobalLiteralsUnlessAllowed) {
    for (const char* u :
         {"http://127.0.0.1/", "http://2130706433/", "http://0x7f.1/", "http://[::1]/",
          "http://[::ffff:127.0.0.1]/", "http://169.254.169.254/latest/meta-data", "http://0/"}) {
        auto c = check_url(u, false);
        EXPECT_FALSE(c.ok) << u;
        EXPECT_EQ(c.reason, FailureReason::blocked_address) << u;
        EXPECT_TRUE(check_url(u, true).ok || check_url(u, true).reason == FailureReason::bad_url)
            << u;
    }
    // RFC 6874 zone ids are outside RFC 3986; refused either way.
    EXPECT_FALSE(check_url("http://[fe80::1%25eth0]/", false).ok);
    FetchLimits limits;
    limits.allowed_ranges.push_back(*parse_cidr("127.0.0.1/32"));
    EXPECT_TRUE(check_url("http://127.0.0.1:8080/x.png", limits).ok);
    EXPECT_EQ(check_url("http://127.0.0.2:8080/x.png", limits).reason,
              FailureReason::blocked_address);
    EXPECT_EQ(check_url("http://[::1]:8080/x.png", limits).reason, FailureReason::blocked_address);
}

TEST(UrlCheckTest, RedirectsResolveAndAreCheckedAgain) {
    FetchLimits open;
    open.allow_private = true;
    auto r = check_redirect("http://example.com/a/b.png", "../c.png", open);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.url, "http://example.com/c.png");
    EXPECT_EQ(check_redirect("http://example.com/a", "//other.org/x", open).url,
              "http://other.org/x");
    EXPECT_EQ(check_redirect("http://example.com/a", "ftp://example.com/x", open).reason,
              FailureReason::bad_url);
    EXPECT_EQ(check_redirect("http://example.com/a", "http://u:p@example.com/", open).reason,
              FailureReason::bad_url);
    FetchLimits guarded;
    EXPECT_EQ(check_redirect("http://example.com/a", "http://10.0.0.1/x", guarded).reason,
              FailureReason::blocked_address);
    EXPECT_EQ(check_redirect("http://example.com/a", "http://[::1]/x", guarded).reason,
              FailureReason::blocked_address);
}

// The checker a large job's admission uses answers exactly as check_url does,
// whether it hands back the text itself (already normal) or a rewritten copy.
TEST(UrlCheckTest, TheCheckerAgreesWithCheckUrl) {
    const char* cases[] = {"http://example.com/a.png",
                           "https://example.com",
                           "http://example.com",
                           "HTTP://Example.COM/a/b.png?x=1#frag",
                           "http://example.com/a.png#",
                           "http://example.com/#x",
                           "hTTps://example.com/A/B.PNG?Q=1",
                           "http://EXAMPLE.com:8080/x",
                           "http://exa%6Dple.com/x",
                           "http://example.com/%7e/%41.png",
                           "http://example.com?x=1",
                           "http://[2606:4700::1111]/x",
                           "http://[2606:4700::ABCD]:81/x",
                           "http://127.0.0.1:9/1.png",
                           "http://127.0.0.2/x.png",
                           "http://0x7f.1/",
                           "http://2130706433/",
                           "  https://example.com/x.jpg \r",
                           "ftp://example.com/a.png",
                           "",
                           "http://",
                           "http://user:secret@example.com/",
                           "http://example.com:0/",
                           "not a url",
                           "http://exa mple.com/",
                           "http://[v1.x]/",
                           "http://example.com/\xff"};
    for (bool allow_private : {false, true}) {
        FetchLimits limits;
        limits.allow_private = allow_private;
        UrlChecker checker(limits);
        for (const char* text : cases) {
            UrlCheck expected = check_url(text, limits);
            UrlVerdict got = checker.check(text);
            EXPECT_EQ(got.ok(), expected.ok) << text;
            if (expected.ok) {
                EXPECT_EQ(got.url, expected.url) << text;
            } else {
                EXPECT_EQ(got.reason, expected.reason) << text;
            }
        }
    }
}

}  // namespace
}  // namespace litchi
