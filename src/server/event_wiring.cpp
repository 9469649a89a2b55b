// See event_wiring.hpp.
#include "server/event_wiring.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/json/value.hpp>
#include <future>
#include <set>
#include <vector>

#include "server/json.hpp"

namespace litchi::server {

namespace net = boost::asio;
namespace json = boost::json;

std::int64_t steady_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// The store's observer (through JobService, which adds rates): each commit's
// changes become hub publishes, in the order StoreChanges lists them. It runs
// on whichever thread committed, after the store's lock is released, one
// delivery at a time; a bug here is logged, not propagated into the commit.
class EventWiring::Publisher : public StoreObserver {
  public:
    explicit Publisher(events::EventHub*& hub) : hub_(hub) {}

    void on_commit(StoreChanges& changes) override {
        events::EventHub* hub = hub_;
        if (hub == nullptr) return;
        try {
            const CommitId commit = changes.commit;
            for (const JobSnapshot& job : changes.created) hub->publish_job_created(job, commit);
            for (const ItemChange& change : changes.items)
                hub->publish_item(change.user, change.item.job, change.item, commit);
            for (const JobSnapshot& job : changes.items_reset)
                hub->publish_items_reset(job.user, job.id, commit);
            // The hub tells a change of state from a change of counts itself.
            for (const JobChange& change : changes.changed)
                hub->publish_progress(change.job, commit);
            for (const JobSnapshot& job : changes.deleted)
                hub->publish_job_deleted(job.user, job.id, commit);
        } catch (const std::exception& e) {
            spdlog::error("event hub: publishing commit {} failed: {}", changes.commit, e.what());
        }
    }

  private:
    events::EventHub*& hub_;
};

EventWiring::EventWiring(net::io_context& ioc, net::thread_pool& workers, Store& store,
                         JobService& jobs, LiveLimits limits)
    : strand_(net::make_strand(ioc)),
      workers_(workers),
      store_(store),
      jobs_(jobs),
      limits_(std::move(limits)),
      tick_timer_(strand_),
      sweep_timer_(strand_) {
    events::EventHubHooks hooks;
    if (EventLog* log = store.event_log()) {
        // Cluster mode: the log is the source of seqs, seeds and events.
        const std::size_t recent = limits_.hub.replay_capacity;
        hooks.log_seed = [log, recent](events::UserId user) -> std::optional<events::LogSeed> {
            UserLogState state = log->user_state(user, recent);
            events::LogSeed seed;
            seed.epoch = log->epoch();
            seed.jobs = std::move(state.jobs);
            seed.pos = state.pos;
            seed.seq = state.seq;
            seed.recent = std::move(state.recent);
            return seed;
        };
        hooks.on_log_seeded = [this](events::UserId user) {
            if (follower_) follower_->poke(user);
        };
        hooks.catch_up_user = [this](events::UserId user) {
            if (follower_) follower_->catch_up_now(user);
        };
    } else
        hooks.snapshot_provider = [&jobs](events::UserId user, const events::SnapshotSink& sink) {
            try {
                // While no change is delivered: the hello and the events after it
                // fit exactly (the hub skips changes the snapshot already holds).
                jobs.visit_jobs(user, [&sink](const std::vector<JobSnapshot>& list,
                                              CommitId as_of) { sink(list, as_of); });
                return true;
            } catch (const std::exception& e) {
                spdlog::error("event hub: cannot read the jobs of user {}: {}", user, e.what());
                return false;
            }
        };
    hooks.write_job = [](const JobSnapshot& job) { return to_json_text(job_to_json(job)); };
    hooks.write_item = [](const ItemRecord& item) { return to_json_text(item_to_json(item)); };
    hooks.on_deadline = [this](events::SteadyTime due) {
        if (stopped_.load(std::memory_order_acquire)) return;
        net::post(strand_, [self = weak_from_this(), due] {
            if (auto wiring = self.lock()) wiring->arm_tick(due);
        });
    };
    hub_ = std::make_unique<events::EventHub>(limits_.hub, std::move(hooks));
    hub_raw_ = hub_.get();
    publisher_ = std::make_unique<Publisher>(hub_raw_);
}

EventWiring::~EventWiring() {
    // After stop() the store may already be gone (pending handlers can keep us
    // alive until the io_context is destroyed): touch it only if never stopped.
    if (!stopped_.load(std::memory_order_acquire)) jobs_.set_observer(nullptr);
}

void EventWiring::start(LogFollowerHooks log_hooks) {
    if (EventLog* log = store_.event_log()) {
        LogFollowerOptions options;
        options.progress_interval = limits_.hub.progress_interval;
        follower_ = std::make_unique<LogFollower>(*log, *hub_, options, std::move(log_hooks));
        follower_->start();
    } else {
        jobs_.set_observer(publisher_.get());
    }
    net::post(strand_, [self = shared_from_this()] {
        self->arm_tick(std::chrono::steady_clock::now() + self->limits_.idle_tick);
        self->arm_sweep();
    });
}

void EventWiring::stop() {
    if (stopped_.exchange(true)) return;
    if (follower_) follower_->stop();
    jobs_.set_observer(nullptr);
    hub_->close_all({events::close_code::going_away, "server shutting down"});
    // Timers belong to the strand: cancel them there, and wait, so nothing of
    // ours is pending when the io_context goes away.
    std::promise<void> cancelled;
    auto done = cancelled.get_future();
    net::post(strand_, [this, &cancelled] {
        tick_timer_.cancel();
        sweep_timer_.cancel();
        cancelled.set_value();
    });
    if (done.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
        spdlog::warn("event timers did not stop in time");
    }
}

std::string EventWiring::credential_id(TokenId token) {
    return "token:" + std::to_string(token);
}

void EventWiring::credential_revoked(TokenId token) {
    hub_->close_credential(credential_id(token),
                           {events::close_code::policy_violation, "token revoked"});
}

std::optional<UserSocketSlot> EventWiring::admit_user_socket(UserId user) {
    {
        std::lock_guard lock(user_sockets_mutex_);
        auto& open = user_sockets_[user];
        if (open >= limits_.max_sockets_per_user) {
            if (open == 0) user_sockets_.erase(user);
            return std::nullopt;
        }
        ++open;
    }
    return UserSocketSlot(shared_from_this(), user);
}

std::size_t EventWiring::user_sockets(UserId user) {
    std::lock_guard lock(user_sockets_mutex_);
    auto found = user_sockets_.find(user);
    return found == user_sockets_.end() ? 0 : found->second;
}

void EventWiring::release_user_socket(UserId user) {
    std::lock_guard lock(user_sockets_mutex_);
    auto found = user_sockets_.find(user);
    if (found == user_sockets_.end()) return;
    if (--found->second == 0) user_sockets_.erase(found);
}

std::uint64_t EventWiring::register_socket(std::weak_ptr<LiveSocket> socket, TokenId token) {
    std::lock_guard lock(sockets_mutex_);
    auto id = next_socket_id_++;
    sockets_.emplace(id, Registered{std::move(socket), token});
    return id;
}

void EventWiring::unregister_socket(std::uint64_t id) {
    std::lock_guard lock(sockets_mutex_);
    sockets_.erase(id);
}

void EventWiring::arm_tick(events::SteadyTime due) {
    // Keep one wait, for the earliest moment anything is due.
    if (stopped_.load(std::memory_order_acquire)) return;
    if (tick_waiting_ && due >= tick_armed_for_) return;
    tick_armed_for_ = due;
    tick_waiting_ = true;
    tick_timer_.expires_at(
        due);  // cancels the later wait, whose handler then sees operation_aborted
    tick_timer_.async_wait([self = shared_from_this(), due](boost::system::error_code ec) {
        if (ec || due != self->tick_armed_for_) return;  // replaced by an earlier deadline
        self->on_tick(ec);
    });
}

void EventWiring::on_tick(boost::system::error_code) {
    // Send what fell due, then wait for the next deadline (or the idle tick).
    tick_waiting_ = false;
    hub_->tick();
    auto next = std::chrono::steady_clock::now() + limits_.idle_tick;
    if (auto due = hub_->next_due()) next = std::min(next, *due);
    arm_tick(next);
}

void EventWiring::arm_sweep() {
    if (stopped_.load(std::memory_order_acquire)) return;
    sweep_timer_.expires_after(limits_.sweep_interval);
    sweep_timer_.async_wait(
        [self = shared_from_this()](boost::system::error_code ec) { self->on_sweep(ec); });
}

void EventWiring::on_sweep(boost::system::error_code ec) {
    // Drop writers that made no progress for write_stall_timeout (a peer whose
    // receive window stayed shut), and re-check the tokens of open sockets.
    if (ec || stopped_.load(std::memory_order_acquire)) return;
    const auto now = steady_ms();
    const auto stall_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(limits_.write_stall_timeout).count();
    std::vector<std::shared_ptr<LiveSocket>> stalled;
    std::set<TokenId> tokens;
    {
        std::lock_guard lock(sockets_mutex_);
        for (auto it = sockets_.begin(); it != sockets_.end();) {
            auto socket = it->second.socket.lock();
            if (!socket) {
                it = sockets_.erase(it);
                continue;
            }
            auto started = socket->write_started_ms();
            if (started != 0 && now - started > stall_ms) stalled.push_back(std::move(socket));
            tokens.insert(it->second.token);
            ++it;
        }
    }
    for (auto& socket : stalled) {
        count_stall_drop();
        socket->abort();
    }

    const auto check_every = std::max<std::int64_t>(
        1, std::chrono::duration_cast<std::chrono::milliseconds>(limits_.credential_check_interval)
               .count());
    if (!tokens.empty() && now - last_credential_check_ms_ >= check_every &&
        !sweep_busy_.exchange(true)) {
        last_credential_check_ms_ = now;
        // SQLite reads belong on the worker pool, never on an io thread.
        net::post(workers_, [self = shared_from_this(), tokens = std::move(tokens)] {
            for (auto token : tokens) {
                if (self->stopped_.load(std::memory_order_acquire)) break;
                bool active = true;
                try {
                    active = self->store_.users().token_active(token);
                } catch (const std::exception& e) {
                    spdlog::warn("token check failed: {}", e.what());
                }
                if (!active) self->credential_revoked(token);
            }
            self->sweep_busy_.store(false);
        });
    }
    arm_sweep();
}

std::string EventWiring::render_metrics() const {
    auto stats = hub_->stats();
    std::string out;
    auto metric = [&out](std::string_view name, std::string_view type, std::string_view help,
                         auto value) {
        out +=
            fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, value);
    };
    metric("litchi_event_watchers", "gauge", "Open progress watchers (WebSocket and SSE).",
           stats.watchers);
    metric("litchi_event_users", "gauge", "Users with live event state (watched now or recently).",
           stats.users);
    metric("litchi_websocket_connections", "gauge", "Open progress WebSockets.",
           websocket_open_.load(std::memory_order_relaxed));
    metric("litchi_sse_streams", "gauge", "Open Server-Sent Events streams.",
           sse_open_.load(std::memory_order_relaxed));
    metric("litchi_events_total", "counter", "Job-level events sequenced since start.",
           stats.events);
    metric("litchi_event_messages_sent_total", "counter",
           "Protocol messages written to watchers since start.",
           messages_sent_.load(std::memory_order_relaxed));
    metric("litchi_event_coalesced_updates_total", "counter",
           "Progress updates folded into a later one.", stats.coalesced_updates);
    metric("litchi_event_item_events_dropped_total", "counter",
           "Item events dropped from full per-watcher queues.", stats.item_events_dropped);
    metric("litchi_event_resyncs_total", "counter",
           "Watchers that fell behind the replay buffer and got a snapshot.", stats.resyncs);
    metric("litchi_event_slow_consumer_closes_total", "counter",
           "Watchers closed with 1013 for reading too slowly.", stats.slow_closes);
    metric("litchi_event_stalled_sockets_dropped_total", "counter",
           "WebSockets dropped because one frame could not be written for the stall timeout.",
           stall_drops_.load(std::memory_order_relaxed));
    return out;
}

}  // namespace litchi::server
