// The limits of the live-progress transports (WebSocket, SSE) and of the event
// hub behind them, each with its default. Kept free of Asio so that
// server_config.hpp (and the CLI that fills it) stays light.
#pragma once

#include <chrono>
#include <cstddef>

#include "events/event_limits.hpp"

namespace litchi::server {

struct LiveLimits {
    events::EventLimits hub{};                           // coalescing interval, replay buffer, item queues
    std::size_t max_client_message = 64 * 1024;          // WebSocket read_message_max (larger: close 1009)
    std::size_t max_pending_replies = 64;                // pong/error answers not yet written (more: close 1013)
    std::size_t socket_send_buffer = 64 * 1024;          // SO_SNDBUF of a WebSocket: kernel memory per slow reader
    std::chrono::seconds write_stall_timeout{60};        // one frame not written for this long: drop the socket
    std::chrono::seconds websocket_idle_timeout{300};    // nothing read for half of it: ping; for all of it: drop
    std::chrono::seconds credential_check_interval{15};  // re-check tokens of open sockets (revoked elsewhere, expired)
    std::chrono::seconds sse_keepalive{15};              // `: keepalive` comment on an idle SSE stream
};

}  // namespace litchi::server
