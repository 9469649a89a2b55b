// Builders for the common reply shapes (see http_types.hpp).
#include "server/http_types.hpp"

#include <boost/json/object.hpp>
#include <cctype>

#include "server/json.hpp"

namespace litchi::server {

http::status reply_status(const Reply& reply) {
    return std::visit(
        [](const auto& r) -> http::status {
            if constexpr (std::is_same_v<std::decay_t<decltype(r)>, StreamResponse>) {
                return r.head.result();
            } else {
                return r.result();
            }
        },
        reply);
}

StringResponse json_response(http::status status, const boost::json::value& body) {
    StringResponse res{status, 11};
    res.set(http::field::content_type, "application/json");
    res.set(http::field::cache_control, "no-store");
    res.body() = to_json_text(body);  // 2.5, not Boost's 2.5E0
    res.prepare_payload();
    return res;
}

std::string_view trim_header_value(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
    return text;
}

std::string ascii_lower(std::string_view text) {
    std::string out(text);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

}  // namespace litchi::server
