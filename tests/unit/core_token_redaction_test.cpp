// core/token_redaction: what counts as token-shaped (the "lt_" prefix at a
// word boundary, at least kMinTokenTail token characters, %-escapes too) and
// that redaction keeps the text around it.
#include <gtest/gtest.h>

#include <string>

#include "core/token_redaction.hpp"

namespace litchi {
namespace {

const std::string kToken = "lt_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcd";

TEST(RedactTokens, HidesATokenWhereverItSits) {
    EXPECT_EQ(redact_tokens("/api//litchi/" + kToken), "/api//litchi/lt_[redacted]");
    EXPECT_EQ(redact_tokens("/x?t=" + kToken + "&a=1"), "/x?t=lt_[redacted]&a=1");
    EXPECT_EQ(redact_tokens("/" + kToken), "/lt_[redacted]");
    EXPECT_EQ(redact_tokens(kToken), "lt_[redacted]");
    EXPECT_EQ(redact_tokens("GET /" + kToken + " 404 " + kToken + "."),
              "GET /lt_[redacted] 404 lt_[redacted].");
}

TEST(RedactTokens, SeesThroughPercentEscapes) {
    EXPECT_EQ(redact_tokens("/%6Ct_AbCdEfGhIjKl"), "/lt_[redacted]");
    EXPECT_EQ(redact_tokens("/lt%5FAbCdEfGhIjKl"), "/lt_[redacted]");
    EXPECT_EQ(redact_tokens("/lt_Ab%43dEfGhIjKl/next"), "/lt_[redacted]/next");
}

TEST(RedactTokens, LeavesOtherTextAlone) {
    EXPECT_EQ(redact_tokens("default_value_of_the_thing"), "default_value_of_the_thing");
    EXPECT_EQ(redact_tokens("salt_abcdefghijkl"), "salt_abcdefghijkl");
    EXPECT_EQ(redact_tokens("lt_short"), "lt_short") << "fewer than kMinTokenTail characters";
    EXPECT_EQ(redact_tokens("lt_"), "lt_");
    EXPECT_EQ(redact_tokens("%6"), "%6");
    EXPECT_EQ(redact_tokens(""), "");
    EXPECT_FALSE(contains_token_shape("GET /api/jobs 200"));
    EXPECT_TRUE(contains_token_shape("GET /?t=" + kToken + " 200"));
}

}  // namespace
}  // namespace litchi
