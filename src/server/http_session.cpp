// See http_session.hpp.
#include "server/http_session.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/url/parse.hpp>

#include "core/version.hpp"
#include "server/access_log.hpp"
#include "server/api_error.hpp"
#include "server/auth.hpp"
#include "server/event_wiring.hpp"
#include "server/fail.hpp"
#include "server/server_state.hpp"
#include "server/websocket_session.hpp"
#include "store/store_error.hpp"

namespace litchi::server {

namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// A chunked reply's head and the serializer that writes it, kept together
// because the serializer refers to the message.
struct StreamHead {
    explicit StreamHead(http::response<http::empty_body>&& m)
        : msg(std::move(m)), serializer(msg) {}
    http::response<http::empty_body> msg;
    http::response_serializer<http::empty_body> serializer;
};

// Beast reads into the flat buffer's free room, at least 512 bytes, and never
// grows it while the room is there: after a small header the buffer stays at
// a few hundred bytes and a body arrives in as many reads, each a trip through
// the strand and the parser (a 34 MB job took 0.8 s in 512-byte pieces). A body
// larger than kSmallBody (or of unknown size) gets up to kBodyReadRoom while it
// is read, given back once it is in.
constexpr std::size_t kBodyReadRoom = 256 * 1024;
constexpr std::size_t kSmallBody = 16 * 1024;

bool is_parse_error(const beast::error_code& ec) {
    return ec.category() == http::make_error_code(http::error::bad_target).category();
}

// `Expect: 100-continue` on an HTTP/1.1 request (RFC 9110, 10.1.1). The
// parser has already trimmed the value's surrounding spaces and tabs.
bool expects_continue(const http::request<http::string_body>& req) {
    return req.version() >= 11 && beast::iequals(req[http::field::expect], "100-continue");
}

}  // namespace

HttpSession::HttpSession(tcp::socket&& socket, std::shared_ptr<ServerState> state)
    : stream_(std::move(socket)),
      state_(std::move(state)),
      connection_(std::shared_ptr<ServerMetrics>(state_, &state_->metrics())) {
    beast::error_code ec;
    auto remote = stream_.socket().remote_endpoint(ec);
    client_ip_ = ec ? std::string("-") : remote.address().to_string();
}

HttpSession::~HttpSession() {
    state_->leave(this);
}

void HttpSession::run() {
    state_->join(this, weak_from_this());
    // Start on the strand: every step of this session runs there.
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&HttpSession::do_read, shared_from_this()));
}

void HttpSession::stop() {
    // Through the strand, since stop() is called from the signal handler's thread.
    net::post(stream_.get_executor(), [self = shared_from_this()] {
        self->stopping_ = true;
        if (self->waiting_for_header_) {
            beast::error_code ec;
            self->stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
            self->stream_.close();
        }
    });
}

void HttpSession::do_read() {
    // A new request: fresh parser (Beast parsers are single-use), fresh limits.
    if (stopping_) return do_close();
    const auto& limits = state_->config().http;
    parser_.emplace();
    parser_->header_limit(limits.max_header_bytes);
    // The largest body any route takes; tightened once the target is known.
    parser_->body_limit(state_->router().largest_body_limit());
    stream_.expires_after(limits.idle_timeout);
    waiting_for_header_ = true;
    http::async_read_header(
        stream_, buffer_, *parser_,
        beast::bind_front_handler(&HttpSession::on_read_header, shared_from_this()));
}

void HttpSession::on_read_header(beast::error_code ec, std::size_t) {
    // The header is in: decide the body limit for this target, then read the body.
    waiting_for_header_ = false;
    if (ec == http::error::end_of_stream) return do_close();
    if (ec && !is_parse_error(ec)) return fail(ec, "read header");

    const auto& header = parser_->get();
    started_ = std::chrono::steady_clock::now();
    log_method_ = std::string(header.method_string());
    log_target_ = std::string(header.target());
    keep_alive_ = header.keep_alive();
    head_only_ = header.method() == http::verb::head;
    request_open_ = true;
    bytes_written_ = 0;

    if (ec == http::error::body_limit) {
        linger_ = true;
        return reject_request(ApiError::body_too_large, "request body is too large");
    }
    if (ec == http::error::header_limit) {
        return reject_request(ApiError::header_too_large, "request header is too large");
    }
    if (ec) return reject_request(ApiError::bad_request, "malformed HTTP request");

    // The route that will answer declares its body limit (Api::register_routes).
    // Looked up by the decoded path, as handle_request() routes; a target that
    // does not parse gets the default limit and its 400 after the body.
    auto parsed = boost::urls::parse_origin_form(header.target());
    std::string path = parsed ? std::string(parsed->path()) : std::string();
    if (path.empty()) path = "/";
    auto match = state_->router().find(header.method(), path);
    body_limit_ = state_->router().body_limit(header.method(), path);
    auto length = parser_->content_length();
    if (length && *length > body_limit_) {
        linger_ = true;
        return reject_request(ApiError::body_too_large, "request body is too large");
    }
    parser_->body_limit(body_limit_);
    // A route for a user with a body still to come: judge the credentials now,
    // so a request without a valid token costs us its header, not its body.
    bool for_user = match.route && match.route->access == Access::user;
    if (for_user && !parser_->is_done() && state_->users() != nullptr) return judge_header();
    read_body();
}

void HttpSession::judge_header() {
    // The token lookup reads the store: on the worker pool, back on the strand.
    // Nothing touches the parser meanwhile: no read is in flight.
    net::post(state_->workers(), [self = shared_from_this()] {
        RequestVerdict verdict;
        try {
            verdict = judge_request(*self->state_->users(), self->parser_->get(),
                                    self->state_->config().allowed_origins);
        } catch (...) {
            verdict.refusal = self->answer_failure("credential check");
        }
        net::post(self->stream_.get_executor(), [self, verdict = std::move(verdict)]() mutable {
            self->on_header_judged(std::move(verdict));
        });
    });
}

void HttpSession::on_header_judged(RequestVerdict verdict) {
    // Refused: answer without reading the body (the linger drops what still comes).
    if (verdict.refusal) {
        linger_ = true;
        return reject_request(std::move(*verdict.refusal));
    }
    auth_ = std::move(verdict.auth);
    read_body();
}

void HttpSession::read_body() {
    // Reserve the body's bytes in the global budget before reading any of them.
    if (!parser_->is_done()) {
        auto length = parser_->content_length();
        std::uint64_t wanted = length.value_or(body_limit_);
        if (!state_->body_budget().try_reserve(wanted)) {
            linger_ = true;
            auto res = error_response(ApiError::busy,
                                      "too many request bodies in flight; try again shortly");
            res.set(http::field::retry_after, "1");
            return reject_request(std::move(res));
        }
        body_reservation_ = BodyReservation(state_->body_budget(), wanted);
        if (length.value_or(kBodyReadRoom) > kSmallBody)
            buffer_.reserve(std::min<std::uint64_t>(length.value_or(kBodyReadRoom), kBodyReadRoom));
    }
    stream_.expires_after(state_->config().http.read_timeout);
    if (!parser_->is_done() && expects_continue(parser_->get())) {
        // The client waits for this before it sends the body (curl does for
        // bodies over 1 MiB, and gives up waiting after a second): the
        // request passed every check that needs only its header.
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()),
                         [self = shared_from_this()](beast::error_code ec, std::size_t) {
                             if (ec) {
                                 self->request_open_ = false;
                                 return fail(ec, "write 100 Continue");
                             }
                             self->read_body_bytes();
                         });
        return;
    }
    read_body_bytes();
}

void HttpSession::read_body_bytes() {
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&HttpSession::on_read_body, shared_from_this()));
}

void HttpSession::on_read_body(beast::error_code ec, std::size_t) {
    // The whole request is in: hand it to the router.
    if (ec == http::error::body_limit) {
        linger_ = true;
        return reject_request(ApiError::body_too_large, "request body is too large");
    }
    if (ec && is_parse_error(ec))
        return reject_request(ApiError::bad_request, "malformed HTTP request");
    if (ec) {
        request_open_ = false;  // the client left mid-request: nothing to answer or log
        return fail(ec, "read body");
    }
    req_ = parser_->release();
    // The read room was for this body only: an idle keep-alive connection
    // keeps no more than what was read ahead of the next request.
    if (buffer_.capacity() > kSmallBody) buffer_.shrink_to_fit();
    handle_request();
}

void HttpSession::reject_request(ApiError error, std::string_view message) {
    reject_request(error_response(error, message));
}

void HttpSession::reject_request(StringResponse res) {
    // We stop reading this request midway, so the connection cannot be reused.
    keep_alive_ = false;
    head_only_ = false;
    send(std::move(res));
}

void HttpSession::handle_request() {
    auto parsed = boost::urls::parse_origin_form(req_.target());
    if (!parsed) return send(error_response(ApiError::bad_request, "malformed request target"));
    std::string path = parsed->path();
    if (path.empty()) path = "/";

    // The progress WebSocket, on both of its paths; other upgrades are plain GETs.
    if (beast::websocket::is_upgrade(req_) && is_event_socket_path(path) && state_->events()) {
        return start_websocket(std::move(path));
    }
    auto match = state_->router().find(req_.method(), path);
    bool api_path = path == "/api" || path.starts_with("/api/");
    bool fallback = match.route && match.route->segments.empty();
    // Unknown API paths are JSON 404s, never the web app's page.
    if (match.route && !(fallback && api_path)) {
        return run_route(*match.route, std::move(match.params), std::move(path));
    }

    if (!match.allow.empty()) {
        auto res = error_response(ApiError::method_not_allowed, "method not allowed here");
        res.set(http::field::allow, match.allow);
        return send(std::move(res));
    }
    if (api_path) {
        return send(error_response(ApiError::not_found, "no such endpoint"));
    }
    auto res = error_response(ApiError::method_not_allowed, "method not allowed here");
    res.set(http::field::allow, "GET, HEAD");
    send(std::move(res));
}

void HttpSession::start_websocket(std::string path) {
    // The token lookup reads SQLite: judge on the worker pool, upgrade on the strand.
    net::post(state_->workers(), [self = shared_from_this(), path = std::move(path)] {
        UpgradeVerdict verdict;
        std::optional<UserSocketSlot> slot;
        try {
            const auto& events = self->state_->events();
            verdict = judge_upgrade(events->store().users(), self->req_, path,
                                    self->state_->config().allowed_origins);
            // One of the user's --max-sockets-per-user, held by the socket from the 101 on.
            if (!verdict.refusal && !(slot = events->admit_user_socket(verdict.auth->user.id))) {
                verdict.auth.reset();
                verdict.refusal = too_many_sockets(events->limits().max_sockets_per_user);
            }
        } catch (...) {
            verdict.refusal = self->answer_failure("upgrade check");
        }
        net::post(self->stream_.get_executor(),
                  [self, verdict = std::move(verdict), slot = std::move(slot)]() mutable {
                      self->on_upgrade_judged(std::move(verdict), std::move(slot));
                  });
    });
}

void HttpSession::on_upgrade_judged(UpgradeVerdict verdict, std::optional<UserSocketSlot> slot) {
    // Refused: an ordinary JSON error, and no reuse of a connection that asked to upgrade.
    if (verdict.refusal) {
        keep_alive_ = false;
        return send(std::move(*verdict.refusal));
    }
    // Accepted: log the 101 here (target redacted), then hand the socket over;
    // this session starts no further read and ends with its last handler.
    Request req = std::move(req_);
    status_ = 101;
    finish_request();
    // The socket keeps its place under --max-connections, and the user's slot.
    auto session = std::make_shared<WebSocketSession>(
        stream_.release_socket(), state_->events(), std::move(*verdict.auth),
        verdict.answer_subprotocol, std::move(connection_), std::move(*slot));
    session->run(std::move(req));
}

StringResponse HttpSession::answer_failure(std::string_view stage) const {
    // Called inside a catch block: rethrow to sort what was thrown. The
    // database being down or restarting (cluster mode) is neither a bug nor
    // the client's fault: a 503 that says retrying is right. Anything else is
    // a bug: a 500, logged with what threw it.
    try {
        throw;
    } catch (const StoreUnavailable& e) {
        spdlog::warn("{} {}: {}", log_method_, redact_target(log_target_), e.what());
        return error_response(ApiError::unavailable,
                              "the database is unreachable; try again shortly");
    } catch (const std::exception& e) {
        spdlog::error("{} {}: {} failed: {}", log_method_, redact_target(log_target_), stage,
                      e.what());
    } catch (...) {
        spdlog::error("{} {}: {} failed", log_method_, redact_target(log_target_), stage);
    }
    return error_response(ApiError::internal, "internal server error");
}

void HttpSession::run_route(const Router::Route& route, std::vector<std::string> params,
                            std::string path) {
    // Both placements build the context the same way; only the thread differs.
    auto invoke = [self = shared_from_this(), &route, params = std::move(params),
                   path = std::move(path)]() mutable {
        auto url = boost::urls::parse_origin_form(self->req_.target());
        RequestContext ctx{self->req_, self->client_ip_, std::move(path), std::move(params), *url};
        if (self->auth_) ctx.auth = &*self->auth_;
        try {
            return route.handler(ctx);
        } catch (...) {
            return Reply{self->answer_failure("handler")};
        }
    };
    if (route.placement == Placement::io) return send(invoke());
    auto& pool = route.placement == Placement::images ? state_->image_workers() : state_->workers();
    net::post(pool, [self = shared_from_this(), invoke = std::move(invoke)]() mutable {
        Reply reply = invoke();
        // Back to the strand: only it may touch the socket.
        net::post(self->stream_.get_executor(),
                  [self, reply = std::move(reply)]() mutable { self->send(std::move(reply)); });
    });
}

void HttpSession::send(Reply reply) {
    status_ = static_cast<unsigned>(reply_status(reply));
    std::visit(
        [this](auto&& res) {
            using T = std::decay_t<decltype(res)>;
            if constexpr (std::is_same_v<T, StreamResponse>) {
                write_stream(std::move(res));
            } else {
                write_response(std::move(res));
            }
        },
        std::move(reply));
}

template <class Body>
void HttpSession::write_response(http::response<Body>&& res) {
    bool close = !keep_alive_ || stopping_;
    res.keep_alive(!close);
    res.version(11);
    res.set(http::field::server, kServerName);
    auto message = std::make_shared<http::response<Body>>(std::move(res));

    // A slow reader gets time in proportion to the size, at --min-write-rate at least.
    const auto& limits = state_->config().http;
    auto size = message->payload_size().value_or(0);
    stream_.expires_after(limits.write_timeout +
                          std::chrono::seconds(size / limits.min_write_rate));
    if (head_only_) {
        auto serializer = std::make_shared<http::response_serializer<Body>>(*message);
        http::async_write_header(
            stream_, *serializer,
            [self = shared_from_this(), message, serializer, close](
                beast::error_code ec, std::size_t n) { self->on_write(close, ec, n); });
        return;
    }
    http::async_write(stream_, *message,
                      [self = shared_from_this(), message, close](
                          beast::error_code ec, std::size_t n) { self->on_write(close, ec, n); });
}

void HttpSession::write_stream(StreamResponse&& res) {
    close_after_stream_ = !keep_alive_ || stopping_;
    res.head.keep_alive(!close_after_stream_);
    res.head.version(11);
    res.head.set(http::field::server, kServerName);
    res.head.chunked(true);
    body_stream_ = std::move(res.body);
    auto head = std::make_shared<StreamHead>(std::move(res.head));
    stream_.expires_after(state_->config().http.write_timeout);
    http::async_write_header(
        stream_, head->serializer,
        [self = shared_from_this(), head](beast::error_code ec, std::size_t n) {
            self->on_stream_head(ec, n);
        });
}

void HttpSession::on_stream_head(beast::error_code ec, std::size_t bytes) {
    // The head is out: start pulling the body, unless this is a HEAD request.
    bytes_written_ += bytes;
    if (ec) {
        body_stream_.reset();
        finish_request();
        return fail(ec, "write stream head");
    }
    if (head_only_) {
        body_stream_.reset();
        return on_write(true, {}, 0);  // the chunked head promised a body: do not reuse
    }
    do_pull();
}

void HttpSession::do_pull() {
    // Ask for one piece; the producer may answer from any thread.
    body_stream_->pull([self = shared_from_this()](std::string piece, bool more, bool failed) {
        net::post(self->stream_.get_executor(),
                  [self, piece = std::move(piece), more, failed]() mutable {
                      self->on_piece(std::move(piece), more, failed);
                  });
    });
}

void HttpSession::on_piece(std::string piece, bool more, bool failed) {
    // Write the piece as one chunk; an empty piece must not be written, as an
    // empty chunk would end the body early.
    if (failed) {
        body_stream_.reset();
        finish_request();
        spdlog::warn("{} {}: body stream failed; connection closed", log_method_,
                     redact_target(log_target_));
        return do_close();
    }
    chunk_ = std::move(piece);
    if (chunk_.empty()) {
        if (more) return do_pull();
        return on_chunk_written(false, {}, 0);
    }
    stream_.expires_after(state_->config().http.write_timeout);
    net::async_write(stream_, http::make_chunk(net::buffer(chunk_)),
                     [self = shared_from_this(), more](beast::error_code ec, std::size_t n) {
                         self->on_chunk_written(more, ec, n);
                     });
}

void HttpSession::on_chunk_written(bool more, beast::error_code ec, std::size_t bytes) {
    // Pull the next piece only now, so one piece per download is in memory.
    bytes_written_ += bytes;
    if (ec) {
        body_stream_.reset();
        finish_request();
        return fail(ec, "write chunk");
    }
    if (more) return do_pull();
    body_stream_.reset();
    chunk_.clear();
    chunk_.shrink_to_fit();
    stream_.expires_after(state_->config().http.write_timeout);
    net::async_write(stream_, http::make_chunk_last(),
                     [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                         self->on_write(self->close_after_stream_, ec, n);
                     });
}

void HttpSession::on_write(bool close, beast::error_code ec, std::size_t bytes) {
    // The reply is out: log it, then read the next request or close.
    bytes_written_ += bytes;
    finish_request();
    if (ec) return fail(ec, "write");
    if (close || stopping_) return linger_ ? do_linger() : do_close();
    do_read();
}

void HttpSession::finish_request() {
    if (!request_open_) return;
    request_open_ = false;
    state_->metrics().count_request(status_);
    log_access(client_ip_, log_method_, log_target_, status_, bytes_written_,
               std::chrono::steady_clock::now() - started_);
    req_ = {};
    auth_.reset();
    body_reservation_.reset();
}

void HttpSession::do_linger() {
    // We refused a body the client may still be sending: stop our side, then
    // read and drop what comes for a short while, so the client reads our
    // 413 instead of a connection reset.
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    discard_ = std::make_unique<std::array<char, 16 * 1024>>();
    stream_.expires_after(state_->config().http.linger_time);
    stream_.async_read_some(
        net::buffer(*discard_),
        beast::bind_front_handler(&HttpSession::on_linger_read, shared_from_this()));
}

void HttpSession::on_linger_read(beast::error_code ec, std::size_t) {
    // Keep dropping until the client closes or the linger time is up.
    if (ec) return do_close();
    stream_.async_read_some(
        net::buffer(*discard_),
        beast::bind_front_handler(&HttpSession::on_linger_read, shared_from_this()));
}

void HttpSession::do_close() {
    // Half-close so the client sees a clean end; the socket closes when the
    // last handler lets go of this session.
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
}

}  // namespace litchi::server
