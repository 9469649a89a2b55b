// The event hub: turns every change of a user's jobs into protocol v1 messages
// (docs/protocol.md) and hands them to that user's watchers, whatever the
// transport. It is the `shared_state` of Beast's chat-multi example, grown the
// guarantees our protocol makes:
//
//  - one seq counter per user, +1 for every job-level event (hello and
//    snapshot report it), identical for every watcher of the user;
//  - progress coalesced per job (EventLimits::progress_interval), a change of
//    state sent at once, and the newest value never lost to coalescing;
//  - a ring of recent events per user for `resume`; older → snapshot;
//  - bounded memory per watcher however slowly it reads: its job-level queue
//    is a cursor into the shared ring, it is resynced by one snapshot when it
//    falls off the ring and closed (1013) when it does not even take that;
//  - item events only to watchers that subscribed to that job.
//
// No networking here: sessions in src/server own sockets and call this API.
//
// Threading: every method is thread-safe. Publishers (the store's commit
// thread) and sessions (their strands) call in concurrently; one mutex per
// user plus a reader/writer lock on the user map keep users independent.
// The hub owns no thread: it is driven by tick() (see there) so that tests use
// a fake clock and the server keeps a single timer on its io_context.
//
// Notify callbacks run on the publishing thread, after the hub has released
// its locks, at most once between two pops of the same subscription; a
// session posts to its strand from there and pops when it is ready to write.
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "events/event_limits.hpp"
#include "events/protocol_messages.hpp"
#include "events/watcher_types.hpp"

namespace litchi::events {

namespace detail {
struct HubCore;
class UserChannel;
struct Watcher;
}  // namespace detail

// Receives a user's jobs (in the order a client should list them) as of
// store commit `as_of`.
using SnapshotSink = std::function<void(std::vector<JobSnapshot> jobs, CommitId as_of)>;

// Reads a user's jobs and passes them to `sink`, returning false when they
// cannot be read. The hub calls it when it starts tracking a user (first
// subscribe, or after the user's state expired), holding none of its locks.
// The provider must call `sink` while no publish can run (inside
// JobStore::visit_jobs, which holds off the store's change delivery): every
// change up to `as_of` is then in the snapshot, and every later one arrives
// afterwards, so the hello and the events after it fit exactly. Publishes of
// commits at or below `as_of` that arrive later are skipped.
using SnapshotProvider = std::function<bool(UserId user, const SnapshotSink& sink)>;

// Log mode: reads a user's state from the shared event log (nullopt when the
// log cannot be read right now: the subscribe is refused, the client retries).
using LogSeedProvider = std::function<std::optional<LogSeed>(UserId user)>;

struct EventHubHooks {
    // In-process mode (one server on its own store): required.
    SnapshotProvider snapshot_provider;
    // Log mode (a cluster on a shared store): set this instead. The hub then
    // numbers nothing itself: seqs and the epoch come from the log, events
    // arrive through publish_logged(), and the publish_* calls of in-process
    // mode must not be used.
    LogSeedProvider log_seed;
    // Log mode: a user was just seeded at some position; whoever feeds
    // publish_logged() should read that user's log after it now (entries
    // committed while the seed was read were not applied). Optional.
    std::function<void(UserId user)> on_log_seeded;
    // Log mode: read the user's log now and publish what is new, before
    // returning (the hub calls it, holding no lock, when a client names a
    // job its node has not heard of yet: created a moment ago on another
    // node). Optional.
    std::function<void(UserId user)> catch_up_user;
    JobWriter write_job;    // required: a job as the API's JSON text
    ItemWriter write_item;  // required: an item likewise
    // Time for coalescing and expiry. Default: std::chrono::steady_clock::now.
    std::function<SteadyTime()> steady_now;
    // Milliseconds since 1970; a user's seq starts at this × 1000 so that seqs
    // of a new process are above those of the last one (see docs/protocol.md).
    // Default: the system clock.
    std::function<std::uint64_t()> wall_clock_ms;
    // Called (outside the hub's locks) when a coalesced update is scheduled:
    // tick() must run at or soon after `due`. Optional; without it, call tick()
    // periodically (every 10-20 ms).
    std::function<void(SteadyTime due)> on_deadline;
};

struct SubscribeOptions {
    // Opaque id of the credential the session authenticated with (e.g. the
    // token's row id or hash prefix, never the token), for close_credential().
    std::string credential_id;
    // Wakes the session when it has something to pop; see the file comment.
    // A session must capture a weak pointer to itself: a notify may still run
    // once after cancel() returned.
    std::function<void()> notify;
    // A transport that learns the client's position in its request (SSE
    // Last-Event-ID) passes it here: the stream continues after `since` with
    // no hello when that is possible, and starts with a hello otherwise.
    // WebSocket sessions leave it empty: hello first, then in-band `resume`.
    std::optional<ResumePoint> resume_from;
};

// One watcher: what a WebSocket or SSE session holds. Thread-safe; destroying
// it unsubscribes.
class Subscription {
  public:
    Subscription(const Subscription&) = delete;
    Subscription& operator=(const Subscription&) = delete;
    ~Subscription();

    UserId user() const { return user_; }
    std::uint64_t id() const { return id_; }
    // How subscribe() answered SubscribeOptions::resume_from (snapshot = hello first).
    ResumeOutcome initial_outcome() const { return initial_outcome_; }

    // Everything that is ready, in order, at most `max_messages` (a hello or
    // snapshot always counts as one). Pop when your previous writes are done:
    // what you have not popped is held by the hub at bounded cost; what you
    // popped is yours. If `more` is set, pop again after writing (no notify
    // comes for messages already waiting). If `close` is set, close with it.
    OutgoingBatch pop(std::size_t max_messages = 256);

    // Client message {"type":"resume","since":S} (epoch optional): the events
    // after S follow (replay) or a snapshot does.
    ResumeOutcome resume(const ResumePoint& point);

    // Client messages {"type":"subscribe","job":ID,"items":true} and
    // {"type":"unsubscribe","job":ID}. Both queue an acknowledgement
    // (`subscribed` / `unsubscribed`) on success.
    ItemSubscribeResult subscribe_items(const boost::json::value& job_id);
    bool unsubscribe_items(const boost::json::value& job_id);

    // Stops delivery and frees the watcher's queues. Idempotent.
    void cancel();

    // Current bounded queue lengths (tests, metrics).
    std::size_t side_queue_size() const;
    std::size_t backlog() const;

  private:
    friend class EventHub;
    Subscription(std::shared_ptr<detail::HubCore> core,
                 std::shared_ptr<detail::UserChannel> channel,
                 std::shared_ptr<detail::Watcher> watcher, ResumeOutcome initial_outcome);

    std::shared_ptr<detail::HubCore> core_;  // declared first: outlives the channel
    std::shared_ptr<detail::UserChannel> channel_;
    std::shared_ptr<detail::Watcher> watcher_;
    UserId user_;
    std::uint64_t id_;
    ResumeOutcome initial_outcome_;
    bool cancelled_ = false;  // guarded by the channel's mutex
};

class EventHub {
  public:
    // Throws std::invalid_argument for unusable limits or a missing provider (start-up errors).
    EventHub(EventLimits limits, EventHubHooks hooks);
    ~EventHub();  // closes every watcher with 1001
    EventHub(const EventHub&) = delete;
    EventHub& operator=(const EventHub&) = delete;

    const EventLimits& limits() const;

    // A new watcher for `user`, or nullptr when the user's jobs could not be
    // loaded (the session should answer 503 / close 1011 and let the client retry).
    std::shared_ptr<Subscription> subscribe(UserId user, SubscribeOptions options);

    // Publishing, called after the change is committed, in commit order per
    // user; `commit` is the store commit it came from (0: always applied).
    // Events for a user nobody has watched recently are dropped at once (the
    // next watcher's snapshot will contain them).
    //
    // publish_progress: the job after a change of counts or state (coalesced;
    // state changes immediate; an unknown job is announced as created).
    void publish_progress(const JobSnapshot& job, CommitId commit = 0);
    void publish_job_created(const JobSnapshot& job, CommitId commit = 0);
    void publish_job_deleted(UserId user, JobId job, CommitId commit = 0);
    // An item after it changed (only to watchers following that job).
    void publish_item(UserId user, JobId job, const ItemRecord& item, CommitId commit = 0);
    // Many items of the job changed at once (cancel, retry, recovery): its
    // item followers get `items_reset` and re-read the job's items.
    void publish_items_reset(UserId user, JobId job, CommitId commit = 0);

    // Log mode: the user's next log entries, in pos order. Entries the
    // user's channel already holds are skipped; nothing happens for a user
    // nobody watches. When the entries do not follow what the channel holds
    // (history it never saw), its watchers are closed with 1012 and the
    // channel dropped: they reconnect, resume, and a fresh seed covers it.
    void publish_logged(UserId user, const std::vector<LoggedEvent>& entries);
    // Log mode: every tracked user and the last log position the hub holds.
    std::vector<std::pair<UserId, std::uint64_t>> log_positions() const;

    // Sends coalesced updates that are due and, at most once a second, drops
    // users whose last watcher left more than idle_user_ttl ago. Call it from
    // a timer: when on_deadline asks, or every 10-20 ms.
    void tick();
    // The earliest moment tick() has something to send, if any.
    std::optional<SteadyTime> next_due() const;

    // Revocation hooks: close the watchers of a user / of one credential with
    // `why` (1008 for a revoked token); close_all at shutdown (1001).
    void close_user(UserId user, const CloseRequest& why);
    void close_credential(std::string_view credential_id, const CloseRequest& why);
    void close_all(const CloseRequest& why);

    HubStats stats() const;

  private:
    std::shared_ptr<detail::HubCore> core_;
};

}  // namespace litchi::events
