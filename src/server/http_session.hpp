// One HTTP/1.1 connection (Beast's chat-multi `http_session`): reads a
// request with header and body limits and timeouts, routes it, writes the
// reply, and loops while keep-alive holds. Handlers that block run on the
// worker pool; the reply comes back to this session's strand. Exactly one
// write is in flight at a time. WebSocket upgrades branch off in
// handle_request() before routing: judged on the worker pool, then the
// socket moves to a WebSocketSession and this session ends.
#pragma once

#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "server/api_error.hpp"
#include "server/auth.hpp"
#include "server/body_budget.hpp"
#include "server/event_wiring.hpp"
#include "server/http_types.hpp"
#include "server/metrics.hpp"
#include "server/router.hpp"

namespace litchi::server {

class ServerState;

class HttpSession : public std::enable_shared_from_this<HttpSession> {
  public:
    HttpSession(boost::asio::ip::tcp::socket&& socket, std::shared_ptr<ServerState> state);
    ~HttpSession();
    HttpSession(const HttpSession&) = delete;
    HttpSession& operator=(const HttpSession&) = delete;

    void run();
    // Graceful shutdown: close now if idle, else after the current reply.
    void stop();

  private:
    void do_read();
    void on_read_header(beast::error_code ec, std::size_t bytes);
    void judge_header();
    // The error answer for the exception being handled (call only in a catch
    // block): 503 for an unreachable store, 500 (logged as a bug) otherwise.
    StringResponse answer_failure(std::string_view stage) const;
    void on_header_judged(RequestVerdict verdict);
    void read_body();
    void read_body_bytes();  // after the checks (and a 100 Continue)
    void on_read_body(beast::error_code ec, std::size_t bytes);
    void reject_request(ApiError error, std::string_view message);
    void reject_request(StringResponse res);
    void handle_request();
    void start_websocket(std::string path);
    void on_upgrade_judged(UpgradeVerdict verdict, std::optional<UserSocketSlot> slot);
    void run_route(const Router::Route& route, std::vector<std::string> params, std::string path);
    void send(Reply reply);
    template <class Body>
    void write_response(http::response<Body>&& res);
    void write_stream(StreamResponse&& res);
    void on_stream_head(beast::error_code ec, std::size_t bytes);
    void do_pull();
    void on_piece(std::string piece, bool more, bool failed);
    void on_chunk_written(bool more, beast::error_code ec, std::size_t bytes);
    void on_write(bool close, beast::error_code ec, std::size_t bytes);
    void finish_request();
    void do_linger();
    void on_linger_read(beast::error_code ec, std::size_t bytes);
    void do_close();

    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    std::shared_ptr<ServerState> state_;
    ConnectionSlot connection_;  // counts toward --max-connections; moves to a WebSocket
    std::string client_ip_;
    std::optional<http::request_parser<http::string_body>> parser_;
    Request req_;
    std::uint64_t body_limit_ = 0;       // of the route this request is for
    std::optional<Authenticated> auth_;  // judged on the header (Access::user routes)
    BodyReservation body_reservation_;   // this request's share of --max-body-in-flight

    // The request being answered, for the access log and metrics.
    std::chrono::steady_clock::time_point started_{};
    std::string log_method_, log_target_;
    unsigned status_ = 0;
    std::uint64_t bytes_written_ = 0;
    bool request_open_ = false;  // a request was read and not yet logged
    bool head_only_ = false;     // HEAD: write the header, never a body
    bool keep_alive_ = true;     // what the client asked for
    bool linger_ = false;        // the client may still be sending a body we refused

    bool waiting_for_header_ = false;
    bool stopping_ = false;

    std::shared_ptr<BodyStream> body_stream_;
    std::string chunk_;
    bool close_after_stream_ = false;
    // What the linger reads into and drops. Its size is read granularity, not
    // a limit: how long the linger lasts is --linger. Allocated only then.
    std::unique_ptr<std::array<char, 16 * 1024>> discard_;
};

}  // namespace litchi::server
