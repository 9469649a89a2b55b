// Maps a method and a path to a handler. Patterns are literal segments and
// `{}` placeholders ("/api/jobs/{}/items"); captured segments arrive decoded
// in RequestContext::params. A path that matches with another method is a 405
// with Allow; no match falls back to the default handler (the static files).
// SSE registers here like any route (a handler returning a StreamResponse);
// WebSocket upgrades are routed by the session before this table is consulted.
//
// A route also declares the largest request body it takes, so the session
// knows the limit as soon as the header is in and the one route that takes
// large bodies (POST /api/jobs) says so where it is registered. Routes that
// declare none get the default (--max-other-body).
//
// The table can be listed (routes()): `litchi serve --print-routes` prints it,
// and the OpenAPI document (docs/openapi.json) is tested against that list.
#pragma once

#include <boost/url/url_view.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/http_types.hpp"
#include "server/server_config.hpp"
#include "store/user_store.hpp"

namespace litchi::server {

struct RequestContext {
    const Request& req;
    std::string client_ip;
    std::string path;                 // decoded, without the query
    std::vector<std::string> params;  // the `{}` segments, decoded, in order
    boost::urls::url_view url;        // for query parameters (url.params())
    // The user, when the session judged the credentials before reading the
    // body (Access::user routes with a body); null otherwise.
    const Authenticated* auth = nullptr;

    // The decoded value of query parameter `key`, if present.
    std::optional<std::string> query(std::string_view key) const;
};

// Where a handler runs: cheap ones (no disk, no lock) right on the socket's
// thread; everything that touches SQLite, argon2id, libvips or files on the
// worker pool, so a slow request never stalls other connections. Images
// (thumbnails: a full decode of a large picture) have a pool of their own
// (--thumb-workers), so that no number of thumbnail requests can fill the
// worker pool and slow the rest of the API down.
enum class Placement { io, worker, images };

// Who may use a route. The session judges an Access::user route's credentials
// as soon as its header is in, so a request without a valid token gets its
// 401 before a byte of its body is read (the handler judges them itself when
// there is no body to wait for).
enum class Access { open, user };

class Router {
  public:
    using Handler = std::function<Reply(RequestContext&)>;

    struct Route {
        http::verb method;
        std::vector<std::string> segments;  // "{}" is a placeholder
        Placement placement;
        Handler handler;
        std::optional<std::uint64_t> body_limit;  // unset: the router's default
        Access access = Access::open;
    };

    struct Match {
        const Route* route = nullptr;  // null: see `allow` / fallback
        std::vector<std::string> params;
        std::string allow;  // non-empty: path known, method not (405)
    };

    // `default_body_limit`: the request body limit of routes that declare none.
    explicit Router(std::uint64_t default_body_limit = HttpLimits{}.max_other_body_bytes)
        : default_body_limit_(default_body_limit) {}

    void add(http::verb method, std::string_view pattern, Placement placement, Handler handler,
             std::optional<std::uint64_t> body_limit = std::nullopt, Access access = Access::open);
    void set_fallback(http::verb method, Placement placement, Handler handler);

    // `path` is the decoded path; segments are compared exactly.
    Match find(http::verb method, std::string_view path) const;

    // The body limit of the route `method path` finds; the default when it
    // declares none, or when no route matches (a 404 or 405 reads little).
    // Costs one more find() per request: a split of the path and a scan of
    // about twenty routes, small beside parsing the request.
    std::uint64_t body_limit(http::verb method, std::string_view path) const;
    // The largest limit of any route: what a request is read with until its
    // header says which route it is for.
    std::uint64_t largest_body_limit() const;

    // Every route (not the fallbacks), in the order they were added.
    const std::vector<Route>& routes() const { return routes_; }

  private:
    std::uint64_t default_body_limit_;
    std::vector<Route> routes_;
    std::vector<Route> fallbacks_;  // by method, for paths no route knows
};

}  // namespace litchi::server
