// The vocabulary of the HTTP front end: the request type every handler reads,
// and the three kinds of reply a handler can give (a body in memory, a file,
// or a body streamed in chunks). The JSON error shape of docs/api.md is built
// by error_response() in api_error.hpp.
#pragma once

#include <boost/beast/http.hpp>
#include <boost/json/value.hpp>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

namespace litchi::server {

namespace beast = boost::beast;
namespace http = beast::http;

using Request = http::request<http::string_body>;
using StringResponse = http::response<http::string_body>;
using FileResponse = http::response<http::file_body>;

// A response body too large or too slow to build in memory (manifest, zip,
// later SSE). The session pulls one piece at a time and writes it as one HTTP
// chunk before pulling the next, so memory stays at one piece per download.
class BodyStream {
  public:
    // `piece` may be empty; `more` false ends the body; `failed` aborts the
    // connection without the last chunk, so the client sees a truncated body.
    using PieceHandler = std::function<void(std::string piece, bool more, bool failed)>;

    virtual ~BodyStream() = default;

    // Asks for the next piece. Calls `done` exactly once, from any thread.
    virtual void pull(PieceHandler done) = 0;
};

struct StreamResponse {
    http::response<http::empty_body> head;
    std::shared_ptr<BodyStream> body;
};

using Reply = std::variant<StringResponse, FileResponse, StreamResponse>;

// Each reply variant's status, for the access log and metrics.
http::status reply_status(const Reply& reply);

// A JSON body with Content-Type application/json and Cache-Control no-store.
StringResponse json_response(http::status status, const boost::json::value& body);

// Header-value helpers: spaces and tabs trimmed at both ends; ASCII lower case
// (header names, schemes and tokens compare case-insensitively).
std::string_view trim_header_value(std::string_view text);
std::string ascii_lower(std::string_view text);

}  // namespace litchi::server
