// One user's event state: sequencing, coalescing, replay and per-watcher
// delivery. See user_channel.hpp for the invariants; the comments below say
// why each step keeps them.
#include "events/user_channel.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <stdexcept>
#include <utility>

namespace litchi::events::detail {

namespace json = boost::json;

namespace {

// What clients see of a job: everything its JSON carries. `updated` and the
// owner are not shown, so a change of only those is no change to send.
bool same_for_clients(const JobSnapshot& a, const JobSnapshot& b) {
    return a.id == b.id && a.name == b.name && a.state == b.state && a.created == b.created &&
           a.counts == b.counts && a.bytes == b.bytes && a.rate == b.rate && a.eta == b.eta;
}

}  // namespace

UserChannel::UserChannel(UserId user, std::string epoch, std::uint64_t seq_base,
                         const EventLimits& limits, std::shared_ptr<HubCounters> counters,
                         JobWriter write_job, ItemWriter write_item, SteadyTime now)
    : user_(user),
      epoch_(std::move(epoch)),
      limits_(limits),
      counters_(std::move(counters)),
      write_job_(std::move(write_job)),
      write_item_(std::move(write_item)),
      last_seq_(seq_base),
      ring_(limits.replay_capacity),
      idle_since_(now) {}

void UserChannel::seed(std::vector<JobSnapshot> jobs, CommitId as_of) {
    jobs_.clear();
    pending_jobs_.clear();
    for (JobSnapshot& job : jobs) {
        JobEntry entry;
        entry.order = next_job_order_++;
        entry.sent_json = write_job_(job);
        entry.sent = std::move(job);
        const JobId id = entry.sent.id;
        jobs_.insert_or_assign(id, std::move(entry));
    }
    seeded_ = true;
    seeded_as_of_ = as_of;
}

// ---- publishing ---------------------------------------------------------------------------

std::optional<SteadyTime> UserChannel::publish_progress(const JobSnapshot& job, CommitId commit,
                                                        SteadyTime now, Wakeups& wake) {
    if (already_seen(commit)) return std::nullopt;
    auto found = jobs_.find(job.id);
    if (found == jobs_.end()) {
        // Clients cannot apply progress for a job they have never been told
        // about, so an unknown job is announced as created.
        return publish_job_created(job, commit, now, wake);
    }
    JobEntry& entry = found->second;

    if (job.state != entry.sent.state) {
        send_progress_now(job.id, entry, job, now, wake);
        return std::nullopt;
    }
    if (same_for_clients(job, entry.sent)) {
        // Clients already have exactly this; a waiting update would only take
        // them somewhere they are not going any more.
        if (entry.pending) {
            entry.pending.reset();
            pending_jobs_.erase(job.id);
            counters_->coalesced_updates.fetch_add(1, std::memory_order_relaxed);
        }
        return std::nullopt;
    }
    const bool interval_passed =
        !entry.last_sent || now - *entry.last_sent >= limits_.progress_interval;
    if (!entry.pending && interval_passed) {
        // Leading edge: the first change after a quiet interval goes at once,
        // so a slow job's updates are never delayed.
        send_progress_now(job.id, entry, job, now, wake);
        return std::nullopt;
    }
    const bool newly_pending = !entry.pending;
    if (!newly_pending) counters_->coalesced_updates.fetch_add(1, std::memory_order_relaxed);
    entry.pending = job;  // only the newest value is kept: it carries every count
    if (!newly_pending) return std::nullopt;
    pending_jobs_.insert(job.id);
    return entry.last_sent ? *entry.last_sent + limits_.progress_interval : now;
}

std::optional<SteadyTime> UserChannel::publish_job_created(const JobSnapshot& job, CommitId commit,
                                                           SteadyTime now, Wakeups& wake) {
    if (already_seen(commit)) return std::nullopt;
    if (jobs_.contains(job.id)) {
        // Already in the view (the snapshot that seeded us saw its row): for
        // clients this is at most an update of a job they know.
        return publish_progress(job, commit, now, wake);
    }
    JobEntry entry;
    entry.order = next_job_order_++;
    entry.last_sent = now;
    entry.sent = job;
    entry.sent_json = write_job_(job);
    MessageText text = make_job_message(MessageKind::job_created, last_seq_ + 1, entry.sent_json);
    jobs_.emplace(job.id, std::move(entry));
    sequence_event(MessageKind::job_created, text, wake);
    return std::nullopt;
}

void UserChannel::publish_job_deleted(JobId id, CommitId commit, Wakeups& wake) {
    if (already_seen(commit)) return;
    auto found = jobs_.find(id);
    if (found == jobs_.end()) return;  // clients never heard of it
    JobEntry& entry = found->second;
    if (entry.pending) {
        pending_jobs_.erase(id);
        counters_->coalesced_updates.fetch_add(1, std::memory_order_relaxed);
    }
    MessageText text = make_job_message(MessageKind::job_deleted, last_seq_ + 1, entry.sent_json);
    jobs_.erase(found);
    sequence_event(MessageKind::job_deleted, text, wake);
    announce_item_follows_ended(id, wake);
}

// Item followers learn the subscription ended, after the deletion itself.
void UserChannel::announce_item_follows_ended(JobId id, Wakeups& wake) {
    MessageText ack;
    for (const std::shared_ptr<Watcher>& watcher : watchers_) {
        if (watcher->close || watcher->item_jobs.erase(id) == 0) continue;
        if (!ack) ack = make_unsubscribed_message(last_seq_, json::value(id), "deleted");
        queue_side_message(watcher, {MessageKind::unsubscribed, last_seq_, ack, id}, wake);
    }
}

// ---- log mode -----------------------------------------------------------------------------

std::string UserChannel::logged_job_json(const LoggedEvent& entry) const {
    if (entry.snapshot) return write_job_(*entry.snapshot);
    auto known = jobs_.find(entry.job);
    if (known != jobs_.end()) return known->second.sent_json;
    return "{\"id\":" + std::to_string(entry.job) + "}";
}

void UserChannel::seed_from_log(LogSeed from) {
    epoch_ = std::move(from.epoch);
    seed(std::move(from.jobs), from.pos);
    log_pos_ = from.pos;
    last_seq_ = from.seq;
    // The ring starts with the log's recent history (contiguous, ending at
    // seq), so a client resuming from any of those seqs gets a replay here.
    std::vector<const LoggedEvent*> tail;
    for (const LoggedEvent& entry : from.recent)
        if (is_job_level(entry.kind) && entry.seq <= from.seq) tail.push_back(&entry);
    std::size_t start = tail.size();
    // Only the contiguous run that ends exactly at seq can be replayed.
    for (std::uint64_t expect = from.seq; start > 0 && tail[start - 1]->seq == expect; --expect)
        --start;
    for (std::size_t i = start; i < tail.size(); ++i) {
        const LoggedEvent& entry = *tail[i];
        const std::string job_json = logged_job_json(entry);
        MessageText text;
        MessageKind kind = MessageKind::progress;
        if (entry.kind == LoggedKind::progress) {
            text = make_progress_message(entry.seq, job_json);
        } else {
            kind = entry.kind == LoggedKind::job_created ? MessageKind::job_created
                                                         : MessageKind::job_deleted;
            text = make_job_message(kind, entry.seq, job_json);
        }
        ring_.push({entry.seq, kind, std::move(text)});
    }
}

bool UserChannel::apply_logged(const LoggedEvent& entry, Wakeups& wake) {
    if (entry.pos <= log_pos_) return true;  // already applied (or in the seed)
    if (entry.pos != log_pos_ + 1) return false;
    if (is_job_level(entry.kind) && entry.seq != last_seq_ + 1) return false;
    log_pos_ = entry.pos;

    switch (entry.kind) {
        case LoggedKind::job_created:
        case LoggedKind::progress: {
            if (!entry.snapshot) return false;  // a writer bug; resync rather than guess
            auto found = jobs_.find(entry.job);
            if (found == jobs_.end()) {
                JobEntry fresh;
                fresh.order = next_job_order_++;
                found = jobs_.emplace(entry.job, std::move(fresh)).first;
            }
            found->second.sent = *entry.snapshot;
            found->second.sent_json = write_job_(*entry.snapshot);
            const MessageKind kind = entry.kind == LoggedKind::progress ? MessageKind::progress
                                                                        : MessageKind::job_created;
            MessageText text = kind == MessageKind::progress
                                   ? make_progress_message(entry.seq, found->second.sent_json)
                                   : make_job_message(kind, entry.seq, found->second.sent_json);
            sequence_event(kind, text, wake);
            return true;
        }
        case LoggedKind::job_deleted: {
            MessageText text =
                make_job_message(MessageKind::job_deleted, entry.seq, logged_job_json(entry));
            jobs_.erase(entry.job);
            sequence_event(MessageKind::job_deleted, text, wake);
            announce_item_follows_ended(entry.job, wake);
            return true;
        }
        case LoggedKind::item:
            for (const ItemRecord& item : entry.items) publish_item(entry.job, item, 0, wake);
            return true;
        case LoggedKind::items_reset:
            publish_items_reset(entry.job, 0, wake);
            return true;
    }
    return true;
}

void UserChannel::publish_item(JobId id, const ItemRecord& item, CommitId commit, Wakeups& wake) {
    if (already_seen(commit)) return;
    auto found = jobs_.find(id);
    if (found == jobs_.end() || found->second.item_followers == 0) return;  // the common case
    const std::string item_json = write_item_(item);  // once, not once per follower
    for (const std::shared_ptr<Watcher>& watcher : watchers_) {
        if (watcher->close) continue;
        auto follow = watcher->item_jobs.find(id);
        if (follow == watcher->item_jobs.end()) continue;
        const std::uint64_t iseq = ++follow->second.last_iseq;
        queue_side_message(
            watcher,
            {MessageKind::item, last_seq_, make_item_message(last_seq_, iseq, id, item_json), id},
            wake);
    }
}

void UserChannel::publish_items_reset(JobId id, CommitId commit, Wakeups& wake) {
    if (already_seen(commit)) return;
    auto found = jobs_.find(id);
    if (found == jobs_.end() || found->second.item_followers == 0) return;
    const MessageText text = make_items_reset_message(last_seq_, id);
    for (const std::shared_ptr<Watcher>& watcher : watchers_) {
        if (watcher->close || !watcher->item_jobs.contains(id)) continue;
        // Queued item events of this job are superseded by the re-read.
        std::erase_if(watcher->side_queue, [id](const OutgoingMessage& queued) {
            return queued.kind == MessageKind::item && queued.job == id;
        });
        queue_side_message(watcher, {MessageKind::items_reset, last_seq_, text, id}, wake);
    }
}

void UserChannel::flush_due(SteadyTime now, Wakeups& wake, bool all) {
    if (pending_jobs_.empty()) return;
    std::vector<std::pair<std::uint64_t, JobId>> due;  // (listing order, job)
    for (JobId id : pending_jobs_) {
        const JobEntry& entry = jobs_.at(id);
        if (all || !entry.last_sent || *entry.last_sent + limits_.progress_interval <= now) {
            due.emplace_back(entry.order, id);
        }
    }
    // A stable order makes the sequence independent of hash-table layout.
    std::sort(due.begin(), due.end());
    for (auto& [order, id] : due) {
        JobEntry& entry = jobs_.at(id);
        JobSnapshot job = std::move(*entry.pending);
        entry.pending.reset();
        pending_jobs_.erase(id);
        send_progress_now(id, entry, job, now, wake);
    }
}

std::optional<SteadyTime> UserChannel::next_due() const {
    std::optional<SteadyTime> earliest;
    for (JobId id : pending_jobs_) {
        const JobEntry& entry = jobs_.at(id);
        SteadyTime due =
            entry.last_sent ? *entry.last_sent + limits_.progress_interval : SteadyTime::min();
        if (!earliest || due < *earliest) earliest = due;
    }
    return earliest;
}

void UserChannel::send_progress_now(JobId id, JobEntry& entry, const JobSnapshot& job,
                                    SteadyTime now, Wakeups& wake) {
    if (entry.pending) {
        // A state change overtakes the waiting update, which is older than `job`.
        counters_->coalesced_updates.fetch_add(1, std::memory_order_relaxed);
        entry.pending.reset();
        pending_jobs_.erase(id);
    }
    entry.sent = job;
    entry.sent_json = write_job_(job);
    entry.last_sent = now;
    sequence_event(MessageKind::progress, make_progress_message(last_seq_ + 1, entry.sent_json),
                   wake);
}

// The one place seq moves. Every watcher either still has its cursor inside
// the ring, or is switched to a snapshot before the ring loses its next event,
// so nobody is ever handed a gap.
void UserChannel::sequence_event(MessageKind kind, const MessageText& text, Wakeups& wake) {
    ++last_seq_;
    ring_.push({last_seq_, kind, text});
    counters_->events.fetch_add(1, std::memory_order_relaxed);
    const std::uint64_t oldest_held = ring_.first_seq();
    for (const std::shared_ptr<Watcher>& watcher : watchers_) {
        if (watcher->close) continue;
        if (watcher->intro != Watcher::Intro::none) {
            // Its hello/snapshot is built when popped, so waiting costs nothing;
            // but a watcher that lets a whole ring pass without taking it is
            // not reading at all.
            if (watcher->replay_after_intro && watcher->next_seq < oldest_held) {
                watcher->replay_after_intro = false;  // the hello covers it anyway
            }
            if (last_seq_ - watcher->intro_requested_at >= limits_.replay_capacity) {
                close_watcher(*watcher, {close_code::try_again_later, "slow consumer"});
                counters_->slow_closes.fetch_add(1, std::memory_order_relaxed);
                spdlog::info("event hub: closing a watcher of user {} that stopped reading", user_);
            }
            wake_up(watcher, wake);
            continue;
        }
        if (watcher->next_seq < oldest_held) {
            // Its next event was just overwritten: replace its whole backlog by
            // one snapshot, which is the latest value of every job.
            request_intro(*watcher, Watcher::Intro::snapshot);
            counters_->resyncs.fetch_add(1, std::memory_order_relaxed);
        }
        wake_up(watcher, wake);
    }
}

// ---- watchers -----------------------------------------------------------------------------

std::shared_ptr<Watcher> UserChannel::attach(std::uint64_t id, std::string credential_id,
                                             std::function<void()> notify,
                                             const std::optional<ResumePoint>& resume_from,
                                             ResumeOutcome* outcome, SteadyTime now,
                                             Wakeups& wake) {
    // Before the watcher exists: the flushed events are covered by its hello
    // (or, when it continues from a resume point, are part of its replay).
    if (!pending_jobs_.empty()) flush_due(now, wake, true);
    auto watcher = std::make_shared<Watcher>();
    watcher->id = id;
    watcher->credential_id = std::move(credential_id);
    watcher->notify = std::move(notify);
    watcher->intro = Watcher::Intro::hello;
    watcher->intro_requested_at = last_seq_;
    ResumeOutcome result = ResumeOutcome::snapshot;
    if (resume_from && can_replay_from(*resume_from)) {
        // A transport that carries the resume point in its request (SSE's
        // Last-Event-ID) continues the stream instead of starting over.
        watcher->intro = Watcher::Intro::none;
        watcher->next_seq = resume_from->since + 1;
        result = ResumeOutcome::replay;
    }
    watchers_.push_back(watcher);
    counters_->watchers.fetch_add(1, std::memory_order_relaxed);
    if (outcome != nullptr) *outcome = result;
    return watcher;
}

void UserChannel::detach(const std::shared_ptr<Watcher>& watcher, SteadyTime now) {
    auto found = std::find(watchers_.begin(), watchers_.end(), watcher);
    if (found == watchers_.end()) return;
    for (auto& [id, follow] : watcher->item_jobs) {
        auto job = jobs_.find(id);
        if (job != jobs_.end() && job->second.item_followers > 0) --job->second.item_followers;
    }
    watcher->item_jobs.clear();
    watcher->side_queue.clear();
    watchers_.erase(found);
    counters_->watchers.fetch_sub(1, std::memory_order_relaxed);
    if (watchers_.empty()) idle_since_ = now;
}

OutgoingBatch UserChannel::pop(Watcher& watcher, std::size_t max_messages) {
    OutgoingBatch out;
    watcher.notify_armed = true;  // whatever arrives after this pop deserves a notify
    if (watcher.close) {
        out.close = *watcher.close;
        return out;
    }
    max_messages = std::max<std::size_t>(max_messages, 1);
    if (watcher.intro != Watcher::Intro::none) {
        const MessageKind kind =
            watcher.intro == Watcher::Intro::hello ? MessageKind::hello : MessageKind::snapshot;
        out.messages.push_back({kind, last_seq_, build_full_state(watcher.intro)});
        if (!watcher.replay_after_intro) watcher.next_seq = last_seq_ + 1;
        watcher.intro = Watcher::Intro::none;
        watcher.replay_after_intro = false;
    }
    // Merge ring events and side messages in the order they happened: a side
    // message stamped with seq S came after event S and before S + 1.
    while (out.messages.size() < max_messages) {
        const bool event_ready = watcher.next_seq <= last_seq_;
        const bool side_ready = !watcher.side_queue.empty();
        if (!event_ready && !side_ready) break;
        if (event_ready && (!side_ready || watcher.next_seq <= watcher.side_queue.front().seq)) {
            const RingEntry* entry = ring_.find(watcher.next_seq);
            if (entry == nullptr) {
                // Unreachable while sequence_event resyncs before overwriting a
                // cursor; should it ever happen, a snapshot is still correct.
                spdlog::error("event hub: watcher cursor fell out of the ring; resyncing");
                counters_->resyncs.fetch_add(1, std::memory_order_relaxed);
                out.messages.push_back(
                    {MessageKind::snapshot, last_seq_, build_full_state(Watcher::Intro::snapshot)});
                watcher.next_seq = last_seq_ + 1;
                continue;
            }
            out.messages.push_back({entry->kind, entry->seq, entry->text});
            ++watcher.next_seq;
        } else {
            out.messages.push_back(std::move(watcher.side_queue.front()));
            watcher.side_queue.pop_front();
        }
    }
    out.more = has_output(watcher);
    return out;
}

ResumeOutcome UserChannel::resume(const std::shared_ptr<Watcher>& watcher, const ResumePoint& point,
                                  Wakeups& wake) {
    if (watcher->close) return ResumeOutcome::closed;
    if (can_replay_from(point)) {
        // The protocol promises hello first; a resume racing the first pop
        // gets its replay right after the hello (the client skips seqs it has).
        if (watcher->intro == Watcher::Intro::hello) {
            watcher->replay_after_intro = true;
        } else {
            watcher->intro = Watcher::Intro::none;
        }
        watcher->next_seq = point.since + 1;
        if (has_output(*watcher)) wake_up(watcher, wake);
        return ResumeOutcome::replay;
    }
    if (watcher->intro == Watcher::Intro::hello) {
        watcher->replay_after_intro = false;  // the pending hello is the snapshot
    } else {
        request_intro(*watcher, Watcher::Intro::snapshot);
    }
    wake_up(watcher, wake);
    return ResumeOutcome::snapshot;
}

ItemSubscribeResult UserChannel::subscribe_items(const std::shared_ptr<Watcher>& watcher,
                                                 const json::value& job_id, Wakeups& wake) {
    if (watcher->close) return ItemSubscribeResult::closed;
    std::optional<JobId> id = job_id_of(job_id);
    if (!id) return ItemSubscribeResult::not_found;
    auto job = jobs_.find(*id);
    if (job == jobs_.end()) return ItemSubscribeResult::not_found;  // includes other users' jobs
    auto follow = watcher->item_jobs.find(*id);
    if (follow != watcher->item_jobs.end()) {
        follow->second.last_iseq = 0;  // a repeated subscribe restarts the numbering after its ack
    } else {
        if (watcher->item_jobs.size() >= limits_.max_item_subscriptions) {
            return ItemSubscribeResult::too_many;
        }
        watcher->item_jobs.emplace(*id, Watcher::ItemFollow{});
        ++job->second.item_followers;
    }
    queue_side_message(
        watcher, {MessageKind::subscribed, last_seq_, make_subscribed_message(last_seq_, *id), *id},
        wake);
    return watcher->close ? ItemSubscribeResult::closed : ItemSubscribeResult::subscribed;
}

bool UserChannel::unsubscribe_items(const std::shared_ptr<Watcher>& watcher,
                                    const json::value& job_id, Wakeups& wake) {
    if (watcher->close) return false;
    std::optional<JobId> id = job_id_of(job_id);
    auto follow = id ? watcher->item_jobs.find(*id) : watcher->item_jobs.end();
    const bool was_following = follow != watcher->item_jobs.end();
    // The ack names the job as ids are written; a value naming no job is echoed.
    json::value echo = id ? json::value(*id) : job_id;
    if (was_following) {
        watcher->item_jobs.erase(follow);
        auto job = jobs_.find(*id);
        if (job != jobs_.end() && job->second.item_followers > 0) --job->second.item_followers;
    }
    queue_side_message(watcher,
                       {MessageKind::unsubscribed, last_seq_,
                        make_unsubscribed_message(last_seq_, echo, {}), id.value_or(0)},
                       wake);
    return was_following;
}

void UserChannel::close_watchers(const std::function<bool(const Watcher&)>& which,
                                 const CloseRequest& why, Wakeups& wake) {
    for (const std::shared_ptr<Watcher>& watcher : watchers_) {
        if (watcher->close || !which(*watcher)) continue;
        close_watcher(*watcher, why);
        wake_up(watcher, wake);
    }
}

std::size_t UserChannel::backlog(const Watcher& watcher) const {
    if (watcher.close || watcher.intro != Watcher::Intro::none) return 0;
    return watcher.next_seq <= last_seq_ ? last_seq_ - watcher.next_seq + 1 : 0;
}

// ---- helpers ------------------------------------------------------------------------------

void UserChannel::queue_side_message(const std::shared_ptr<Watcher>& watcher,
                                     OutgoingMessage message, Wakeups& wake) {
    if (watcher->side_queue.size() >= limits_.side_queue_capacity) {
        // Item events are droppable (the client sees the `iseq` gap and
        // refetches); acknowledgements are not, so the oldest item goes.
        auto oldest_item = std::find_if(
            watcher->side_queue.begin(), watcher->side_queue.end(),
            [](const OutgoingMessage& queued) { return queued.kind == MessageKind::item; });
        if (oldest_item == watcher->side_queue.end()) {
            // Only acknowledgements, none read: a client issuing commands
            // without reading the answers.
            close_watcher(*watcher, {close_code::try_again_later, "slow consumer"});
            counters_->slow_closes.fetch_add(1, std::memory_order_relaxed);
            wake_up(watcher, wake);
            return;
        }
        watcher->side_queue.erase(oldest_item);
        counters_->item_events_dropped.fetch_add(1, std::memory_order_relaxed);
    }
    watcher->side_queue.push_back(std::move(message));
    wake_up(watcher, wake);
}

void UserChannel::close_watcher(Watcher& watcher, const CloseRequest& why) {
    if (watcher.close) return;
    watcher.close = why;
    watcher.side_queue.clear();  // a closed watcher holds no messages
    for (auto& [id, follow] : watcher.item_jobs) {
        auto job = jobs_.find(id);
        if (job != jobs_.end() && job->second.item_followers > 0) --job->second.item_followers;
    }
    watcher.item_jobs.clear();
    watcher.intro = Watcher::Intro::none;
}

void UserChannel::request_intro(Watcher& watcher, Watcher::Intro intro) {
    watcher.intro = intro;
    watcher.intro_requested_at = last_seq_;
    watcher.replay_after_intro = false;
    if (intro == Watcher::Intro::snapshot) {
        // Free what a slow reader holds: the snapshot makes the client refetch
        // the items of jobs it follows, so queued item events are redundant.
        std::erase_if(watcher.side_queue, [](const OutgoingMessage& queued) {
            return queued.kind == MessageKind::item;
        });
    }
}

bool UserChannel::can_replay_from(const ResumePoint& point) const {
    if (point.epoch && *point.epoch != epoch_) return false;  // another process or generation
    if (point.since > last_seq_) return false;  // a seq we never issued: not ours to continue
    if (point.since == last_seq_) return true;  // nothing missed
    return !ring_.empty() && point.since + 1 >= ring_.first_seq();
}

MessageText UserChannel::build_full_state(Watcher::Intro intro) const {
    // At most --snapshot-jobs jobs, so a user with thousands of jobs does not
    // cost every new watcher megabytes: the unfinished ones first (those are
    // the ones that move), then the newest finished ones; listed in the usual
    // order. A cut list says so ("truncated", "total"); the rest is a GET
    // /api/jobs away, and later events name their job in full anyway.
    struct Candidate {
        bool finished;
        JobId id;  // ids grow with creation: the larger, the newer
        std::uint64_t order;
        std::string_view json;
    };
    std::vector<Candidate> picked;
    picked.reserve(jobs_.size());
    for (const auto& [id, entry] : jobs_) {
        bool finished =
            entry.sent.state == JobState::done || entry.sent.state == JobState::cancelled;
        picked.push_back({finished, id, entry.order, entry.sent_json});
    }
    const std::size_t total = picked.size();
    const std::size_t cap = std::max<std::size_t>(limits_.max_snapshot_jobs, 1);
    if (total > cap) {
        std::nth_element(picked.begin(), picked.begin() + static_cast<std::ptrdiff_t>(cap) - 1,
                         picked.end(), [](const Candidate& a, const Candidate& b) {
                             if (a.finished != b.finished) return !a.finished;
                             return a.id > b.id;
                         });
        picked.resize(cap);
    }
    std::sort(picked.begin(), picked.end(),
              [](const Candidate& a, const Candidate& b) { return a.order < b.order; });
    std::vector<std::string_view> jobs;
    jobs.reserve(picked.size());
    for (const auto& candidate : picked) jobs.push_back(candidate.json);
    return intro == Watcher::Intro::hello ? make_hello_message(epoch_, last_seq_, jobs, total)
                                          : make_snapshot_message(epoch_, last_seq_, jobs, total);
}

void UserChannel::wake_up(const std::shared_ptr<Watcher>& watcher, Wakeups& wake) {
    if (!watcher->notify_armed || !watcher->notify) return;
    watcher->notify_armed = false;
    wake.push_back(watcher);
}

bool UserChannel::has_output(const Watcher& watcher) const {
    return watcher.close || watcher.intro != Watcher::Intro::none ||
           watcher.next_seq <= last_seq_ || !watcher.side_queue.empty();
}

}  // namespace litchi::events::detail
