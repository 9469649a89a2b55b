// See server_state.hpp.
#include "server/server_state.hpp"

#include <algorithm>

#include "server/http_session.hpp"

namespace litchi::server {

ServerState::ServerState(ServerConfig config)
    : config_(std::move(config)),
      router_(config_.http.max_other_body_bytes),
      body_budget_(config_.http.max_body_in_flight),
      workers_(static_cast<std::size_t>(std::max(config_.http.worker_threads, 1))),
      image_workers_(static_cast<std::size_t>(std::max(config_.http.thumb_threads, 1))) {}

ServerState::~ServerState() {
    image_workers_.join();
    workers_.join();
}

void ServerState::join(HttpSession* session, std::weak_ptr<HttpSession> handle) {
    std::lock_guard lock(sessions_mutex_);
    sessions_.emplace(session, std::move(handle));
}

void ServerState::leave(HttpSession* session) {
    std::lock_guard lock(sessions_mutex_);
    sessions_.erase(session);
}

void ServerState::stop_sessions() {
    // Copy first: a session's stop() may end it, and its destructor calls leave().
    std::vector<std::shared_ptr<HttpSession>> live;
    {
        std::lock_guard lock(sessions_mutex_);
        for (auto& [raw, weak] : sessions_) {
            if (auto session = weak.lock()) live.push_back(std::move(session));
        }
    }
    for (auto& session : live) session->stop();
}

void ServerState::join_workers() {
    image_workers_.join();
    workers_.join();
}

}  // namespace litchi::server
