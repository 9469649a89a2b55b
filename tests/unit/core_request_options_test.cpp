// The header rules that POST /api/jobs and `litchi fetch -H` share, which
// headers count as credentials, the "only tighter" rule for a job's limits,
// and the stored form of a job's request options.
#include <gtest/gtest.h>

#include <string>

#include "core/request_options.hpp"

namespace litchi {
namespace {

TEST(HeaderRules, OrdinaryHeadersPass) {
    EXPECT_EQ(check_header("Authorization", "Bearer abc"), "");
    EXPECT_EQ(check_header("X-Custom_Thing.1", "a value with\ttab"), "");
    EXPECT_EQ(check_header("Accept", ""), "");
    EXPECT_EQ(check_header("User-Agent", "mine/1.0"), "");
}

TEST(HeaderRules, TransferOwnedHeadersAreRefusedInAnyCase) {
    for (const char* name :
         {"Host", "host", "Content-Length", "CONTENT-LENGTH", "Transfer-Encoding", "Connection",
          "Cookie2", "Proxy-Authorization", "proxy-connection", "Proxy-Anything"}) {
        EXPECT_NE(check_header(name, "x"), "") << name;
    }
    EXPECT_EQ(check_header("Proxyish", "x"), "");  // only the Proxy- prefix
    EXPECT_EQ(check_header("Cookie", "a=b"), "");
}

TEST(HeaderRules, CrLfAndControlCharactersAreRefused) {
    EXPECT_NE(check_header("X-A", "one\r\nHost: evil"), "");
    EXPECT_NE(check_header("X-A", "one\nmore"), "");
    EXPECT_NE(check_header("X-A", "one\rmore"), "");
    EXPECT_NE(check_header("X-A", std::string("nul\0byte", 8)), "");
    EXPECT_NE(check_header("X-A\r\nHost", "v"), "");
    EXPECT_NE(check_header_text("user_agent", "a\r\nb"), "");
    EXPECT_EQ(check_header_text("user_agent", "a b/1.0"), "");
}

TEST(HeaderRules, NamesMustBeTokens) {
    for (const char* name : {"", "Bad Name", "Bad:Name", "Bad(Name)", "Ümlaut", "a\"b", "a/b"}) {
        EXPECT_NE(check_header(name, "x"), "") << name;
    }
}

TEST(HeaderRules, ParseHeaderLine) {
    std::string error;
    auto field = parse_header_line("X-Api-Key:   secret value  ", &error);
    ASSERT_TRUE(field) << error;
    EXPECT_EQ(field->name, "X-Api-Key");
    EXPECT_EQ(field->value, "secret value");
    EXPECT_FALSE(parse_header_line("NoColon", &error));
    EXPECT_NE(error, "");
    EXPECT_FALSE(parse_header_line("Host: example", &error));
    EXPECT_NE(error.find("Host"), std::string::npos);
}

TEST(HeaderRules, CredentialHeaders) {
    for (const char* name : {"Authorization", "authorization", "Cookie", "COOKIE", "X-Auth-Token",
                             "x-api-key", "Private-Token", "X-API-KEY"}) {
        EXPECT_TRUE(is_credential_header(name)) << name;
    }
    for (const char* name : {"Accept", "X-Token-Count", "Keyboard", "Referer", "X-Tokens"}) {
        EXPECT_FALSE(is_credential_header(name)) << name;
    }
}

TEST(JobLimitsRule, TighterPassesLooserNamesTheServerLimit) {
    FetchLimits server;
    server.per_host = 4;
    server.retries = 3;
    server.max_bytes = 1000;
    server.max_pixels = 5000;
    server.total_timeout = std::chrono::seconds(30);
    JobLimits job;
    job.per_host = 2;
    job.retries = 0;
    job.max_bytes = 1000;
    job.max_pixels = 10;
    job.timeout = std::chrono::seconds(5);
    job.per_host_rate = 1.5;
    EXPECT_EQ(check_tighter(job, server), "");

    JobLimits looser;
    looser.per_host = 5;
    auto message = check_tighter(looser, server);
    EXPECT_NE(message.find("per_host"), std::string::npos) << message;
    EXPECT_NE(message.find("4"), std::string::npos) << message;
    looser = {};
    looser.max_bytes = 1001;
    EXPECT_NE(check_tighter(looser, server).find("1000"), std::string::npos);
    looser = {};
    looser.retries = 4;
    EXPECT_NE(check_tighter(looser, server).find("retries"), std::string::npos);
    looser = {};
    looser.timeout = std::chrono::seconds(31);
    EXPECT_NE(check_tighter(looser, server).find("30 s"), std::string::npos);
    looser = {};
    looser.max_pixels = 5001;
    EXPECT_NE(check_tighter(looser, server).find("5000"), std::string::npos);
    looser = {};
    looser.per_host_rate = 3;
    EXPECT_NE(check_tighter(looser, server, 2).find("per_host_rate"), std::string::npos);
    EXPECT_EQ(check_tighter(looser, server, 0), "");  // no server rate: any rate is tighter
}

TEST(JobLimitsRule, PerHostWithoutAServerPerHostIsBoundedByConcurrency) {
    FetchLimits server;
    server.per_host = 0;
    server.concurrency = 8;
    JobLimits job;
    job.per_host = 8;
    EXPECT_EQ(check_tighter(job, server), "");
    job.per_host = 9;
    EXPECT_NE(check_tighter(job, server), "");
}

TEST(JobLimitsRule, ApplyTakesTheTighter) {
    FetchLimits server;
    JobLimits job;
    job.max_bytes = 10;
    job.retries = 1;
    auto applied = apply_job_limits(server, job);
    EXPECT_EQ(applied.max_bytes, 10u);
    EXPECT_EQ(applied.retries, 1);
    EXPECT_EQ(applied.max_pixels, server.max_pixels);
}

TEST(RequestOptionsCodec, RoundTrips) {
    RequestOptions o;
    EXPECT_EQ(decode_request_options(encode_request_options(o)), o);
    EXPECT_EQ(decode_request_options(""), o);
    o.user_agent = "crawler/2 (+https://example.com)";
    o.headers = {{"Authorization", "Bearer a: b"}, {"X-Empty", ""}};
    o.referer = "https://example.com/page?a=1";
    o.limits.per_host = 2;
    o.limits.per_host_rate = 0.25;
    o.limits.max_bytes = 123;
    o.limits.max_pixels = 456;
    o.limits.retries = 0;
    o.limits.timeout = std::chrono::milliseconds(1500);
    o.webhook = WebhookSpec{"http://127.0.0.1:9/hook", "s3cret with spaces", {"done", "failed"}};
    auto decoded = decode_request_options(encode_request_options(o));
    ASSERT_TRUE(decoded);
    EXPECT_EQ(*decoded, o);
    EXPECT_EQ(webhook_event_list(o), ",done,failed,");
}

TEST(RequestOptionsCodec, RefusesForeignText) {
    EXPECT_FALSE(decode_request_options("v9\n"));
    EXPECT_FALSE(decode_request_options("v1\nunknown x\n"));
    EXPECT_FALSE(decode_request_options("v1\nper_host many\n"));
}

}  // namespace
}  // namespace litchi
