// One user's slice of the event hub: the seq counter, the current view of the
// user's jobs (exactly what seq says has been sent), the replay ring, the
// coalescing of progress per job, and the user's watchers with their cursors
// and side queues. Plain single-threaded logic: EventHub holds `mutex` around
// every call and runs the wake-ups the calls collect after unlocking.
//
// Invariants this class keeps (docs/protocol.md states them for clients):
//  - every job-level event gets last_seq + 1; hello/snapshot report last_seq
//    and are built from `jobs_`, which holds the last *sent* record of each
//    job (and its JSON text), so a hello at S equals applying every event up
//    to S;
//  - changes from commits the seeding snapshot already contained (commit at
//    or below its as_of) are skipped, so none is applied twice or backwards;
//  - a watcher's job-level backlog lives in the shared ring (its cursor is
//    `next_seq`), so a slow watcher costs O(1) memory for job events;
//  - its side queue (items, acks) never exceeds side_queue_capacity.
#pragma once

#include <atomic>
#include <boost/json/value.hpp>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/records.hpp"
#include "events/event_limits.hpp"
#include "events/replay_ring.hpp"
#include "events/watcher_types.hpp"

namespace litchi::events::detail {

struct HubCounters {
    std::atomic<std::uint64_t> events{0};
    std::atomic<std::uint64_t> coalesced_updates{0};
    std::atomic<std::uint64_t> item_events_dropped{0};
    std::atomic<std::uint64_t> resyncs{0};
    std::atomic<std::uint64_t> slow_closes{0};
    std::atomic<std::size_t> watchers{0};
};

struct Watcher {
    // What must be sent before anything from the ring.
    enum class Intro { none, hello, snapshot };

    std::uint64_t id = 0;
    std::string credential_id;     // opaque id of the credential used, for revocation
    std::function<void()> notify;  // immutable after attach, so callable without the lock

    Intro intro = Intro::hello;
    std::uint64_t intro_requested_at = 0;  // last_seq when the intro was asked for
    bool replay_after_intro = false;       // a resume arrived while a hello was pending
    std::uint64_t next_seq = 0;            // next ring event to send (when intro is none)

    std::deque<OutgoingMessage> side_queue;  // items and acks, ordered by `seq`
    struct ItemFollow {
        std::uint64_t last_iseq = 0;
    };
    std::unordered_map<JobId, ItemFollow> item_jobs;

    std::optional<CloseRequest> close;
    bool notify_armed = true;  // edge trigger: one notify until the next pop
};

using Wakeups = std::vector<std::shared_ptr<Watcher>>;

class UserChannel {
  public:
    UserChannel(UserId user, std::string epoch, std::uint64_t seq_base, const EventLimits& limits,
                std::shared_ptr<HubCounters> counters, JobWriter write_job, ItemWriter write_item,
                SteadyTime now);

    std::mutex mutex;  // guards everything below; EventHub holds it around each call

    UserId user() const { return user_; }
    const std::string& epoch() const { return epoch_; }
    std::uint64_t last_seq() const { return last_seq_; }
    bool seeded() const { return seeded_; }
    std::size_t watcher_count() const { return watchers_.size(); }
    SteadyTime idle_since() const { return idle_since_; }

    // Installs the user's jobs as of commit `as_of` (from the snapshot
    // provider). Called once, before any watcher.
    void seed(std::vector<JobSnapshot> jobs, CommitId as_of);

    // Publishing. `commit` is the store commit the change came from (0:
    // unknown, always applied). Each returns the deadline of a newly
    // scheduled coalesced update, if it created one, so the hub can make sure
    // tick() runs by then.
    std::optional<SteadyTime> publish_progress(const JobSnapshot& job, CommitId commit,
                                               SteadyTime now, Wakeups& wake);
    std::optional<SteadyTime> publish_job_created(const JobSnapshot& job, CommitId commit,
                                                  SteadyTime now, Wakeups& wake);
    void publish_job_deleted(JobId job, CommitId commit, Wakeups& wake);
    void publish_item(JobId job, const ItemRecord& item, CommitId commit, Wakeups& wake);
    void publish_items_reset(JobId job, CommitId commit, Wakeups& wake);

    // Sends every coalesced update whose interval has passed (all of them
    // when `all` is set).
    void flush_due(SteadyTime now, Wakeups& wake, bool all = false);
    std::optional<SteadyTime> next_due() const;

    // Log mode (EventHubHooks::log_seed): the channel follows a shared event
    // log instead of numbering events itself. Entries arrive in `pos` order;
    // each job-level one already carries its seq, so every node of a cluster
    // sends the same message for the same seq. No coalescing here: the log
    // holds at most one progress entry per job per interval.
    void seed_from_log(LogSeed seed);
    // Applies the next entry. Entries at or below the channel's position are
    // skipped (true); false when `entry` does not follow it (history the
    // channel never saw: the caller drops the channel and its watchers resume).
    bool apply_logged(const LoggedEvent& entry, Wakeups& wake);
    std::uint64_t log_pos() const { return log_pos_; }

    // Watchers.
    // Sends every waiting coalesced update first (to every watcher, as
    // ordinary events), so that the newcomer's hello is exact as of now, not
    // up to one progress_interval behind the store.
    std::shared_ptr<Watcher> attach(std::uint64_t id, std::string credential_id,
                                    std::function<void()> notify,
                                    const std::optional<ResumePoint>& resume_from,
                                    ResumeOutcome* outcome, SteadyTime now, Wakeups& wake);
    void detach(const std::shared_ptr<Watcher>& watcher, SteadyTime now);
    OutgoingBatch pop(Watcher& watcher, std::size_t max_messages);
    ResumeOutcome resume(const std::shared_ptr<Watcher>& watcher, const ResumePoint& point,
                         Wakeups& wake);
    ItemSubscribeResult subscribe_items(const std::shared_ptr<Watcher>& watcher,
                                        const boost::json::value& job_id, Wakeups& wake);
    // False when the watcher did not follow that job (an ack is queued either way).
    bool unsubscribe_items(const std::shared_ptr<Watcher>& watcher,
                           const boost::json::value& job_id, Wakeups& wake);

    // Closes the watchers `which` selects; already closed ones keep their first reason.
    void close_watchers(const std::function<bool(const Watcher&)>& which, const CloseRequest& why,
                        Wakeups& wake);

    // Test and metrics view: queued side messages and ring backlog of one watcher.
    std::size_t side_queue_size(const Watcher& watcher) const { return watcher.side_queue.size(); }
    std::size_t backlog(const Watcher& watcher) const;

  private:
    struct JobEntry {
        JobSnapshot sent;                     // the record clients have
        std::string sent_json;                // ... as JSON (hello/snapshot show this)
        std::uint64_t order = 0;              // listing order in hello/snapshot
        std::optional<SteadyTime> last_sent;  // empty for seeded jobs: the next update goes at once
        std::optional<JobSnapshot> pending;   // newest unsent update
        std::size_t item_followers = 0;
    };

    // A change the seeding snapshot already holds.
    bool already_seen(CommitId commit) const { return commit != 0 && commit <= seeded_as_of_; }
    void sequence_event(MessageKind kind, const MessageText& text, Wakeups& wake);
    // A logged job's JSON; a deleted job's entry may carry no record.
    std::string logged_job_json(const LoggedEvent& entry) const;
    void announce_item_follows_ended(JobId job, Wakeups& wake);
    void send_progress_now(JobId id, JobEntry& entry, const JobSnapshot& job, SteadyTime now,
                           Wakeups& wake);
    void queue_side_message(const std::shared_ptr<Watcher>& watcher, OutgoingMessage message,
                            Wakeups& wake);
    void close_watcher(Watcher& watcher, const CloseRequest& why);
    void request_intro(Watcher& watcher, Watcher::Intro intro);
    bool can_replay_from(const ResumePoint& point) const;
    MessageText build_full_state(Watcher::Intro intro) const;
    static void wake_up(const std::shared_ptr<Watcher>& watcher, Wakeups& wake);
    bool has_output(const Watcher& watcher) const;

    UserId user_;
    std::string epoch_;
    std::uint64_t log_pos_ = 0;  // log mode: the last entry applied
    EventLimits limits_;
    std::shared_ptr<HubCounters> counters_;
    JobWriter write_job_;
    ItemWriter write_item_;
    bool seeded_ = false;
    CommitId seeded_as_of_ = 0;
    std::uint64_t last_seq_;
    ReplayRing ring_;
    std::unordered_map<JobId, JobEntry> jobs_;
    std::unordered_set<JobId> pending_jobs_;  // jobs with a coalesced update waiting
    std::uint64_t next_job_order_ = 0;
    std::vector<std::shared_ptr<Watcher>> watchers_;
    SteadyTime idle_since_;
};

}  // namespace litchi::events::detail
