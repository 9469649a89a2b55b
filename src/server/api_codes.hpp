// The names of the API's errors (ApiError) and of the progress protocol's
// in-stream errors (LiveError), without Beast: the parsers of request bodies
// and client messages (job_body.hpp, client_message.hpp) answer with these and
// stay free of any I/O, so they can be tested and fuzzed alone. What a code is
// on the wire and which HTTP status it has is api_error.hpp's business.
//
// Codes are external API: clients and tests match them. Add new ones; never
// rename or re-status an existing one.
#pragma once

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
    bad_header,              // a job's header the rules refuse (core/request_options.hpp)
    limit_too_loose,         // a job's limit looser than the server's
    bad_webhook,             // a webhook URL the SSRF guard or URL check refuses, bad events
    // 401 / 403
    unauthorized,         // no valid token or session (with WWW-Authenticate: Bearer)
    invalid_credentials,  // a login that failed
    forbidden_origin,     // a browser Origin that may not open the live transports
    wrong_password,       // a password change whose current password is wrong
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

// Errors inside the progress protocol (an error message, not an HTTP reply).
enum class LiveError {
    bad_message,             // not a JSON object of a known shape
    unknown_type,            // a message type the server does not know
    not_found,               // no such job (for this user), or no such subscription
    too_many_subscriptions,  // the watcher follows too many jobs already
};

}  // namespace litchi::server
