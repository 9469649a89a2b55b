// The client side of progress protocol v1 for `litchi watch`: a Beast
// WebSocket client that keeps an exact copy of the user's jobs, applying
// messages by the seq rules of docs/protocol.md §4 (hello/snapshot replace,
// seq <= position skipped, a gap repaired with `resume`), and reconnecting
// with full-jitter backoff after any drop. After a reconnect it sends
// `resume` from the last applied seq, so a stream that the server still holds
// continues exactly; the hello that opens every connection is exact anyway.
//
// Lives in src/server because that is the only place that includes Beast;
// src/cli/watch_command.cpp draws the bar and decides when to stop.
#pragma once

#include <boost/json/object.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "core/backoff.hpp"
#include "core/records.hpp"

namespace litchi::server {

struct WatchTarget {
    std::string host;         // for DNS / the numeric address
    std::string port;         // service
    std::string host_header;  // "host:port" as the Host header
};

// "http://127.0.0.1:9527" (or ws://, a path is ignored) → target. nullopt
// with `error` set for anything else (https/wss are not supported).
std::optional<WatchTarget> parse_watch_server(std::string_view url, std::string& error);

// The user's jobs by id, as the server last described them.
using JobsById = std::map<JobId, boost::json::object>;

struct WatchCallbacks {
    // After every change that was applied. Return true to stop watching.
    std::function<bool(const JobsById& jobs)> on_state;
    // Connection news for people ("connection lost; retrying in 1.3 s").
    std::function<void(std::string_view notice)> on_notice;
};

// The limits of `litchi watch`, each with its flag.
struct WatchSettings {
    BackoffPolicy backoff{};  // --retry-base, --retry-cap: between reconnects
    // --retry-for: give up after this long without being connected (0: never).
    std::chrono::seconds retry_for{300};
    std::chrono::seconds connect_timeout{10};  // --connect-timeout: TCP connect and upgrade
    // --idle-timeout: nothing from the server for this long: the connection is
    // dead, reconnect. Longer than the server's ping interval (half its
    // --ws-idle-timeout, 150 s by default).
    std::chrono::seconds idle_timeout{330};
};

enum class WatchOutcome {
    stopped,       // on_state asked to stop
    unauthorized,  // HTTP 401/403 before the upgrade: retrying will not help
    revoked,       // closed with 1008 (token revoked)
    gave_up,       // no connection for retry_for
};

// Runs until an outcome; blocks the calling thread. The token goes only into
// the Sec-WebSocket-Protocol header, never into output.
WatchOutcome run_watch(const WatchTarget& target, const std::string& token,
                       const WatchSettings& settings, WatchCallbacks& callbacks);

}  // namespace litchi::server
