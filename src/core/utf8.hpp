// UTF-8, strictly: the one validator of the project. Text crosses our edges
// from clients and origins (WebSocket messages, job names, URLs that failed to
// parse) and leaves again as JSON, so "is this UTF-8" must have one answer.
//
// Strict means RFC 3629 as Unicode defines it: no overlong forms ("\xC0\xAF"
// for '/'), no UTF-16 surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no
// sequence cut short. The check is Bjoern Hoehrmann's DFA: one table lookup per
// byte, and it rejects at the first byte that cannot continue a valid sequence,
// which is what lets the WebSocket reader fail a fragmented message as soon as
// the bad byte arrives instead of after the last fragment.
//
// No I/O and standard library only, like the rest of core/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace litchi {

// Incremental check, for text that arrives in pieces (WebSocket fragments).
class Utf8Validator {
  public:
    // False once the bytes so far cannot begin valid UTF-8 (and from then on).
    bool feed(std::string_view bytes);
    // True when everything fed is valid and no sequence is left unfinished.
    bool complete() const { return state_ == 0; }
    void reset() { state_ = 0; }

  private:
    std::uint32_t state_ = 0;
};

// The whole of `text` is strict UTF-8.
bool is_valid_utf8(std::string_view text);

// The longest prefix of `text` of at most `max_bytes` that does not end inside
// a UTF-8 sequence: for cutting text we produce (assumed valid) to a size.
std::string_view utf8_prefix(std::string_view text, std::size_t max_bytes);

// `text` made safe to store and show: each invalid sequence becomes one U+FFFD
// (per maximal ill-formed subpart, the Unicode/WHATWG practice: "\xE2\x82" cut
// short is one U+FFFD, "\xC0\xAF" is two), every C0 control and DEL becomes
// U+FFFD too, and the result is cut at a character boundary to at most
// `max_bytes` bytes (never inside a character or a replacement).
std::string sanitize_utf8(std::string_view text, std::size_t max_bytes);

}  // namespace litchi
