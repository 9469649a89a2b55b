// Jobs and items on PostgreSQL: see job_store.hpp for what each call
// promises (the SQLite store's behaviour, call for call), pg_job_store.hpp for
// claims under leases, and event_log.hpp for the entries every change writes.
// This file holds the rows, the event-log writer, creation, the reads, claims,
// outcomes and leases; the user's actions and recovery are in
// pg_job_actions.cpp (sqlite_job_store_impl.hpp's split, mirrored).
//
// Rate and eta are the store's here (keeps_rates()): every node must show the
// same numbers, so they are computed once, when a progress entry is logged,
// and stored on the job row:
//   finished = done + failed. If rate_at == 0 or the job was not running
//   before this change: rate_at = now, rate_finished = finished (the rate
//   stays). Otherwise dt = now - rate_at (ms), inst = (finished -
//   rate_finished) * 1000 / dt, alpha = 1 - exp(-dt / 3000), rate =
//   shown_rate(alpha * inst + (1 - alpha) * rate). Then done: rate 0, eta 0;
//   cancelled/paused: rate 0, no eta; otherwise eta = (queued + active) / rate
//   while rate > 0. Resume sets rate_at = 0 (paused time does not count).
#include "store/pg_job_store.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <set>
#include <unordered_map>

#include "store/pg_event_codec.hpp"
#include "store/pg_job_store_impl.hpp"

namespace litchi {

namespace {

// Any constant: the advisory lock that makes reserving a block of item ids
// one step for every node (create_job).
constexpr const char* kItemIdLock = "7311906424510532";

}  // namespace

// --- rows ---

namespace pg_rows {

PgJobRow read_job(const pg::Result& r, int row, int c) {
    PgJobRow out;
    out.job = pg_job_from_row(r, row, c);
    out.before = out.job.state;
    c += kPgJobColumnCount;
    out.rate_at = r.int64(row, c + 0);
    out.rate_finished = r.int64(row, c + 1);
    out.progress_at = r.int64(row, c + 2);
    out.progress_pending = r.boolean(row, c + 3);
    return out;
}

}  // namespace pg_rows

std::vector<PgJobRow> PgJobStore::Impl::lock_jobs(pg::Connection& conn, const std::string& where,
                                                  const pg::Params& params, bool skip_locked) {
    auto result =
        conn.exec(std::string("SELECT ") + pg_rows::kJobColumns + " FROM jobs WHERE " + where +
                      " ORDER BY id FOR UPDATE" + (skip_locked ? " SKIP LOCKED" : ""),
                  params);
    std::vector<PgJobRow> rows;
    rows.reserve(result.rows());
    for (int i = 0; i < result.rows(); ++i) rows.push_back(pg_rows::read_job(result, i));
    return rows;
}

std::optional<PgJobRow> PgJobStore::Impl::lock_user_job(pg::Connection& conn, UserId user,
                                                        JobId id) {
    auto rows = lock_jobs(conn, "id = $1 AND user_id = $2", pg::Params().add(id).add(user));
    if (rows.empty()) return std::nullopt;  // another user's job does not exist
    return std::move(rows.front());
}

void PgJobStore::Impl::write_jobs(pg::Connection& conn, const std::vector<PgJobRow*>& rows) {
    if (rows.empty()) return;
    std::vector<std::int64_t> id, updated, total, queued, active, done, failed, cancelled, bytes,
        rate_at, rate_finished, progress_at, pending;
    std::vector<std::string> state;
    std::vector<std::optional<double>> rate, eta;
    for (const PgJobRow* row : rows) {
        const JobSnapshot& job = row->job;
        id.push_back(job.id);
        state.emplace_back(to_string(job.state));
        updated.push_back(job.updated);
        total.push_back(job.counts.total);
        queued.push_back(job.counts.queued);
        active.push_back(job.counts.active);
        done.push_back(job.counts.done);
        failed.push_back(job.counts.failed);
        cancelled.push_back(job.counts.cancelled);
        bytes.push_back(static_cast<std::int64_t>(job.bytes));
        rate.push_back(job.rate);
        eta.push_back(job.eta);
        rate_at.push_back(row->rate_at);
        rate_finished.push_back(row->rate_finished);
        progress_at.push_back(row->progress_at);
        pending.push_back(row->progress_pending ? 1 : 0);
    }
    pg::Params params;
    params.add_array(id).add_text_array(state).add_array(updated).add_array(total);
    params.add_array(queued).add_array(active).add_array(done).add_array(failed);
    params.add_array(cancelled).add_array(bytes).add_float_array(rate).add_float_array(eta);
    params.add_array(rate_at).add_array(rate_finished).add_array(progress_at).add_array(pending);
    conn.exec(
        "UPDATE jobs j SET state = d.state, updated = d.updated, total = d.total, "
        "queued = d.queued, active = d.active, done = d.done, failed = d.failed, "
        "cancelled = d.cancelled, bytes = d.bytes, rate = d.rate, eta = d.eta, "
        "rate_at = d.rate_at, rate_finished = d.rate_finished, progress_at = d.progress_at, "
        "progress_pending = d.pending <> 0 "
        "FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], "
        "$6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], "
        "$11::float8[], $12::float8[], $13::bigint[], $14::bigint[], $15::bigint[], "
        "$16::bigint[]) AS d(id, state, updated, total, queued, active, done, failed, "
        "cancelled, bytes, rate, eta, rate_at, rate_finished, progress_at, pending) "
        "WHERE j.id = d.id",
        params);
}

std::vector<ItemId> PgJobStore::Impl::active_items(pg::Connection& conn, JobId job) {
    auto result =
        conn.exec("SELECT id FROM items WHERE job_id = $1 AND state = 'active' ORDER BY id",
                  pg::Params().add(job));
    std::vector<ItemId> ids;
    for (int i = 0; i < result.rows(); ++i) ids.push_back(result.int64(i, 0));
    return ids;
}

std::vector<JobSnapshot> PgJobStore::Impl::list_jobs(pg::Connection& conn, UserId user) {
    auto result = conn.exec(std::string("SELECT ") + pg_rows::kJobColumns +
                                " FROM jobs WHERE user_id = $1 ORDER BY id DESC",
                            pg::Params().add(user));
    std::vector<JobSnapshot> jobs;
    jobs.reserve(result.rows());
    for (int i = 0; i < result.rows(); ++i) jobs.push_back(pg_rows::read_job(result, i).job);
    return jobs;
}

// --- the event log ---

void LogWriter::add(UserId user, LoggedKind kind, JobId job, std::string body) {
    entries_.push_back({user, kind, job, std::move(body)});
}

void LogWriter::add_item(UserId user, const ItemRecord& item) {
    if (entries_.empty() || entries_.back().kind != LoggedKind::item ||
        entries_.back().user != user || entries_.back().job != item.job)
        entries_.push_back({user, LoggedKind::item, item.job, {}});
    pg::append_item(entries_.back().body, item);
}

void LogWriter::write(pg::Connection& conn, TimeMs now) {
    if (entries_.empty()) return;
    // How many entries (pos) and job-level entries (seq) each user gets.
    std::map<UserId, std::pair<std::int64_t, std::int64_t>> counts;
    for (const Entry& e : entries_) {
        auto& [n, m] = counts[e.user];
        ++n;
        if (is_job_level(e.kind)) ++m;
    }
    std::vector<std::int64_t> users, ns, ms;
    for (const auto& [user, nm] : counts) {
        users.push_back(user);
        ns.push_back(nm.first);
        ms.push_back(nm.second);
    }
    // The users' rows in id order (every writer does the same: no deadlock);
    // one UPDATE of several rows would lock them in whatever order it scans.
    if (users.size() > 1)
        conn.exec("SELECT id FROM users WHERE id = ANY($1::bigint[]) ORDER BY id FOR NO KEY UPDATE",
                  pg::Params().add_array(users));
    auto bumped = conn.exec(
        "UPDATE users u SET event_pos = u.event_pos + d.n, event_seq = u.event_seq + d.m "
        "FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS d(id, n, m) WHERE u.id = d.id "
        "RETURNING u.id, u.event_pos, u.event_seq",
        pg::Params().add_array(users).add_array(ns).add_array(ms));
    // The next pos/seq to hand out per user: the first of the block just taken.
    std::unordered_map<UserId, std::pair<std::int64_t, std::int64_t>> next;
    for (int i = 0; i < bumped.rows(); ++i) {
        UserId user = bumped.int64(i, 0);
        const auto& [n, m] = counts[user];
        next[user] = {bumped.int64(i, 1) - n + 1, bumped.int64(i, 2) - m + 1};
    }
    std::vector<std::int64_t> user_col, pos_col, seq_col, kind_col, job_col;
    std::vector<std::string> bodies;
    std::vector<std::int64_t> notified;
    for (Entry& e : entries_) {
        auto it = next.find(e.user);
        if (it == next.end()) continue;  // the user was deleted meanwhile: nobody to tell
        user_col.push_back(e.user);
        pos_col.push_back(it->second.first++);
        seq_col.push_back(is_job_level(e.kind) ? it->second.second++ : 0);
        kind_col.push_back(static_cast<int>(e.kind));
        job_col.push_back(e.job);
        bodies.push_back(std::move(e.body));
    }
    for (const auto& [user, ignored] : next) notified.push_back(user);
    std::sort(notified.begin(), notified.end());
    entries_.clear();
    if (user_col.empty()) return;
    pg::Params params;
    params.add_array(user_col).add_array(pos_col).add_array(seq_col).add_array(kind_col);
    params.add_array(job_col).add(now).add_text_array(bodies).add_array(notified);
    // NOTIFY carries the user id only; readers read the log (event_log.hpp).
    conn.exec(
        "WITH logged AS (INSERT INTO events(user_id, pos, seq, kind, job_id, at, body) "
        "SELECT u, p, s, k::smallint, j, $6, b FROM unnest($1::bigint[], $2::bigint[], "
        "$3::bigint[], $4::bigint[], $5::bigint[], $7::text[]) AS d(u, p, s, k, j, b)) "
        "SELECT pg_notify('litchi_events', x::text) FROM unnest($8::bigint[]) AS x",
        params);
}

void PgJobStore::Impl::settle_eta(JobSnapshot& job) {
    switch (job.state) {
        case JobState::done:
            job.rate = 0;
            job.eta = 0.0;
            return;
        case JobState::cancelled:
        case JobState::paused:
            job.rate = 0;
            job.eta.reset();
            return;
        default:
            break;
    }
    if (job.rate > 0)
        job.eta = static_cast<double>(job.counts.queued + job.counts.active) / job.rate;
    else
        job.eta.reset();
}

void PgJobStore::Impl::update_rate(PgJobRow& row, TimeMs now) {
    JobSnapshot& job = row.job;
    std::int64_t finished = job.counts.done + job.counts.failed;
    if (row.rate_at == 0 || row.before != JobState::running) {
        row.rate_at = now;
        row.rate_finished = finished;
    } else if (now > row.rate_at) {
        double dt = static_cast<double>(now - row.rate_at);
        double inst = static_cast<double>(finished - row.rate_finished) * 1000.0 / dt;
        double alpha = 1.0 - std::exp(-dt / 3000.0);
        job.rate = shown_rate(alpha * inst + (1.0 - alpha) * job.rate);
        row.rate_at = now;
        row.rate_finished = finished;
    }
    settle_eta(job);
}

void PgJobStore::Impl::note_progress(PgJobRow& row, TimeMs now, LogWriter& log, bool force) {
    bool state_changed = row.job.state != row.before;
    if (state_changed || force || now - row.progress_at >= options.progress_interval.count()) {
        update_rate(row, now);
        row.progress_at = now;
        row.progress_pending = false;
        log.add(row.job.user, LoggedKind::progress, row.job.id, pg::encode_job(row.job));
    } else {
        row.progress_pending = true;
    }
}

// --- creation ---

JobSnapshot PgJobStore::Impl::create_job(const NewJob& request) {
    auto n = static_cast<std::int64_t>(request.items.size());
    // The job's id and a block of item ids, in a short transaction of their
    // own: the advisory lock makes nextval + setval one step for every node,
    // and is held for this statement pair only, not for the COPY. Ids taken
    // by a creation that then fails are never reused (gaps are fine).
    auto [job_id, first_item] = pool.transaction([&](pg::Connection& conn) {
        conn.exec(std::string("SELECT pg_advisory_xact_lock(") + kItemIdLock + ")");
        auto ids = conn.exec(
            "SELECT nextval('jobs_id_seq'), CASE WHEN $1 > 0 THEN "
            "setval('items_id_seq', nextval('items_id_seq') + $1 - 1) - $1 + 1 ELSE 0 END",
            pg::Params().add(n));
        return std::make_pair(ids.int64(0, 0), ids.int64(0, 1));
    });
    // Items are written with COPY, formatted a piece at a time while the
    // server inserts the previous piece (a million URLs are ~60 MB of rows:
    // formatted whole first, the server waited for all of it). A retried
    // transaction formats them again from the start.
    TimeMs now = this->now();
    std::int64_t queued = 0, failed = 0;
    for (const NewItem& item : request.items) {
        if (item.refused == FailureReason::none)
            ++queued;
        else
            ++failed;
    }
    const std::string job_field = "\t" + std::to_string(job_id) + "\t";
    const std::string time_field = "\t" + std::to_string(now) + "\n";
    // Appends rows from item `next` on, up to about a MiB; false at the end.
    auto write_rows = [&](std::int64_t& next, std::string& piece) {
        constexpr std::size_t kPiece = 1 << 20;
        if (next >= n) return false;
        char number[24];
        for (; next < n && piece.size() < kPiece; ++next) {
            const NewItem& item = request.items[next];
            auto end = std::to_chars(number, number + sizeof number, first_item + next).ptr;
            piece.append(number, end);
            piece += job_field;
            end = std::to_chars(number, number + sizeof number, next).ptr;
            piece.append(number, end);
            piece += '\t';
            pg::copy_escape(piece, item.url);
            if (item.refused == FailureReason::none) {
                piece += "\tqueued\t\\N";
            } else {
                piece += "\tfailed\t";
                piece += to_string(item.refused);
            }
            piece += time_field;
        }
        return true;
    };
    JobSnapshot job;
    job.id = job_id;
    job.user = request.user;
    job.name = request.name.empty() ? "job " + std::to_string(job.id) : request.name;
    job.created = job.updated = now;
    job.counts.total = n;
    job.counts.queued = queued;
    job.counts.failed = failed;
    sqlite_rows::settle_state(job);
    settle_eta(job);
    pg::Params params;
    params.add(job.id).add(job.user).add(job.name).add(to_string(job.state)).add(now);
    params.add(job.counts.total).add(queued).add(failed);
    if (job.eta)
        params.add(*job.eta);
    else
        params.add_null();
    params.add(n ? first_item : 0).add(n ? first_item + n - 1 : 0);
    if (request.options.empty())
        params.add_null();
    else
        params.add(encode_request_options(request.options));
    if (request.options.webhook)
        params.add(webhook_event_list(request.options));
    else
        params.add_null();
    pool.transaction([&](pg::Connection& conn) {
        conn.exec(
            "INSERT INTO jobs(id, user_id, name, state, created, updated, total, queued, failed, "
            "eta, progress_at, first_item, last_item, options, webhook_events) "
            "VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9, $5, $10, $11, $12, $13)",
            params);
        if (n) {
            std::int64_t next = 0;
            conn.copy_in("COPY items(id, job_id, position, url, state, reason, updated) FROM STDIN",
                         [&](std::string& piece) { return write_rows(next, piece); });
        }
        LogWriter log;
        log.add(job.user, LoggedKind::job_created, job.id, pg::encode_job(job));
        log.write(conn, now);
    });
    return job;
}

// --- claims ---

void PgJobStore::Impl::lower_claim_cursors(pg::Connection& conn,
                                           const std::vector<std::int64_t>& jobs,
                                           const std::vector<std::int64_t>& items) {
    if (jobs.empty()) return;
    // The jobs are locked by the caller. requeue_seq tells a claim that read
    // the cursor before this commit not to advance it past these items.
    conn.exec(
        "UPDATE jobs j SET claim_from = LEAST(j.claim_from, u.item), "
        "requeue_seq = j.requeue_seq + 1 FROM (SELECT id, min(item) AS item FROM "
        "unnest($1::bigint[], $2::bigint[]) AS r(id, item) GROUP BY id) u WHERE j.id = u.id",
        pg::Params().add_array(jobs).add_array(items));
}

void PgJobStore::Impl::restart_claim_cursors(pg::Connection& conn, const std::string& where,
                                             const pg::Params& params) {
    conn.exec(
        "UPDATE jobs SET claim_from = first_item, requeue_seq = requeue_seq + 1 WHERE " + where,
        params);
}

void PgJobStore::Impl::rewind_claim_cursors(pg::Connection& conn,
                                            const std::vector<std::int64_t>& jobs,
                                            const std::vector<std::int64_t>& searched_from) {
    if (jobs.empty()) return;
    // Only a cursor nobody lowered since (it is still where the claim
    // looked from, or beyond), of a job that still counts queued items.
    // Rare: the tail of a job whose last items other claims hold right now,
    // or an item a rolled-back claim left below the cursor. One job at a
    // time is locked by this statement alone (no other lock held).
    conn.exec(
        "UPDATE jobs j SET claim_from = j.first_item FROM unnest($1::bigint[], $2::bigint[]) "
        "AS u(id, lo) WHERE j.id = u.id AND j.queued > 0 AND j.claim_from > j.first_item AND "
        "j.claim_from >= u.lo",
        pg::Params().add_array(jobs).add_array(searched_from));
}

// A claim walks a job's items in primary-key order from its cursor and stops
// after LIMIT picks: only an index scan does that. The cursor and the LIMIT
// are known only when the statement runs, so the planner guesses; without
// statistics (a job just written, before autovacuum analyzed it) it chose a
// bitmap scan of the job's whole id range and a sort, reading a million rows
// to take 256. Bitmap scans and sorts are off in claim transactions.
constexpr std::string_view kClaimBegin =
    "BEGIN; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off";

std::vector<ClaimedItem> PgJobStore::Impl::claim(std::size_t max, const SlotLoad& load) {
    if (max == 0) return {};
    // Jobs of the plan whose cursor gave nothing, and where it looked from:
    // if such a job still counts queued items, one may sit below its cursor
    // (a claim that had locked it rolled back after another moved past it),
    // so its next claim looks from the start. In a transaction of its own,
    // after this one: these jobs are not locked here, and locking them
    // after the others would break the lock order.
    std::vector<std::int64_t> rewind_job, rewind_from;
    auto claim_in = [&](pg::Connection& conn) {
        rewind_job.clear();
        rewind_from.clear();
        std::vector<ClaimedItem> claimed;
        // A plan from an unlocked read; the locks below decide what is taken.
        std::map<UserId, std::vector<RunnableJob>> runnable;
        struct Cursor {
            std::int64_t from = 0, last = 0, seq = 0;
        };
        std::map<JobId, Cursor> cursors;
        auto listed = conn.exec(
            "SELECT user_id, id, queued, GREATEST(claim_from, first_item), last_item, "
            "requeue_seq FROM jobs WHERE state IN ('queued', 'running') AND queued > 0 "
            "ORDER BY user_id, id");
        for (int i = 0; i < listed.rows(); ++i) {
            runnable[listed.int64(i, 0)].push_back({listed.int64(i, 1), listed.int64(i, 2)});
            cursors[listed.int64(i, 1)] = {listed.int64(i, 3), listed.int64(i, 4),
                                           listed.int64(i, 5)};
        }
        if (runnable.empty()) return claimed;
        std::map<JobId, std::int64_t> quota;
        {
            std::lock_guard lock(fairness_mutex);
            quota = share_slots(runnable, max, fairness, load);
        }
        if (quota.empty()) return claimed;  // everyone holds their share already
        std::vector<std::int64_t> job_col, count_col, from_col, last_col;
        for (const auto& [id, n] : quota) {
            job_col.push_back(id);
            count_col.push_back(n);
            from_col.push_back(cursors[id].from);
            last_col.push_back(cursors[id].last);
        }
        TimeMs now = this->now();
        // The items first (the lock order): the oldest queued ones of each
        // job, along the primary key from the job's claim cursor (see the
        // schema's step 4 -> 5); SKIP LOCKED, so an item another transaction
        // holds is not waited for. `= ANY(ARRAY(...))` looks the picks up by
        // primary key: a join would let the planner, which cannot know how
        // many LIMIT q.n picks, hash the whole table instead (measured:
        // 130 ms a claim at 100,000 items).
        auto taken = conn.exec(
            std::string("WITH q AS (SELECT * FROM unnest($1::bigint[], $2::bigint[], $6::bigint[], "
                        "$7::bigint[]) AS q(job, n, lo, hi)), "
                        "pick AS (SELECT i.id AS pick_id FROM q CROSS JOIN LATERAL "
                        "(SELECT id FROM items WHERE id >= q.lo AND id <= q.hi AND job_id = q.job "
                        "AND state = 'queued' ORDER BY id LIMIT q.n FOR UPDATE SKIP LOCKED) i) "
                        "UPDATE items SET state = 'active', updated = $3, node = $4, "
                        "lease_id = nextval('lease_ids'), lease_until = $5 "
                        "WHERE id = ANY(ARRAY(SELECT pick_id FROM pick)) RETURNING ") +
                pg_rows::kItemColumns + ", lease_id",
            pg::Params()
                .add_array(job_col)
                .add_array(count_col)
                .add(now)
                .add(options.node)
                .add(now + options.lease.count())
                .add_array(from_col)
                .add_array(last_col));
        if (taken.rows() == 0) {
            rewind_job = job_col;
            rewind_from = from_col;
            return claimed;
        }
        std::vector<std::pair<ItemRecord, LeaseId>> items;
        items.reserve(taken.rows());
        std::map<JobId, std::int64_t> per_job;
        for (int i = 0; i < taken.rows(); ++i) {
            items.emplace_back(pg_rows::read_item(taken, i),
                               taken.int64(i, pg_rows::kItemColumnCount));
            ++per_job[items.back().first.job];
        }
        std::sort(items.begin(), items.end(), [](const auto& a, const auto& b) {
            return a.first.job != b.first.job ? a.first.job < b.first.job : a.first.id < b.first.id;
        });
        // Then their jobs. One paused or cancelled since the plan gets its
        // items back (a cancel waits for this transaction, then cancels
        // them with the rest).
        std::vector<std::int64_t> ids;
        for (const auto& [id, n] : per_job) ids.push_back(id);
        auto rows = lock_jobs(conn, "id = ANY($1::bigint[])", pg::Params().add_array(ids));
        std::map<JobId, PgJobRow*> by_id;
        for (PgJobRow& row : rows)
            if (sqlite_rows::is_runnable(row.job.state)) by_id[row.job.id] = &row;
        {
            // Each job's cursor past what was taken (items are sorted by job,
            // then id): unless something was put back in its queue since
            // the plan read the cursor, nothing queued is left below.
            std::map<JobId, std::int64_t> next;
            for (const auto& [item, lease] : items) next[item.job] = item.id + 1;
            std::vector<std::int64_t> cursor_job, cursor_next, cursor_seq;
            for (const auto& [job, after] : next) {
                if (!by_id.count(job)) continue;
                cursor_job.push_back(job);
                cursor_next.push_back(after);
                cursor_seq.push_back(cursors[job].seq);
            }
            if (!cursor_job.empty())
                conn.exec(
                    "UPDATE jobs j SET claim_from = GREATEST(j.claim_from, u.next) FROM "
                    "unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS u(id, next, seq) "
                    "WHERE j.id = u.id AND j.requeue_seq = u.seq",
                    pg::Params()
                        .add_array(cursor_job)
                        .add_array(cursor_next)
                        .add_array(cursor_seq));
            for (std::size_t i = 0; i < job_col.size(); ++i) {
                if (per_job.count(job_col[i])) continue;
                rewind_job.push_back(job_col[i]);
                rewind_from.push_back(from_col[i]);
            }
        }
        if (by_id.size() < per_job.size()) {
            std::vector<std::int64_t> back, back_jobs;
            for (const auto& [item, lease] : items) {
                if (by_id.count(item.job)) continue;
                back.push_back(item.id);
                back_jobs.push_back(item.job);
            }
            conn.exec(
                "UPDATE items SET state = 'queued', node = NULL, lease_id = NULL, "
                "lease_until = NULL WHERE id = ANY($1::bigint[])",
                pg::Params().add_array(back));
            lower_claim_cursors(conn, back_jobs, back);
            std::erase_if(items, [&](const auto& held) { return !by_id.count(held.first.job); });
        }
        LogWriter log;
        for (auto& [item, lease] : items) {
            PgJobRow* row = by_id[item.job];
            claimed.push_back({item.id, item.job, row->job.user, item.url, lease});
            log.add_item(row->job.user, item);
        }
        std::vector<PgJobRow*> changed;
        for (auto& [id, row] : by_id) {
            std::int64_t n = per_job[id];
            row->job.counts.queued -= n;
            row->job.counts.active += n;
            if (row->job.state == JobState::queued) row->job.state = JobState::running;
            row->job.updated = now;
            note_progress(*row, now, log);
            changed.push_back(row);
        }
        write_jobs(conn, changed);
        log.write(conn, now);
        return claimed;
    };
    auto claimed = pool.transaction(claim_in, kClaimBegin);
    if (!rewind_job.empty()) {
        pool.transaction([&](pg::Connection& conn) {
            rewind_claim_cursors(conn, rewind_job, rewind_from);
            return 0;
        });
    }
    return claimed;
}

// --- outcomes ---

ApplySummary PgJobStore::Impl::apply(const std::vector<ItemOutcome>& outcomes) {
    if (outcomes.empty()) return {};
    std::vector<std::int64_t> ids;
    ids.reserve(outcomes.size());
    for (const auto& outcome : outcomes) ids.push_back(outcome.item);
    return pool.transaction([&](pg::Connection& conn) {
        ApplySummary summary;
        TimeMs now = this->now();
        // The items first (the lock order), in id order; their jobs once the
        // items are written.
        auto found = conn.exec(std::string("SELECT ") + pg_rows::kItemColumns +
                                   ", lease_id FROM items WHERE id = ANY($1::bigint[]) "
                                   "ORDER BY id FOR UPDATE",
                               pg::Params().add_array(ids));
        struct Held {
            ItemRecord item;
            LeaseId lease = 0;
            bool written = false;
        };
        std::unordered_map<ItemId, Held> items;
        for (int i = 0; i < found.rows(); ++i) {
            Held held{pg_rows::read_item(found, i), found.int64(i, pg_rows::kItemColumnCount)};
            items.emplace(held.item.id, std::move(held));
        }
        // What the outcomes do to each job's counts, as deltas (the job rows
        // are not locked yet). The state only decides what a `cancelled`
        // outcome means, and an item still active under its lease belongs to
        // a job not cancelled: a cancel cancels the job's active items in
        // the transaction that cancels the job, so it would not be active.
        std::map<JobId, JobSnapshot> deltas;
        LogWriter log;
        std::vector<ItemId> order;  // items written, in outcome order
        auto refuse = [&](const ItemOutcome& result, std::size_t& counter) {
            ++counter;
            if (result.ok()) summary.orphaned.push_back({result.sha256, result.format});
        };
        for (const ItemOutcome& result : outcomes) {
            auto it = items.find(result.item);
            if (it == items.end()) {
                refuse(result, summary.ignored);  // deleted meanwhile
                continue;
            }
            Held& held = it->second;
            ItemRecord& item = held.item;
            if (held.lease != result.lease) {
                // The lease ran out: the item went back to the queue, maybe to
                // another node, which may have finished it already.
                refuse(result, summary.fenced);
                continue;
            }
            if (item.state != ItemState::active) {
                refuse(result, summary.ignored);  // cancelled meanwhile, or a repeat
                continue;
            }
            auto [delta, fresh] = deltas.try_emplace(item.job);
            if (fresh) delta->second.state = JobState::running;
            if (sqlite_rows::apply_outcome(result, item, delta->second, summary, now) ==
                ItemState::queued)
                held.lease = 0;  // requeued: the claim is over
            if (!held.written) order.push_back(item.id);
            held.written = true;
        }
        if (order.empty()) return summary;
        std::vector<std::int64_t> id_col, http_col, bytes_col, width_col, height_col, attempts_col;
        std::vector<std::string> state_col, reason_col, sha_col, format_col;
        for (ItemId id : order) {
            const ItemRecord& item = items[id].item;
            bool done = item.state == ItemState::done;
            id_col.push_back(item.id);
            state_col.emplace_back(to_string(item.state));
            reason_col.emplace_back(item.reason == FailureReason::none ? ""
                                                                       : to_string(item.reason));
            http_col.push_back(item.http_status);
            sha_col.push_back(done ? item.sha256 : std::string());
            bytes_col.push_back(done ? static_cast<std::int64_t>(item.bytes) : -1);
            width_col.push_back(done ? item.width : -1);
            height_col.push_back(done ? item.height : -1);
            format_col.emplace_back(done ? extension(item.format) : "");
            attempts_col.push_back(item.attempts);
        }
        pg::Params params;
        params.add_array(id_col).add_text_array(state_col).add_text_array(reason_col);
        params.add_array(http_col).add_text_array(sha_col).add_array(bytes_col);
        params.add_array(width_col).add_array(height_col).add_text_array(format_col);
        params.add_array(attempts_col).add(now);
        // Done items get the download's fields; a requeued one gives up its
        // lease; a finished one keeps node and lease id (a repeated outcome
        // then reads as a repeat, not as fenced).
        conn.exec(
            "UPDATE items i SET state = d.state, reason = NULLIF(d.reason, ''), "
            "http_status = NULLIF(d.http, 0), "
            "sha256 = CASE WHEN d.state = 'done' THEN d.sha ELSE i.sha256 END, "
            "bytes = CASE WHEN d.state = 'done' THEN d.bytes ELSE i.bytes END, "
            "width = CASE WHEN d.state = 'done' THEN d.width ELSE i.width END, "
            "height = CASE WHEN d.state = 'done' THEN d.height ELSE i.height END, "
            "format = CASE WHEN d.state = 'done' THEN d.format ELSE i.format END, "
            "attempts = d.attempts, updated = $11, lease_until = NULL, "
            "node = CASE WHEN d.state = 'queued' THEN NULL ELSE i.node END, "
            "lease_id = CASE WHEN d.state = 'queued' THEN NULL ELSE i.lease_id END "
            "FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], "
            "$6::bigint[], $7::bigint[], $8::bigint[], $9::text[], $10::bigint[]) "
            "AS d(id, state, reason, http, sha, bytes, width, height, format, attempts) "
            "WHERE i.id = d.id",
            params);
        std::vector<std::int64_t> job_ids;
        for (const auto& [id, delta] : deltas) job_ids.push_back(id);
        auto rows = lock_jobs(conn, "id = ANY($1::bigint[])", pg::Params().add_array(job_ids));
        std::map<JobId, PgJobRow*> jobs;
        for (PgJobRow& row : rows) jobs[row.job.id] = &row;
        std::vector<std::int64_t> requeued_jobs, requeued;  // back in the queue
        for (ItemId id : order) {
            const ItemRecord& item = items[id].item;
            if (item.state != ItemState::queued) continue;
            requeued_jobs.push_back(item.job);
            requeued.push_back(item.id);
        }
        lower_claim_cursors(conn, requeued_jobs, requeued);
        for (ItemId id : order) {
            const ItemRecord& item = items[id].item;
            auto job = jobs.find(item.job);
            // No job row for a live item: only a hand-edited database. The
            // item is written; recover() repairs the counts.
            if (job == jobs.end()) continue;
            log.add_item(job->second->job.user, item);
        }
        std::vector<PgJobRow*> changed;
        for (auto& [id, row] : jobs) {
            const JobSnapshot& delta = deltas[id];
            JobCounts& counts = row->job.counts;
            counts.queued += delta.counts.queued;
            counts.active += delta.counts.active;
            counts.done += delta.counts.done;
            counts.failed += delta.counts.failed;
            counts.cancelled += delta.counts.cancelled;
            row->job.bytes += delta.bytes;
            sqlite_rows::settle_state(row->job);
            row->job.updated = now;
            note_progress(*row, now, log);
            changed.push_back(row);
        }
        write_jobs(conn, changed);
        log.write(conn, now);
        return summary;
    });
}

// --- leases ---

std::int64_t PgJobStore::Impl::renew_leases() {
    auto conn = pool.acquire();
    // In id order, as apply_outcomes locks them (no deadlock between the two).
    return conn
        ->exec(
            "UPDATE items SET lease_until = $2 WHERE id IN (SELECT id FROM items WHERE node = $1 "
            "AND state = 'active' ORDER BY id FOR UPDATE)",
            pg::Params().add(options.node).add(now() + options.lease.count()))
        .affected();
}

std::vector<ItemId> PgJobStore::Impl::released_claims(const std::vector<HeldClaim>& held) {
    std::vector<ItemId> released;
    if (held.empty()) return released;
    std::vector<std::int64_t> items, leases;
    items.reserve(held.size());
    leases.reserve(held.size());
    for (const HeldClaim& claim : held) {
        items.push_back(claim.item);
        leases.push_back(claim.lease);
    }
    auto conn = pool.acquire();
    auto r = conn->exec(
        "SELECT h.id FROM unnest($1::bigint[], $2::bigint[]) AS h(id, lease) "
        "LEFT JOIN items i ON i.id = h.id AND i.state = 'active' AND i.lease_id = h.lease "
        "LEFT JOIN jobs j ON j.id = i.job_id "
        "WHERE i.id IS NULL OR j.state = 'paused' ORDER BY h.id",
        pg::Params().add_array(items).add_array(leases));
    released.reserve(static_cast<std::size_t>(r.rows()));
    for (int row = 0; row < r.rows(); ++row) released.push_back(r.int64(row, 0));
    return released;
}

std::int64_t PgJobStore::Impl::requeue_items(pg::Connection& conn, const std::string& node,
                                             std::optional<TimeMs> expired_before, TimeMs now,
                                             LogWriter& log) {
    // Expiry of a few items of a job logs each; more (or a node's requeue)
    // logs one items_reset for the job.
    constexpr std::int64_t kFewItems = 20;
    pg::Params params;
    params.add(now);
    std::string where = "state = 'active'";
    if (!node.empty()) {
        params.add(node);
        where += " AND node = $" + std::to_string(params.size());
    }
    if (expired_before) {
        params.add(*expired_before);
        where += " AND lease_until < $" + std::to_string(params.size());
    }
    // The items first, locked in id order (as outcomes lock theirs), then
    // their jobs.
    auto result = conn.exec(
        "UPDATE items SET state = 'queued', node = NULL, lease_id = NULL, lease_until = NULL, "
        "updated = $1 WHERE id = ANY(ARRAY(SELECT id FROM items WHERE " +
            where + " ORDER BY id FOR UPDATE)) RETURNING " + pg_rows::kItemColumns,
        params);
    if (result.rows() == 0) return 0;
    std::map<JobId, std::vector<ItemRecord>> per_job;
    std::vector<std::int64_t> item_jobs, item_ids;
    for (int i = 0; i < result.rows(); ++i) {
        ItemRecord item = pg_rows::read_item(result, i);
        item_jobs.push_back(item.job);
        item_ids.push_back(item.id);
        per_job[item.job].push_back(std::move(item));
    }
    std::vector<std::int64_t> ids;
    for (const auto& [id, items] : per_job) ids.push_back(id);
    auto rows = lock_jobs(conn, "id = ANY($1::bigint[])", pg::Params().add_array(ids));
    lower_claim_cursors(conn, item_jobs, item_ids);
    std::vector<PgJobRow*> changed;
    for (PgJobRow& row : rows) {
        auto& items = per_job[row.job.id];
        auto n = static_cast<std::int64_t>(items.size());
        row.job.counts.active -= n;
        row.job.counts.queued += n;
        row.job.updated = now;
        if (expired_before && n <= kFewItems) {
            std::sort(items.begin(), items.end(),
                      [](const ItemRecord& a, const ItemRecord& b) { return a.id < b.id; });
            for (const ItemRecord& item : items) log.add_item(row.job.user, item);
        } else {
            log.add(row.job.user, LoggedKind::items_reset, row.job.id, pg::encode_job(row.job));
        }
        note_progress(row, now, log);
        changed.push_back(&row);
    }
    write_jobs(conn, changed);
    return result.rows();
}

std::int64_t PgJobStore::Impl::expire_leases() {
    return pool.transaction([&](pg::Connection& conn) {
        TimeMs now = this->now();
        LogWriter log;
        auto n = requeue_items(conn, "", now, now, log);
        log.write(conn, now);
        return n;
    });
}

// --- the public calls ---

PgJobStore::PgJobStore(pg::Pool& pool, const StoreOptions& options)
    : impl_(std::make_unique<Impl>(pool, options)) {}
PgJobStore::~PgJobStore() = default;

void PgJobStore::set_observer(StoreObserver*) {
    // Nothing is delivered in process: other nodes change the same rows, so
    // changes are read from the event log (event_log.hpp).
}

JobSnapshot PgJobStore::create_job(const NewJob& job) {
    return impl_->create_job(job);
}

std::vector<JobSnapshot> PgJobStore::list_jobs(UserId user) {
    auto conn = impl_->pool.acquire();
    return impl_->list_jobs(*conn, user);
}

std::optional<JobSnapshot> PgJobStore::get_job(UserId user, JobId job) {
    auto conn = impl_->pool.acquire();
    auto result = conn->exec(
        std::string("SELECT ") + pg_rows::kJobColumns + " FROM jobs WHERE id = $1 AND user_id = $2",
        pg::Params().add(job).add(user));
    if (!result.rows()) return std::nullopt;
    return pg_rows::read_job(result, 0).job;
}

void PgJobStore::visit_jobs(UserId user, const JobsVisitor& visit) {
    // One snapshot: the jobs and the user's log position agree (every entry
    // up to `pos` is in the list, none after it).
    auto [jobs, pos] = impl_->pool.transaction(
        [&](pg::Connection& conn) {
            auto jobs = impl_->list_jobs(conn, user);
            auto pos =
                conn.exec("SELECT event_pos FROM users WHERE id = $1", pg::Params().add(user));
            return std::make_pair(std::move(jobs),
                                  static_cast<CommitId>(pos.rows() ? pos.int64(0, 0) : 0));
        },
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    visit(jobs, pos);
}

std::optional<ItemPage> PgJobStore::list_items(UserId user, JobId job, const ItemQuery& query) {
    auto conn = impl_->pool.acquire();
    auto bounds =
        conn->exec("SELECT first_item, last_item FROM jobs WHERE id = $1 AND user_id = $2",
                   pg::Params().add(job).add(user));
    if (!bounds.rows()) return std::nullopt;
    ItemId first = bounds.int64(0, 0), last = bounds.int64(0, 1);
    int limit = std::max(query.limit, 1);  // the API bounds it (--items-page-max)
    pg::Result result;
    // One row more than asked tells whether there is a next page.
    if (query.state) {
        result =
            conn->exec(std::string("SELECT ") + pg_rows::kItemColumns +
                           " FROM items WHERE id > $1 AND id <= $2 AND job_id = $3 AND state = $4 "
                           "ORDER BY id LIMIT $5",
                       pg::Params()
                           .add(std::max(query.after, first - 1))
                           .add(last)
                           .add(job)
                           .add(to_string(*query.state))
                           .add(limit + 1));
    } else {
        // A primary-key range scan: the job's items have (nearly) contiguous ids.
        result = conn->exec(
            std::string("SELECT ") + pg_rows::kItemColumns +
                " FROM items WHERE id > $1 AND id <= $2 AND job_id = $3 "
                "ORDER BY id LIMIT $4",
            pg::Params().add(std::max(query.after, first - 1)).add(last).add(job).add(limit + 1));
    }
    ItemPage page;
    for (int i = 0; i < result.rows(); ++i) {
        if (static_cast<int>(page.items.size()) == limit) {
            page.next = page.items.back().id;
            break;
        }
        page.items.push_back(pg_rows::read_item(result, i));
    }
    return page;
}

std::optional<ItemRecord> PgJobStore::get_item(UserId user, JobId job, ItemId item) {
    auto conn = impl_->pool.acquire();
    auto result = conn->exec(std::string("SELECT ") + pg_rows::kItemColumns +
                                 " FROM items WHERE id = $1 AND job_id = $2 AND EXISTS "
                                 "(SELECT 1 FROM jobs WHERE id = $2 AND user_id = $3)",
                             pg::Params().add(item).add(job).add(user));
    if (!result.rows()) return std::nullopt;
    return pg_rows::read_item(result, 0);
}

std::optional<ImageFormat> PgJobStore::find_user_blob(UserId user, std::string_view sha256) {
    if (!sqlite_rows::is_sha256_hex(sha256)) return std::nullopt;
    auto conn = impl_->pool.acquire();
    auto result = conn->exec(
        "SELECT i.format FROM items i JOIN jobs j ON j.id = i.job_id "
        "WHERE i.sha256 = $1 AND i.state = 'done' AND j.user_id = $2 LIMIT 1",
        pg::Params().add(sha256).add(user));
    if (!result.rows()) return std::nullopt;
    return parse_extension(result.text(0, 0));
}

bool PgJobStore::blob_referenced(std::string_view sha256) {
    auto conn = impl_->pool.acquire();
    return conn->exec("SELECT 1 FROM items WHERE sha256 = $1 LIMIT 1", pg::Params().add(sha256))
               .rows() > 0;
}

std::int64_t PgJobStore::queued_total() {
    auto conn = impl_->pool.acquire();
    return conn
        ->exec(
            "SELECT coalesce(sum(queued), 0) FROM jobs WHERE state IN ('queued', 'running') AND "
            "queued > 0")
        .int64(0, 0);
}

std::int64_t PgJobStore::leased_total() {
    auto conn = impl_->pool.acquire();
    // The counters are exact (kept in every transaction that moves an item).
    return conn->exec("SELECT coalesce(sum(active), 0) FROM jobs WHERE active > 0").int64(0, 0);
}

bool PgJobStore::has_runnable() {
    auto conn = impl_->pool.acquire();
    return conn->exec(
                   "SELECT 1 FROM jobs WHERE state IN ('queued', 'running') AND queued > 0 LIMIT 1")
               .rows() > 0;
}

JobOpResult PgJobStore::pause_job(UserId user, JobId job) {
    return impl_->pause(user, job);
}
JobOpResult PgJobStore::resume_job(UserId user, JobId job) {
    return impl_->resume(user, job);
}
JobOpResult PgJobStore::cancel_job(UserId user, JobId job) {
    return impl_->cancel(user, job);
}
JobOpResult PgJobStore::rename_job(UserId user, JobId job, std::string_view name) {
    return impl_->rename(user, job, name);
}

JobOpResult PgJobStore::retry_job(UserId user, JobId job, const RetrySelection& which) {
    return impl_->retry(user, job, which);
}
JobOpResult PgJobStore::delete_job(UserId user, JobId job) {
    return impl_->remove(user, job);
}
std::vector<ClaimedItem> PgJobStore::claim_next_items(std::size_t max, const SlotLoad& load) {
    return impl_->claim(max, load);
}
ApplySummary PgJobStore::apply_outcomes(const std::vector<ItemOutcome>& outcomes) {
    return impl_->apply(outcomes);
}
std::int64_t PgJobStore::requeue_active() {
    return impl_->requeue_active();
}
RecoverySummary PgJobStore::recover() {
    return impl_->recover();
}
std::int64_t PgJobStore::renew_leases() {
    return impl_->renew_leases();
}
std::vector<ItemId> PgJobStore::released_claims(const std::vector<HeldClaim>& held) {
    return impl_->released_claims(held);
}
std::int64_t PgJobStore::expire_leases() {
    return impl_->expire_leases();
}
std::optional<TimeMs> PgJobStore::flush_progress() {
    return impl_->flush_progress();
}

}  // namespace litchi
