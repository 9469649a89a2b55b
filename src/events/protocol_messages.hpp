// The server-to-client messages of progress protocol v1 (docs/protocol.md),
// built as ready-to-send JSON text. Each job-level message is serialised once
// and the same immutable string is shared by every watcher, the replay ring
// and the SSE encoder: fan-out costs a pointer copy, not a JSON encode.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace litchi::events {

using MessageText = std::shared_ptr<const std::string>;

enum class MessageKind : std::uint8_t {
    hello,         // first message of a connection: full snapshot at `seq`
    progress,      // one job's object (coalesced, or at once for a state change)
    job_created,   // {"type":"job","event":"created"}
    job_deleted,   // {"type":"job","event":"deleted"}
    snapshot,      // full snapshot answering a resume from too far back, or a resync
    item,          // one item of a job the watcher subscribed to (does not advance seq)
    subscribed,    // acknowledges {"type":"subscribe"} (does not advance seq)
    unsubscribed,  // acknowledges {"type":"unsubscribe"}, or the job was deleted
    items_reset,   // many items of a followed job changed at once: re-read them
};

std::string_view to_string(MessageKind kind);

// True for the messages that advance (or, for hello/snapshot, set) the user's
// seq. Only these get an SSE `id:` line; the others must not move Last-Event-ID.
bool carries_event_id(MessageKind kind);

// RFC 6455 close codes the hub asks a session to close with.
namespace close_code {
inline constexpr std::uint16_t going_away = 1001;        // server shutting down
inline constexpr std::uint16_t policy_violation = 1008;  // token revoked, user removed
inline constexpr std::uint16_t internal_error = 1011;
inline constexpr std::uint16_t try_again_later = 1013;  // slow consumer
}  // namespace close_code

// A job id in canonical form, so that 7, 7u and "7" name the same job (clients
// may send ids as strings, the store may hand them over as either integer type).
// Empty when `id` is neither an integer nor a non-empty string.
using JobKey = std::string;
std::optional<JobKey> job_key_of(const boost::json::value& id);

// The job's `id` member in canonical form; empty when it is missing or unusable.
std::optional<JobKey> job_key_of(const boost::json::object& job);

// Builders. `jobs` of hello/snapshot are given in the order the client should list them.
MessageText make_hello_message(std::string_view epoch, std::uint64_t seq,
                               const std::vector<const boost::json::object*>& jobs);
MessageText make_snapshot_message(std::string_view epoch, std::uint64_t seq,
                                  const std::vector<const boost::json::object*>& jobs);
MessageText make_progress_message(std::uint64_t seq, const boost::json::object& job);
MessageText make_job_message(MessageKind created_or_deleted, std::uint64_t seq,
                             const boost::json::object& job);
// `item_json` is the item object already serialised (done once per item event,
// not once per subscriber).
MessageText make_item_message(std::uint64_t seq, std::uint64_t iseq,
                              const boost::json::value& job_id, std::string_view item_json);
MessageText make_subscribed_message(std::uint64_t seq, const boost::json::value& job_id);
// `reason` is empty for an acknowledged unsubscribe, "deleted" when the job went away.
MessageText make_unsubscribed_message(std::uint64_t seq, const boost::json::value& job_id,
                                      std::string_view reason);
MessageText make_items_reset_message(std::uint64_t seq, const boost::json::value& job_id);

}  // namespace litchi::events
