// See server_config.hpp: the checks that relate two settings. Each message
// names the flags, since a person typed them.
#include "server/server_config.hpp"

#include <string>

namespace litchi::server {

std::string validate_server_config(const ServerConfig& config) {
    const auto& http = config.http;
    if (http.thumb_min > http.thumb_max) return "--thumb-min must not exceed --thumb-max";
    if (http.max_body_in_flight < http.max_job_body_bytes)
        return "--max-body-in-flight must be at least --max-body";
    if (http.items_page_default > http.items_page_max)
        return "--items-page must not exceed --items-page-max";
    if (config.scheduler.in_engine_per_slot < config.scheduler.outstanding_per_slot)
        return "--in-engine-per-slot must be at least --outstanding-per-slot";
    if (auto fetch = validate_fetch_limits(config.fetch); !fetch.empty()) return fetch;
    if (auto hub = events::validate_event_limits(config.live.hub); !hub.empty()) return hub;
    return {};
}

}  // namespace litchi::server
