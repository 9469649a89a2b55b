// The user's state changes (pause, resume, cancel, retry, delete), recovery
// and progress flushing of the PostgreSQL job store: see job_store.hpp for
// what each promises, pg_job_store_impl.hpp for the lock order every
// transaction here keeps (items, then their job, then the user's event
// counters; pause, resume and retry lock the job first, as they change no
// item a claim or an outcome can hold).
#include <algorithm>
#include <map>
#include <set>

#include "store/pg_event_codec.hpp"
#include "store/pg_event_log.hpp"
#include "store/pg_job_store_impl.hpp"

namespace litchi {

namespace {

// Tells every node (LISTEN kStopChannel) to stop its transfers of a job whose
// items were in flight, when the transaction commits. A node that misses it
// finds out from released_claims() within a third of a lease.
void notify_stopped(pg::Connection& conn, JobId job, const JobOpResult& result) {
    if (result.in_flight.empty()) return;
    conn.exec(std::string("SELECT pg_notify('") + kStopChannel + "', $1::text)",
              pg::Params().add(job));
}

JobOpResult with(JobOpStatus status, const JobSnapshot& job) {
    JobOpResult result;
    result.status = status;
    result.job = job;
    return result;
}

}  // namespace

JobOpResult PgJobStore::Impl::pause(UserId user, JobId id) {
    return pool.transaction([&](pg::Connection& conn) {
        auto row = lock_user_job(conn, user, id);
        if (!row) return JobOpResult{};
        if (row->job.state == JobState::paused) return with(JobOpStatus::ok, row->job);
        if (!sqlite_rows::is_runnable(row->job.state)) return with(JobOpStatus::conflict, row->job);
        TimeMs now = this->now();
        row->job.state = JobState::paused;
        row->job.updated = now;
        LogWriter log;
        note_progress(*row, now, log);
        write_jobs(conn, {&*row});
        log.write(conn, now);
        auto result = with(JobOpStatus::ok, row->job);
        result.in_flight = active_items(conn, id);
        notify_stopped(conn, id, result);
        return result;
    });
}

JobOpResult PgJobStore::Impl::resume(UserId user, JobId id) {
    return pool.transaction([&](pg::Connection& conn) {
        auto row = lock_user_job(conn, user, id);
        if (!row) return JobOpResult{};
        if (row->job.state == JobState::cancelled) return with(JobOpStatus::conflict, row->job);
        if (row->job.state != JobState::paused) return with(JobOpStatus::ok, row->job);
        // Back to running if the engine ever touched one of its items,
        // otherwise to queued (it was paused before it started).
        bool started = row->job.counts.active > 0 || row->job.counts.done > 0;
        if (!started)
            started = conn.exec(std::string("SELECT 1 FROM items WHERE ") + kJobItems +
                                    " AND (attempts > 0 OR state = 'done') LIMIT 1",
                                pg::Params().add(id))
                          .rows() > 0;
        TimeMs now = this->now();
        row->job.state = started ? JobState::running : JobState::queued;
        sqlite_rows::settle_state(row->job);
        row->job.updated = now;
        row->rate_at = 0;  // the time it was paused does not count towards the rate
        LogWriter log;
        note_progress(*row, now, log);
        write_jobs(conn, {&*row});
        log.write(conn, now);
        return with(JobOpStatus::ok, row->job);
    });
}

JobOpResult PgJobStore::Impl::cancel(UserId user, JobId id) {
    return pool.transaction([&](pg::Connection& conn) {
        TimeMs now = this->now();
        // The items first (the lock order), in id order, if the job looks
        // cancellable; the job's lock below decides. Late outcomes of the
        // active ones are ignored (apply_outcomes): they keep their lease
        // id, so a late one reads as cancelled, not fenced.
        auto changed = conn.exec(
            std::string("WITH old AS (SELECT id, state FROM items WHERE ") + kJobItems +
                " AND state IN ('queued', 'active') AND EXISTS (SELECT 1 FROM jobs WHERE "
                "id = $1 AND user_id = $3 AND state NOT IN ('done', 'cancelled')) ORDER BY id "
                "FOR UPDATE) "
                "UPDATE items i SET state = 'cancelled', reason = 'cancelled', updated = $2, "
                "lease_until = NULL FROM old WHERE i.id = old.id RETURNING i.id, old.state",
            pg::Params().add(id).add(now).add(user));
        auto row = lock_user_job(conn, user, id);
        if (!row) return JobOpResult{};
        if (row->job.state == JobState::cancelled) return with(JobOpStatus::ok, row->job);
        if (row->job.state == JobState::done) return with(JobOpStatus::conflict, row->job);
        JobOpResult result;
        JobSnapshot& job = row->job;
        for (int i = 0; i < changed.rows(); ++i) {
            bool active = changed.text(i, 1) == "active";
            if (active) result.in_flight.push_back(changed.int64(i, 0));
            --(active ? job.counts.active : job.counts.queued);
            ++job.counts.cancelled;
        }
        job.state = JobState::cancelled;
        job.updated = now;
        LogWriter log;
        log.add(job.user, LoggedKind::items_reset, job.id, pg::encode_job(job));
        note_progress(*row, now, log);
        write_jobs(conn, {&*row});
        log.write(conn, now);
        result.status = JobOpStatus::ok;
        result.job = job;
        std::sort(result.in_flight.begin(), result.in_flight.end());
        notify_stopped(conn, id, result);
        return result;
    });
}

JobOpResult PgJobStore::Impl::rename(UserId user, JobId id, std::string_view name) {
    return pool.transaction([&](pg::Connection& conn) {
        auto row = lock_user_job(conn, user, id);
        if (!row) return JobOpResult{};
        if (row->job.name == name) return with(JobOpStatus::ok, row->job);
        TimeMs now = this->now();
        conn.exec("UPDATE jobs SET name = $2 WHERE id = $1", pg::Params().add(id).add(name));
        row->job.name = std::string(name);
        row->job.updated = now;
        // A progress entry carries the job, name included: logged now, not coalesced.
        LogWriter log;
        note_progress(*row, now, log, true);
        write_jobs(conn, {&*row});
        log.write(conn, now);
        return with(JobOpStatus::ok, row->job);
    });
}

JobOpResult PgJobStore::Impl::retry(UserId user, JobId id, const RetrySelection& which) {
    return pool.transaction([&](pg::Connection& conn) {
        auto row = lock_user_job(conn, user, id);
        if (!row) return JobOpResult{};
        if (row->job.state == JobState::cancelled) return with(JobOpStatus::conflict, row->job);
        TimeMs now = this->now();
        // bad_url items would fail the same way again: they stay failed.
        auto requeued = conn.exec(
                                "UPDATE items SET state = 'queued', reason = NULL, "
                                "http_status = NULL, updated = $2, node = NULL, "
                                "lease_id = NULL, lease_until = NULL WHERE job_id = $1 AND "
                                "state = 'failed' AND " +
                                    sqlite_rows::retry_condition(which),
                                pg::Params().add(id).add(now))
                            .affected();
        if (requeued == 0) return with(JobOpStatus::ok, row->job);  // nothing to retry
        // The retried items are anywhere in the job: claims look from its start.
        restart_claim_cursors(conn, "id = $1", pg::Params().add(id));
        JobSnapshot& job = row->job;
        job.counts.failed -= requeued;
        job.counts.queued += requeued;
        if (job.state == JobState::done) job.state = JobState::running;
        job.updated = now;
        LogWriter log;
        log.add(job.user, LoggedKind::items_reset, job.id, pg::encode_job(job));
        note_progress(*row, now, log);
        write_jobs(conn, {&*row});
        log.write(conn, now);
        auto result = with(JobOpStatus::ok, job);
        result.requeued = requeued;
        return result;
    });
}

JobOpResult PgJobStore::Impl::remove(UserId user, JobId id) {
    return pool.transaction([&](pg::Connection& conn) {
        TimeMs now = this->now();
        // The items first (the lock order), in id order, if the job is the
        // user's: what was in flight, and the blobs the job's done items
        // used.
        auto gone = conn.exec(
            std::string("WITH gone AS (DELETE FROM items WHERE id IN (SELECT id FROM items "
                        "WHERE ") +
                kJobItems +
                " AND EXISTS (SELECT 1 FROM jobs WHERE id = $1 AND user_id = $2) ORDER BY id "
                "FOR UPDATE) RETURNING id, state, sha256, format) "
                "SELECT id, NULL, NULL FROM gone WHERE state = 'active' UNION ALL "
                "SELECT DISTINCT NULL::bigint, sha256, format FROM gone "
                "WHERE state = 'done' AND sha256 IS NOT NULL",
            pg::Params().add(id).add(user));
        auto row = lock_user_job(conn, user, id);
        if (!row) return JobOpResult{};
        auto result = with(JobOpStatus::ok, row->job);
        std::vector<std::string> shas;
        std::vector<std::string> formats;
        for (int i = 0; i < gone.rows(); ++i) {
            if (!gone.is_null(i, 0)) {
                result.in_flight.push_back(gone.int64(i, 0));
            } else {
                shas.emplace_back(gone.text(i, 1));
                formats.emplace_back(gone.text(i, 2));
            }
        }
        std::sort(result.in_flight.begin(), result.in_flight.end());
        conn.exec("DELETE FROM jobs WHERE id = $1", pg::Params().add(id));
        if (!shas.empty()) {
            auto still =
                conn.exec("SELECT DISTINCT sha256 FROM items WHERE sha256 = ANY($1::text[])",
                          pg::Params().add_text_array(shas));
            std::set<std::string, std::less<>> referenced;
            for (int i = 0; i < still.rows(); ++i) referenced.emplace(still.text(i, 0));
            for (std::size_t i = 0; i < shas.size(); ++i)
                if (!referenced.count(shas[i]))
                    result.unreferenced.push_back(
                        {shas[i], parse_extension(formats[i]).value_or(ImageFormat::unknown)});
        }
        LogWriter log;
        log.add(row->job.user, LoggedKind::job_deleted, id, pg::encode_job(row->job));
        log.write(conn, now);
        notify_stopped(conn, id, result);
        return result;
    });
}

std::int64_t PgJobStore::Impl::requeue_active() {
    return pool.transaction([&](pg::Connection& conn) {
        TimeMs now = this->now();
        LogWriter log;
        auto n = requeue_items(conn, options.node, std::nullopt, now, log);
        log.write(conn, now);
        return n;
    });
}

RecoverySummary PgJobStore::Impl::recover() {
    RecoverySummary summary;
    // This node's claims died with its last run; other nodes' claims are
    // theirs until their lease runs out.
    summary.requeued = requeue_active() + expire_leases();
    summary.jobs_repaired = pool.transaction([&](pg::Connection& conn) {
        std::int64_t repaired = 0;
        TimeMs now = this->now();
        // Every job locked (in id order) before counting: every item
        // transition locks its job before it commits, so none commits while
        // this runs and the counts below are exact.
        auto rows = lock_jobs(conn, "true", pg::Params());
        // Every claim cursor back to its job's start: whatever a claim that
        // died with its connection left below one is found again.
        restart_claim_cursors(conn, "true", pg::Params());
        auto counted = conn.exec(
            "SELECT job_id, state, count(*), coalesce(sum(bytes) FILTER (WHERE state = 'done'), "
            "0) FROM items GROUP BY job_id, state");
        std::map<JobId, std::pair<JobCounts, std::int64_t>> truth;
        for (int i = 0; i < counted.rows(); ++i) {
            auto state = parse_item_state(counted.text(i, 1));
            if (!state) continue;
            auto& [counts, bytes] = truth[counted.int64(i, 0)];
            counts.of(*state) += counted.int64(i, 2);
            counts.total += counted.int64(i, 2);
            bytes += counted.int64(i, 3);
        }
        LogWriter log;
        std::vector<PgJobRow*> changed;
        for (PgJobRow& row : rows) {
            JobSnapshot& job = row.job;
            const auto& [counts, bytes] = truth[job.id];
            JobSnapshot fixed = job;
            fixed.counts = counts;
            fixed.bytes = static_cast<std::uint64_t>(bytes);
            // A finished job that has queued items again (a hand-edited database).
            if (fixed.state == JobState::done && fixed.counts.queued > 0)
                fixed.state = JobState::running;
            sqlite_rows::settle_state(fixed);
            if (fixed.counts == job.counts && fixed.bytes == job.bytes && fixed.state == job.state)
                continue;
            job.counts = fixed.counts;
            job.bytes = fixed.bytes;
            job.state = fixed.state;
            job.updated = now;
            note_progress(row, now, log, true);
            changed.push_back(&row);
            ++repaired;
        }
        write_jobs(conn, changed);
        log.write(conn, now);
        return repaired;
    });
    return summary;
}

std::optional<TimeMs> PgJobStore::Impl::flush_progress() {
    return pool.transaction([&](pg::Connection& conn) -> std::optional<TimeMs> {
        TimeMs now = this->now();
        auto interval = options.progress_interval.count();
        // SKIP LOCKED: a job another transaction holds is being changed, and
        // that change (or the next flush) logs it.
        auto rows = lock_jobs(conn, "progress_pending AND progress_at <= $1",
                              pg::Params().add(now - interval), true);
        if (!rows.empty()) {
            LogWriter log;
            std::vector<PgJobRow*> changed;
            for (PgJobRow& row : rows) {
                note_progress(row, now, log, true);
                changed.push_back(&row);
            }
            write_jobs(conn, changed);
            log.write(conn, now);
        }
        auto next = conn.exec("SELECT min(progress_at) FROM jobs WHERE progress_pending");
        if (next.is_null(0, 0)) return std::nullopt;
        return next.int64(0, 0) + interval;
    });
}

}  // namespace litchi
