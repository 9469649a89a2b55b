// EventHub and Subscription: the thread-safe shell around UserChannel. This
// file owns the user map, creating and seeding a user's channel, locking,
// running notify callbacks outside locks, expiry of idle users and
// revocation. All protocol logic lives in user_channel.cpp.
#include "events/event_hub.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include "events/user_channel.hpp"

namespace litchi::events {

namespace json = boost::json;

namespace detail {

struct HubCore {
    EventLimits limits;
    EventHubHooks hooks;
    std::shared_ptr<HubCounters> counters = std::make_shared<HubCounters>();
    std::string boot_id;  // first half of every epoch: differs between processes
    std::atomic<std::uint64_t> next_watcher_id{1};

    struct Slot {
        std::shared_ptr<UserChannel> channel;
        int pins = 0;  // subscribes in progress; a pinned channel is never expired
    };
    mutable std::shared_mutex map_mutex;  // guards the members below
    std::unordered_map<UserId, Slot> channels;
    std::uint64_t next_generation = 1;
    std::uint64_t seq_high_water = 0;  // highest seq of any expired channel

    std::mutex expiry_mutex;
    std::optional<SteadyTime> last_expiry;

    SteadyTime now() const { return hooks.steady_now(); }

    std::shared_ptr<UserChannel> find(UserId user) const {
        std::shared_lock lock(map_mutex);
        auto found = channels.find(user);
        return found == channels.end() ? nullptr : found->second.channel;
    }

    std::vector<std::shared_ptr<UserChannel>> all() const {
        std::shared_lock lock(map_mutex);
        std::vector<std::shared_ptr<UserChannel>> list;
        list.reserve(channels.size());
        for (const auto& [user, slot] : channels) list.push_back(slot.channel);
        return list;
    }

    // Finds or creates the user's channel and pins it against expiry.
    std::shared_ptr<UserChannel> pin(UserId user) {
        std::unique_lock lock(map_mutex);
        Slot& slot = channels[user];
        if (!slot.channel) {
            // A fresh channel starts its seq above anything this process (or,
            // by the wall clock, an earlier one) may have handed out, and gets
            // an epoch no earlier channel had.
            const std::uint64_t base = std::max(hooks.wall_clock_ms() * 1000, seq_high_water + 1);
            std::string epoch = boot_id + "-" + std::to_string(next_generation++);
            slot.channel =
                std::make_shared<UserChannel>(user, std::move(epoch), base, limits, counters,
                                              hooks.write_job, hooks.write_item, now());
        }
        ++slot.pins;
        return slot.channel;
    }

    void unpin(UserId user, const std::shared_ptr<UserChannel>& channel, bool drop_unseeded) {
        std::unique_lock lock(map_mutex);
        auto found = channels.find(user);
        if (found == channels.end() || found->second.channel != channel) return;
        --found->second.pins;
        // A channel whose snapshot could not be loaded is not kept: the next
        // subscribe tries again from scratch.
        if (drop_unseeded && found->second.pins == 0) channels.erase(found);
    }
};

}  // namespace detail

namespace {

void run_wakeups(const detail::Wakeups& wake) {
    for (const std::shared_ptr<detail::Watcher>& watcher : wake) {
        try {
            watcher->notify();
        } catch (const std::exception& error) {
            // A session's bug must not break the publisher's loop.
            spdlog::error("event hub: notify callback threw: {}", error.what());
        }
    }
}

// The frame every publish shares: find the user's channel (none means nobody
// watches: nothing to do), publish under its lock once it is seeded, wake the
// watchers outside the lock, and tell the server when the next coalesced
// flush is due. `publish(channel, wake)` returns that deadline, if any.
template <typename Publish>
void publish_to_user(detail::HubCore& core, UserId user, Publish&& publish) {
    std::shared_ptr<detail::UserChannel> channel = core.find(user);
    if (!channel) return;
    detail::Wakeups wake;
    std::optional<SteadyTime> due;
    {
        std::lock_guard lock(channel->mutex);
        if (!channel->seeded()) return;
        due = publish(*channel, wake);
    }
    run_wakeups(wake);
    if (due && core.hooks.on_deadline) core.hooks.on_deadline(*due);
}

std::string make_boot_id() {
    std::random_device random;
    const std::uint64_t bits = (std::uint64_t{random()} << 32) ^ random();
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(bits));
    return hex;
}

}  // namespace

// ---- EventHub ------------------------------------------------------------------------------

EventHub::EventHub(EventLimits limits, EventHubHooks hooks)
    : core_(std::make_shared<detail::HubCore>()) {
    if (std::string problem = validate_event_limits(limits); !problem.empty()) {
        throw std::invalid_argument("event hub: " + problem);
    }
    if (!hooks.snapshot_provider && !hooks.log_seed)
        throw std::invalid_argument("event hub: a snapshot provider or a log seed is required");
    if (!hooks.write_job || !hooks.write_item)
        throw std::invalid_argument("event hub: job and item writers are required");
    if (!hooks.steady_now) hooks.steady_now = [] { return std::chrono::steady_clock::now(); };
    if (!hooks.wall_clock_ms) {
        hooks.wall_clock_ms = [] {
            const auto since_1970 = std::chrono::system_clock::now().time_since_epoch();
            return static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::milliseconds>(since_1970).count());
        };
    }
    core_->limits = limits;
    core_->hooks = std::move(hooks);
    core_->boot_id = make_boot_id();
}

EventHub::~EventHub() {
    close_all({close_code::going_away, "server shutting down"});
}

const EventLimits& EventHub::limits() const {
    return core_->limits;
}

std::shared_ptr<Subscription> EventHub::subscribe(UserId user, SubscribeOptions options) {
    std::shared_ptr<detail::UserChannel> channel = core_->pin(user);
    std::shared_ptr<Subscription> subscription;
    detail::Wakeups wake;  // other watchers, woken by updates the attach flushed

    // Runs with the channel's lock held (and, from the sink, the store's).
    auto attach = [&] {
        const std::uint64_t id = core_->next_watcher_id.fetch_add(1, std::memory_order_relaxed);
        ResumeOutcome outcome = ResumeOutcome::snapshot;
        std::shared_ptr<detail::Watcher> watcher =
            channel->attach(id, std::move(options.credential_id), std::move(options.notify),
                            options.resume_from, &outcome, core_->now(), wake);
        subscription.reset(new Subscription(core_, channel, std::move(watcher), outcome));
    };

    {
        std::lock_guard lock(channel->mutex);
        if (channel->seeded()) attach();  // the common case: the user is being tracked
    }
    if (!subscription && core_->hooks.log_seed) {
        // Log mode: read the user's state at a log position (no hub lock
        // held), install it unless a concurrent subscribe did, and have the
        // feeder catch up from that position.
        std::optional<LogSeed> seed;
        try {
            seed = core_->hooks.log_seed(user);
        } catch (const std::exception& error) {
            spdlog::warn("event hub: reading the event log of user {} failed: {}", user,
                         error.what());
        }
        if (seed) {
            {
                std::lock_guard lock(channel->mutex);
                if (!channel->seeded()) channel->seed_from_log(std::move(*seed));
                attach();
            }
            if (core_->hooks.on_log_seeded) core_->hooks.on_log_seeded(user);
        }
    } else if (!subscription) {
        // The provider calls the sink under the store's lock: seeding and
        // attaching there means no commit falls between snapshot and events.
        // No hub lock is held while calling it (lock order: store, then hub).
        SnapshotSink sink = [&](std::vector<JobSnapshot> jobs, CommitId as_of) {
            std::lock_guard lock(channel->mutex);
            if (subscription) return;  // a provider calling twice: the first call counts
            if (!channel->seeded()) channel->seed(std::move(jobs), as_of);
            attach();
        };
        bool provided = false;
        try {
            provided = core_->hooks.snapshot_provider(user, sink);
        } catch (const std::exception& error) {
            spdlog::error("event hub: loading the jobs of user {} failed: {}", user, error.what());
        }
        if (!provided && !subscription) {
            spdlog::warn("event hub: no snapshot for user {}; subscribe refused", user);
        }
    }

    bool seeded = true;
    if (!subscription) {
        std::lock_guard lock(channel->mutex);
        seeded = channel->seeded();
    }
    core_->unpin(user, channel, !seeded);
    run_wakeups(wake);
    return subscription;
}

void EventHub::publish_progress(const JobSnapshot& job, CommitId commit) {
    publish_to_user(*core_, job.user, [&](detail::UserChannel& channel, detail::Wakeups& wake) {
        return channel.publish_progress(job, commit, core_->now(), wake);
    });
}

void EventHub::publish_job_created(const JobSnapshot& job, CommitId commit) {
    publish_to_user(*core_, job.user, [&](detail::UserChannel& channel, detail::Wakeups& wake) {
        return channel.publish_job_created(job, commit, core_->now(), wake);
    });
}

void EventHub::publish_job_deleted(UserId user, JobId job, CommitId commit) {
    publish_to_user(*core_, user, [&](detail::UserChannel& channel, detail::Wakeups& wake) {
        channel.publish_job_deleted(job, commit, wake);
        return std::optional<SteadyTime>{};
    });
}

void EventHub::publish_item(UserId user, JobId job, const ItemRecord& item, CommitId commit) {
    publish_to_user(*core_, user, [&](detail::UserChannel& channel, detail::Wakeups& wake) {
        channel.publish_item(job, item, commit, wake);
        return std::optional<SteadyTime>{};
    });
}

void EventHub::publish_items_reset(UserId user, JobId job, CommitId commit) {
    publish_to_user(*core_, user, [&](detail::UserChannel& channel, detail::Wakeups& wake) {
        channel.publish_items_reset(job, commit, wake);
        return std::optional<SteadyTime>{};
    });
}

void EventHub::publish_logged(UserId user, const std::vector<LoggedEvent>& entries) {
    if (entries.empty()) return;
    std::shared_ptr<detail::UserChannel> channel = core_->find(user);
    if (!channel) return;
    detail::Wakeups wake;
    bool gap = false;
    {
        std::lock_guard lock(channel->mutex);
        if (!channel->seeded()) return;
        for (const LoggedEvent& entry : entries) {
            if (!channel->apply_logged(entry, wake)) {
                gap = true;
                break;
            }
        }
        if (gap) {
            spdlog::warn("event hub: user {}'s log continues at {} after {}; resyncing watchers",
                         user, entries.front().pos, channel->log_pos());
            channel->close_watchers([](const detail::Watcher&) { return true; },
                                    {close_code::service_restart, "resync"}, wake);
        }
    }
    if (gap) {
        std::unique_lock map_lock(core_->map_mutex);
        auto found = core_->channels.find(user);
        if (found != core_->channels.end() && found->second.channel == channel &&
            found->second.pins == 0)
            core_->channels.erase(found);
    }
    run_wakeups(wake);
}

std::vector<std::pair<UserId, std::uint64_t>> EventHub::log_positions() const {
    std::vector<std::pair<UserId, std::uint64_t>> positions;
    for (const std::shared_ptr<detail::UserChannel>& channel : core_->all()) {
        std::lock_guard lock(channel->mutex);
        if (channel->seeded()) positions.emplace_back(channel->user(), channel->log_pos());
    }
    return positions;
}

void EventHub::tick() {
    for (const std::shared_ptr<detail::UserChannel>& channel : core_->all()) {
        detail::Wakeups wake;
        {
            std::lock_guard lock(channel->mutex);
            if (channel->seeded()) channel->flush_due(core_->now(), wake);
        }
        run_wakeups(wake);
    }

    // Expiry is housekeeping: once a second is plenty and keeps ticks cheap.
    const SteadyTime now = core_->now();
    {
        std::lock_guard expiry_lock(core_->expiry_mutex);
        if (core_->last_expiry && now - *core_->last_expiry < std::chrono::seconds(1)) return;
        core_->last_expiry = now;
    }
    std::unique_lock map_lock(core_->map_mutex);
    for (auto slot = core_->channels.begin(); slot != core_->channels.end();) {
        bool expire = false;
        if (slot->second.pins == 0) {
            detail::UserChannel& channel = *slot->second.channel;
            // try_lock: a channel busy right now is not idle; never wait on a
            // user lock while holding the map lock (a snapshot load may be running).
            std::unique_lock channel_lock(channel.mutex, std::try_to_lock);
            if (channel_lock.owns_lock() && channel.watcher_count() == 0 &&
                now - channel.idle_since() >= core_->limits.idle_user_ttl) {
                expire = true;
                core_->seq_high_water = std::max(core_->seq_high_water, channel.last_seq());
            }
        }
        slot = expire ? core_->channels.erase(slot) : std::next(slot);
    }
}

std::optional<SteadyTime> EventHub::next_due() const {
    std::optional<SteadyTime> earliest;
    for (const std::shared_ptr<detail::UserChannel>& channel : core_->all()) {
        std::lock_guard lock(channel->mutex);
        std::optional<SteadyTime> due = channel->next_due();
        if (due && (!earliest || *due < *earliest)) earliest = due;
    }
    return earliest;
}

void EventHub::close_user(UserId user, const CloseRequest& why) {
    std::shared_ptr<detail::UserChannel> channel = core_->find(user);
    if (!channel) return;
    detail::Wakeups wake;
    {
        std::lock_guard lock(channel->mutex);
        channel->close_watchers([](const detail::Watcher&) { return true; }, why, wake);
    }
    run_wakeups(wake);
}

void EventHub::close_credential(std::string_view credential_id, const CloseRequest& why) {
    if (credential_id.empty()) return;  // "no credential id" must never match everyone
    for (const std::shared_ptr<detail::UserChannel>& channel : core_->all()) {
        detail::Wakeups wake;
        {
            std::lock_guard lock(channel->mutex);
            channel->close_watchers(
                [credential_id](const detail::Watcher& watcher) {
                    return watcher.credential_id == credential_id;
                },
                why, wake);
        }
        run_wakeups(wake);
    }
}

void EventHub::close_all(const CloseRequest& why) {
    for (const std::shared_ptr<detail::UserChannel>& channel : core_->all()) {
        detail::Wakeups wake;
        {
            std::lock_guard lock(channel->mutex);
            channel->close_watchers([](const detail::Watcher&) { return true; }, why, wake);
        }
        run_wakeups(wake);
    }
}

HubStats EventHub::stats() const {
    HubStats stats;
    {
        std::shared_lock lock(core_->map_mutex);
        stats.users = core_->channels.size();
    }
    const detail::HubCounters& counters = *core_->counters;
    stats.watchers = counters.watchers.load(std::memory_order_relaxed);
    stats.events = counters.events.load(std::memory_order_relaxed);
    stats.coalesced_updates = counters.coalesced_updates.load(std::memory_order_relaxed);
    stats.item_events_dropped = counters.item_events_dropped.load(std::memory_order_relaxed);
    stats.resyncs = counters.resyncs.load(std::memory_order_relaxed);
    stats.slow_closes = counters.slow_closes.load(std::memory_order_relaxed);
    return stats;
}

// ---- Subscription -------------------------------------------------------------------------

Subscription::Subscription(std::shared_ptr<detail::HubCore> core,
                           std::shared_ptr<detail::UserChannel> channel,
                           std::shared_ptr<detail::Watcher> watcher, ResumeOutcome initial_outcome)
    : core_(std::move(core)),
      channel_(std::move(channel)),
      watcher_(std::move(watcher)),
      user_(channel_->user()),
      id_(watcher_->id),
      initial_outcome_(initial_outcome) {}

Subscription::~Subscription() {
    cancel();
}

OutgoingBatch Subscription::pop(std::size_t max_messages) {
    std::lock_guard lock(channel_->mutex);
    if (cancelled_) return {};
    return channel_->pop(*watcher_, max_messages);
}

ResumeOutcome Subscription::resume(const ResumePoint& point) {
    detail::Wakeups wake;
    ResumeOutcome outcome = ResumeOutcome::closed;
    {
        std::lock_guard lock(channel_->mutex);
        if (!cancelled_) outcome = channel_->resume(watcher_, point, wake);
    }
    run_wakeups(wake);
    return outcome;
}

ItemSubscribeResult Subscription::subscribe_items(const json::value& job_id) {
    auto attempt = [&] {
        detail::Wakeups wake;
        ItemSubscribeResult result = ItemSubscribeResult::closed;
        {
            std::lock_guard lock(channel_->mutex);
            if (!cancelled_) result = channel_->subscribe_items(watcher_, job_id, wake);
        }
        run_wakeups(wake);
        return result;
    };
    ItemSubscribeResult result = attempt();
    if (result == ItemSubscribeResult::not_found && core_->hooks.catch_up_user) {
        // In a cluster the job may have been created on another node a
        // moment ago: read the log up to now, then ask again.
        try {
            core_->hooks.catch_up_user(user_);
        } catch (const std::exception& error) {
            spdlog::warn("event hub: catching up user {} failed: {}", user_, error.what());
        }
        result = attempt();
    }
    return result;
}

bool Subscription::unsubscribe_items(const json::value& job_id) {
    detail::Wakeups wake;
    bool was_following = false;
    {
        std::lock_guard lock(channel_->mutex);
        if (!cancelled_) was_following = channel_->unsubscribe_items(watcher_, job_id, wake);
    }
    run_wakeups(wake);
    return was_following;
}

void Subscription::cancel() {
    std::lock_guard lock(channel_->mutex);
    if (cancelled_) return;
    cancelled_ = true;
    channel_->detach(watcher_, core_->now());
}

std::size_t Subscription::side_queue_size() const {
    std::lock_guard lock(channel_->mutex);
    return channel_->side_queue_size(*watcher_);
}

std::size_t Subscription::backlog() const {
    std::lock_guard lock(channel_->mutex);
    return channel_->backlog(*watcher_);
}

}  // namespace litchi::events
