// Builders for the common reply shapes (see http_types.hpp).
#include "server/http_types.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

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
    res.body() = boost::json::serialize(body);
    res.prepare_payload();
    return res;
}

StringResponse error_response(http::status status, std::string_view code,
                              std::string_view message) {
    boost::json::object error;
    error["code"] = code;
    error["message"] = message;
    boost::json::object body;
    body["error"] = std::move(error);
    return json_response(status, body);
}

}  // namespace litchi::server
