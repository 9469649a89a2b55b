// The WebSocket framing codec on its own: the reader fed client frames (masked,
// as clients must send them) whole, byte by byte and in random pieces; every
// protocol error it must close with; invalid UTF-8 in text and close reasons
// (the validator itself is tested in core_utf8_test.cpp); and the bytes of the
// server's own frame headers, control and close frames.
#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "server/ws_frames.hpp"

namespace litchi::server::ws {
namespace {

using Kind = Incoming::Kind;

constexpr std::size_t kMax = 1 << 20;
// The RFC 6455 example key: every byte non-zero, so an unmasked read differs.
constexpr std::array<std::uint8_t, 4> kKey = {0x37, 0xFA, 0x21, 0x3D};

constexpr std::uint8_t op(Opcode o) {
    return static_cast<std::uint8_t>(o);
}

// A client frame. `opcode` is any 4-bit value so reserved opcodes can be sent.
struct Frame {
    std::uint8_t opcode = op(Opcode::text);
    std::string payload;
    bool fin = true;
    bool masked = true;
    std::uint8_t rsv = 0;  // 0b100 = RSV1, 0b010 = RSV2, 0b001 = RSV3
};

// The header up to the mask key, with any length (also ones no payload follows).
std::string header_bytes(std::uint8_t first, std::uint64_t length, bool masked) {
    std::string out;
    out.push_back(static_cast<char>(first));
    const std::uint8_t mask_bit = masked ? 0x80 : 0x00;
    if (length <= 125) {
        out.push_back(static_cast<char>(mask_bit | length));
    } else if (length <= 0xFFFF) {
        out.push_back(static_cast<char>(mask_bit | 126));
        out.push_back(static_cast<char>(length >> 8));
        out.push_back(static_cast<char>(length & 0xFF));
    } else {
        out.push_back(static_cast<char>(mask_bit | 127));
        for (int shift = 56; shift >= 0; shift -= 8) {
            out.push_back(static_cast<char>((length >> shift) & 0xFF));
        }
    }
    if (masked) {
        for (std::uint8_t k : kKey) out.push_back(static_cast<char>(k));
    }
    return out;
}

std::string encode(const Frame& f) {
    const std::uint8_t first =
        static_cast<std::uint8_t>((f.fin ? 0x80 : 0x00) | ((f.rsv & 0x7) << 4) | (f.opcode & 0xF));
    std::string out = header_bytes(first, f.payload.size(), f.masked);
    for (std::size_t i = 0; i < f.payload.size(); ++i) {
        std::uint8_t b = static_cast<std::uint8_t>(f.payload[i]);
        if (f.masked) b ^= kKey[i % 4];
        out.push_back(static_cast<char>(b));
    }
    return out;
}

std::string text(std::string_view p, bool fin = true) {
    return encode({.opcode = op(Opcode::text), .payload = std::string(p), .fin = fin});
}
std::string binary(std::string_view p, bool fin = true) {
    return encode({.opcode = op(Opcode::binary), .payload = std::string(p), .fin = fin});
}
std::string cont(std::string_view p, bool fin) {
    return encode({.opcode = op(Opcode::continuation), .payload = std::string(p), .fin = fin});
}
std::string ping(std::string_view p) {
    return encode({.opcode = op(Opcode::ping), .payload = std::string(p)});
}
std::string pong(std::string_view p) {
    return encode({.opcode = op(Opcode::pong), .payload = std::string(p)});
}
std::string close_payload(std::uint16_t code, std::string_view reason = {}) {
    std::string p;
    p.push_back(static_cast<char>(code >> 8));
    p.push_back(static_cast<char>(code & 0xFF));
    p.append(reason);
    return p;
}
std::string client_close(std::uint16_t code, std::string_view reason = {}) {
    return encode({.opcode = op(Opcode::close), .payload = close_payload(code, reason)});
}

// `n` bytes of valid UTF-8 mixing 1-, 2-, 3- and 4-byte characters.
std::string utf8_text(std::size_t n) {
    static constexpr std::string_view kChars[] = {"a", "\xC3\xA9", "\xE2\x82\xAC",
                                                  "\xF0\x9F\x98\x80", "z"};
    std::string out;
    std::size_t i = 0;
    while (out.size() < n) {
        std::string_view c = kChars[i++ % std::size(kChars)];
        if (out.size() + c.size() > n) c = "a";
        out.append(c);
    }
    return out;
}

struct Read {
    std::vector<Incoming> out;
    bool finished = false;
};

Read feed_once(std::string_view bytes, std::size_t max = kMax) {
    FrameReader reader(max);
    Read run;
    reader.feed(bytes, run.out);
    run.finished = reader.finished();
    return run;
}

// Feeds bytes[cuts[i-1], cuts[i]) one after another; `cuts` ascending.
Read feed_cut(std::string_view bytes, const std::vector<std::size_t>& cuts,
              std::size_t max = kMax) {
    FrameReader reader(max);
    Read run;
    std::size_t from = 0;
    for (std::size_t cut : cuts) {
        reader.feed(bytes.substr(from, cut - from), run.out);
        from = cut;
    }
    reader.feed(bytes.substr(from), run.out);
    run.finished = reader.finished();
    return run;
}

Read feed_bytewise(std::string_view bytes, std::size_t max = kMax) {
    FrameReader reader(max);
    Read run;
    for (char c : bytes) reader.feed(std::string_view(&c, 1), run.out);
    run.finished = reader.finished();
    return run;
}

const char* kind_name(Kind k) {
    switch (k) {
        case Kind::message:
            return "message";
        case Kind::ping:
            return "ping";
        case Kind::pong:
            return "pong";
        case Kind::close:
            return "close";
        case Kind::error:
            return "error";
    }
    return "?";
}

std::string describe(const std::vector<Incoming>& out) {
    std::string s = "[";
    for (const Incoming& in : out) {
        s += "{";
        s += kind_name(in.kind);
        if (in.kind == Kind::message) s += in.text ? " text" : " binary";
        if (in.kind == Kind::close || in.kind == Kind::error) {
            s += " code=" + std::to_string(in.code);
        }
        s += " len=" + std::to_string(in.payload.size()) + " \"";
        for (std::size_t i = 0; i < in.payload.size() && i < 40; ++i) {
            auto b = static_cast<unsigned char>(in.payload[i]);
            if (b >= 0x20 && b < 0x7F) {
                s += static_cast<char>(b);
            } else {
                char hex[5];
                std::snprintf(hex, sizeof hex, "\\x%02X", b);
                s += hex;
            }
        }
        s += in.payload.size() > 40 ? "...\"}" : "\"}";
    }
    return s + "]";
}

// Exactly one whole message.
::testing::AssertionResult one_message(const Read& run, bool is_text, std::string_view payload) {
    if (run.out.size() != 1 || run.out[0].kind != Kind::message) {
        return ::testing::AssertionFailure() << "expected one message, got " << describe(run.out);
    }
    if (run.out[0].text != is_text) {
        return ::testing::AssertionFailure() << "text flag is " << run.out[0].text;
    }
    if (run.out[0].payload != payload) {
        return ::testing::AssertionFailure() << "payload differs: got " << describe(run.out)
                                             << ", want " << payload.size() << " bytes";
    }
    if (run.finished) return ::testing::AssertionFailure() << "reader finished after a message";
    return ::testing::AssertionSuccess();
}

// The last thing read is an error with `code` (and only the last), and the reader is done.
::testing::AssertionResult ends_in_error(const Read& run, std::uint16_t code) {
    if (run.out.empty() || run.out.back().kind != Kind::error) {
        return ::testing::AssertionFailure() << "expected an error last, got " << describe(run.out);
    }
    for (std::size_t i = 0; i + 1 < run.out.size(); ++i) {
        if (run.out[i].kind == Kind::error) {
            return ::testing::AssertionFailure() << "more than one error: " << describe(run.out);
        }
    }
    if (run.out.back().code != code) {
        return ::testing::AssertionFailure() << "error code " << run.out.back().code << ", want "
                                             << code << ": " << describe(run.out);
    }
    if (!run.finished) return ::testing::AssertionFailure() << "reader not finished after error";
    return ::testing::AssertionSuccess();
}

::testing::AssertionResult same(const Read& a, const Read& b) {
    if (a.out.size() != b.out.size()) {
        return ::testing::AssertionFailure()
               << describe(a.out) << " vs " << describe(b.out) << " (different counts)";
    }
    for (std::size_t i = 0; i < a.out.size(); ++i) {
        const Incoming& x = a.out[i];
        const Incoming& y = b.out[i];
        if (x.kind != y.kind || x.text != y.text || x.code != y.code || x.payload != y.payload) {
            return ::testing::AssertionFailure()
                   << "item " << i << " differs: " << describe(a.out) << " vs " << describe(b.out);
        }
    }
    if (a.finished != b.finished) return ::testing::AssertionFailure() << "finished differs";
    return ::testing::AssertionSuccess();
}

// ---- Reading whole frames ----

TEST(WsFrameReader, MaskedTextFrameIsOneTextMessage) {
    EXPECT_TRUE(one_message(feed_once(text("Hello")), true, "Hello"));
    const std::string greek = "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5";  // κόσμε
    EXPECT_TRUE(one_message(feed_once(text(greek)), true, greek));
}

TEST(WsFrameReader, MaskedBinaryFrameIsOneBinaryMessage) {
    const std::string bytes("\x00\xFF\x80\xC0\xAF\x01", 6);  // not UTF-8, and need not be
    EXPECT_TRUE(one_message(feed_once(binary(bytes)), false, bytes));
}

TEST(WsFrameReader, EmptyMessages) {
    EXPECT_TRUE(one_message(feed_once(text("")), true, ""));
    EXPECT_TRUE(one_message(feed_once(binary("")), false, ""));
    // Empty fragments joined are an empty message too.
    EXPECT_TRUE(one_message(feed_once(text("", false) + cont("", true)), true, ""));
}

TEST(WsFrameReader, SeveralFramesInOneFeedComeOutInOrder) {
    const std::string stream =
        text("one") + binary("two") + ping("p") + text("three") + pong("q") + binary("");
    Read run = feed_once(stream);
    ASSERT_EQ(run.out.size(), 6u) << describe(run.out);
    EXPECT_EQ(run.out[0].kind, Kind::message);
    EXPECT_TRUE(run.out[0].text);
    EXPECT_EQ(run.out[0].payload, "one");
    EXPECT_EQ(run.out[1].kind, Kind::message);
    EXPECT_FALSE(run.out[1].text);
    EXPECT_EQ(run.out[1].payload, "two");
    EXPECT_EQ(run.out[2].kind, Kind::ping);
    EXPECT_EQ(run.out[2].payload, "p");
    EXPECT_EQ(run.out[3].kind, Kind::message);
    EXPECT_TRUE(run.out[3].text);
    EXPECT_EQ(run.out[3].payload, "three");
    EXPECT_EQ(run.out[4].kind, Kind::pong);
    EXPECT_EQ(run.out[4].payload, "q");
    EXPECT_EQ(run.out[5].kind, Kind::message);
    EXPECT_FALSE(run.out[5].text);
    EXPECT_EQ(run.out[5].payload, "");
    EXPECT_FALSE(run.finished);
}

TEST(WsFrameReader, PingAndPongPayloadsAreDelivered) {
    Read run = feed_once(ping("are you there") + pong(std::string(125, 'x')) + ping(""));
    ASSERT_EQ(run.out.size(), 3u) << describe(run.out);
    EXPECT_EQ(run.out[0].kind, Kind::ping);
    EXPECT_EQ(run.out[0].payload, "are you there");
    EXPECT_EQ(run.out[1].kind, Kind::pong);
    EXPECT_EQ(run.out[1].payload, std::string(125, 'x'));
    EXPECT_EQ(run.out[2].kind, Kind::ping);
    EXPECT_EQ(run.out[2].payload, "");
    EXPECT_FALSE(run.finished);
}

TEST(WsFrameReader, CloseWithCodeAndReason) {
    Read run = feed_once(client_close(1000, "bye \xE2\x82\xAC"));
    ASSERT_EQ(run.out.size(), 1u) << describe(run.out);
    EXPECT_EQ(run.out[0].kind, Kind::close);
    EXPECT_EQ(run.out[0].code, 1000);
    EXPECT_EQ(run.out[0].payload, "bye \xE2\x82\xAC");
    EXPECT_TRUE(run.finished);
}

TEST(WsFrameReader, CloseWithoutPayloadIsNoStatus) {
    Read run = feed_once(encode({.opcode = op(Opcode::close), .payload = ""}));
    ASSERT_EQ(run.out.size(), 1u) << describe(run.out);
    EXPECT_EQ(run.out[0].kind, Kind::close);
    EXPECT_EQ(run.out[0].code, close_code::no_status);
    EXPECT_EQ(run.out[0].payload, "");
    EXPECT_TRUE(run.finished);
}

TEST(WsFrameReader, NothingIsReadAfterAClose) {
    FrameReader reader(kMax);
    std::vector<Incoming> out;
    reader.feed(client_close(1001) + text("after"), out);
    ASSERT_EQ(out.size(), 1u) << describe(out);
    EXPECT_EQ(out[0].kind, Kind::close);
    reader.feed(text("later") + ping("x"), out);
    EXPECT_EQ(out.size(), 1u) << describe(out);
    EXPECT_TRUE(reader.finished());
}

// ---- Fragments ----

TEST(WsFrameReader, FragmentedTextIsJoined) {
    EXPECT_TRUE(
        one_message(feed_once(text("Hel", false) + cont("lo ", false) + cont("world", true)), true,
                    "Hello world"));
    EXPECT_TRUE(one_message(feed_once(binary("\x01\x02", false) + cont("\x03", true)), false,
                            "\x01\x02\x03"));
}

TEST(WsFrameReader, UTF8CharacterSplitAcrossFragmentsIsValid) {
    // "€" = E2 82 AC, its bytes in three frames: only the whole message must be complete.
    EXPECT_TRUE(one_message(feed_once(text("a\xE2", false) + cont("\x82", false) +
                                      cont("\xAC"
                                           "b",
                                           true)),
                            true,
                            "a\xE2\x82\xAC"
                            "b"));
}

TEST(WsFrameReader, ControlFramesBetweenFragmentsComeFirst) {
    Read run = feed_once(text("Hel", false) + ping("ping!") + cont("lo ", false) + pong("pong!") +
                         cont("world", true));
    ASSERT_EQ(run.out.size(), 3u) << describe(run.out);
    EXPECT_EQ(run.out[0].kind, Kind::ping);
    EXPECT_EQ(run.out[0].payload, "ping!");
    EXPECT_EQ(run.out[1].kind, Kind::pong);
    EXPECT_EQ(run.out[1].payload, "pong!");
    EXPECT_EQ(run.out[2].kind, Kind::message);
    EXPECT_TRUE(run.out[2].text);
    EXPECT_EQ(run.out[2].payload, "Hello world");
}

TEST(WsFrameReader, ANewMessageMayFollowAFinishedFragmentedOne) {
    Read run = feed_once(text("a", false) + cont("b", true) + binary("c", false) + cont("d", true) +
                         text("e"));
    ASSERT_EQ(run.out.size(), 3u) << describe(run.out);
    EXPECT_EQ(run.out[0].payload, "ab");
    EXPECT_TRUE(run.out[0].text);
    EXPECT_EQ(run.out[1].payload, "cd");
    EXPECT_FALSE(run.out[1].text);
    EXPECT_EQ(run.out[2].payload, "e");
    EXPECT_TRUE(run.out[2].text);
}

// ---- Any split of the bytes reads the same ----

TEST(WsFrameReader, ByteByByteAndEveryHeaderSplitReadLikeOneFeed) {
    for (std::size_t n : {std::size_t{0}, std::size_t{125}, std::size_t{126}, std::size_t{65535},
                          std::size_t{65536}}) {
        SCOPED_TRACE("payload of " + std::to_string(n) + " bytes");
        const std::string payload = utf8_text(n);
        ASSERT_EQ(payload.size(), n);
        const std::string frame = text(payload);

        Read whole = feed_once(frame);
        ASSERT_TRUE(one_message(whole, true, payload));
        EXPECT_TRUE(same(whole, feed_bytewise(frame)));

        // One cut at every position of the header (2 + 0/2/8 + 4 bytes) and a few past it.
        for (std::size_t cut = 1; cut < frame.size() && cut <= 20; ++cut) {
            EXPECT_TRUE(same(whole, feed_cut(frame, {cut}))) << "cut at " << cut;
        }
        // Two cuts: the header in three pieces.
        for (std::size_t a = 1; a < 14 && a < frame.size(); ++a) {
            for (std::size_t b = a + 1; b <= 14 && b < frame.size(); ++b) {
                EXPECT_TRUE(same(whole, feed_cut(frame, {a, b}))) << "cuts at " << a << "," << b;
            }
        }
    }
}

TEST(WsFrameReader, RandomSplitsReadLikeOneFeed) {
    const std::string stream =
        text(utf8_text(125)) + ping("p1") + binary(std::string(126, '\x9C')) +
        text(utf8_text(300), false) + pong("between") + cont(utf8_text(65535), false) +
        cont(utf8_text(7), true) + binary(utf8_text(65536)) + text("") + client_close(1000, "ok");
    Read whole = feed_once(stream);
    ASSERT_EQ(whole.out.size(), 8u) << describe(whole.out);
    EXPECT_EQ(whole.out[4].payload, utf8_text(300) + utf8_text(65535) + utf8_text(7));
    EXPECT_EQ(whole.out[7].kind, Kind::close);

    std::mt19937 rng(20240611);
    for (int round = 0; round < 40; ++round) {
        // Mostly short pieces (headers split all over) with some long ones.
        std::vector<std::size_t> cuts;
        std::size_t at = 0;
        while (true) {
            std::size_t step = (rng() % 4 == 0) ? 1 + rng() % 40000 : 1 + rng() % 20;
            at += step;
            if (at >= stream.size()) break;
            cuts.push_back(at);
        }
        EXPECT_TRUE(same(whole, feed_cut(stream, cuts))) << "round " << round;
    }
}

// ---- Protocol errors ----

TEST(WsFrameReaderErrors, UnmaskedFrame) {
    EXPECT_TRUE(ends_in_error(feed_once(encode({.payload = "hi", .masked = false})),
                              close_code::protocol_error));
    EXPECT_TRUE(ends_in_error(
        feed_once(encode({.opcode = op(Opcode::ping), .payload = "", .masked = false})),
        close_code::protocol_error));
}

TEST(WsFrameReaderErrors, ReservedBits) {
    for (std::uint8_t rsv : {0b100, 0b010, 0b001, 0b111}) {
        EXPECT_TRUE(ends_in_error(feed_once(encode({.payload = "x", .rsv = rsv})),
                                  close_code::protocol_error))
            << "rsv " << int{rsv};
        EXPECT_TRUE(ends_in_error(
            feed_once(encode({.opcode = op(Opcode::ping), .payload = "x", .rsv = rsv})),
            close_code::protocol_error))
            << "ping, rsv " << int{rsv};
    }
}

TEST(WsFrameReaderErrors, ReservedOpcodes) {
    for (std::uint8_t opcode : {0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
        EXPECT_TRUE(ends_in_error(feed_once(encode({.opcode = opcode, .payload = "x"})),
                                  close_code::protocol_error))
            << "opcode " << int{opcode};
        EXPECT_TRUE(ends_in_error(feed_once(encode({.opcode = opcode, .payload = ""})),
                                  close_code::protocol_error))
            << "empty, opcode " << int{opcode};
    }
}

TEST(WsFrameReaderErrors, FragmentedControlFrame) {
    for (Opcode o : {Opcode::ping, Opcode::pong, Opcode::close}) {
        EXPECT_TRUE(ends_in_error(feed_once(encode({.opcode = op(o), .payload = "", .fin = false})),
                                  close_code::protocol_error))
            << "opcode " << int{op(o)};
    }
}

TEST(WsFrameReaderErrors, ControlFrameOver125Bytes) {
    for (Opcode o : {Opcode::ping, Opcode::pong}) {
        EXPECT_TRUE(
            ends_in_error(feed_once(encode({.opcode = op(o), .payload = std::string(126, 'x')})),
                          close_code::protocol_error))
            << "opcode " << int{op(o)};
    }
    EXPECT_TRUE(ends_in_error(feed_once(client_close(1000, std::string(124, 'x'))),
                              close_code::protocol_error))
        << "close of 126 bytes";
}

TEST(WsFrameReaderErrors, ContinuationWithoutAStartedMessage) {
    EXPECT_TRUE(ends_in_error(feed_once(cont("x", true)), close_code::protocol_error));
    EXPECT_TRUE(ends_in_error(feed_once(cont("x", false)), close_code::protocol_error));
    // After a finished message there is nothing to continue either.
    Read run = feed_once(text("done") + cont("x", true));
    EXPECT_TRUE(ends_in_error(run, close_code::protocol_error));
    ASSERT_EQ(run.out.size(), 2u) << describe(run.out);
    EXPECT_EQ(run.out[0].payload, "done");
}

TEST(WsFrameReaderErrors, NewDataFrameWhileAFragmentedMessageIsOpen) {
    Read run = feed_once(text("a", false) + text("b"));
    EXPECT_TRUE(ends_in_error(run, close_code::protocol_error));
    EXPECT_EQ(run.out.size(), 1u) << "the open message is not delivered: " << describe(run.out);
    EXPECT_TRUE(
        ends_in_error(feed_once(text("a", false) + binary("b")), close_code::protocol_error));
    EXPECT_TRUE(ends_in_error(feed_once(binary("a", false) + text("b", false)),
                              close_code::protocol_error));
}

TEST(WsFrameReaderErrors, InvalidUTF8Text) {
    const std::string bad[] = {
        "\xC0\xAF",          // overlong '/'
        "\xE0\x80\xAF",      // overlong '/', 3 bytes
        "\xED\xA0\x80",      // surrogate U+D800
        "\xF4\x90\x80\x80",  // U+110000
        "\xF5\x80\x80\x80",  // no such lead byte
        "\x80",              // lone continuation
        "\xFF",
        "ok\xE2\x82",    // truncated at the end of a FIN frame
        "\xF0\x9F\x98",  // truncated 4-byte sequence
    };
    for (const std::string& payload : bad) {
        SCOPED_TRACE(describe({Incoming{.payload = payload}}));
        EXPECT_TRUE(ends_in_error(feed_once(text(payload)), close_code::invalid_payload));
        EXPECT_TRUE(ends_in_error(feed_once(text("", false) + cont(payload, true)),
                                  close_code::invalid_payload));
    }
}

TEST(WsFrameReaderErrors, InvalidUTF8IsReportedBeforeTheFinalFragment) {
    // The first fragment ends in a valid prefix of a 3-byte sequence.
    FrameReader reader(kMax);
    std::vector<Incoming> out;
    reader.feed(text("ok\xED", false), out);
    EXPECT_TRUE(out.empty()) << describe(out);
    EXPECT_FALSE(reader.finished());
    // The next fragment's A0 makes it a surrogate: rejected with this frame, no FIN yet.
    reader.feed(cont("\xA0\x80 more", false), out);
    EXPECT_TRUE(ends_in_error({out, reader.finished()}, close_code::invalid_payload));
    EXPECT_EQ(out.size(), 1u) << describe(out);

    // Invalid already in the first, unfinished fragment.
    EXPECT_TRUE(ends_in_error(feed_once(text("\xC0\xAF", false)), close_code::invalid_payload));
    EXPECT_TRUE(ends_in_error(feed_once(text("fine", false) + cont("\xF4\x90", false)),
                              close_code::invalid_payload));
}

TEST(WsFrameReaderErrors, CloseWithOneBytePayload) {
    // 0x0F and 0x10 followed by a zero byte would be the valid codes 3840 and 4096.
    for (char byte : {'\x03', '\x0F', '\x10'}) {
        EXPECT_TRUE(ends_in_error(
            feed_once(encode({.opcode = op(Opcode::close), .payload = std::string(1, byte)})),
            close_code::protocol_error))
            << "byte " << int{byte};
    }
}

TEST(WsFrameReaderErrors, CloseWithInvalidCode) {
    for (std::uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535}) {
        EXPECT_TRUE(ends_in_error(feed_once(client_close(code)), close_code::protocol_error))
            << "code " << code;
        EXPECT_TRUE(ends_in_error(feed_once(client_close(code, "why")), close_code::protocol_error))
            << "code " << code << " with a reason";
    }
}

TEST(WsFrameReader, CloseWithValidCodesIsAccepted) {
    for (std::uint16_t code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013,
                               1014, 3000, 4000, 4999}) {
        Read run = feed_once(client_close(code, "r"));
        ASSERT_EQ(run.out.size(), 1u) << "code " << code << ": " << describe(run.out);
        EXPECT_EQ(run.out[0].kind, Kind::close) << "code " << code;
        EXPECT_EQ(run.out[0].code, code);
        EXPECT_EQ(run.out[0].payload, "r");
    }
}

TEST(WsFrameReaderErrors, CloseReasonNotUTF8) {
    for (std::string reason : {"\xC0\xAF", "ok\xED\xA0\x80", "cut\xE2\x82"}) {
        Read run = feed_once(client_close(1000, reason));
        ASSERT_FALSE(run.out.empty());
        EXPECT_EQ(run.out.back().kind, Kind::error) << describe(run.out);
        EXPECT_TRUE(run.out.back().code == close_code::protocol_error ||
                    run.out.back().code == close_code::invalid_payload)
            << describe(run.out);
        EXPECT_TRUE(run.finished);
    }
}

TEST(WsFrameReaderErrors, MessageOverTheLimit) {
    constexpr std::size_t kLimit = 100;
    const std::string at_limit(kLimit, 'a');
    const std::string over(kLimit + 1, 'a');

    EXPECT_TRUE(one_message(feed_once(text(at_limit), kLimit), true, at_limit));
    EXPECT_TRUE(one_message(feed_once(binary(at_limit), kLimit), false, at_limit));
    EXPECT_TRUE(ends_in_error(feed_once(text(over), kLimit), close_code::too_big));
    EXPECT_TRUE(ends_in_error(feed_once(binary(over), kLimit), close_code::too_big));

    // Fragments: each under the limit, together at it / one byte over it.
    EXPECT_TRUE(one_message(
        feed_once(text(at_limit.substr(0, 60), false) + cont(at_limit.substr(60), true), kLimit),
        true, at_limit));
    EXPECT_TRUE(ends_in_error(
        feed_once(text(over.substr(0, 60), false) + cont(over.substr(60), true), kLimit),
        close_code::too_big));
    EXPECT_TRUE(ends_in_error(feed_once(binary(std::string(50, 'b'), false) +
                                            cont(std::string(50, 'b'), false) + cont("b", true),
                                        kLimit),
                              close_code::too_big));
    // Control frames do not count towards the message.
    EXPECT_TRUE(ends_in_error(
        feed_once(text(over.substr(0, 60), false) + ping("p") + cont(over.substr(60), true),
                  kLimit),
        close_code::too_big));
}

TEST(WsFrameReaderErrors, HugeDeclaredLengthIsRejectedWithoutItsPayload) {
    // A frame that says 2^40 bytes, then more than the limit of them: too big, long before the end.
    constexpr std::size_t kLimit = 1000;
    std::string frame = header_bytes(0x82, std::uint64_t{1} << 40, true);
    frame.append(kLimit + 1, '\0');
    EXPECT_TRUE(ends_in_error(feed_once(frame, kLimit), close_code::too_big));
}

TEST(WsFrameReaderErrors, LengthWithTheTopBitSet) {
    // 2^63: the most significant bit of a 64-bit length must be 0. Only the header is sent,
    // so the reader must decide from it; even an unlimited reader must not try to hold it.
    const std::string header = header_bytes(0x82, std::uint64_t{1} << 63, true);
    ASSERT_EQ(header.size(), 14u);
    for (std::size_t max : {kMax, std::numeric_limits<std::size_t>::max()}) {
        Read run = feed_once(header, max);
        ASSERT_FALSE(run.out.empty()) << "max " << max << ": nothing read";
        EXPECT_EQ(run.out.back().kind, Kind::error) << describe(run.out);
        EXPECT_TRUE(run.out.back().code == close_code::protocol_error ||
                    run.out.back().code == close_code::too_big)
            << describe(run.out);
        EXPECT_TRUE(run.finished);
    }
    // Same for a text frame and the maximal value.
    Read run = feed_once(header_bytes(0x81, std::numeric_limits<std::uint64_t>::max(), true),
                         std::numeric_limits<std::size_t>::max());
    ASSERT_FALSE(run.out.empty());
    EXPECT_EQ(run.out.back().kind, Kind::error) << describe(run.out);
}

TEST(WsFrameReaderErrors, NothingIsReadAfterAnError) {
    // Later frames in the same feed are ignored...
    Read run = feed_once(text("before") + encode({.payload = "bad", .masked = false}) +
                         text("after") + ping("x"));
    EXPECT_TRUE(ends_in_error(run, close_code::protocol_error));
    ASSERT_EQ(run.out.size(), 2u) << describe(run.out);
    EXPECT_EQ(run.out[0].payload, "before");

    // ...and so are later feeds.
    FrameReader reader(kMax);
    std::vector<Incoming> out;
    reader.feed(cont("x", true), out);
    ASSERT_EQ(out.size(), 1u) << describe(out);
    EXPECT_EQ(out[0].kind, Kind::error);
    EXPECT_TRUE(reader.finished());
    reader.feed(text("after"), out);
    reader.feed(client_close(1000), out);
    reader.feed(encode({.payload = "bad again", .masked = false}), out);
    EXPECT_EQ(out.size(), 1u) << describe(out);
    EXPECT_TRUE(reader.finished());
}

TEST(WsFrameReaderErrors, SplitFeedsReportTheSameErrors) {
    const std::string cases[] = {
        text("a", false) + text("b"),
        text("ok") + encode({.opcode = op(Opcode::ping), .payload = std::string(126, 'x')}),
        text("x\xED\xA0\x80y"),
        client_close(1005),
    };
    for (const std::string& stream : cases) {
        Read whole = feed_once(stream);
        ASSERT_FALSE(whole.out.empty());
        ASSERT_EQ(whole.out.back().kind, Kind::error) << describe(whole.out);
        EXPECT_TRUE(same(whole, feed_bytewise(stream))) << describe(whole.out);
    }
}

TEST(WsCloseCode, ValidCodesAreTheRegisteredAndApplicationOnes) {
    for (int code = 0; code <= 65535; ++code) {
        const bool want = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
                          (code >= 3000 && code <= 4999);
        EXPECT_EQ(is_valid_close_code(static_cast<std::uint16_t>(code)), want) << "code " << code;
    }
}

// ---- What the server writes ----

TEST(WsFrameHeader, LengthEncodings) {
    FrameHeader h = frame_header(Opcode::text, 125);
    ASSERT_EQ(h.size, 2u);
    EXPECT_EQ(h.bytes[0], 0x81);
    EXPECT_EQ(h.bytes[1], 125);

    h = frame_header(Opcode::binary, 0);
    ASSERT_EQ(h.size, 2u);
    EXPECT_EQ(h.bytes[0], 0x82);
    EXPECT_EQ(h.bytes[1], 0);

    h = frame_header(Opcode::text, 126);
    ASSERT_EQ(h.size, 4u);
    EXPECT_EQ(h.bytes[0], 0x81);
    EXPECT_EQ(h.bytes[1], 126) << "no mask bit";
    EXPECT_EQ(h.bytes[2], 0x00);
    EXPECT_EQ(h.bytes[3], 0x7E);

    h = frame_header(Opcode::binary, 0xABCD);
    ASSERT_EQ(h.size, 4u);
    EXPECT_EQ(h.bytes[1], 126);
    EXPECT_EQ(h.bytes[2], 0xAB);
    EXPECT_EQ(h.bytes[3], 0xCD);

    h = frame_header(Opcode::binary, 65535);
    ASSERT_EQ(h.size, 4u);
    EXPECT_EQ(h.bytes[2], 0xFF);
    EXPECT_EQ(h.bytes[3], 0xFF);

    h = frame_header(Opcode::text, 65536);
    ASSERT_EQ(h.size, 10u);
    EXPECT_EQ(h.bytes[0], 0x81);
    EXPECT_EQ(h.bytes[1], 127) << "no mask bit";
    const std::array<std::uint8_t, 8> want65536 = {0, 0, 0, 0, 0, 1, 0, 0};
    for (std::size_t i = 0; i < 8; ++i) EXPECT_EQ(h.bytes[2 + i], want65536[i]) << "byte " << i;

    h = frame_header(Opcode::binary, 0x0102030405060708ULL);
    ASSERT_EQ(h.size, 10u);
    for (std::size_t i = 0; i < 8; ++i) EXPECT_EQ(h.bytes[2 + i], i + 1) << "byte " << i;
}

TEST(WsFrameHeader, FirstByteIsFinAndOpcode) {
    for (Opcode o : {Opcode::text, Opcode::binary, Opcode::close, Opcode::ping, Opcode::pong}) {
        FrameHeader h = frame_header(o, 3);
        ASSERT_EQ(h.size, 2u);
        EXPECT_EQ(h.bytes[0], 0x80 | op(o));
        EXPECT_EQ(h.bytes[1], 3);
    }
}

TEST(WsControlFrame, WholeFrameBytes) {
    EXPECT_EQ(control_frame(Opcode::ping, "abc"), std::string("\x89\x03"
                                                              "abc"));
    EXPECT_EQ(control_frame(Opcode::pong, ""), std::string("\x8A\x00", 2));
}

TEST(WsControlFrame, PayloadIsCutTo125Bytes) {
    std::string payload;
    for (int i = 0; i < 200; ++i) payload.push_back(static_cast<char>('a' + i % 26));
    std::string frame = control_frame(Opcode::ping, payload);
    ASSERT_EQ(frame.size(), 2u + 125u);
    EXPECT_EQ(static_cast<std::uint8_t>(frame[0]), 0x89);
    EXPECT_EQ(static_cast<std::uint8_t>(frame[1]), 125);
    EXPECT_EQ(frame.substr(2), payload.substr(0, 125));
}

TEST(WsCloseFrame, WholeFrameBytes) {
    EXPECT_EQ(close_frame(1000, "bye"), std::string("\x88\x05\x03\xE8"
                                                    "bye"));
    EXPECT_EQ(close_frame(4999, ""), std::string("\x88\x02\x13\x87"));
    EXPECT_EQ(close_frame(close_code::too_big, "x"), std::string("\x88\x03\x03\xF1"
                                                                 "x"));
}

// The reason of a close frame the server built, read back by our reader (as if a client
// had sent it): whole characters only, or the reader would reject it.
std::string reason_of(const std::string& frame) {
    std::string payload = frame.substr(2);
    EXPECT_EQ(static_cast<std::uint8_t>(frame[1]), payload.size());
    Read run = feed_once(encode({.opcode = op(Opcode::close), .payload = payload}));
    EXPECT_EQ(run.out.size(), 1u) << describe(run.out);
    if (run.out.size() != 1 || run.out[0].kind != Kind::close) {
        ADD_FAILURE() << "not a readable close: " << describe(run.out);
        return {};
    }
    return run.out[0].payload;
}

TEST(WsCloseFrame, LongReasonIsCutAtACharacterBoundary) {
    std::string e_acute;
    for (int i = 0; i < 200; ++i) e_acute += "\xC3\xA9";  // é, 2 bytes
    std::string frame = close_frame(1000, e_acute);
    ASSERT_GE(frame.size(), 4u);
    EXPECT_EQ(static_cast<std::uint8_t>(frame[0]), 0x88);
    EXPECT_EQ(static_cast<std::uint8_t>(frame[2]), 0x03);
    EXPECT_EQ(static_cast<std::uint8_t>(frame[3]), 0xE8);
    std::string reason = reason_of(frame);
    EXPECT_LE(reason.size(), 123u);
    EXPECT_EQ(reason, e_acute.substr(0, 122)) << "61 whole characters, the most that fit";

    // 1 + 3k bytes: 40 euro signs after the 'a' fit in 121, the 41st would not.
    std::string euros = "a";
    for (int i = 0; i < 100; ++i) euros += "\xE2\x82\xAC";
    EXPECT_EQ(reason_of(close_frame(1001, euros)), euros.substr(0, 121));

    // ASCII is cut at exactly 123.
    const std::string ascii(300, 'r');
    EXPECT_EQ(reason_of(close_frame(1001, ascii)), ascii.substr(0, 123));
    // A reason that fits is kept whole.
    EXPECT_EQ(reason_of(close_frame(1001, ascii.substr(0, 123))), ascii.substr(0, 123));
}

}  // namespace
}  // namespace litchi::server::ws
