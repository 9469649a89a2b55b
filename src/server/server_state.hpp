// What every connection shares (Beast's chat-multi `shared_state`): the
// configuration, the route table, the worker pool that runs blocking
// handlers, the metrics, and the set of open sessions, which is the one place
// that can reach every connection (graceful shutdown closes them all).
#pragma once

#include <boost/asio/thread_pool.hpp>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "server/body_budget.hpp"
#include "server/metrics.hpp"
#include "server/router.hpp"
#include "server/server_config.hpp"

namespace litchi {
class UserStore;
}

namespace litchi::server {

class HttpSession;
class EventWiring;

class ServerState {
  public:
    explicit ServerState(ServerConfig config);
    ~ServerState();

    const ServerConfig& config() const { return config_; }
    Router& router() { return router_; }
    ServerMetrics& metrics() { return metrics_; }
    boost::asio::thread_pool& workers() { return workers_; }
    // --max-body-in-flight, shared by every session.
    BodyBudget& body_budget() { return body_budget_; }

    // The token store sessions judge credentials with before reading a body
    // (null until set: then the handlers judge them, after the body).
    void set_users(UserStore* users) { users_ = users; }
    UserStore* users() const { return users_; }

    // Images and thumbnails only (Placement::images, --thumb-workers).
    boost::asio::thread_pool& image_workers() { return image_workers_; }

    // The live-progress side: WebSocket upgrades and SSE go there.
    void set_events(std::shared_ptr<EventWiring> events) { events_ = std::move(events); }
    const std::shared_ptr<EventWiring>& events() const { return events_; }

    void join(HttpSession* session, std::weak_ptr<HttpSession> handle);
    void leave(HttpSession* session);

    // Stops keep-alive everywhere: idle connections close now, busy ones
    // after their current response. Called once on SIGINT/SIGTERM.
    void stop_sessions();

    // Waits for the worker pools' queued handlers to finish.
    void join_workers();

  private:
    ServerConfig config_;
    Router router_;
    ServerMetrics metrics_;
    BodyBudget body_budget_;
    UserStore* users_ = nullptr;
    std::shared_ptr<EventWiring> events_;
    boost::asio::thread_pool workers_;
    boost::asio::thread_pool image_workers_;
    std::mutex sessions_mutex_;
    std::unordered_map<HttpSession*, std::weak_ptr<HttpSession>> sessions_;
};

}  // namespace litchi::server
