// Fuzz target: the WebSocket frame reader (server/ws_frames.hpp), which reads
// every byte a progress client sends after the upgrade.
//
// Input: byte 0 sets the message limit ((b + 1) * 8 bytes), byte 1 how the
// rest is cut into reads and, with its top bit, that the rest describes frames
// ([flags+opcode byte][length byte][payload], masked here with a fixed key) so
// that the fuzzer reaches deep into fragmented messages quickly; otherwise the
// rest is the raw byte stream. Besides "no crash, no sanitizer report":
//  - fed at once or in pieces, the reader says the same things;
//  - a message is at most the limit; a text message is valid UTF-8;
//  - a close carries a valid code (or none), an error a code the reader uses;
//    after either nothing more comes, and the reader says it is finished.
// The server's own close and ping frames, masked, must read back as sent
// (the reason cut to 123 bytes on a character boundary).
#include "server/ws_frames.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "core/utf8.hpp"

using namespace litchi;
using namespace litchi::server;

namespace {

void require(bool ok, const char* what) {
    if (ok) return;
    std::fprintf(stderr, "ws_frames: %s\n", what);
    std::abort();
}

bool same(const ws::Incoming& a, const ws::Incoming& b) {
    return a.kind == b.kind && a.text == b.text && a.code == b.code && a.payload == b.payload;
}

// A server frame (unmasked) as a client would send it: mask bit set, key 0.
std::string as_client_frame(const std::string& frame) {
    std::size_t header = 2;
    const auto length7 = static_cast<std::uint8_t>(frame[1]) & 0x7F;
    if (length7 == 126) header = 4;
    if (length7 == 127) header = 10;
    std::string masked = frame.substr(0, header);
    masked[1] = static_cast<char>(static_cast<std::uint8_t>(masked[1]) | 0x80);
    masked.append(4, '\0');
    masked.append(frame.substr(header));
    return masked;
}

// Frames from a description: [fin|rsv|opcode][length][payload], masked.
std::string build_frames(std::string_view spec) {
    static constexpr std::uint8_t key[4] = {0x37, 0xFA, 0x21, 0x3D};
    std::string out;
    while (spec.size() >= 2) {
        const auto b0 = static_cast<std::uint8_t>(spec[0]);
        const auto length = std::size_t(static_cast<std::uint8_t>(spec[1]));
        spec.remove_prefix(2);
        std::string_view payload = spec.substr(0, length);
        spec.remove_prefix(payload.size());
        out.push_back(static_cast<char>(b0));
        out.push_back(static_cast<char>(0x80 | std::min<std::size_t>(payload.size(), 125)));
        if (payload.size() > 125) {  // 126..255 bytes: the 16-bit length form
            out.back() = static_cast<char>(0x80 | 126);
            out.push_back(0);
            out.push_back(static_cast<char>(payload.size()));
        }
        out.append(reinterpret_cast<const char*>(key), 4);
        for (std::size_t i = 0; i < payload.size(); ++i)
            out.push_back(static_cast<char>(static_cast<std::uint8_t>(payload[i]) ^ key[i & 3]));
    }
    return out;
}

void check_outputs(const std::vector<ws::Incoming>& out, const ws::FrameReader& reader,
                   std::size_t max_message) {
    for (std::size_t i = 0; i < out.size(); ++i) {
        const auto& in = out[i];
        using Kind = ws::Incoming::Kind;
        const bool last = i + 1 == out.size();
        switch (in.kind) {
            case Kind::message:
                require(in.payload.size() <= max_message, "a message over the limit");
                require(!in.text || is_valid_utf8(in.payload), "a text message is not UTF-8");
                break;
            case Kind::ping:
            case Kind::pong:
                require(in.payload.size() <= 125, "a control payload over 125 bytes");
                break;
            case Kind::close:
                require(in.code == ws::close_code::no_status || ws::is_valid_close_code(in.code),
                        "a close with an invalid code");
                require(is_valid_utf8(in.payload), "a close reason is not UTF-8");
                require(last, "something after a close");
                break;
            case Kind::error:
                require(in.code == ws::close_code::protocol_error ||
                            in.code == ws::close_code::invalid_payload ||
                            in.code == ws::close_code::too_big,
                        "an error with an unexpected code");
                require(last, "something after an error");
                break;
        }
    }
    const bool ended = !out.empty() && (out.back().kind == ws::Incoming::Kind::close ||
                                        out.back().kind == ws::Incoming::Kind::error);
    require(ended == reader.finished(), "finished() disagrees with what was read");
}

void check_server_frames(std::string_view text) {
    if (text.size() < 2) return;
    const auto code = static_cast<std::uint16_t>((static_cast<std::uint8_t>(text[0]) << 8) |
                                                 static_cast<std::uint8_t>(text[1]));
    std::string_view reason = text.substr(2);
    std::vector<ws::Incoming> out;
    ws::FrameReader reader(1024);
    reader.feed(as_client_frame(ws::control_frame(ws::Opcode::ping, text)), out);
    require(out.size() == 1 && out[0].kind == ws::Incoming::Kind::ping &&
                out[0].payload == text.substr(0, 125),
            "our ping frame does not read back");
    if (!ws::is_valid_close_code(code) || !is_valid_utf8(reason)) return;
    out.clear();
    reader.feed(as_client_frame(ws::close_frame(code, reason)), out);
    require(out.size() == 1 && out[0].kind == ws::Incoming::Kind::close && out[0].code == code &&
                out[0].payload == utf8_prefix(reason, 123),
            "our close frame does not read back");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    const std::size_t max_message = (std::size_t(data[0]) + 1) * 8;
    const std::uint8_t cut = data[1];
    std::string_view rest(reinterpret_cast<const char*>(data) + 2, size - 2);
    const std::string bytes = (cut & 0x80) ? build_frames(rest) : std::string(rest);

    ws::FrameReader whole(max_message);
    std::vector<ws::Incoming> at_once;
    whole.feed(bytes, at_once);
    check_outputs(at_once, whole, max_message);

    // The same bytes in pieces of 1 to 16 bytes, the sizes drawn from `cut`.
    ws::FrameReader pieces(max_message);
    std::vector<ws::Incoming> in_pieces;
    std::uint32_t state = cut | 1u;
    for (std::size_t at = 0; at < bytes.size();) {
        state = state * 1103515245u + 12345u;
        const std::size_t n = std::min<std::size_t>(1 + ((state >> 16) & 15), bytes.size() - at);
        pieces.feed(std::string_view(bytes).substr(at, n), in_pieces);
        at += n;
    }
    require(at_once.size() == in_pieces.size(), "pieces and whole differ in count");
    for (std::size_t i = 0; i < at_once.size(); ++i)
        require(same(at_once[i], in_pieces[i]), "pieces and whole differ");

    check_server_frames(rest);
    return 0;
}
