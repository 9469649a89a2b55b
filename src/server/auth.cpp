// See auth.hpp.
#include "server/auth.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "server/api_error.hpp"

namespace litchi::server {

namespace {

// "http://Host:80/" -> "http://host" (default ports and a trailing slash dropped).
std::string normalize_origin(std::string_view origin) {
    std::string out = ascii_lower(trim_header_value(origin));
    while (!out.empty() && out.back() == '/') out.pop_back();
    if (out.starts_with("http://") && out.ends_with(":80")) out.resize(out.size() - 3);
    if (out.starts_with("https://") && out.ends_with(":443")) out.resize(out.size() - 4);
    return out;
}

// The entries of every Sec-WebSocket-Protocol header line, trimmed.
std::vector<std::string_view> offered_protocols(const Request& req) {
    std::vector<std::string_view> out;
    for (auto it = req.find(http::field::sec_websocket_protocol);
         it != req.end() && it->name() == http::field::sec_websocket_protocol; ++it) {
        std::string_view list = it->value();
        while (!list.empty()) {
            auto comma = list.find(',');
            auto entry = trim_header_value(list.substr(0, comma));
            if (!entry.empty()) out.push_back(entry);
            if (comma == std::string_view::npos) break;
            list.remove_prefix(comma + 1);
        }
    }
    return out;
}

constexpr std::string_view kBearerProtocol = "bearer.";

}  // namespace

std::optional<RequestToken> find_request_token(const Request& req) {
    auto authorization = trim_header_value(req[http::field::authorization]);
    if (!authorization.empty()) {
        auto space = authorization.find(' ');
        if (space == std::string_view::npos ||
            ascii_lower(authorization.substr(0, space)) != "bearer")
            return std::nullopt;
        auto token = trim_header_value(authorization.substr(space + 1));
        if (token.empty()) return std::nullopt;
        return RequestToken{std::string(token), TokenSource::bearer};
    }
    auto cookies = req[http::field::cookie];
    while (!cookies.empty()) {
        auto semicolon = cookies.find(';');
        auto pair = trim_header_value(cookies.substr(0, semicolon));
        auto eq = pair.find('=');
        if (eq != std::string_view::npos &&
            trim_header_value(pair.substr(0, eq)) == kSessionCookie) {
            auto value = trim_header_value(pair.substr(eq + 1));
            if (!value.empty()) return RequestToken{std::string(value), TokenSource::cookie};
        }
        if (semicolon == std::string_view::npos) break;
        cookies.remove_prefix(semicolon + 1);
    }
    return std::nullopt;
}

std::optional<std::string> request_token(const Request& req) {
    auto found = find_request_token(req);
    if (!found) return std::nullopt;
    return std::move(found->value);
}

std::optional<Authenticated> authenticate_request(UserStore& users, const Request& req) {
    auto token = request_token(req);
    if (!token) return std::nullopt;
    return users.authenticate(*token);
}

StringResponse unauthorized() {
    auto res = error_response(ApiError::unauthorized, "a valid token or session is required");
    res.set(http::field::www_authenticate, "Bearer");
    return res;
}

std::string session_cookie(std::string_view token, long max_age_seconds) {
    return fmt::format("{}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}", kSessionCookie,
                       token, std::max(max_age_seconds, 0L));
}

bool origin_allowed(const Request& req, const std::vector<std::string>& allowed) {
    if (req[http::field::origin].empty()) return true;
    return origin_present_and_allowed(req, allowed);
}

bool origin_present_and_allowed(const Request& req, const std::vector<std::string>& allowed) {
    auto origin = req[http::field::origin];
    if (origin.empty()) return false;
    auto wanted = normalize_origin(origin);
    auto host = ascii_lower(trim_header_value(req[http::field::host]));
    if (!host.empty() && (wanted == normalize_origin("http://" + host) ||
                          wanted == normalize_origin("https://" + host))) {
        return true;
    }
    return std::any_of(allowed.begin(), allowed.end(), [&wanted](const std::string& entry) {
        return normalize_origin(entry) == wanted;
    });
}

RequestVerdict judge_request(UserStore& users, const Request& req,
                             const std::vector<std::string>& allowed_origins) {
    RequestVerdict verdict;
    auto token = find_request_token(req);
    if (token) verdict.auth = users.authenticate(token->value);
    if (!verdict.auth) {
        verdict.refusal = unauthorized();
        return verdict;
    }
    auto method = req.method();
    bool changes_state =
        method != http::verb::get && method != http::verb::head && method != http::verb::options;
    if (token->source == TokenSource::cookie && changes_state &&
        !origin_present_and_allowed(req, allowed_origins)) {
        verdict.auth.reset();
        verdict.refusal = error_response(
            ApiError::forbidden_origin,
            "a request authenticated by the session cookie must carry an Origin of this "
            "server or an --allow-origin");
    }
    return verdict;
}

UpgradeVerdict judge_upgrade(UserStore& users, const Request& req, std::string_view path,
                             const std::vector<std::string>& allowed_origins) {
    UpgradeVerdict verdict;
    std::optional<std::string> token;
    for (auto entry : offered_protocols(req)) {
        if (entry == kSubprotocol) {
            verdict.answer_subprotocol = true;
        } else if (entry.starts_with(kBearerProtocol) && entry.size() > kBearerProtocol.size() &&
                   !token) {
            token = std::string(entry.substr(kBearerProtocol.size()));
        }
    }
    if (path.starts_with(kSeedWebSocketPrefix)) {
        token = std::string(path.substr(kSeedWebSocketPrefix.size()));
    } else if (!token) {
        token = request_token(req);  // cookie, or Authorization: Bearer from a non-browser client
    }
    // The token decides first: a foreign page must not learn whether a token is valid.
    std::optional<Authenticated> auth;
    if (token) auth = users.authenticate(*token);
    if (!auth) {
        verdict.refusal = unauthorized();
        return verdict;
    }
    if (!origin_allowed(req, allowed_origins)) {
        verdict.refusal = error_response(ApiError::forbidden_origin,
                                         "this Origin may not open the progress socket");
        return verdict;
    }
    verdict.auth = std::move(auth);
    return verdict;
}

}  // namespace litchi::server
