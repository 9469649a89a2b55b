// RFC 6455 framing for the server side of the progress WebSocket, after the
// handshake: a reader that turns the client's bytes into messages, pings and
// closes (or the protocol error to close with), and the headers of the
// server's own frames. No I/O and no Asio here: the session feeds bytes in and
// writes what this builds, so this file is tested byte by byte on its own.
//
// Why our own framing, when Beast's websocket::stream reads and writes frames
// well: a fan-out server writes many small messages to many sockets, and Beast
// writes one message per write operation (one system call, one completion each).
// With the frames built here a session writes everything it has in one gathered
// write. Beast still answers the upgrade (websocket_session.cpp).
//
// What the reader enforces (the client side of RFC 6455, as Autobahn tests it):
// frames must be masked; reserved bits and opcodes are a protocol error; control
// frames are unfragmented and at most 125 bytes; a continuation needs a started
// message and a new message needs the last one finished; text is valid UTF-8
// (the strict check of core/utf8.hpp), checked as fragments arrive; a close
// carries no payload, or a valid code and a UTF-8 reason; no message is longer
// than the limit.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/utf8.hpp"

namespace litchi::server::ws {

enum class Opcode : std::uint8_t {
    continuation = 0x0,
    text = 0x1,
    binary = 0x2,
    close = 0x8,
    ping = 0x9,
    pong = 0xA,
};

namespace close_code {
inline constexpr std::uint16_t normal = 1000;
inline constexpr std::uint16_t protocol_error = 1002;
inline constexpr std::uint16_t no_status = 1005;  // a close frame without a code (never sent)
inline constexpr std::uint16_t invalid_payload = 1007;
inline constexpr std::uint16_t too_big = 1009;
}  // namespace close_code

// May a peer send `code` in a close frame? 1000-1003, 1007-1011 and the
// registered 1012-1014, and 3000-4999 for libraries and applications.
bool is_valid_close_code(std::uint16_t code);

// One thing the client said.
struct Incoming {
    enum class Kind {
        message,  // a whole text or binary message (fragments joined)
        ping,
        pong,
        close,  // the client's close frame: `code` (no_status when it had none) and `payload`
                // (reason)
        error,  // a protocol violation: close with `code`, `payload` says why (for logs)
    };
    Kind kind = Kind::message;
    bool text = false;       // message: a text message
    std::uint16_t code = 0;  // close and error
    std::string payload;
};

class FrameReader {
  public:
    // `max_message`: the longest message (all fragments together) accepted; longer is too_big.
    explicit FrameReader(std::size_t max_message) : max_message_(max_message) {}

    // Consumes `bytes`, appending what they complete to `out`. After an
    // `error` (or a `close`) the reader is finished: it ignores everything fed later.
    void feed(std::string_view bytes, std::vector<Incoming>& out);
    bool finished() const { return finished_; }

  private:
    enum class Stage { header, payload };

    void fail(std::uint16_t code, std::string why, std::vector<Incoming>& out);
    bool reject(std::uint16_t code, std::string why,
                std::vector<Incoming>& out);  // fail(), then true
    // Parses `header_` when it holds a whole header; false while it needs more bytes.
    bool parse_header(std::vector<Incoming>& out);
    void frame_done(std::vector<Incoming>& out);

    std::size_t max_message_;
    bool finished_ = false;
    Stage stage_ = Stage::header;

    std::array<std::uint8_t, 14> header_{};  // 2 + 8 (length) + 4 (mask) at most
    std::size_t header_size_ = 0;

    // The frame being read.
    bool fin_ = false;
    Opcode opcode_ = Opcode::continuation;
    std::uint64_t remaining_ = 0;
    std::array<std::uint8_t, 4> mask_{};
    std::size_t mask_offset_ = 0;
    std::string control_;  // payload of a control frame

    // The data message being assembled.
    bool in_message_ = false;
    bool message_text_ = false;
    std::string message_;
    Utf8Validator utf8_;
};

// The header of one unfragmented, unmasked server frame of `length` payload
// bytes: 2, 4 or 10 bytes.
struct FrameHeader {
    std::array<std::uint8_t, 10> bytes{};
    std::size_t size = 0;
};
FrameHeader frame_header(Opcode opcode, std::uint64_t length);

// A whole server control frame, its payload cut to the 125 bytes a control
// frame may carry (ping and pong payloads are bytes, cut anywhere). A close
// frame's reason is cut to 123 bytes, never inside a UTF-8 sequence.
std::string control_frame(Opcode opcode, std::string_view payload);
std::string close_frame(std::uint16_t code, std::string_view reason);

}  // namespace litchi::server::ws
