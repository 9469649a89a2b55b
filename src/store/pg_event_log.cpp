// The event log's reading side on PostgreSQL (pg_event_log.hpp): snapshots
// of a user's state as of a log position, reads after a position, pruning,
// and waiting for NOTIFYs on a connection of its own.
//
// The waiting connection is not from the pool: LISTEN belongs to a session,
// and a pooled connection would carry it (and its queued notifications) to
// whichever call takes it next. It blocks in poll() on the connection's
// socket and an eventfd, so interrupt_wait() can end a wait from any thread
// without touching libpq (which is not safe across threads on one connection).
#include "store/pg_event_log.hpp"

#include <libpq-fe.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <mutex>
#include <system_error>

#include "store/pg_connection.hpp"
#include "store/pg_event_codec.hpp"
#include "store/pg_job_store.hpp"
#include "store/pg_rows.hpp"

namespace litchi {
namespace {

constexpr const char* kEntryColumns = "user_id, pos, seq, kind, job_id, at, body";

// One `events` row as an entry; nullopt (and a warning) for a row this
// version cannot read: an unknown kind or a body the codec rejects. Such a
// row is skipped rather than failing the whole read: one bad row must not
// stop a user's every later event from being delivered.
std::optional<LoggedEvent> entry_from_row(const pg::Result& r, int row) {
    LoggedEvent event;
    event.user = r.int64(row, 0);
    event.pos = static_cast<std::uint64_t>(r.int64(row, 1));
    event.seq = static_cast<std::uint64_t>(r.int64(row, 2));
    auto kind = r.int64(row, 3);
    event.job = r.int64(row, 4);
    event.at = r.int64(row, 5);
    auto body = r.text(row, 6);
    auto corrupt = [&](const char* why) -> std::optional<LoggedEvent> {
        spdlog::warn("event log: skipping entry {} of user {} (job {}): {}", event.pos, event.user,
                     event.job, why);
        return std::nullopt;
    };
    if (kind < static_cast<int>(LoggedKind::job_created) ||
        kind > static_cast<int>(LoggedKind::items_reset))
        return corrupt("unknown kind");
    event.kind = static_cast<LoggedKind>(kind);
    switch (event.kind) {
        case LoggedKind::job_created:
        case LoggedKind::progress:
            event.snapshot = pg::decode_job(body);
            if (!event.snapshot) return corrupt("unreadable job body");
            break;
        case LoggedKind::item: {
            auto items = pg::decode_items(body);
            if (!items) return corrupt("unreadable item body");
            event.items = std::move(*items);
            break;
        }
        case LoggedKind::job_deleted:
        case LoggedKind::items_reset:
            // The body is not needed to act on these; when it holds the job
            // (as the writer may log it), pass it on.
            event.snapshot = pg::decode_job(body);
            break;
    }
    return event;
}

// libpq's messages span lines; a log line should not.
std::string one_line(const char* message) {
    std::string text = message ? message : "";
    for (char& c : text)
        if (c == '\n' || c == '\t') c = ' ';
    while (!text.empty() && text.back() == ' ') text.pop_back();
    return text;
}

void append_entries(const pg::Result& r, std::vector<LoggedEvent>& out) {
    for (int row = 0; row < r.rows(); ++row)
        if (auto event = entry_from_row(r, row)) out.push_back(std::move(*event));
}

}  // namespace

struct PgEventLog::Impl {
    Impl(pg::Pool& pool, PgJobStore& jobs, std::string uri, const StoreOptions& options)
        : pool(pool), jobs(jobs), uri(std::move(uri)), options(options) {
        if (!this->options.clock) this->options.clock = [] { return now_ms(); };
        wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (wake_fd < 0)
            throw std::system_error(errno, std::generic_category(), "event log: eventfd");
    }
    ~Impl() { ::close(wake_fd); }

    pg::Pool& pool;
    PgJobStore& jobs;
    std::string uri;
    StoreOptions options;

    std::mutex wait_mutex;                     // one waiter at a time; guards listener
    std::unique_ptr<pg::Connection> listener;  // LISTENing, or null (first wait, after a loss)
    int wake_fd = -1;                          // interrupt_wait() writes, the waiter reads

    // A fresh LISTENing connection. Throws StoreUnavailable while the
    // database cannot be reached.
    void listen() {
        listener.reset();
        auto conn = std::make_unique<pg::Connection>(uri);
        conn->exec(std::string("LISTEN ") + kEventChannel);
        conn->exec(std::string("LISTEN ") + kStopChannel);
        listener = std::move(conn);
    }

    // Moves the notifications libpq has parsed into `wakeup`: user ids from
    // kEventChannel, job ids from kStopChannel.
    void drain(LogWakeup& wakeup) {
        while (PGnotify* notify = PQnotifies(listener->raw())) {
            std::string_view payload = notify->extra ? notify->extra : "";
            std::int64_t id = 0;
            auto [end, ec] = std::from_chars(payload.data(), payload.data() + payload.size(), id);
            const bool number =
                ec == std::errc() && end == payload.data() + payload.size() && id > 0;
            if (number && std::strcmp(notify->relname, kEventChannel) == 0)
                wakeup.users.push_back(id);
            else if (number && std::strcmp(notify->relname, kStopChannel) == 0)
                wakeup.stopped_jobs.push_back(id);
            else
                spdlog::warn("event log: ignoring a notification on {} with payload '{}'",
                             notify->relname, payload.substr(0, 40));
            PQfreemem(notify);
        }
    }

    // True (and the counter reset) when interrupt_wait() was called.
    bool take_interrupt() {
        std::uint64_t count = 0;
        return ::read(wake_fd, &count, sizeof count) == sizeof count;
    }
};

PgEventLog::PgEventLog(pg::Pool& pool, PgJobStore& jobs, std::string uri,
                       const StoreOptions& options)
    : impl_(std::make_unique<Impl>(pool, jobs, std::move(uri), options)) {}

PgEventLog::~PgEventLog() = default;

std::string PgEventLog::epoch() {
    // Not cached: a database recreated under the same URI has a new epoch,
    // and clients must then be told their positions mean nothing.
    auto conn = impl_->pool.acquire();
    auto r = conn->exec("SELECT value FROM litchi_meta WHERE key = 'epoch'");
    if (r.rows() == 0) throw std::runtime_error("event log: the database has no epoch");
    return std::string(r.text(0, 0));
}

UserLogState PgEventLog::user_state(UserId user, std::size_t recent_limit) {
    // One snapshot for all three reads: the jobs are exactly as of `pos`,
    // and `recent` ends at `seq`, whatever commits meanwhile.
    return impl_->pool.transaction(
        [&](pg::Connection& conn) {
            UserLogState state;
            auto counters = conn.exec("SELECT event_pos, event_seq FROM users WHERE id = $1",
                                      pg::Params().add(user));
            if (counters.rows() == 0) return state;  // no such user: nothing, at position 0
            state.pos = static_cast<std::uint64_t>(counters.int64(0, 0));
            state.seq = static_cast<std::uint64_t>(counters.int64(0, 1));

            auto jobs = conn.exec(std::string("SELECT ") + kPgJobColumns +
                                      " FROM jobs WHERE user_id = $1 ORDER BY id DESC",
                                  pg::Params().add(user));
            state.jobs.reserve(static_cast<std::size_t>(jobs.rows()));
            for (int row = 0; row < jobs.rows(); ++row)
                state.jobs.push_back(pg_job_from_row(jobs, row));

            if (recent_limit > 0) {
                // pos and seq grow together, so the newest job-level entries
                // are the highest pos with seq > 0 (the primary key's order).
                auto recent = conn.exec(
                    std::string("SELECT ") + kEntryColumns +
                        " FROM events WHERE user_id = $1 AND seq > 0 ORDER BY pos DESC LIMIT $2",
                    pg::Params().add(user).add(static_cast<std::int64_t>(recent_limit)));
                append_entries(recent, state.recent);
                std::reverse(state.recent.begin(), state.recent.end());
            }
            return state;
        },
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
}

std::vector<LoggedEvent> PgEventLog::read_after(UserId user, std::uint64_t after,
                                                std::size_t limit) {
    std::vector<LoggedEvent> entries;
    if (limit == 0) return entries;
    auto conn = impl_->pool.acquire();
    auto r = conn->exec(std::string("SELECT ") + kEntryColumns +
                            " FROM events WHERE user_id = $1 AND pos > $2 ORDER BY pos LIMIT $3",
                        pg::Params().add(user).add(after).add(static_cast<std::int64_t>(limit)));
    entries.reserve(static_cast<std::size_t>(r.rows()));
    append_entries(r, entries);
    return entries;
}

std::optional<TimeMs> PgEventLog::flush_progress() {
    // Progress entries are written where the counts live (PgJobStore).
    return impl_->jobs.flush_progress();
}

std::int64_t PgEventLog::prune() {
    TimeMs cutoff = impl_->options.clock() - impl_->options.event_retention.count();
    auto conn = impl_->pool.acquire();
    return conn->exec("DELETE FROM events WHERE at < $1", pg::Params().add(cutoff)).affected();
}

LogWakeup PgEventLog::wait_for_entries(std::chrono::milliseconds timeout) {
    auto& impl = *impl_;
    std::lock_guard lock(impl.wait_mutex);
    LogWakeup wakeup;
    if (!impl.listener) {
        // The first wait, or the connection was lost: whatever was notified
        // meanwhile is unknown, so the caller re-reads everyone. A throw here
        // (still unreachable) comes back on the next call, after the
        // caller's backoff: no retry loop of our own.
        impl.listen();
        wakeup.resync = true;
        return wakeup;
    }

    auto lost = [&](const char* why) {
        spdlog::warn("event log: the listening connection was lost ({}); reconnecting",
                     one_line(why));
        impl.listener.reset();
        impl.listen();  // throws StoreUnavailable while the server is away
        wakeup.resync = true;
        wakeup.users.clear();
        wakeup.stopped_jobs.clear();
        return wakeup;
    };

    PGconn* conn = impl.listener->raw();
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        // Notifications that arrived with an earlier read are parsed already.
        if (PQconsumeInput(conn) == 0 || PQstatus(conn) != CONNECTION_OK)
            return lost(PQerrorMessage(conn));
        impl.drain(wakeup);
        if (!wakeup.users.empty() || !wakeup.stopped_jobs.empty()) return wakeup;
        if (impl.take_interrupt()) return wakeup;

        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return wakeup;
        pollfd fds[2] = {{PQsocket(conn), POLLIN, 0}, {impl.wake_fd, POLLIN, 0}};
        if (fds[0].fd < 0) return lost("no socket");
        int ready = ::poll(fds, 2, static_cast<int>(std::min<std::int64_t>(left.count(), 60'000)));
        if (ready < 0 && errno != EINTR)
            throw std::system_error(errno, std::generic_category(), "event log: poll");
        // Readable, hung up or failed: the next PQconsumeInput tells which.
    }
}

void PgEventLog::interrupt_wait() {
    std::uint64_t one = 1;
    // Fails only when the counter would overflow: then a wake-up is pending anyway.
    [[maybe_unused]] auto written = ::write(impl_->wake_fd, &one, sizeof one);
}

}  // namespace litchi
