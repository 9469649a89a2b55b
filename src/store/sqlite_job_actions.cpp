// The user's state changes (pause, resume, cancel, retry, delete) and crash
// recovery of the SQLite job store: see job_store.hpp for what each promises
// and sqlite_job_store_impl.hpp for how the store's files share their work.
#include <map>
#include <set>

#include "store/sqlite_job_store_impl.hpp"
#include "store/sqlite_rows.hpp"

// Jobs with items in flight (the partial index jobs_active): active items
// are found through them and items_job_state, never by scanning all items.
#define ACTIVE_JOBS "(SELECT id FROM jobs WHERE active > 0)"

namespace litchi {

JobOpResult SqliteJobStore::Impl::pause(UserId user, JobId id) {
    JobOpResult result;
    auto job = load_user_job(user, id);
    if (!job) return result;
    result.status = JobOpStatus::ok;
    if (job->state == JobState::paused) {
        result.job = *job;
        return result;
    }
    if (!sqlite_rows::is_runnable(job->state)) {
        result.status = JobOpStatus::conflict;
        result.job = *job;
        return result;
    }
    StoreChanges pending;
    Transaction txn(db);
    job->state = JobState::paused;
    write_job(*job, now());
    result.in_flight = active_items(id);
    txn.commit();
    pending.changed.push_back({*job, true});
    changes.push(std::move(pending));
    result.job = *job;
    return result;
}

JobOpResult SqliteJobStore::Impl::resume(UserId user, JobId id) {
    JobOpResult result;
    auto job = load_user_job(user, id);
    if (!job) return result;
    result.status = JobOpStatus::ok;
    if (job->state == JobState::cancelled) result.status = JobOpStatus::conflict;
    if (job->state != JobState::paused) {
        result.job = *job;
        return result;
    }
    StoreChanges pending;
    Transaction txn(db);
    // Back to running if the engine ever touched one of its items,
    // otherwise to queued (it was paused before it started).
    bool started = job->counts.active > 0 || job->counts.done > 0;
    if (!started) {
        auto touched = db.prepare(
            "SELECT 1 FROM items WHERE job_id = ? AND (attempts > 0 OR state = 'done') LIMIT "
            "1");
        touched.bind(1, id);
        started = touched.step();
    }
    job->state = started ? JobState::running : JobState::queued;
    sqlite_rows::settle_state(*job);
    write_job(*job, now());
    txn.commit();
    pending.changed.push_back({*job, true});
    changes.push(std::move(pending));
    result.job = *job;
    return result;
}

JobOpResult SqliteJobStore::Impl::cancel(UserId user, JobId id) {
    JobOpResult result;
    auto job = load_user_job(user, id);
    if (!job) return result;
    result.status = JobOpStatus::ok;
    if (job->state == JobState::cancelled) {
        result.job = *job;
        return result;
    }
    if (job->state == JobState::done) {
        result.status = JobOpStatus::conflict;
        result.job = *job;
        return result;
    }
    TimeMs now = this->now();
    StoreChanges pending;
    Transaction txn(db);
    result.in_flight = active_items(id);
    auto update = db.prepare(
        "UPDATE items SET state = 'cancelled', reason = 'cancelled', updated = ? "
        "WHERE job_id = ? AND state IN ('queued', 'active')");
    update.bind(1, now).bind(2, id).run();
    job->counts.cancelled += job->counts.queued + job->counts.active;
    job->counts.queued = 0;
    job->counts.active = 0;
    job->state = JobState::cancelled;
    write_job(*job, now);
    txn.commit();
    pending.items_reset.push_back(*job);
    pending.changed.push_back({*job, true});
    changes.push(std::move(pending));
    result.job = *job;
    return result;
}

JobOpResult SqliteJobStore::Impl::rename(UserId user, JobId id, std::string_view name) {
    JobOpResult result;
    auto job = load_user_job(user, id);
    if (!job) return result;
    result.status = JobOpStatus::ok;
    if (job->name == name) {
        result.job = *job;
        return result;
    }
    StoreChanges pending;
    Transaction txn(db);
    auto update = db.prepare("UPDATE jobs SET name = ? WHERE id = ?");
    update.bind(1, name).bind(2, id).run();
    job->name = std::string(name);
    write_job(*job, now());
    txn.commit();
    // A progress message carries the job, name included.
    pending.changed.push_back({*job, false});
    changes.push(std::move(pending));
    result.job = *job;
    return result;
}

JobOpResult SqliteJobStore::Impl::retry(UserId user, JobId id, const RetrySelection& which) {
    JobOpResult result;
    auto job = load_user_job(user, id);
    if (!job) return result;
    result.status = JobOpStatus::ok;
    if (job->state == JobState::cancelled) {
        result.status = JobOpStatus::conflict;
        result.job = *job;
        return result;
    }
    TimeMs now = this->now();
    StoreChanges pending;
    Transaction txn(db);
    // bad_url items would fail the same way again: they stay failed. Not a
    // cached statement: the condition varies with the selection.
    db.exec("UPDATE items SET state = 'queued', reason = NULL, http_status = NULL, updated = " +
            std::to_string(now) + " WHERE job_id = " + std::to_string(id) +
            " AND state = 'failed' AND " + sqlite_rows::retry_condition(which));
    auto requeued = static_cast<std::int64_t>(db.changes());
    result.requeued = requeued;
    if (requeued == 0) {
        result.job = *job;
        return result;  // nothing to retry; the transaction rolls back unchanged
    }
    JobState before = job->state;
    job->counts.failed -= requeued;
    job->counts.queued += requeued;
    if (job->state == JobState::done) job->state = JobState::running;
    write_job(*job, now);
    txn.commit();
    pending.items_reset.push_back(*job);
    pending.changed.push_back({*job, job->state != before});
    changes.push(std::move(pending));
    result.job = *job;
    return result;
}

JobOpResult SqliteJobStore::Impl::remove(UserId user, JobId id) {
    JobOpResult result;
    auto job = load_user_job(user, id);
    if (!job) return result;
    result.status = JobOpStatus::ok;
    StoreChanges pending;
    Transaction txn(db);
    result.in_flight = active_items(id);
    std::set<std::pair<std::string, std::string>> blobs;
    {
        auto stmt = db.prepare(
            "SELECT DISTINCT sha256, format FROM items WHERE job_id = ? AND state = 'done' "
            "AND sha256 IS NOT NULL");
        stmt.bind(1, id);
        while (stmt.step())
            blobs.insert({std::string(stmt.column_text(0)), std::string(stmt.column_text(1))});
    }
    db.prepare("DELETE FROM items WHERE job_id = ?").bind(1, id).run();
    db.prepare("DELETE FROM jobs WHERE id = ?").bind(1, id).run();
    for (const auto& [sha, format] : blobs) {
        auto ref = db.prepare("SELECT 1 FROM items WHERE sha256 = ? LIMIT 1");
        ref.bind(1, sha);
        if (!ref.step())
            result.unreferenced.push_back(
                {sha, parse_extension(format).value_or(ImageFormat::unknown)});
    }
    txn.commit();
    pending.deleted.push_back(*job);
    changes.push(std::move(pending));
    result.job = *job;
    return result;
}

std::int64_t SqliteJobStore::Impl::requeue(Requeue which) {
    TimeMs now = this->now();
    StoreChanges pending;
    Transaction txn(db);
    // One statement: the items go back and say which jobs they belonged to,
    // so each job's counters move by exactly what moved.
    std::map<JobId, std::int64_t> per_job;
    {
        auto update =
            db.prepare(which == Requeue::own_node
                           ? "UPDATE items SET state = 'queued', node = NULL, lease_id = NULL, "
                             "lease_until = NULL, updated = ? WHERE job_id IN " ACTIVE_JOBS
                             " AND state = 'active' AND node = ? RETURNING job_id"
                           : "UPDATE items SET state = 'queued', node = NULL, lease_id = NULL, "
                             "lease_until = NULL, updated = ? WHERE job_id IN " ACTIVE_JOBS
                             " AND state = 'active' AND lease_until < ? RETURNING job_id");
        update.bind(1, now);
        if (which == Requeue::own_node)
            update.bind(2, options.node);
        else
            update.bind(2, now);
        while (update.step()) ++per_job[update.column_int64(0)];
    }
    if (per_job.empty()) return 0;  // nothing moved; the transaction rolls back unchanged
    std::int64_t requeued = 0;
    for (const auto& [id, n] : per_job) {
        requeued += n;
        auto job = load_job(id);
        if (!job) continue;
        job->counts.active -= n;
        job->counts.queued += n;
        write_job(*job, now);
        pending.items_reset.push_back(*job);
        pending.changed.push_back({*job, false});
    }
    txn.commit();
    changes.push(std::move(pending));
    return requeued;
}

std::int64_t SqliteJobStore::Impl::renew_leases() {
    auto update = db.prepare("UPDATE items SET lease_until = ? WHERE job_id IN " ACTIVE_JOBS
                             " AND state = 'active' AND node = ?");
    update.bind(1, now() + options.lease.count()).bind(2, options.node).run();
    return db.changes();
}

RecoverySummary SqliteJobStore::Impl::recover() {
    RecoverySummary summary;
    TimeMs now = this->now();
    Transaction txn(db);
    std::map<JobId, JobCounts> counts;
    std::map<JobId, std::int64_t> bytes;
    {
        auto stmt = db.prepare(
            "SELECT job_id, state, count(*), coalesce(sum(CASE WHEN state = 'done' THEN bytes "
            "END), 0) "
            "FROM items GROUP BY job_id, state");
        while (stmt.step()) {
            JobId id = stmt.column_int64(0);
            auto state = parse_item_state(stmt.column_text(1));
            if (!state) continue;
            counts[id].of(*state) += stmt.column_int64(2);
            counts[id].total += stmt.column_int64(2);
            bytes[id] += stmt.column_int64(3);
        }
    }
    std::vector<JobSnapshot> jobs;
    {
        auto stmt = db.prepare(std::string("SELECT ") + sqlite_rows::kJobColumns + " FROM jobs");
        while (stmt.step()) jobs.push_back(sqlite_rows::read_job(stmt));
    }
    for (auto& job : jobs) {
        JobSnapshot fixed = job;
        fixed.counts = counts[job.id];
        fixed.bytes = static_cast<std::uint64_t>(bytes[job.id]);
        // A finished job that has queued items again (a crash between
        // steps cannot cause that today, but a hand-edited file can).
        if (fixed.state == JobState::done && fixed.counts.queued > 0)
            fixed.state = JobState::running;
        sqlite_rows::settle_state(fixed);
        if (fixed.counts != job.counts || fixed.bytes != job.bytes || fixed.state != job.state) {
            write_job(fixed, now);
            ++summary.jobs_repaired;
        }
    }
    txn.commit();
    // Then the claims, found through the counters just made exact: this
    // node's are left over from its previous run; other nodes' (sharing the
    // file) are theirs until their lease runs out.
    summary.requeued = requeue(Requeue::own_node) + requeue(Requeue::expired);
    return summary;
}

}  // namespace litchi
