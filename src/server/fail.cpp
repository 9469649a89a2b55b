// See fail.hpp.
#include "server/fail.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>

namespace litchi::server {

void fail(boost::beast::error_code ec, char const* what) {
    namespace net = boost::asio;
    // Peers that leave, idle timeouts and our own cancellations are not errors.
    if (ec == net::error::operation_aborted || ec == net::error::eof ||
        ec == net::error::connection_reset || ec == net::error::broken_pipe ||
        ec == net::error::not_connected || ec == boost::beast::error::timeout ||
        ec == boost::beast::http::error::end_of_stream) {
        spdlog::debug("{}: {}", what, ec.message());
        return;
    }
    spdlog::warn("{}: {}", what, ec.message());
}

}  // namespace litchi::server
