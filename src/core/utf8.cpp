// See utf8.hpp.
#include "core/utf8.hpp"

#include <algorithm>

namespace litchi {

namespace {

// Bjoern Hoehrmann's UTF-8 DFA (http://bjoern.hoehrmann.de/utf-8/decoder/dfa/),
// states multiplied by 12: 0 accepts, 12 rejects, anything else is inside a
// sequence. Byte classes separate exactly the lead bytes whose second byte has
// a narrower range (E0: no overlong, ED: no surrogates, F0/F4: U+10000..U+10FFFF).
// clang-format off
constexpr std::uint8_t kClass[256] = {
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  // 0x00
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  // 0x10
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  // 0x20
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  // 0x30
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  // 0x40
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  // 0x50
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  // 0x60
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  // 0x70
     1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  // 0x80
     9,  9,  9,  9,  9,  9,  9,  9,  9,  9,  9,  9,  9,  9,  9,  9,  // 0x90
     7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  // 0xA0
     7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  // 0xB0
     8,  8,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  // 0xC0
     2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  // 0xD0
    10,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  4,  3,  3,  // 0xE0
    11,  6,  6,  6,  5,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  // 0xF0
};
constexpr std::uint8_t kTransition[108] = {
    0,  12, 24, 36, 60, 96, 84, 12, 12, 12, 48, 72,  // state 0: accept
    12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12,  // state 12: reject
    12, 0,  12, 12, 12, 12, 12, 0,  12, 0,  12, 12,  // state 24: one continuation left
    12, 24, 12, 12, 12, 12, 12, 24, 12, 24, 12, 12,  // state 36: two left
    12, 12, 12, 12, 12, 12, 12, 24, 12, 12, 12, 12,  // state 48: after E0 (A0..BF)
    12, 24, 12, 12, 12, 12, 12, 12, 12, 24, 12, 12,  // state 60: after ED (80..9F)
    12, 12, 12, 12, 12, 12, 12, 36, 12, 36, 12, 12,  // state 72: after F0 (90..BF)
    12, 36, 12, 12, 12, 12, 12, 36, 12, 36, 12, 12,  // state 84: after F1..F3
    12, 36, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12,  // state 96: after F4 (80..8F)
};
// clang-format on
constexpr std::uint32_t kAccept = 0;
constexpr std::uint32_t kReject = 12;

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

std::uint32_t step(std::uint32_t state, char byte) {
    return kTransition[state + kClass[static_cast<unsigned char>(byte)]];
}

}  // namespace

bool Utf8Validator::feed(std::string_view bytes) {
    std::uint32_t state = state_;
    for (char byte : bytes) {
        state = step(state, byte);
        if (state == kReject) break;
    }
    state_ = state;
    return state != kReject;
}

bool is_valid_utf8(std::string_view text) {
    Utf8Validator validator;
    return validator.feed(text) && validator.complete();
}

std::string_view utf8_prefix(std::string_view text, std::size_t max_bytes) {
    if (text.size() <= max_bytes) return text;
    std::size_t end = max_bytes;
    // Step back over continuation bytes to the start of the character that was cut.
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
    return text.substr(0, end);
}

std::string sanitize_utf8(std::string_view text, std::size_t max_bytes) {
    std::string out;
    out.reserve(std::min(text.size(), max_bytes));
    std::size_t i = 0;
    while (i < text.size()) {
        // Run the DFA from a fresh start over one character, or up to the byte
        // that makes the sequence invalid.
        std::uint32_t state = kAccept;
        std::size_t end = i;
        do {
            state = step(state, text[end++]);
        } while (state != kAccept && state != kReject && end < text.size());

        std::string_view piece;
        if (state == kAccept) {
            piece = text.substr(i, end - i);
            auto c = static_cast<unsigned char>(piece.front());
            if (piece.size() == 1 && (c < 0x20 || c == 0x7F)) piece = kReplacement;
        } else {
            // Ill-formed: the bytes before the one that broke the sequence are one
            // maximal subpart (one U+FFFD) and that byte starts the next round,
            // unless it was the first (a stray continuation or impossible lead
            // byte), which is a subpart of its own. Cut short at the end of the
            // text: what is left is one subpart.
            if (state == kReject && end - i > 1) --end;
            piece = kReplacement;
        }
        if (out.size() + piece.size() > max_bytes) break;
        out.append(piece);
        i = end;
    }
    return out;
}

}  // namespace litchi
