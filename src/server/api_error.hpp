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

#include "server/http_types.hpp"

namespace litchi::server {

enum class ApiError {
    // 400 Bad Request
    bad_request,             // the HTTP request itself is malformed
    malformed_json,          // the body is not JSON
    invalid_body,            // JSON of the wrong shape
    no_urls,                 // a job with no URLs
    bad_query,               // a query parameter out of range
    bad_thumb_size,          // ?thumb= out of range
    too_many_subscriptions,  // ?items= names more jobs than a watcher may follow
    // 401 / 403
    unauthorized,         // no valid token or session (with WWW-Authenticate: Bearer)
    invalid_credentials,  // a login that failed
    forbidden_origin,     // a browser Origin that may not open the live transports
    // 404 / 405 / 409
    not_found,
    method_not_allowed,  // with Allow
    conflict,            // a job operation its state does not allow
    // 413 / 415 / 429 / 431
    body_too_large,
    too_many_urls,
    unsupported_media_type,
    rate_limited,      // with Retry-After
    too_many_sockets,  // a user's live sockets are at --max-sockets-per-user
    header_too_large,
    // 5xx
    internal,
    unavailable,
    busy,  // no room in --max-body-in-flight for this body now (with Retry-After)
};

http::status status_of(ApiError error);
std::string_view code_of(ApiError error);

// The one way a handler answers an error: {"error":{"code","message"}} with the
// status of `error`, as JSON with Cache-Control: no-store.
StringResponse error_response(ApiError error, std::string_view message);

// The refusal of a live socket (WebSocket upgrade, SSE stream) over the
// user's --max-sockets-per-user: 429 too_many_sockets, with Retry-After.
StringResponse too_many_sockets(std::size_t cap);

// Errors inside the progress protocol (an error message, not an HTTP reply).
enum class LiveError {
    bad_message,             // not a JSON object of a known shape
    unknown_type,            // a message type the server does not know
    not_found,               // no such job (for this user), or no such subscription
    too_many_subscriptions,  // the watcher follows too many jobs already
};

std::string_view code_of(LiveError error);

// {"type":"error","code","message"}, serialised: what the WebSocket sends as a
// text message and SSE as one `data:` line.
std::string live_error_message(LiveError error, std::string_view message);

}  // namespace litchi::server
