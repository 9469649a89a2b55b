// The values a transport session (WebSocket, SSE) exchanges with the event hub:
// what it pops and writes, why it must close, how a resume was answered.
// Kept apart from event_hub.hpp so the per-user channel can share them.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/logged_event.hpp"
#include "events/protocol_messages.hpp"

namespace litchi::events {

using UserId = litchi::UserId;
using SteadyTime = std::chrono::steady_clock::time_point;

// How the hub turns records into JSON text: the server's API shapes, written
// once per change and shared by every watcher and the replay ring.
using JobWriter = std::function<std::string(const JobSnapshot& job)>;
using ItemWriter = std::function<std::string(const ItemRecord& item)>;

// A user's state read from a shared event log (a cluster's store), which
// seeds the hub in log mode: the seq and epoch are the log's, not the hub's.
struct LogSeed {
    std::string epoch;
    std::vector<JobSnapshot> jobs;  // in the order a client should list them
    std::uint64_t pos = 0;          // the user's last log position
    std::uint64_t seq = 0;          // the user's last job-level seq
    // The most recent job-level entries, oldest first, ending at `seq`: the
    // replay ring starts with them, so `resume` works on a node that has just
    // started as on one that saw the events go by.
    std::vector<LoggedEvent> recent;
};

struct OutgoingMessage {
    MessageKind kind = MessageKind::progress;
    // The seq the message carries. For hello/snapshot/progress/job it is the
    // event's own seq (SSE `id:`); for item/subscribed/unsubscribed it is the
    // seq of the job-level event before it and does not advance anything.
    std::uint64_t seq = 0;
    MessageText text;  // one complete JSON text frame
    JobId job = 0;     // item and items_reset messages: the job they are about
};

struct CloseRequest {
    std::uint16_t code = close_code::going_away;
    std::string reason;  // short, safe to show; never contains a credential
};

// What one pop hands to the session: write `messages` in order, then, when
// `close` is set, close the connection with that code (no messages come with a close).
struct OutgoingBatch {
    std::vector<OutgoingMessage> messages;
    std::optional<CloseRequest> close;
    bool more = false;  // the pop stopped at its limit: pop again once these are written
};

// Where a reconnecting client says it left off: the last seq it applied and,
// when it knows it, the epoch of the hello/snapshot that seq belongs to.
struct ResumePoint {
    std::uint64_t since = 0;
    std::optional<std::string> epoch;
};

enum class ResumeOutcome {
    replay,    // the events after `since` follow, in order, exactly once
    snapshot,  // they are gone (or were never ours): a hello/snapshot follows instead
    closed,    // the watcher is closed; nothing follows
};

enum class ItemSubscribeResult {
    subscribed,  // a `subscribed` ack is queued; item events follow it
    not_found,   // no such job for this user (another user's job looks the same)
    too_many,    // the watcher already follows max_item_subscriptions jobs
    closed,
};

struct HubStats {
    std::size_t users = 0;                  // users with hub state (watched now or recently)
    std::size_t watchers = 0;               // open subscriptions
    std::uint64_t events = 0;               // job-level events sequenced
    std::uint64_t coalesced_updates = 0;    // progress updates folded into a later one
    std::uint64_t item_events_dropped = 0;  // oldest item events dropped from full side queues
    std::uint64_t resyncs = 0;              // watchers that fell behind the ring and got a snapshot
    std::uint64_t slow_closes = 0;          // watchers closed with 1013
};

}  // namespace litchi::events
