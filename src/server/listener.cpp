// See listener.hpp.
#include "server/listener.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/bind_handler.hpp>

#include "server/http_session.hpp"
#include "server/server_state.hpp"

namespace litchi::server {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

Listener::Listener(net::io_context& ioc, const tcp::endpoint& endpoint,
                   std::shared_ptr<ServerState> state)
    : ioc_(ioc),
      acceptor_(net::make_strand(ioc)),
      state_(std::move(state)),
      retry_timer_(acceptor_.get_executor()),
      failure_log_(state_->config().http.accept_log_interval) {
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(net::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(net::socket_base::max_listen_connections);
}

void Listener::run() {
    do_accept();
}

void Listener::stop() {
    // On the acceptor's strand, so it cannot race an accept completion.
    net::post(acceptor_.get_executor(), [self = shared_from_this()] {
        beast::error_code ec;
        self->acceptor_.close(ec);
        self->retry_timer_.cancel();
    });
}

tcp::endpoint Listener::local_endpoint() const {
    beast::error_code ec;
    return acceptor_.local_endpoint(ec);
}

void Listener::do_accept() {
    // Each connection gets its own strand: its handlers never run concurrently.
    acceptor_.async_accept(net::make_strand(ioc_),
                           beast::bind_front_handler(&Listener::on_accept, shared_from_this()));
}

void Listener::on_accept(beast::error_code ec, tcp::socket socket) {
    // Start the session, then go back to accepting (unless we were stopped).
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec == net::error::connection_aborted) return do_accept();  // that peer left: next one
    if (ec) return on_accept_failed(ec);
    if (failures_in_run_ != 0) {
        spdlog::info("accept works again after {} failed attempts", failures_in_run_);
        failures_in_run_ = 0;
        failure_log_.reset();
    }
    if (state_->metrics().open_connections() >=
        static_cast<std::int64_t>(state_->config().http.max_connections)) {
        // Over the cap: closing at once costs less than serving slowly.
        beast::error_code ignored;
        socket.close(ignored);
    } else {
        std::make_shared<HttpSession>(std::move(socket), state_)->run();
    }
    do_accept();
}

void Listener::on_accept_failed(beast::error_code ec) {
    // Out of descriptors or memory: the same failure would come back at once.
    // Wait, and say so at most once per interval.
    ++failures_in_run_;
    const auto& limits = state_->config().http;
    if (auto count = failure_log_.record(FailureLogGate::Clock::now())) {
        spdlog::warn(
            "accept failed {} time(s): {}; retrying every {} ms (logged at most every {} s)", count,
            ec.message(), limits.accept_retry.count(), limits.accept_log_interval.count());
    }
    retry_timer_.expires_after(limits.accept_retry);
    retry_timer_.async_wait(beast::bind_front_handler(&Listener::on_retry, shared_from_this()));
}

void Listener::on_retry(beast::error_code ec) {
    // The wait is over: try again, unless we were stopped meanwhile.
    if (ec || !acceptor_.is_open()) return;
    do_accept();
}

}  // namespace litchi::server
