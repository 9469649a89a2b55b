// The strict UTF-8 check and the sanitizer of core/utf8: the classic invalid
// forms (overlong, surrogates, over U+10FFFF, cut short, stray continuation
// bytes) for the whole-text check, the incremental validator the WebSocket
// reader feeds fragment by fragment, and sanitize_utf8's replacements and cuts.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <string_view>

#include "core/utf8.hpp"

namespace litchi {
namespace {

constexpr std::string_view kFFFD = "\xEF\xBF\xBD";

// Bytes as "\xNN" escapes beyond printable ASCII, for failure messages.
std::string hex(std::string_view bytes) {
    std::string out;
    for (unsigned char b : bytes) {
        if (b >= 0x20 && b < 0x7F) {
            out += static_cast<char>(b);
        } else {
            char buf[5];
            std::snprintf(buf, sizeof buf, "\\x%02X", b);
            out += buf;
        }
    }
    return out;
}

std::string repeat(std::string_view piece, int n) {
    std::string out;
    for (int i = 0; i < n; ++i) out += piece;
    return out;
}

// ---- is_valid_utf8 ----

TEST(IsValidUtf8, AcceptsEveryWellFormedLength) {
    EXPECT_TRUE(is_valid_utf8(""));
    EXPECT_TRUE(is_valid_utf8("plain ASCII, even \x01 and \x7F controls"));
    EXPECT_TRUE(is_valid_utf8("\xC3\xA9"));          // é, 2 bytes
    EXPECT_TRUE(is_valid_utf8("\xE2\x82\xAC"));      // €, 3 bytes
    EXPECT_TRUE(is_valid_utf8("\xF0\x9F\x98\x80"));  // U+1F600, 4 bytes
    // The edges: U+0080, U+07FF, U+0800, U+D7FF, U+E000, U+FFFF, U+10000, U+10FFFF.
    for (std::string_view edge :
         {"\xC2\x80", "\xDF\xBF", "\xE0\xA0\x80", "\xED\x9F\xBF", "\xEE\x80\x80", "\xEF\xBF\xBF",
          "\xF0\x90\x80\x80", "\xF4\x8F\xBF\xBF"}) {
        EXPECT_TRUE(is_valid_utf8(edge)) << hex(edge);
    }
}

TEST(IsValidUtf8, RejectsTheClassicInvalidForms) {
    for (std::string_view bad : {
             "\xC0\xAF",                  // overlong '/' (2 bytes)
             "\xC1\xBF",                  // overlong U+007F
             "\xE0\x80\xAF",              // overlong '/' (3 bytes)
             "\xE0\x9F\xBF",              // overlong U+07FF
             "\xF0\x80\x80\xAF",          // overlong '/' (4 bytes)
             "\xF0\x8F\xBF\xBF",          // overlong U+FFFF
             "\xED\xA0\x80",              // U+D800, the first surrogate
             "\xED\xBF\xBF",              // U+DFFF, the last surrogate
             "\xED\xA0\xBD\xED\xB8\x80",  // a surrogate pair (CESU-8), not UTF-8
             "\xF4\x90\x80\x80",          // U+110000
             "\xF5\x80\x80\x80",          // lead byte of nothing Unicode has
             "\xFF",                      // never a UTF-8 byte
             "\x80",                      // continuation without a lead byte
             "a\xBF",                     // ... after ASCII
             "\xC3",                      // cut short (2 bytes)
             "\xE2\x82",                  // cut short (3 bytes)
             "\xF0\x9F\x98",              // cut short (4 bytes)
             "\xE2\x82"
             "a",  // cut short by ASCII
         }) {
        EXPECT_FALSE(is_valid_utf8(bad)) << hex(bad);
    }
}

// ---- Utf8Validator (incremental) ----

TEST(Utf8Validator, ValidMultiByteTextIsComplete) {
    Utf8Validator v;
    EXPECT_TRUE(v.complete()) << "nothing fed is complete";
    EXPECT_TRUE(v.feed("\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5"));  // κόσμε
    EXPECT_TRUE(v.complete());
    EXPECT_TRUE(v.feed("\xF0\x9F\x98\x80"));  // U+1F600
    EXPECT_TRUE(v.complete());
    // The edges: U+D7FF, U+E000, U+10FFFF, U+0800, U+0080, U+007F.
    EXPECT_TRUE(v.feed("\xED\x9F\xBF\xEE\x80\x80\xF4\x8F\xBF\xBF\xE0\xA0\x80\xC2\x80\x7F"));
    EXPECT_TRUE(v.complete());
}

TEST(Utf8Validator, IncompleteSequenceIsNotComplete) {
    Utf8Validator v;
    const std::string_view emoji = "\xF0\x9F\x98\x80";
    for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_TRUE(v.feed(emoji.substr(i, 1))) << "byte " << i;
        EXPECT_FALSE(v.complete()) << "after byte " << i;
    }
    EXPECT_TRUE(v.feed(emoji.substr(3)));
    EXPECT_TRUE(v.complete());

    EXPECT_TRUE(v.feed("ab\xE2\x82"));
    EXPECT_FALSE(v.complete());
    v.reset();
    EXPECT_TRUE(v.complete());
    EXPECT_TRUE(v.feed("a"));
    EXPECT_TRUE(v.complete());
}

TEST(Utf8Validator, InvalidBytesFailAsTheyArriveAndStayFailed) {
    struct Case {
        std::string_view valid_prefix;  // still the start of valid UTF-8
        std::string_view bad_byte;      // the byte that makes it invalid
    };
    const Case cases[] = {
        {"", "\xC0"},     {"", "\xC1"},                     // only ever overlong
        {"\xE0", "\x9F"}, {"\xF0", "\x8F"},                 // overlong 3- and 4-byte forms
        {"\xED", "\xA0"}, {"\xED", "\xBF"},                 // surrogates
        {"\xF4", "\x90"}, {"", "\xF5"},      {"", "\xFF"},  // over U+10FFFF
        {"", "\x80"},     {"abc", "\xBF"},                  // continuation without a lead byte
        {"\xC2", "a"},    {"\xE2\x82", "a"},                // sequence cut short by ASCII
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(hex(std::string(c.valid_prefix) + std::string(c.bad_byte)));
        Utf8Validator v;
        for (char b : c.valid_prefix) EXPECT_TRUE(v.feed(std::string_view(&b, 1)));
        EXPECT_FALSE(v.feed(c.bad_byte));
        EXPECT_FALSE(v.complete());
        EXPECT_FALSE(v.feed("a")) << "valid bytes after invalid ones do not repair it";
        EXPECT_FALSE(v.complete());
        v.reset();
        EXPECT_TRUE(v.complete());
        EXPECT_TRUE(v.feed("a")) << "reset forgets the failure";
        EXPECT_TRUE(v.complete());

        // All at once: the same verdict.
        Utf8Validator whole;
        EXPECT_FALSE(whole.feed(std::string(c.valid_prefix) + std::string(c.bad_byte) + "zz"));
    }
}

// ---- utf8_prefix ----

TEST(Utf8Prefix, NeverEndsInsideACharacter) {
    EXPECT_EQ(utf8_prefix("abc", 5), "abc");
    EXPECT_EQ(utf8_prefix("abc", 2), "ab");
    EXPECT_EQ(utf8_prefix("a\xE2\x82\xAC", 3), "a");
    EXPECT_EQ(utf8_prefix("a\xE2\x82\xAC", 4), "a\xE2\x82\xAC");
    EXPECT_EQ(utf8_prefix("\xF0\x9F\x98\x80", 3), "");
    EXPECT_EQ(utf8_prefix("ab", 0), "");
}

// ---- sanitize_utf8 ----

TEST(SanitizeUtf8, ValidTextIsKept) {
    const std::string_view text = "Caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 ok";
    EXPECT_EQ(sanitize_utf8(text, 1000), text);
    EXPECT_EQ(sanitize_utf8("", 10), "");
}

TEST(SanitizeUtf8, EachMaximalIllFormedSubpartIsOneReplacement) {
    struct Case {
        std::string_view in;
        std::string out;
    };
    const std::string r(kFFFD);
    const Case cases[] = {
        {"\xC0\xAF", repeat(kFFFD, 2)},          // C0 can start nothing: each byte alone
        {"\xE0\x80\xAF", repeat(kFFFD, 3)},      // overlong: E0 80 is no valid start
        {"\xED\xA0\x80", repeat(kFFFD, 3)},      // surrogate
        {"\xF4\x90\x80\x80", repeat(kFFFD, 4)},  // over U+10FFFF
        {"\xF5\x80", repeat(kFFFD, 2)},
        {"a\x80"
         "b",
         "a" + r + "b"},         // stray continuation
        {"a\xE2\x82", "a" + r},  // cut short at the end: one subpart
        {"\xE2\x82"
         "a",
         r + "a"},  // cut short by ASCII: one subpart, 'a' kept
        {"\xF0\x9F\x98"
         "\xF0\x9F\x98\x80",
         r + "\xF0\x9F\x98\x80"},  // cut short by a new lead
        {"\xC3\xA9\xFF\xC3\xA9", "\xC3\xA9" + r + "\xC3\xA9"},
    };
    for (const Case& c : cases) {
        EXPECT_EQ(hex(sanitize_utf8(c.in, 1000)), hex(c.out)) << "input " << hex(c.in);
    }
}

TEST(SanitizeUtf8, ControlsAndDeleteAreReplaced) {
    const std::string r(kFFFD);
    EXPECT_EQ(sanitize_utf8(std::string_view("a\0b", 3), 100), "a" + r + "b");
    EXPECT_EQ(sanitize_utf8("tab\there\r\nnew\x1B[31m\x7F", 100),
              "tab" + r + "here" + r + r + "new" + r + "[31m" + r);
    // Printable ASCII edges and C1 code points (valid UTF-8) stay.
    EXPECT_EQ(sanitize_utf8(" ~\xC2\x85", 100), " ~\xC2\x85");
}

TEST(SanitizeUtf8, CutsAtACharacterBoundary) {
    EXPECT_EQ(sanitize_utf8("abcdef", 3), "abc");
    EXPECT_EQ(sanitize_utf8("ab\xE2\x82\xAC", 4), "ab") << "the euro sign does not fit whole";
    EXPECT_EQ(sanitize_utf8("ab\xE2\x82\xAC", 5), "ab\xE2\x82\xAC");
    EXPECT_EQ(sanitize_utf8("a\xF0\x9F\x98\x80z", 4), "a");
    // A replacement is three bytes: it fits whole or not at all.
    EXPECT_EQ(sanitize_utf8("a\x01z", 3), "a");
    EXPECT_EQ(sanitize_utf8("a\x01z", 4), "a" + std::string(kFFFD));
    EXPECT_EQ(sanitize_utf8("abc", 0), "");
    // The result is always valid and within the limit.
    const std::string messy = "\xE0\x80\xAF\xC3\xA9\x01\xED\xA0\x80\xF0\x9F\x98\x80\xC3";
    for (std::size_t max = 0; max < 40; ++max) {
        auto out = sanitize_utf8(messy, max);
        EXPECT_LE(out.size(), max);
        EXPECT_TRUE(is_valid_utf8(out)) << hex(out);
    }
}

}  // namespace
}  // namespace litchi
