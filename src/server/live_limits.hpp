// The limits of the live-progress transports (WebSocket, SSE) and of the event
// hub behind them, each with its default and its `litchi serve` flag. Kept
// free of Asio so that server_config.hpp (and the CLI that fills it) stays light.
#pragma once

#include <chrono>
#include <cstddef>

#include "events/event_limits.hpp"

namespace litchi::server {

struct LiveLimits {
    // --progress-interval, --replay-capacity, --item-queue,
    // --max-item-subscriptions, --snapshot-jobs, --idle-user-ttl (see
    // events/event_limits.hpp).
    events::EventLimits hub{};
    // --max-sockets-per-user: live sockets (WebSocket and SSE) one user may
    // have open at once; one more is refused with 429 too_many_sockets before
    // any upgrade. Each costs a hello and a send buffer: this bounds what one
    // user (or one stolen token) can make the server hold.
    std::size_t max_sockets_per_user = 32;
    // --ws-max-message: the longest client message (all fragments); longer: close 1009.
    std::size_t max_client_message = 64 * 1024;
    // --ws-max-pending: pong/error answers not yet written; more: close 1013.
    std::size_t max_pending_replies = 64;
    // --ws-send-buffer: SO_SNDBUF of a WebSocket, the kernel memory a slow
    // reader can hold, and about the most one write gathers.
    std::size_t socket_send_buffer = 64 * 1024;
    // --ws-stall-timeout: one write not finished for this long: drop the socket.
    std::chrono::seconds write_stall_timeout{60};
    // --ws-idle-timeout: nothing read for half of it: ping; for all of it: drop.
    std::chrono::seconds websocket_idle_timeout{300};
    // --ws-close-linger: how long a closing WebSocket waits for the peer's
    // answer to our close frame before dropping the connection.
    std::chrono::seconds close_linger{5};
    // --token-recheck: re-check the tokens of open sockets (revoked elsewhere, expired).
    std::chrono::seconds credential_check_interval{15};
    // --sse-keepalive: a `: keepalive` comment on an idle SSE stream.
    std::chrono::seconds sse_keepalive{15};
    // --sse-retry: the `retry:` an SSE stream opens with, how long EventSource
    // waits before reconnecting after the stream ends.
    std::chrono::milliseconds sse_retry{2000};
    // --live-batch: messages a WebSocket or SSE stream takes from the hub per
    // pop. Enough to amortise the hub's lock; few enough that what a
    // connection holds outside the hub stays small.
    std::size_t pop_batch = 64;
    // --sweep-interval: how often stalled writers are looked for (token
    // re-checks run at their own, longer interval inside the sweep).
    std::chrono::seconds sweep_interval{5};
    // --hub-tick: with nothing due, the hub still ticks this often, so idle
    // users' state expires on time.
    std::chrono::milliseconds idle_tick{1000};
};

}  // namespace litchi::server
