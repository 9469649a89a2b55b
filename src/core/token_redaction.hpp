// What a Litchi token looks like, for one purpose: keeping it out of logs.
// A token is "lt_" + url-safe base64 (store/user_secrets.hpp); clients put
// them in places the server never reads (a query, a stray path segment, a
// doubled slash before the seed WebSocket path), and every such place ends up
// in some log line. So every log line is scrubbed of anything token-shaped,
// whatever route or subsystem wrote it, rather than each caller knowing where
// tokens hide.
//
// No I/O and standard library only, like the rest of core/.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace litchi {

// The fewest token characters after "lt_" that make text token-shaped. Real
// tokens carry 43; a shorter run still redacts, so a cut-off token does not
// leak its first half, while words like "lt_x" stay readable.
inline constexpr std::size_t kMinTokenTail = 8;

// True when `text` holds something token-shaped (cheap pre-check).
bool contains_token_shape(std::string_view text);

// `text` with every token-shaped run replaced by "lt_[redacted]". A run is
// "lt_" not preceded by a letter or digit (so "default_value" is left alone),
// then at least kMinTokenTail characters of [A-Za-z0-9_-]; each character may
// also come %-escaped ("%6Ct_...", "lt%5F..."), as a URL may carry it.
std::string redact_tokens(std::string_view text);

}  // namespace litchi
