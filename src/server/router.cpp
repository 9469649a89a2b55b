// See router.hpp.
#include "server/router.hpp"

#include <algorithm>

namespace litchi::server {
namespace {

std::vector<std::string> split_path(std::string_view path) {
    std::vector<std::string> segments;
    std::size_t start = 0;
    while (start <= path.size()) {
        auto slash = path.find('/', start);
        if (slash == std::string_view::npos) slash = path.size();
        if (slash > start) segments.emplace_back(path.substr(start, slash - start));
        start = slash + 1;
    }
    return segments;
}

bool match_segments(const std::vector<std::string>& pattern, const std::vector<std::string>& path,
                    std::vector<std::string>& params) {
    if (pattern.size() != path.size()) return false;
    params.clear();
    for (std::size_t i = 0; i < pattern.size(); ++i) {
        if (pattern[i] == "{}") {
            params.push_back(path[i]);
        } else if (pattern[i] != path[i]) {
            return false;
        }
    }
    return true;
}

}  // namespace

std::optional<std::string> RequestContext::query(std::string_view key) const {
    auto params_view = url.params();
    auto it = params_view.find(key);
    if (it == params_view.end()) return std::nullopt;
    auto param = *it;
    return param.has_value ? param.value : std::string();
}

void Router::add(http::verb method, std::string_view pattern, Placement placement, Handler handler,
                 std::optional<std::uint64_t> body_limit, Access access) {
    routes_.push_back(
        Route{method, split_path(pattern), placement, std::move(handler), body_limit, access});
}

void Router::set_fallback(http::verb method, Placement placement, Handler handler) {
    fallbacks_.push_back(
        Route{method, {}, placement, std::move(handler), std::nullopt, Access::open});
}

std::uint64_t Router::body_limit(http::verb method, std::string_view path) const {
    auto match = find(method, path);
    if (match.route && match.route->body_limit) return *match.route->body_limit;
    return default_body_limit_;
}

std::uint64_t Router::largest_body_limit() const {
    std::uint64_t largest = default_body_limit_;
    for (const auto& route : routes_) largest = std::max(largest, route.body_limit.value_or(0));
    return largest;
}

Router::Match Router::find(http::verb method, std::string_view path) const {
    Match match;
    auto segments = split_path(path);
    std::vector<std::string> params;
    for (const auto& route : routes_) {
        if (!match_segments(route.segments, segments, params)) continue;
        if (route.method == method) {
            match.route = &route;
            match.params = std::move(params);
            match.allow.clear();
            return match;
        }
        if (!match.allow.empty()) match.allow += ", ";
        match.allow += std::string(http::to_string(route.method));
    }
    if (!match.allow.empty()) return match;
    for (const auto& route : fallbacks_) {
        if (route.method == method) {
            match.route = &route;
            return match;
        }
    }
    return match;
}

}  // namespace litchi::server
