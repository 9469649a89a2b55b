// The one place that decides which socket errors are worth a log line.
// Disconnects, timeouts and cancellations during shutdown are normal life
// for a server and stay quiet (debug level).
#pragma once

#include <boost/beast/core/error.hpp>

namespace litchi::server {

void fail(boost::beast::error_code ec, char const* what);

}  // namespace litchi::server
