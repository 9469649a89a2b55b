// Connects the event hub (src/events) to the rest of the server: every
// commit's changes (typed records, rates filled in by jobs/) are published to
// the hub once the store's lock is released, the hub's snapshot provider
// reads the jobs while no delivery runs (and says as of which commit), the
// JSON writers give the hub the API's shapes (server/json.hpp), one Asio timer
// drives hub.tick() exactly when a coalesced update falls due, and a periodic
// sweep closes live sockets whose token was revoked or expired elsewhere (the
// CLI, expiry) and sockets whose peer stopped reading for too long.
//
// In cluster mode (a store with an event log: PostgreSQL) the hub follows the
// log instead: seeds come from EventLog::user_state, events from a
// LogFollower, and no observer is registered.
//
// It is also the one place that knows every live WebSocket (the chat-multi
// `shared_state` role for sockets): SSE streams ride on HTTP sessions, whose
// own write timeout already ends a stalled stream.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "events/event_hub.hpp"
#include "jobs/job_service.hpp"
#include "server/live_limits.hpp"
#include "server/log_follower.hpp"
#include "store/observer.hpp"
#include "store/store.hpp"

namespace boost::asio {
class thread_pool;
}

namespace litchi::server {

class Router;

// What a live socket shows the registry: enough to find stalled writers and
// revoked credentials without touching the socket from another thread.
class LiveSocket {
  public:
    virtual ~LiveSocket() = default;
    // Steady-clock ms when the write in flight started; 0 when none is.
    virtual std::int64_t write_started_ms() const = 0;
    // Drops the connection without a close handshake (posts to its strand).
    virtual void abort() = 0;
};

class UserSocketSlot;

class EventWiring : public std::enable_shared_from_this<EventWiring> {
  public:
    // The hub reads snapshots through `jobs`; tokens are checked in `store`;
    // the timer and sweep run on a strand of `ioc`; token checks run on `workers`.
    EventWiring(boost::asio::io_context& ioc, boost::asio::thread_pool& workers, Store& store,
                JobService& jobs, LiveLimits limits);
    ~EventWiring();
    EventWiring(const EventWiring&) = delete;
    EventWiring& operator=(const EventWiring&) = delete;

    // Registers as the job service's observer (a store of its own) or starts
    // following the shared event log (cluster mode: `log_hooks` wake the
    // scheduler when other nodes changed something and stop the transfers of
    // jobs stopped elsewhere), and starts the tick timer and the sweep. Call
    // before the scheduler starts.
    void start(LogFollowerHooks log_hooks = {});
    // Closes every watcher with 1001 and stops the timers; unregisters from
    // the store. Call after the scheduler stopped.
    void stop();

    events::EventHub& hub() { return *hub_; }
    // False while the shared event log cannot be read (always true for a
    // store of its own).
    bool log_healthy() const { return !follower_ || follower_->healthy(); }
    const LiveLimits& limits() const { return limits_; }
    Store& store() { return store_; }
    boost::asio::thread_pool& workers() { return workers_; }

    // The hub's credential id for a token row (never the token itself).
    static std::string credential_id(TokenId token);
    // A token was revoked through the API: close its sockets now (1008).
    void credential_revoked(TokenId token);

    // One of `user`'s --max-sockets-per-user live sockets, or nothing when
    // they are all taken. Thread-safe; the slot gives itself back when destroyed.
    std::optional<UserSocketSlot> admit_user_socket(UserId user);
    std::size_t user_sockets(UserId user);

    // Live sockets register themselves for the sweep; `token` is the row
    // they authenticated with.
    std::uint64_t register_socket(std::weak_ptr<LiveSocket> socket, TokenId token);
    void unregister_socket(std::uint64_t id);

    // Counters for /metrics.
    void count_message_sent() { count_messages_sent(1); }
    void count_messages_sent(std::uint64_t n) {
        messages_sent_.fetch_add(n, std::memory_order_relaxed);
    }
    void count_connection(bool websocket, int delta) {
        (websocket ? websocket_open_ : sse_open_).fetch_add(delta, std::memory_order_relaxed);
    }
    void count_stall_drop() { stall_drops_.fetch_add(1, std::memory_order_relaxed); }
    void count_revoked_close() { revoked_closes_.fetch_add(1, std::memory_order_relaxed); }
    // Prometheus text of the hub's and the transports' figures.
    std::string render_metrics() const;

  private:
    class Publisher;
    void arm_tick(events::SteadyTime due);
    void on_tick(boost::system::error_code ec);
    void arm_sweep();
    void on_sweep(boost::system::error_code ec);

    boost::asio::strand<boost::asio::io_context::executor_type> strand_;
    boost::asio::thread_pool& workers_;
    Store& store_;
    JobService& jobs_;
    LiveLimits limits_;
    std::unique_ptr<Publisher> publisher_;
    std::unique_ptr<LogFollower> follower_;  // cluster mode only
    std::unique_ptr<events::EventHub> hub_;
    events::EventHub* hub_raw_ = nullptr;  // what the publisher calls; null until the hub exists

    // Both timers live on strand_.
    boost::asio::steady_timer tick_timer_;
    events::SteadyTime tick_armed_for_{};
    bool tick_waiting_ = false;
    boost::asio::steady_timer sweep_timer_;
    std::atomic<bool> stopped_{false};
    std::atomic<bool> sweep_busy_{false};
    std::int64_t last_credential_check_ms_ = 0;  // on strand_

    friend class UserSocketSlot;
    void release_user_socket(UserId user);
    std::mutex user_sockets_mutex_;
    std::unordered_map<UserId, std::size_t> user_sockets_;

    struct Registered {
        std::weak_ptr<LiveSocket> socket;
        TokenId token = 0;
    };
    std::mutex sockets_mutex_;
    std::uint64_t next_socket_id_ = 1;
    std::unordered_map<std::uint64_t, Registered> sockets_;

    std::atomic<std::uint64_t> messages_sent_{0};
    std::atomic<std::int64_t> websocket_open_{0};
    std::atomic<std::int64_t> sse_open_{0};
    std::atomic<std::uint64_t> stall_drops_{0};
    std::atomic<std::uint64_t> revoked_closes_{0};
};

// A user's place under --max-sockets-per-user, held by a WebSocket session or
// an SSE stream for as long as it is open. Move-only; keeps the wiring alive.
class UserSocketSlot {
  public:
    UserSocketSlot(std::shared_ptr<EventWiring> owner, UserId user)
        : owner_(std::move(owner)), user_(user) {}
    ~UserSocketSlot() {
        if (owner_) owner_->release_user_socket(user_);
    }
    UserSocketSlot(UserSocketSlot&&) noexcept = default;
    UserSocketSlot& operator=(UserSocketSlot&& other) noexcept {
        if (this != &other) {
            if (owner_) owner_->release_user_socket(user_);
            owner_ = std::move(other.owner_);
            user_ = other.user_;
        }
        return *this;
    }

  private:
    std::shared_ptr<EventWiring> owner_;
    UserId user_ = 0;
};

// Milliseconds on the steady clock (for LiveSocket::write_started_ms).
std::int64_t steady_ms();

}  // namespace litchi::server
