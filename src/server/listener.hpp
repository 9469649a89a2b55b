// Accepts connections on the --listen address and gives each its own
// HttpSession on its own strand (Beast's chat-multi `listener`).
//
// When accept() fails (no file descriptors left: EMFILE, ENFILE; no kernel
// memory) the connection stays in the backlog and the next accept() fails
// the same way at once: retrying at once spins a core and floods the log.
// So a failure waits --accept-retry before the next try, and is logged at
// most once per --accept-log-interval (FailureLogGate), with a count.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/error.hpp>
#include <memory>

#include "server/failure_log_gate.hpp"

namespace litchi::server {

class ServerState;

class Listener : public std::enable_shared_from_this<Listener> {
  public:
    // Binds and listens now, so a bad address fails start-up with an exception.
    Listener(boost::asio::io_context& ioc, const boost::asio::ip::tcp::endpoint& endpoint,
             std::shared_ptr<ServerState> state);

    void run();
    // Stops accepting; sessions already open are not touched.
    void stop();

    boost::asio::ip::tcp::endpoint local_endpoint() const;

  private:
    void do_accept();
    void on_accept(boost::beast::error_code ec, boost::asio::ip::tcp::socket socket);
    void on_accept_failed(boost::beast::error_code ec);
    void on_retry(boost::beast::error_code ec);

    boost::asio::io_context& ioc_;
    boost::asio::ip::tcp::acceptor acceptor_;
    std::shared_ptr<ServerState> state_;
    boost::asio::steady_timer retry_timer_;  // on the acceptor's strand
    FailureLogGate failure_log_;
    std::uint64_t failures_in_run_ = 0;  // accept failures since the last success
};

}  // namespace litchi::server
