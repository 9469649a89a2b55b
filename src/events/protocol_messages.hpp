// The server-to-client messages of progress protocol v1 (docs/protocol.md),
// built as ready-to-send JSON text. Each job-level message is serialised once
// and the same immutable string is shared by every watcher, the replay ring
// and the SSE encoder: fan-out costs a pointer copy, not a JSON encode.
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/records.hpp"

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
inline constexpr std::uint16_t service_restart = 1012;  // reconnect and resume
inline constexpr std::uint16_t try_again_later = 1013;  // slow consumer
}  // namespace close_code

// A job id a client sent: 7 and "7" name the same job; "007", "x", 1.5 and
// anything but an integer or its canonical decimal text name none.
std::optional<JobId> job_id_of(const boost::json::value& id);

// Builders. Job and item objects come already serialised (each once per
// change, by the hub's writers), so a message is a few appends. `jobs` of
// hello/snapshot are given in the order the client should list them.
// `total_jobs` larger than jobs.size() means the list was cut (at
// --snapshot-jobs): the message then also carries "truncated":true and
// "total":N, the number of jobs the user has.
MessageText make_hello_message(std::string_view epoch, std::uint64_t seq,
                               const std::vector<std::string_view>& jobs,
                               std::size_t total_jobs = 0);
MessageText make_snapshot_message(std::string_view epoch, std::uint64_t seq,
                                  const std::vector<std::string_view>& jobs,
                                  std::size_t total_jobs = 0);
MessageText make_progress_message(std::uint64_t seq, std::string_view job_json);
MessageText make_job_message(MessageKind created_or_deleted, std::uint64_t seq,
                             std::string_view job_json);
MessageText make_item_message(std::uint64_t seq, std::uint64_t iseq, JobId job,
                              std::string_view item_json);
MessageText make_subscribed_message(std::uint64_t seq, JobId job);
// `reason` is empty for an acknowledged unsubscribe, "deleted" when the job
// went away. `job_id` is echoed as the client sent it when it names no job.
MessageText make_unsubscribed_message(std::uint64_t seq, const boost::json::value& job_id,
                                      std::string_view reason);
MessageText make_items_reset_message(std::uint64_t seq, JobId job);

}  // namespace litchi::events
