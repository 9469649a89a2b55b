// The messages a progress client sends over the WebSocket (docs/protocol.md,
// "Client messages"), parsed and checked for shape before the session acts on
// them: ping, resume, subscribe, unsubscribe. No I/O and no Beast here, so the
// parser is tested and fuzzed on its own (tests/fuzz/client_messages.cpp).
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "server/api_codes.hpp"

namespace litchi::server {

// How deep a client message may nest. Protocol messages nest one level; this
// refuses pathological nesting early. A shape rule, not a resource limit:
// --ws-max-message already bounds what the parser holds.
inline constexpr unsigned kMaxClientMessageDepth = 16;

struct ClientMessage {
    enum class Kind { ping, resume, subscribe, unsubscribe, invalid };
    Kind kind = Kind::invalid;
    // resume: the last seq the client saw, and the epoch it saw it in (if sent).
    std::uint64_t since = 0;
    std::optional<std::string> epoch;
    // subscribe / unsubscribe: the job id as sent, a number or a non-empty
    // string (one naming no job is the hub's not_found, not a shape error).
    boost::json::value job;
    // invalid: what to answer with; `why` is static text for the client.
    LiveError error = LiveError::bad_message;
    std::string_view why;
};

ClientMessage parse_client_message(std::string_view text);

// A seq from a client: a non-negative integer (or an integral double, which
// some JSON writers produce for large numbers).
std::optional<std::uint64_t> seq_of(const boost::json::value& value);

}  // namespace litchi::server
