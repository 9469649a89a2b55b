// See api_error.hpp. The switches have no default: adding an enumerator
// without its code and status is a compile error (-Wswitch under -Werror).
#include "server/api_error.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

namespace litchi::server {

http::status status_of(ApiError error) {
    using s = http::status;
    switch (error) {
        case ApiError::bad_request:
        case ApiError::malformed_json:
        case ApiError::invalid_body:
        case ApiError::no_urls:
        case ApiError::bad_query:
        case ApiError::bad_thumb_size:
        case ApiError::too_many_subscriptions:
        case ApiError::bad_header:
        case ApiError::limit_too_loose:
        case ApiError::bad_webhook:
            return s::bad_request;
        case ApiError::unauthorized:
        case ApiError::invalid_credentials:
            return s::unauthorized;
        case ApiError::forbidden_origin:
        case ApiError::wrong_password:
            return s::forbidden;
        case ApiError::not_found:
            return s::not_found;
        case ApiError::method_not_allowed:
            return s::method_not_allowed;
        case ApiError::conflict:
            return s::conflict;
        case ApiError::body_too_large:
        case ApiError::too_many_urls:
            return s::payload_too_large;
        case ApiError::unsupported_media_type:
            return s::unsupported_media_type;
        case ApiError::rate_limited:
        case ApiError::too_many_sockets:
            return s::too_many_requests;
        case ApiError::header_too_large:
            return s::request_header_fields_too_large;
        case ApiError::internal:
            return s::internal_server_error;
        case ApiError::unavailable:
        case ApiError::busy:
            return s::service_unavailable;
    }
    return s::internal_server_error;  // not reached: every enumerator is handled above
}

std::string_view code_of(ApiError error) {
    switch (error) {
        case ApiError::bad_request:
            return "bad_request";
        case ApiError::malformed_json:
            return "malformed_json";
        case ApiError::invalid_body:
            return "invalid_body";
        case ApiError::no_urls:
            return "no_urls";
        case ApiError::bad_header:
            return "bad_header";
        case ApiError::limit_too_loose:
            return "limit_too_loose";
        case ApiError::bad_webhook:
            return "bad_webhook";
        case ApiError::bad_query:
            return "bad_query";
        case ApiError::bad_thumb_size:
            return "bad_thumb_size";
        case ApiError::too_many_subscriptions:
            return "too_many_subscriptions";
        case ApiError::unauthorized:
            return "unauthorized";
        case ApiError::invalid_credentials:
            return "invalid_credentials";
        case ApiError::forbidden_origin:
            return "forbidden_origin";
        case ApiError::wrong_password:
            return "wrong_password";
        case ApiError::not_found:
            return "not_found";
        case ApiError::method_not_allowed:
            return "method_not_allowed";
        case ApiError::conflict:
            return "conflict";
        case ApiError::body_too_large:
            return "body_too_large";
        case ApiError::too_many_urls:
            return "too_many_urls";
        case ApiError::unsupported_media_type:
            return "unsupported_media_type";
        case ApiError::rate_limited:
            return "rate_limited";
        case ApiError::too_many_sockets:
            return "too_many_sockets";
        case ApiError::header_too_large:
            return "header_too_large";
        case ApiError::internal:
            return "internal";
        case ApiError::unavailable:
            return "unavailable";
        case ApiError::busy:
            return "busy";
    }
    return "internal";
}

StringResponse error_response(ApiError error, std::string_view message) {
    boost::json::object body;
    body["error"] = boost::json::object{{"code", code_of(error)}, {"message", message}};
    return json_response(status_of(error), body);
}

StringResponse too_many_sockets(std::size_t cap) {
    auto res = error_response(
        ApiError::too_many_sockets,
        "this user has " + std::to_string(cap) +
            " live connections (WebSocket or event stream) open already; close one first");
    res.set(http::field::retry_after, "5");
    return res;
}

std::string_view code_of(LiveError error) {
    switch (error) {
        case LiveError::bad_message:
            return "bad_message";
        case LiveError::unknown_type:
            return "unknown_type";
        case LiveError::not_found:
            return "not_found";
        case LiveError::too_many_subscriptions:
            return "too_many_subscriptions";
    }
    return "bad_message";
}

std::string live_error_message(LiveError error, std::string_view message) {
    return boost::json::serialize(
        boost::json::object{{"type", "error"}, {"code", code_of(error)}, {"message", message}});
}

}  // namespace litchi::server
