// Who is asking, for every way in: the JSON API, the SSE stream and the
// progress WebSocket. One place reads credentials from a request (the
// Authorization header, the session cookie, and for the WebSocket also its
// URL and Sec-WebSocket-Protocol), one place judges a browser Origin, and one
// 401 goes back when nothing valid was found.
//
// Tokens are secrets: nothing here logs one or echoes one in a reply. The
// token store (store/user_store) checks them by hash; this file only finds
// them and decides what a refusal looks like.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/http_types.hpp"
#include "store/user_store.hpp"

namespace litchi::server {

// The cookie a browser login sets (HttpOnly, SameSite=Strict).
inline constexpr std::string_view kSessionCookie = "litchi_session";

// The seed client's WebSocket URL, /api/litchi/{token}: the token is the last
// path segment (the access log redacts it for that reason).
inline constexpr std::string_view kSeedWebSocketPrefix = "/api/litchi/";

// The progress protocol's WebSocket subprotocol. A browser, which cannot set
// headers on a WebSocket, offers "litchi.v1, bearer.TOKEN"; only the first
// entry is answered, the bearer entry is never echoed.
inline constexpr std::string_view kSubprotocol = "litchi.v1";

// Where a request's token came from. A browser attaches the cookie to
// requests that other sites start; it never adds an Authorization header on
// its own, so only cookie-authenticated writes need the CSRF check.
enum class TokenSource { bearer, cookie };

struct RequestToken {
    std::string value;
    TokenSource source = TokenSource::bearer;
};

// The token a request carries: "Authorization: Bearer T", else the session cookie.
// A present Authorization header with another scheme is no token (the cookie
// does not silently stand in for it).
std::optional<RequestToken> find_request_token(const Request& req);
std::optional<std::string> request_token(const Request& req);

// The user behind request_token(req), if the token is valid now. Reads the
// token store: call it on the worker pool.
std::optional<Authenticated> authenticate_request(UserStore& users, const Request& req);

// The one 401: {"error":{"code":"unauthorized",...}} with WWW-Authenticate: Bearer.
StringResponse unauthorized();

// The Set-Cookie value carrying `token` as the session cookie for
// `max_age_seconds` (0, or an empty token, clears it).
std::string session_cookie(std::string_view token, long max_age_seconds);

// A browser Origin we accept: none at all (non-browser clients are judged by
// their token), the server's own (same scheme-less host as the Host header),
// or one of `allowed` (--allow-origin). Comparison ignores case, default ports
// and a trailing '/'.
bool origin_allowed(const Request& req, const std::vector<std::string>& allowed);

// Stricter than origin_allowed, for cookie-authenticated writes (CSRF): the
// Origin header must be present and be the server's own or an --allow-origin.
bool origin_present_and_allowed(const Request& req, const std::vector<std::string>& allowed);

// What judging a request's credentials decided (the routes that need a user).
struct RequestVerdict {
    std::optional<StringResponse> refusal;  // set: answer this, do not run the handler
    std::optional<Authenticated> auth;      // set when accepted
};

// The token first (401 without a valid one), then CSRF: a cookie-authenticated
// request with a method that changes something (anything but GET, HEAD and
// OPTIONS) needs origin_present_and_allowed, else 403 forbidden_origin.
// Bearer-token requests are judged by their token alone. Needs only the
// header, so the session can call it before it reads a body. Reads the token
// store: call it on the worker pool.
RequestVerdict judge_request(UserStore& users, const Request& req,
                             const std::vector<std::string>& allowed_origins);

// What judging a WebSocket upgrade request decided.
struct UpgradeVerdict {
    std::optional<StringResponse> refusal;  // set: answer this instead of upgrading
    std::optional<Authenticated> auth;      // set when accepted
    bool answer_subprotocol = false;        // the client offered litchi.v1
};

// Token and Origin checks for an upgrade of `path` (one of the WebSocket
// paths). The token comes from the seed path, else a `bearer.` subprotocol
// entry, else request_token(). The token decides before the Origin, so a
// foreign page cannot learn whether a token is valid: 401, then 403.
// Reads the token store: call it on the worker pool.
UpgradeVerdict judge_upgrade(UserStore& users, const Request& req, std::string_view path,
                             const std::vector<std::string>& allowed_origins);

}  // namespace litchi::server
