// `litchi serve` from start to graceful stop: locks the data folder, opens
// the store (which recovers from a crash), creates the first user if there is
// none, starts the scheduler and the HTTP listener, and on SIGINT/SIGTERM
// stops accepting, stops the scheduler (in-flight items go back to the
// queue), lets open replies finish for a short grace period, and exits.
#pragma once

#include "server/server_config.hpp"

namespace litchi::server {

// Returns the process exit status. A config that does not validate (a
// malformed --listen, limits that contradict each other) prints a message and
// returns 2; start-up failures (address in use, data folder locked or
// unreadable) print a message and return 1.
//
// ServeMode::print_routes starts as far as building the route table (the
// store is opened, nothing listens), prints it, METHOD PATH a line with `{}`
// for a path parameter, and returns 0: `litchi serve --print-routes`. The
// OpenAPI document (docs/openapi.json) is tested against that list.
enum class ServeMode { serve, print_routes };
int run_server(const ServerConfig& config, ServeMode mode = ServeMode::serve);

// "127.0.0.1:9527", "[::1]:80", "localhost:0" -> host and port. False if malformed.
bool parse_listen_address(const std::string& text, std::string& host, unsigned short& port);

}  // namespace litchi::server
