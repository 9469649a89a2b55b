// Jobs and items in SQLite: see job_store.hpp for what each call promises.
// Every public method takes the database mutex, does its work in at most one
// transaction, keeps the job row's counters in step with the item rows, queues
// its changes for the observer right after the commit (still under the mutex,
// so they are numbered in commit order) and delivers them once the mutex is
// released. Who gets the next slots is decided in fair_share.cpp; the row
// mapping is in sqlite_rows.cpp.
#include "store/sqlite_job_store.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>

#include "store/sqlite_job_store_impl.hpp"
#include "store/sqlite_rows.hpp"

namespace litchi {
namespace {

// A new job's items are inserted kRowsPerInsert at a time (see create_job).
// Parameters: ?1 job id, ?2 time, then per row position, url, state, reason.
constexpr int kRowsPerInsert = 64;
constexpr int kItemParams = 4;

std::string insert_items_sql(int rows) {
    std::string sql = "INSERT INTO items(job_id, position, url, state, reason, updated) VALUES ";
    for (int row = 0; row < rows; ++row) {
        int p = 3 + row * kItemParams;
        sql +=
            fmt::format("{}(?1, ?{}, ?{}, ?{}, ?{}, ?2)", row ? ", " : "", p, p + 1, p + 2, p + 3);
    }
    return sql;
}

// One row, kRowsPerInsert rows.
const std::string kInsertItemSql[2] = {insert_items_sql(1), insert_items_sql(kRowsPerInsert)};

}  // namespace

std::optional<JobSnapshot> SqliteJobStore::Impl::load_job(JobId id) {
    auto stmt =
        db.prepare(std::string("SELECT ") + sqlite_rows::kJobColumns + " FROM jobs WHERE id = ?");
    stmt.bind(1, id);
    if (!stmt.step()) return std::nullopt;
    return sqlite_rows::read_job(stmt);
}

std::optional<JobSnapshot> SqliteJobStore::Impl::load_user_job(UserId user, JobId id) {
    auto job = load_job(id);
    if (!job || job->user != user) return std::nullopt;  // another user's job does not exist
    return job;
}

void SqliteJobStore::Impl::write_job(JobSnapshot& job, TimeMs now) {
    job.updated = now;
    auto stmt = db.prepare(
        "UPDATE jobs SET state = ?, updated = ?, total = ?, queued = ?, active = ?, done = ?, "
        "failed = ?, cancelled = ?, bytes = ? WHERE id = ?");
    stmt.bind(1, to_string(job.state)).bind(2, now).bind(3, job.counts.total);
    stmt.bind(4, job.counts.queued).bind(5, job.counts.active).bind(6, job.counts.done);
    stmt.bind(7, job.counts.failed).bind(8, job.counts.cancelled);
    stmt.bind(9, static_cast<std::int64_t>(job.bytes)).bind(10, job.id);
    stmt.run();
}

std::vector<ItemId> SqliteJobStore::Impl::active_items(JobId job) {
    std::vector<ItemId> ids;
    auto stmt =
        db.prepare("SELECT id FROM items WHERE job_id = ? AND state = 'active' ORDER BY id");
    stmt.bind(1, job);
    while (stmt.step()) ids.push_back(stmt.column_int64(0));
    return ids;
}

JobSnapshot SqliteJobStore::Impl::create_job(const NewJob& request) {
    TimeMs now = this->now();
    JobSnapshot job;
    job.user = request.user;
    job.created = job.updated = now;
    StoreChanges pending;
    {
        // Accepting a job is a promise: fsync this commit (see Database).
        // Its checkpoint is not part of the promise and waits for the next
        // commit (a claim, right after): a million items leave ~90 MB in the
        // WAL, and copying and syncing that into the database file would
        // double the wait of the caller, who only needs the WAL synced.
        struct AcceptCommit {
            Database& db;
            explicit AcceptCommit(Database& d) : db(d) {
                db.set_synchronous_full(true);
                db.defer_checkpoints(true);
            }
            ~AcceptCommit() {
                try {
                    db.defer_checkpoints(false);
                    db.set_synchronous_full(false);
                } catch (...) {
                    // Only a misuse fails here. Staying at FULL is slower, never
                    // less safe; without checkpoints the WAL grows until the
                    // next successful reset (or close) checkpoints it.
                }
            }
        } accept_commit(db);
        Transaction txn(db);
        auto insert_job = db.prepare(
            "INSERT INTO jobs(user_id, name, state, created, updated, options, webhook_events) "
            "VALUES (?, ?, 'queued', ?, ?, ?, ?)");
        insert_job.bind(1, job.user).bind(2, request.name).bind(3, now).bind(4, now);
        if (request.options.empty())
            insert_job.bind(5, nullptr);
        else
            insert_job.bind(5, encode_request_options(request.options));
        if (request.options.webhook)
            insert_job.bind(6, webhook_event_list(request.options));
        else
            insert_job.bind(6, nullptr);
        insert_job.run();
        job.id = db.last_insert_rowid();
        job.name = request.name.empty() ? "job " + std::to_string(job.id) : request.name;

        // The hot loop of a large job (a million rows), so: kRowsPerInsert
        // rows per statement (a statement's run has a fixed cost: cursors
        // opened and closed, the foreign key looked up, the program started
        // and halted); job id and time bound once (bindings outlive run()'s
        // reset); the URL bound without a copy (it lives in `request` until we
        // return). The first row goes alone, so its id is known: the job's
        // items have contiguous ids (one transaction holds the write lock),
        // and the last insert's id ends the range.
        auto single = db.prepare(kInsertItemSql[0]);
        auto multi = db.prepare(kInsertItemSql[1]);
        single.bind(1, job.id).bind(2, now);
        multi.bind(1, job.id).bind(2, now);
        auto bind_row = [](Statement& stmt, int row, std::int64_t position, const NewItem& item) {
            int base = 3 + row * kItemParams;
            stmt.bind(base, position).bind_static(base + 1, item.url);
            if (item.refused == FailureReason::none)
                stmt.bind_static(base + 2, "queued").bind(base + 3, nullptr);
            else
                stmt.bind_static(base + 2, "failed").bind_static(base + 3, to_string(item.refused));
        };
        const auto& items = request.items;
        const std::size_t n = items.size();
        ItemId first = 0, last = 0;
        std::size_t i = 0;
        if (n > 0) {
            bind_row(single, 0, 0, items[0]);
            single.run();
            first = db.last_insert_rowid();
            i = 1;
        }
        for (; i + kRowsPerInsert <= n; i += kRowsPerInsert) {
            for (int row = 0; row < kRowsPerInsert; ++row)
                bind_row(multi, row, static_cast<std::int64_t>(i + row), items[i + row]);
            multi.run();
        }
        for (; i < n; ++i) {
            bind_row(single, 0, static_cast<std::int64_t>(i), items[i]);
            single.run();
        }
        if (n > 0) last = db.last_insert_rowid();
        for (const NewItem& item : items)
            ++(item.refused == FailureReason::none ? job.counts.queued : job.counts.failed);
        job.counts.total = static_cast<std::int64_t>(request.items.size());
        sqlite_rows::settle_state(job);
        auto finish = db.prepare(
            "UPDATE jobs SET name = ?, state = ?, first_item = ?, last_item = ?, total = ?, "
            "queued = ?, failed = ? WHERE id = ?");
        finish.bind(1, job.name).bind(2, to_string(job.state)).bind(3, first).bind(4, last);
        finish.bind(5, job.counts.total).bind(6, job.counts.queued).bind(7, job.counts.failed);
        finish.bind(8, job.id).run();
        txn.commit();
    }
    pending.created.push_back(job);
    changes.push(std::move(pending));
    return job;
}

std::vector<JobSnapshot> SqliteJobStore::Impl::list_jobs(UserId user) {
    std::vector<JobSnapshot> jobs;
    auto stmt = db.prepare(std::string("SELECT ") + sqlite_rows::kJobColumns +
                           " FROM jobs WHERE user_id = ? ORDER BY id DESC");
    stmt.bind(1, user);
    while (stmt.step()) jobs.push_back(sqlite_rows::read_job(stmt));
    return jobs;
}

std::vector<ClaimedItem> SqliteJobStore::Impl::claim(std::size_t max, const SlotLoad& load) {
    std::vector<ClaimedItem> claimed;
    if (max == 0) return claimed;

    // Runnable jobs per user, in id order (the partial index jobs_runnable).
    std::map<UserId, std::vector<RunnableJob>> runnable;
    {
        auto stmt = db.prepare(
            "SELECT user_id, id, queued FROM jobs WHERE state IN ('queued', 'running') AND "
            "queued > 0 ORDER BY user_id, id");
        while (stmt.step())
            runnable[stmt.column_int64(0)].push_back({stmt.column_int64(1), stmt.column_int64(2)});
    }
    if (runnable.empty()) return claimed;
    std::map<JobId, std::int64_t> quota = share_slots(runnable, max, fairness, load);
    if (quota.empty()) return claimed;  // everyone holds their share already

    TimeMs now = this->now();
    TimeMs lease_until = now + options.lease.count();
    StoreChanges pending;
    Transaction txn(db);
    // Lease ids come from a counter in the file, read and written once per
    // claim inside the write transaction: unique across every connection.
    LeaseId last_lease = db.query_int64("SELECT value FROM meta WHERE key = 'last_lease_id'");
    const LeaseId first_lease = last_lease;
    for (const auto& [job_id, count] : quota) {
        auto job = load_job(job_id);
        if (!job) continue;
        std::vector<ItemRecord> items;
        {
            auto select = db.prepare(std::string("SELECT ") + sqlite_rows::kItemColumns +
                                     " FROM items WHERE job_id = ? AND state = 'queued' "
                                     "ORDER BY id LIMIT ?");
            select.bind(1, job_id).bind(2, count);
            while (select.step()) items.push_back(sqlite_rows::read_item(select));
        }
        auto activate = db.prepare(
            "UPDATE items SET state = 'active', node = ?, lease_id = ?, lease_until = ?, "
            "updated = ? WHERE id = ?");
        for (auto& item : items) {
            LeaseId lease = ++last_lease;
            activate.bind(1, options.node).bind(2, lease).bind(3, lease_until);
            activate.bind(4, now).bind(5, item.id).run();
            item.state = ItemState::active;
            item.updated = now;
            claimed.push_back({item.id, job_id, job->user, item.url, lease});
            pending.items.push_back({job->user, std::move(item)});
        }
        auto n = static_cast<std::int64_t>(items.size());
        bool was_queued = job->state == JobState::queued;
        job->counts.queued -= n;
        job->counts.active += n;
        if (was_queued) job->state = JobState::running;
        write_job(*job, now);
        pending.changed.push_back({*job, was_queued});
    }
    if (last_lease != first_lease)
        db.prepare("UPDATE meta SET value = ? WHERE key = 'last_lease_id'")
            .bind(1, last_lease)
            .run();
    txn.commit();
    changes.push(std::move(pending));
    return claimed;
}

ApplySummary SqliteJobStore::Impl::apply(const std::vector<ItemOutcome>& outcomes) {
    ApplySummary summary;
    if (outcomes.empty()) return summary;
    TimeMs now = this->now();
    StoreChanges pending;
    std::map<JobId, std::pair<JobSnapshot, JobState>> jobs;  // current, state before
    Transaction txn(db);
    for (const ItemOutcome& result : outcomes) {
        ItemRecord item;
        LeaseId held = 0;  // the lease the item is (or was last) claimed under
        {
            auto select = db.prepare(std::string("SELECT ") + sqlite_rows::kItemColumns +
                                     ", lease_id FROM items WHERE id = ?");
            select.bind(1, result.item);
            if (!select.step()) {
                ++summary.ignored;  // deleted meanwhile
                if (result.ok()) summary.orphaned.push_back({result.sha256, result.format});
                continue;
            }
            item = sqlite_rows::read_item(select);
            held = select.column_int64(sqlite_rows::kItemColumnCount);  // NULL reads as 0
        }
        // The fence: only the claim the item is under may finish it. Another
        // lease means ours ran out and the item was requeued (and maybe
        // claimed again, by any node): that claim's outcome counts, not ours.
        if (held != result.lease) {
            ++summary.fenced;
            if (result.ok()) summary.orphaned.push_back({result.sha256, result.format});
            continue;
        }
        if (item.state != ItemState::active) {
            ++summary.ignored;  // cancelled meanwhile; its late result changes nothing
            if (result.ok()) summary.orphaned.push_back({result.sha256, result.format});
            continue;
        }
        auto it = jobs.find(item.job);
        if (it == jobs.end()) {
            auto job = load_job(item.job);
            if (!job) {
                ++summary.ignored;
                continue;
            }
            it = jobs.emplace(item.job, std::make_pair(*job, job->state)).first;
        }
        JobSnapshot& job = it->second.first;
        switch (sqlite_rows::apply_outcome(result, item, job, summary, now)) {
            case ItemState::done: {
                auto update = db.prepare(
                    "UPDATE items SET state = 'done', reason = NULL, http_status = ?, sha256 = ?, "
                    "bytes = ?, width = ?, height = ?, format = ?, attempts = ?, updated = ? "
                    "WHERE id = ?");
                if (item.http_status)
                    update.bind(1, item.http_status);
                else
                    update.bind(1, nullptr);
                update.bind(2, item.sha256).bind(3, item.bytes).bind(4, item.width);
                update.bind(5, item.height).bind(6, extension(item.format));
                update.bind(7, item.attempts).bind(8, now).bind(9, item.id).run();
                break;
            }
            case ItemState::queued: {
                auto update = db.prepare(
                    "UPDATE items SET state = 'queued', node = NULL, lease_id = NULL, "
                    "lease_until = NULL, updated = ? WHERE id = ?");
                update.bind(1, now).bind(2, item.id).run();
                break;
            }
            default: {
                auto update = db.prepare(
                    "UPDATE items SET state = ?, reason = ?, http_status = ?, attempts = ?, "
                    "updated = ? WHERE id = ?");
                update.bind(1, to_string(item.state)).bind(2, to_string(item.reason));
                if (item.http_status)
                    update.bind(3, item.http_status);
                else
                    update.bind(3, nullptr);
                update.bind(4, item.attempts).bind(5, now).bind(6, item.id).run();
                break;
            }
        }
        pending.items.push_back({job.user, std::move(item)});
    }
    for (auto& [id, entry] : jobs) {
        auto& [job, state_before] = entry;
        sqlite_rows::settle_state(job);
        write_job(job, now);
        pending.changed.push_back({job, job.state != state_before});
    }
    txn.commit();
    changes.push(std::move(pending));
    return summary;
}

SqliteJobStore::SqliteJobStore(Database& db, const StoreOptions& options)
    : impl_(std::make_unique<Impl>(db, options)) {}

SqliteJobStore::~SqliteJobStore() = default;

// Runs `work` under the database lock, then delivers the changes it queued
// (and any another thread left) once the lock is released.
template <typename Work>
auto SqliteJobStore::write(Work&& work) {
    struct DeliverAfter {
        ChangeQueue& changes;
        ~DeliverAfter() { changes.deliver(); }
    } deliver_after{impl_->changes};
    std::lock_guard lock(impl_->db.mutex());
    return work(*impl_);
}

void SqliteJobStore::set_observer(StoreObserver* observer) {
    impl_->changes.set_observer(observer);
}

JobSnapshot SqliteJobStore::create_job(const NewJob& job) {
    return write([&](Impl& impl) { return impl.create_job(job); });
}

std::vector<JobSnapshot> SqliteJobStore::list_jobs(UserId user) {
    std::lock_guard lock(impl_->db.mutex());
    return impl_->list_jobs(user);
}

std::optional<JobSnapshot> SqliteJobStore::get_job(UserId user, JobId job) {
    std::lock_guard lock(impl_->db.mutex());
    return impl_->load_user_job(user, job);
}

void SqliteJobStore::visit_jobs(UserId user, const JobsVisitor& visit) {
    // No delivery runs and no commit happens while `visit` looks: the list is
    // exactly as of last_commit(), and every change after it is delivered later.
    std::lock_guard delivery(impl_->changes.delivery_mutex());
    std::lock_guard lock(impl_->db.mutex());
    visit(impl_->list_jobs(user), impl_->changes.last_commit());
}

std::optional<ItemPage> SqliteJobStore::list_items(UserId user, JobId job, const ItemQuery& query) {
    std::lock_guard lock(impl_->db.mutex());
    auto& db = impl_->db;
    ItemId first = 0, last = 0;
    {
        auto stmt =
            db.prepare("SELECT first_item, last_item FROM jobs WHERE id = ? AND user_id = ?");
        stmt.bind(1, job).bind(2, user);
        if (!stmt.step()) return std::nullopt;
        first = stmt.column_int64(0);
        last = stmt.column_int64(1);
    }
    int limit = std::max(query.limit, 1);  // the API bounds it (--items-page-max)
    ItemPage page;
    // One row more than asked tells whether there is a next page.
    auto collect = [&](Statement& stmt) {
        while (stmt.step()) {
            if (static_cast<int>(page.items.size()) == limit) {
                page.next = page.items.back().id;
                break;
            }
            page.items.push_back(sqlite_rows::read_item(stmt));
        }
    };
    if (query.state) {
        auto stmt = db.prepare(std::string("SELECT ") + sqlite_rows::kItemColumns +
                               " FROM items WHERE job_id = ? AND state = ? AND id > ? "
                               "ORDER BY id LIMIT ?");
        stmt.bind(1, job).bind(2, to_string(*query.state)).bind(3, query.after).bind(4, limit + 1);
        collect(stmt);
    } else {
        // A rowid range scan: the job's items have contiguous ids.
        auto stmt = db.prepare(std::string("SELECT ") + sqlite_rows::kItemColumns +
                               " FROM items WHERE id > ? AND id <= ? AND job_id = ? "
                               "ORDER BY id LIMIT ?");
        stmt.bind(1, std::max(query.after, first - 1))
            .bind(2, last)
            .bind(3, job)
            .bind(4, limit + 1);
        collect(stmt);
    }
    return page;
}

std::optional<ItemRecord> SqliteJobStore::get_item(UserId user, JobId job, ItemId item) {
    std::lock_guard lock(impl_->db.mutex());
    auto stmt = impl_->db.prepare(std::string("SELECT ") + sqlite_rows::kItemColumns +
                                  " FROM items WHERE id = ? AND job_id = ? AND job_id IN "
                                  "(SELECT id FROM jobs WHERE user_id = ?)");
    stmt.bind(1, item).bind(2, job).bind(3, user);
    if (!stmt.step()) return std::nullopt;
    return sqlite_rows::read_item(stmt);
}

std::optional<ImageFormat> SqliteJobStore::find_user_blob(UserId user, std::string_view sha256) {
    if (!sqlite_rows::is_sha256_hex(sha256)) return std::nullopt;
    std::lock_guard lock(impl_->db.mutex());
    auto stmt = impl_->db.prepare(
        "SELECT i.format FROM items i JOIN jobs j ON j.id = i.job_id "
        "WHERE i.sha256 = ? AND i.state = 'done' AND j.user_id = ? LIMIT 1");
    stmt.bind(1, sha256).bind(2, user);
    if (!stmt.step()) return std::nullopt;
    return parse_extension(stmt.column_text(0));
}

bool SqliteJobStore::blob_referenced(std::string_view sha256) {
    std::lock_guard lock(impl_->db.mutex());
    auto stmt = impl_->db.prepare("SELECT 1 FROM items WHERE sha256 = ? LIMIT 1");
    stmt.bind(1, sha256);
    return stmt.step();
}

std::int64_t SqliteJobStore::queued_total() {
    std::lock_guard lock(impl_->db.mutex());
    return impl_->db.query_int64(
        "SELECT coalesce(sum(queued), 0) FROM jobs WHERE state IN ('queued', 'running') AND queued "
        "> 0");
}

bool SqliteJobStore::has_runnable() {
    std::lock_guard lock(impl_->db.mutex());
    return impl_->db.query_int64(
               "SELECT count(*) FROM (SELECT 1 FROM jobs WHERE state IN ('queued', 'running') AND "
               "queued > 0 LIMIT 1)") > 0;
}

JobOpResult SqliteJobStore::pause_job(UserId user, JobId job) {
    return write([&](Impl& impl) { return impl.pause(user, job); });
}

JobOpResult SqliteJobStore::resume_job(UserId user, JobId job) {
    return write([&](Impl& impl) { return impl.resume(user, job); });
}

JobOpResult SqliteJobStore::cancel_job(UserId user, JobId job) {
    return write([&](Impl& impl) { return impl.cancel(user, job); });
}

JobOpResult SqliteJobStore::retry_job(UserId user, JobId job, const RetrySelection& which) {
    return write([&](Impl& impl) { return impl.retry(user, job, which); });
}

JobOpResult SqliteJobStore::rename_job(UserId user, JobId job, std::string_view name) {
    return write([&](Impl& impl) { return impl.rename(user, job, name); });
}

JobOpResult SqliteJobStore::delete_job(UserId user, JobId job) {
    return write([&](Impl& impl) { return impl.remove(user, job); });
}

std::vector<ClaimedItem> SqliteJobStore::claim_next_items(std::size_t max, const SlotLoad& load) {
    return write([&](Impl& impl) { return impl.claim(max, load); });
}

ApplySummary SqliteJobStore::apply_outcomes(const std::vector<ItemOutcome>& outcomes) {
    return write([&](Impl& impl) { return impl.apply(outcomes); });
}

std::int64_t SqliteJobStore::requeue_active() {
    return write([&](Impl& impl) { return impl.requeue_active(); });
}

std::int64_t SqliteJobStore::renew_leases() {
    std::lock_guard lock(impl_->db.mutex());
    return impl_->renew_leases();
}

std::vector<ItemId> SqliteJobStore::released_claims(const std::vector<HeldClaim>& held) {
    std::vector<ItemId> released;
    std::lock_guard lock(impl_->db.mutex());
    auto held_still = impl_->db.prepare(
        "SELECT 1 FROM items i JOIN jobs j ON j.id = i.job_id WHERE i.id = ? AND "
        "i.state = 'active' AND i.lease_id = ? AND j.state <> 'paused'");
    for (const HeldClaim& claim : held) {
        held_still.reset();
        held_still.bind(1, claim.item).bind(2, claim.lease);
        if (!held_still.step()) released.push_back(claim.item);
    }
    std::sort(released.begin(), released.end());
    return released;
}

std::int64_t SqliteJobStore::expire_leases() {
    return write([&](Impl& impl) { return impl.expire_leases(); });
}

std::int64_t SqliteJobStore::leased_total() {
    std::lock_guard lock(impl_->db.mutex());
    // The jobs' counters are exact (every transition updates them in its
    // transaction): no need to count items.
    return impl_->db.query_int64("SELECT coalesce(sum(active), 0) FROM jobs WHERE active > 0");
}

RecoverySummary SqliteJobStore::recover() {
    return write([&](Impl& impl) { return impl.recover(); });
}

}  // namespace litchi
