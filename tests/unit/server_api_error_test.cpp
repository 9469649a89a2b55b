// The API's error vocabulary, pinned: every ApiError's wire code and HTTP
// status exactly as clients (and the integration tests) see them, the JSON
// shape of an error reply, the progress protocol's in-stream error codes, and
// the one 401. A failing line here means an external API change.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <set>
#include <string>
#include <vector>

#include "server/api_error.hpp"
#include "server/auth.hpp"

namespace litchi::server {
namespace {

struct Pinned {
    ApiError error;
    std::string_view code;
    unsigned status;
};

// Every enumerator, with the code and status it had before it was an enum.
const std::vector<Pinned> kPinned = {
    {ApiError::bad_request, "bad_request", 400},
    {ApiError::malformed_json, "malformed_json", 400},
    {ApiError::invalid_body, "invalid_body", 400},
    {ApiError::no_urls, "no_urls", 400},
    {ApiError::bad_query, "bad_query", 400},
    {ApiError::bad_thumb_size, "bad_thumb_size", 400},
    {ApiError::too_many_subscriptions, "too_many_subscriptions", 400},
    {ApiError::bad_header, "bad_header", 400},
    {ApiError::limit_too_loose, "limit_too_loose", 400},
    {ApiError::bad_webhook, "bad_webhook", 400},
    {ApiError::unauthorized, "unauthorized", 401},
    {ApiError::invalid_credentials, "invalid_credentials", 401},
    {ApiError::forbidden_origin, "forbidden_origin", 403},
    {ApiError::wrong_password, "wrong_password", 403},
    {ApiError::not_found, "not_found", 404},
    {ApiError::method_not_allowed, "method_not_allowed", 405},
    {ApiError::conflict, "conflict", 409},
    {ApiError::body_too_large, "body_too_large", 413},
    {ApiError::too_many_urls, "too_many_urls", 413},
    {ApiError::unsupported_media_type, "unsupported_media_type", 415},
    {ApiError::rate_limited, "rate_limited", 429},
    {ApiError::too_many_sockets, "too_many_sockets", 429},
    {ApiError::header_too_large, "header_too_large", 431},
    {ApiError::internal, "internal", 500},
    {ApiError::unavailable, "unavailable", 503},
    {ApiError::busy, "busy", 503},
};

TEST(ApiError, EveryCodeAndStatusIsPinned) {
    std::set<std::string_view> codes;
    for (const auto& pinned : kPinned) {
        SCOPED_TRACE(std::string(pinned.code));
        EXPECT_EQ(code_of(pinned.error), pinned.code);
        EXPECT_EQ(static_cast<unsigned>(status_of(pinned.error)), pinned.status);
        EXPECT_TRUE(codes.insert(pinned.code).second) << "two errors share a code";
    }
    // The last enumerator is in the table, so the table covers them all
    // (they are numbered from 0 without gaps).
    EXPECT_EQ(kPinned.size(), static_cast<std::size_t>(ApiError::busy) + 1);
}

TEST(ApiError, ReplyIsTheJsonErrorShape) {
    auto res = error_response(ApiError::too_many_urls, "a job may have at most 3 URLs");
    EXPECT_EQ(res.result(), http::status::payload_too_large);
    EXPECT_EQ(res[http::field::content_type], "application/json");
    EXPECT_EQ(res[http::field::cache_control], "no-store");
    EXPECT_EQ(res.body(),
              R"({"error":{"code":"too_many_urls","message":"a job may have at most 3 URLs"}})");
    EXPECT_EQ(res[http::field::content_length], std::to_string(res.body().size()));
}

TEST(ApiError, MessagesAreEscapedNotTrusted) {
    auto res = error_response(ApiError::not_found, "no such job: \"7\"\n");
    auto parsed = boost::json::parse(res.body());
    EXPECT_EQ(parsed.at("error").at("message").as_string(), "no such job: \"7\"\n");
}

TEST(LiveError, CodesAndMessageShape) {
    EXPECT_EQ(code_of(LiveError::bad_message), "bad_message");
    EXPECT_EQ(code_of(LiveError::unknown_type), "unknown_type");
    EXPECT_EQ(code_of(LiveError::not_found), "not_found");
    EXPECT_EQ(code_of(LiveError::too_many_subscriptions), "too_many_subscriptions");
    EXPECT_EQ(live_error_message(LiveError::unknown_type, "unknown message type"),
              R"({"type":"error","code":"unknown_type","message":"unknown message type"})");
}

TEST(Unauthorized, IsTheOne401WithABearerChallenge) {
    auto res = unauthorized();
    EXPECT_EQ(res.result(), http::status::unauthorized);
    EXPECT_EQ(res[http::field::www_authenticate], "Bearer");
    EXPECT_EQ(
        res.body(),
        R"({"error":{"code":"unauthorized","message":"a valid token or session is required"}})");
}

TEST(SessionCookie, AttributesAndClearing) {
    EXPECT_EQ(session_cookie("lt_abc", 60),
              "litchi_session=lt_abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=60");
    EXPECT_EQ(session_cookie("", -5),
              "litchi_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
}

TEST(OriginAllowed, NoneOwnOrListed) {
    Request req;
    req.set(http::field::host, "Example.test:9527");
    EXPECT_TRUE(origin_allowed(req, {})) << "no Origin: not a browser, the token decides";
    req.set(http::field::origin, "http://example.test:9527");
    EXPECT_TRUE(origin_allowed(req, {})) << "our own origin";
    req.set(http::field::origin, "https://EXAMPLE.test:9527/");
    EXPECT_TRUE(origin_allowed(req, {})) << "case and a trailing slash do not matter";
    req.set(http::field::origin, "http://evil.test");
    EXPECT_FALSE(origin_allowed(req, {}));
    EXPECT_TRUE(origin_allowed(req, {"http://evil.test:80/"})) << "listed, default port ignored";
    EXPECT_FALSE(origin_allowed(req, {"https://evil.test"})) << "the scheme matters";
}

}  // namespace
}  // namespace litchi::server
