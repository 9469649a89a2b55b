// Accepts connections on the --listen address and gives each its own
// HttpSession on its own strand (Beast's chat-multi `listener`).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>
#include <memory>

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

    boost::asio::io_context& ioc_;
    boost::asio::ip::tcp::acceptor acceptor_;
    std::shared_ptr<ServerState> state_;
};

}  // namespace litchi::server
