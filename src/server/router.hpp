// Maps a method and a path to a handler. Patterns are literal segments and
// `{}` placeholders ("/api/jobs/{}/items"); captured segments arrive decoded
// in RequestContext::params. A path that matches with another method is a 405
// with Allow; no match falls back to the default handler (the static files).
// WebSocket and SSE routes (the next issue) register here the same way: SSE is
// a handler returning a StreamResponse, WebSocket upgrades are routed by the
// session before this table is consulted.
#pragma once

#include <boost/url/url_view.hpp>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "server/http_types.hpp"

namespace litchi::server {

struct RequestContext {
    const Request& req;
    std::string client_ip;
    std::string path;                 // decoded, without the query
    std::vector<std::string> params;  // the `{}` segments, decoded, in order
    boost::urls::url_view url;        // for query parameters (url.params())

    // The decoded value of query parameter `key`, if present.
    std::optional<std::string> query(std::string_view key) const;
};

// Where a handler runs: cheap ones (no disk, no lock) right on the socket's
// thread; everything that touches SQLite, argon2id, libvips or files on the
// worker pool, so a slow request never stalls other connections.
enum class Placement { io, worker };

class Router {
  public:
    using Handler = std::function<Reply(RequestContext&)>;

    struct Route {
        http::verb method;
        std::vector<std::string> segments;  // "{}" is a placeholder
        Placement placement;
        Handler handler;
    };

    struct Match {
        const Route* route = nullptr;  // null: see `allow` / fallback
        std::vector<std::string> params;
        std::string allow;  // non-empty: path known, method not (405)
    };

    void add(http::verb method, std::string_view pattern, Placement placement, Handler handler);
    void set_fallback(http::verb method, Placement placement, Handler handler);

    // `path` is the decoded path; segments are compared exactly.
    Match find(http::verb method, std::string_view path) const;

  private:
    std::vector<Route> routes_;
    std::vector<Route> fallbacks_;  // by method, for paths no route knows
};

}  // namespace litchi::server
