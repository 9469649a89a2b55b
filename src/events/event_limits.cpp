// Start-up validation of the event hub's limits.
#include "events/event_limits.hpp"

namespace litchi::events {

std::string validate_event_limits(const EventLimits& limits) {
    if (limits.progress_interval.count() < 0) return "progress interval must not be negative";
    // Two events are the least that still lets a watcher be one event behind.
    if (limits.replay_capacity < 2) return "replay capacity must be at least 2 events";
    // Room for one acknowledgement and one item event.
    if (limits.side_queue_capacity < 2) return "item queue capacity must be at least 2 messages";
    if (limits.max_item_subscriptions < 1)
        return "item subscriptions per watcher must be at least 1";
    if (limits.max_snapshot_jobs < 1) return "snapshot jobs must be at least 1";
    if (limits.idle_user_ttl.count() < 0) return "idle user TTL must not be negative";
    return {};
}

}  // namespace litchi::events
