// Every error the HTTP API answers with, named in one place (curl's CURLcode
// idea): each ApiError has its wire code, a short snake_case word clients
// branch on, and its HTTP status. Handlers say *which* failure and a message
// for people; the code and status come from here, so one code can never be
// sent with two statuses. The body is always {"error":{"code","message"}}
// (docs/api.md).
//
// The progress protocol's in-stream errors ({"type":"error","code",...} on the
// WebSocket and SSE, docs/protocol.md) are named here too, as LiveError: they
// have no HTTP status, but they are the same vocabulary.
//
// Codes are external API: clients and tests match them. Add new ones; never
// rename or re-status an existing one.
#pragma once

#include <string>
#include <string_view>

#include "server/api_codes.hpp"
#include "server/http_types.hpp"

namespace litchi::server {

// ApiError and LiveError are declared in api_codes.hpp.

http::status status_of(ApiError error);
std::string_view code_of(ApiError error);

// The one way a handler answers an error: {"error":{"code","message"}} with the
// status of `error`, as JSON with Cache-Control: no-store.
StringResponse error_response(ApiError error, std::string_view message);

// The refusal of a live socket (WebSocket upgrade, SSE stream) over the
// user's --max-sockets-per-user: 429 too_many_sockets, with Retry-After.
StringResponse too_many_sockets(std::size_t cap);

std::string_view code_of(LiveError error);

// {"type":"error","code","message"}, serialised: what the WebSocket sends as a
// text message and SSE as one `data:` line.
std::string live_error_message(LiveError error, std::string_view message);

}  // namespace litchi::server
