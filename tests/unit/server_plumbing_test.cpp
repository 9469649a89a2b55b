// The pure parts of the HTTP front end: log redaction, the login rate limit,
// route matching and per-route body limits, --listen parsing and the token
// extraction from headers.
#include <gtest/gtest.h>

#include "server/access_log.hpp"
#include "server/auth.hpp"
#include "server/body_budget.hpp"
#include "server/failure_log_gate.hpp"
#include "server/rate_limiter.hpp"
#include "server/router.hpp"
#include "server/server.hpp"
#include "server/static_files.hpp"

namespace litchi::server {
namespace {

TEST(RedactTarget, HidesTheSeedWebSocketToken) {
    EXPECT_EQ(redact_target("/api/litchi/lt_secret"), "/api/litchi/[redacted]");
    EXPECT_EQ(redact_target("/api/litchi/lt_secret?x=1"), "/api/litchi/[redacted]?x=1");
    EXPECT_EQ(redact_target("/api/litchi/"), "/api/litchi/");
    // Other spellings that reach the log: percent-encoded, upper case, absolute form.
    EXPECT_EQ(redact_target("/api/%6Citchi/lt_secret"), "/api/litchi/[redacted]");
    EXPECT_EQ(redact_target("/API/Litchi/lt_secret"), "/api/litchi/[redacted]");
    EXPECT_EQ(redact_target("http://h:1/api/litchi/lt_secret"), "http://h:1/api/litchi/[redacted]");
}

TEST(RedactTarget, HidesSecretQueryValuesOnly) {
    EXPECT_EQ(redact_target("/api/images/ab?thumb=64"), "/api/images/ab?thumb=64");
    EXPECT_EQ(redact_target("/x?token=s&thumb=1&access_token=t&API_KEY=k&password=p"),
              "/x?token=[redacted]&thumb=1&access_token=[redacted]&API_KEY=[redacted]&password=["
              "redacted]");
    EXPECT_EQ(redact_target("/x?flag&session=abc"), "/x?flag&session=[redacted]");
}

TEST(RedactTarget, HidesTokensOnAnyRoute) {
    EXPECT_EQ(redact_target("/api//litchi/lt_0123456789abcdef"), "/api//litchi/lt_[redacted]");
    EXPECT_EQ(redact_target("/lt_0123456789abcdef"), "/lt_[redacted]");
    EXPECT_EQ(redact_target("/x?t=lt_0123456789abcdef"), "/x?t=lt_[redacted]");
}

TEST(RedactTarget, ControlCharactersCannotForgeLines) {
    EXPECT_EQ(redact_target("/a\r\nGET /fake"), "/a??GET /fake");
}

TEST(BodyBudget, ReservesOnlyWhatFitsAndGivesItBack) {
    BodyBudget budget(100);
    EXPECT_TRUE(budget.try_reserve(60));
    EXPECT_FALSE(budget.try_reserve(41)) << "all or nothing";
    EXPECT_TRUE(budget.try_reserve(40));
    EXPECT_EQ(budget.used(), 100u);
    { BodyReservation held(budget, 40); }  // gives the 40 back
    EXPECT_EQ(budget.used(), 60u);
    budget.release(60);
    EXPECT_FALSE(budget.try_reserve(101));
    EXPECT_FALSE(budget.try_reserve(~std::uint64_t{0})) << "no overflow";
    EXPECT_TRUE(budget.try_reserve(100));
    BodyReservation moved;
    moved = BodyReservation(budget, 100);
    EXPECT_EQ(budget.used(), 100u);
    moved.reset();
    EXPECT_EQ(budget.used(), 0u);
}

TEST(FailureLogGate, OneLinePerIntervalWithTheCount) {
    using std::chrono::milliseconds;
    FailureLogGate gate(std::chrono::seconds(10));
    auto t0 = FailureLogGate::Clock::now();
    EXPECT_EQ(gate.record(t0), 1u) << "the first failure is reported at once";
    for (int i = 1; i <= 999; ++i) EXPECT_EQ(gate.record(t0 + milliseconds(i)), 0u);
    EXPECT_EQ(gate.pending(), 999u);
    EXPECT_EQ(gate.record(t0 + std::chrono::seconds(10)), 1000u)
        << "the next line counts the ones held back";
    EXPECT_EQ(gate.record(t0 + std::chrono::seconds(11)), 0u);
    gate.reset();
    EXPECT_EQ(gate.record(t0 + std::chrono::seconds(12)), 1u) << "a new run is reported at once";
}

TEST(LoginRateLimiter, AllowsNThenRefusesUntilTheWindowPasses) {
    LoginRateLimiter limiter(3, std::chrono::seconds(60), 10'000);
    auto t0 = LoginRateLimiter::Clock::now();
    EXPECT_EQ(limiter.try_acquire("a", t0), 0);
    EXPECT_EQ(limiter.try_acquire("a", t0 + std::chrono::seconds(1)), 0);
    EXPECT_EQ(limiter.try_acquire("a", t0 + std::chrono::seconds(2)), 0);
    EXPECT_EQ(limiter.try_acquire("a", t0 + std::chrono::seconds(10)), 50);
    EXPECT_EQ(limiter.try_acquire("b", t0 + std::chrono::seconds(10)), 0)
        << "limits are per client";
    EXPECT_EQ(limiter.try_acquire("a", t0 + std::chrono::seconds(60)), 0)
        << "the first attempt left the window";
}

TEST(LoginRateLimiter, MemoryIsBoundedByMaxClients) {
    LoginRateLimiter limiter(1, std::chrono::seconds(60), 4);
    auto t0 = LoginRateLimiter::Clock::now();
    for (int i = 0; i < 100; ++i) {
        EXPECT_EQ(
            limiter.try_acquire("client" + std::to_string(i), t0 + std::chrono::milliseconds(i)),
            0);
    }
    // The stalest clients were forgotten; the newest is still limited.
    EXPECT_GT(limiter.try_acquire("client99", t0 + std::chrono::seconds(1)), 0);
}

// The per-account throttle runs on a driven clock: no test sleeps.
TEST(AccountLoginThrottle, FreeFailuresThenDoublingDelaysCappedAtTheMax) {
    using std::chrono::seconds;
    AccountLoginThrottle throttle({.free_failures = 3,
                                   .base_delay = seconds(1),
                                   .max_delay = seconds(8),
                                   .quiet_reset = seconds(60),
                                   .max_accounts = 100});
    auto now = AccountLoginThrottle::Clock::time_point{} + std::chrono::hours(1);
    // Three failures in a row cost nothing.
    for (int i = 0; i < 3; ++i) {
        ASSERT_EQ(throttle.try_acquire("alice", now), 0) << i;
        throttle.failed("alice", now);
    }
    // Then 1, 2, 4, 8, 8, 8 s: the wait doubles up to the cap, never beyond.
    for (long expected : {1, 2, 4, 8, 8, 8}) {
        EXPECT_EQ(throttle.try_acquire("alice", now), expected);
        EXPECT_EQ(
            throttle.try_acquire("alice", now + seconds(expected) - std::chrono::milliseconds(500)),
            1);
        now += seconds(expected);
        ASSERT_EQ(throttle.try_acquire("alice", now), 0) << "after " << expected << " s";
        throttle.failed("alice", now);
    }
    // The limit is per account name, whatever the source address.
    EXPECT_EQ(throttle.try_acquire("bob", now), 0);
    // The owner gets in after at most the cap, and a success clears the count.
    now += seconds(8);
    ASSERT_EQ(throttle.try_acquire("alice", now), 0);
    throttle.succeeded("alice");
    for (int i = 0; i < 3; ++i) {
        ASSERT_EQ(throttle.try_acquire("alice", now), 0) << i;
        throttle.failed("alice", now);
    }
}

TEST(AccountLoginThrottle, ParallelGuessesCannotOutrunTheFirstFailure) {
    using std::chrono::seconds;
    AccountLoginThrottle throttle({.free_failures = 2, .max_delay = seconds(60)});
    auto now = AccountLoginThrottle::Clock::time_point{} + std::chrono::hours(1);
    // Outcomes not known yet count as failures: 40 at once, 2 get through.
    int allowed = 0;
    for (int i = 0; i < 40; ++i) allowed += throttle.try_acquire("alice", now) == 0;
    EXPECT_EQ(allowed, 2);
    // An attempt that ended without an answer is not a failure.
    throttle.abandoned("alice");
    throttle.abandoned("alice");
    EXPECT_EQ(throttle.try_acquire("alice", now + seconds(1)), 0);
}

TEST(AccountLoginThrottle, AQuietSpellForgivesAndMemoryIsBounded) {
    using std::chrono::seconds;
    AccountLoginThrottle throttle({.free_failures = 1,
                                   .base_delay = seconds(1),
                                   .max_delay = seconds(10),
                                   .quiet_reset = seconds(20),
                                   .max_accounts = 4});
    auto now = AccountLoginThrottle::Clock::time_point{} + std::chrono::hours(1);
    for (int i = 0; i < 5; ++i) {
        now += seconds(10);
        ASSERT_EQ(throttle.try_acquire("carol", now), 0);
        throttle.failed("carol", now);
    }
    EXPECT_GT(throttle.try_acquire("carol", now), 0);
    now += seconds(30);  // max_delay + quiet_reset without a failure
    ASSERT_EQ(throttle.try_acquire("carol", now), 0);
    throttle.failed("carol", now);
    EXPECT_EQ(throttle.try_acquire("carol", now), 1) << "counting starts again from one failure";

    for (int i = 0; i < 100; ++i) {
        throttle.try_acquire("name" + std::to_string(i), now + std::chrono::milliseconds(i));
        EXPECT_LE(throttle.tracked(), 4u);
    }
}

TEST(Router, MatchesPlaceholdersAndReports405) {
    Router router;
    int hit = 0;
    router.add(http::verb::get, "/api/jobs/{}", Placement::io, [&](RequestContext&) -> Reply {
        ++hit;
        return StringResponse{http::status::ok, 11};
    });
    router.add(http::verb::delete_, "/api/jobs/{}", Placement::io, [](RequestContext&) -> Reply {
        return StringResponse{http::status::ok, 11};
    });
    router.set_fallback(http::verb::get, Placement::io, [](RequestContext&) -> Reply {
        return StringResponse{http::status::ok, 11};
    });

    auto match = router.find(http::verb::get, "/api/jobs/42");
    ASSERT_NE(match.route, nullptr);
    EXPECT_FALSE(match.route->segments.empty());
    EXPECT_EQ(match.params, std::vector<std::string>{"42"});

    match = router.find(http::verb::post, "/api/jobs/42");
    EXPECT_EQ(match.route, nullptr);
    EXPECT_EQ(match.allow, "GET, DELETE");

    match = router.find(http::verb::get, "/api/jobs/42/items");
    ASSERT_NE(match.route, nullptr);
    EXPECT_TRUE(match.route->segments.empty()) << "unknown paths go to the fallback";

    EXPECT_EQ(router.find(http::verb::put, "/anything").route, nullptr);
}

TEST(Router, BodyLimitIsDeclaredOnTheRoute) {
    Router router(64 * 1024);
    auto ok = [](RequestContext&) -> Reply { return StringResponse{http::status::ok, 11}; };
    router.add(http::verb::post, "/api/jobs", Placement::io, ok, 16u << 20);
    router.add(http::verb::get, "/api/jobs", Placement::io, ok);
    router.set_fallback(http::verb::get, Placement::io, ok);

    EXPECT_EQ(router.body_limit(http::verb::post, "/api/jobs"), 16u << 20);
    EXPECT_EQ(router.body_limit(http::verb::post, "/api/jobs/"), 16u << 20)
        << "the route that answers is the one whose limit applies";
    EXPECT_EQ(router.body_limit(http::verb::get, "/api/jobs"), 64u * 1024) << "declared none";
    EXPECT_EQ(router.body_limit(http::verb::put, "/api/jobs"), 64u * 1024) << "a 405";
    EXPECT_EQ(router.body_limit(http::verb::post, "/nowhere"), 64u * 1024) << "no route";
    EXPECT_EQ(router.body_limit(http::verb::get, "/index.html"), 64u * 1024) << "the fallback";
    EXPECT_EQ(router.largest_body_limit(), 16u << 20);

    Router small(64 * 1024);
    small.add(http::verb::post, "/tiny", Placement::io, ok, 1024);
    EXPECT_EQ(small.largest_body_limit(), 64u * 1024) << "never below the default";
}

TEST(ListenAddress, ParsesHostAndPort) {
    std::string host;
    unsigned short port = 1;
    ASSERT_TRUE(parse_listen_address("127.0.0.1:9527", host, port));
    EXPECT_EQ(host, "127.0.0.1");
    EXPECT_EQ(port, 9527);
    ASSERT_TRUE(parse_listen_address("[::1]:0", host, port));
    EXPECT_EQ(host, "::1");
    EXPECT_EQ(port, 0);
    for (const char* bad :
         {"", "9527", "127.0.0.1", "127.0.0.1:", ":80", "::1:80", "[::1]80", "h:65536", "h:8x"}) {
        EXPECT_FALSE(parse_listen_address(bad, host, port)) << bad;
    }
}

TEST(RequestToken, BearerFirstThenCookie) {
    Request req;
    EXPECT_FALSE(request_token(req));
    req.set(http::field::cookie, "a=b; litchi_session=lt_cookie; c=d");
    EXPECT_EQ(request_token(req), "lt_cookie");
    req.set(http::field::authorization, "bearer lt_header");
    EXPECT_EQ(request_token(req), "lt_header");
    req.set(http::field::authorization, "Basic abc");
    EXPECT_FALSE(request_token(req)) << "a wrong scheme is not silently replaced by the cookie";
    req.set(http::field::authorization, "Bearer ");
    EXPECT_FALSE(request_token(req));
}

TEST(ContentType, KnownExtensions) {
    EXPECT_EQ(content_type_for("index.html"), "text/html; charset=utf-8");
    EXPECT_EQ(content_type_for("assets/app.JS"), "text/javascript; charset=utf-8");
    EXPECT_EQ(content_type_for("x.woff2"), "font/woff2");
    EXPECT_EQ(content_type_for("x.unknown"), "application/octet-stream");
}

}  // namespace
}  // namespace litchi::server
