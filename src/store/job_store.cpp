// Jobs and items in SQLite: see job_store.hpp. Every public method takes the
// database mutex, does its work in at most one transaction, keeps the job
// row's counters in step with the item rows, and tells the observer after the
// commit (still under the mutex, so notifications come in commit order).
#include "store/job_store.hpp"

#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>

#include "fetch/url_check.hpp"
#include "store/database.hpp"
#include "store/observer.hpp"

namespace litchi {
namespace {

// A URL that failed admission is kept for the user to see, but bounded and
// made valid UTF-8 without control characters, so every JSON writer and
// terminal downstream can show it.
constexpr std::size_t kMaxStoredBadUrl = 2048;

std::string sanitize_text(std::string_view text, std::size_t max_bytes) {
    std::string out;
    out.reserve(std::min(text.size(), max_bytes));
    std::size_t i = 0;
    while (i < text.size() && out.size() < max_bytes) {
        auto c = static_cast<unsigned char>(text[i]);
        std::size_t length = c < 0x80           ? 1
                             : (c >> 5) == 0x6  ? 2
                             : (c >> 4) == 0xE  ? 3
                             : (c >> 3) == 0x1E ? 4
                                                : 0;
        bool valid = length > 0 && i + length <= text.size();
        for (std::size_t k = 1; valid && k < length; ++k)
            valid = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
        if (valid && length == 1 && (c < 0x20 || c == 0x7F)) valid = false;
        if (!valid) {
            out += "\xEF\xBF\xBD";  // U+FFFD
            ++i;
            continue;
        }
        if (out.size() + length > max_bytes) break;
        out.append(text.substr(i, length));
        i += length;
    }
    return out;
}

std::string_view trim(std::string_view text) {
    constexpr std::string_view kSpace = " \t\r\n\f\v";
    auto begin = text.find_first_not_of(kSpace);
    if (begin == std::string_view::npos) return {};
    auto end = text.find_last_not_of(kSpace);
    return text.substr(begin, end - begin + 1);
}

bool is_sha256_hex(std::string_view text) {
    if (text.size() != 64) return false;
    return std::all_of(text.begin(), text.end(),
                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

constexpr const char* kJobColumns =
    "id, user_id, name, state, created, updated, total, queued, active, done, failed, cancelled, "
    "bytes";

JobSnapshot read_job(const Statement& stmt) {
    JobSnapshot job;
    job.id = stmt.column_int64(0);
    job.user = stmt.column_int64(1);
    job.name = std::string(stmt.column_text(2));
    job.state = parse_job_state(stmt.column_text(3)).value_or(JobState::queued);
    job.created = stmt.column_int64(4);
    job.updated = stmt.column_int64(5);
    job.counts.total = stmt.column_int64(6);
    job.counts.queued = stmt.column_int64(7);
    job.counts.active = stmt.column_int64(8);
    job.counts.done = stmt.column_int64(9);
    job.counts.failed = stmt.column_int64(10);
    job.counts.cancelled = stmt.column_int64(11);
    job.bytes = static_cast<std::uint64_t>(stmt.column_int64(12));
    return job;
}

constexpr const char* kItemColumns =
    "id, job_id, position, url, state, reason, http_status, sha256, bytes, width, height, "
    "format, attempts, updated";

ItemRecord read_item(const Statement& stmt) {
    ItemRecord item;
    item.id = stmt.column_int64(0);
    item.job = stmt.column_int64(1);
    item.position = stmt.column_int64(2);
    item.url = std::string(stmt.column_text(3));
    item.state = parse_item_state(stmt.column_text(4)).value_or(ItemState::queued);
    if (!stmt.is_null(5))
        item.reason = parse_failure_reason(stmt.column_text(5)).value_or(FailureReason::none);
    item.http_status = static_cast<int>(stmt.column_int64(6));
    item.sha256 = std::string(stmt.column_text(7));
    item.bytes = static_cast<std::uint64_t>(stmt.column_int64(8));
    item.width = static_cast<int>(stmt.column_int64(9));
    item.height = static_cast<int>(stmt.column_int64(10));
    if (!stmt.is_null(11))
        item.format = parse_extension(stmt.column_text(11)).value_or(ImageFormat::unknown);
    item.attempts = static_cast<int>(stmt.column_int64(12));
    item.updated = stmt.column_int64(13);
    return item;
}

bool is_runnable(JobState state) {
    return state == JobState::queued || state == JobState::running;
}

// Anything that still holds work left becomes done once nothing is queued or
// active (failures included). Paused counts too: pausing the last few active
// items, which then finish, leaves nothing to resume.
void settle_state(JobSnapshot& job) {
    if ((is_runnable(job.state) || job.state == JobState::paused) && job.counts.queued == 0 &&
        job.counts.active == 0)
        job.state = JobState::done;
}

}  // namespace

std::vector<std::string_view> split_url_lines(std::string_view body) {
    std::vector<std::string_view> lines;
    while (!body.empty()) {
        auto newline = body.find('\n');
        auto line = trim(body.substr(0, newline));
        if (!line.empty()) lines.push_back(line);
        if (newline == std::string_view::npos) break;
        body.remove_prefix(newline + 1);
    }
    return lines;
}

struct JobStore::Impl {
    explicit Impl(Database& database) : db(database) {}

    Database& db;
    StoreObserver* observer = nullptr;

    // Fairness cursors: the user served last, and per user the job served last.
    UserId last_user = 0;
    std::unordered_map<UserId, JobId> last_job;

    // Recent progress per job for `rate`: (time, done+failed) samples, the
    // oldest at or just before the window's start.
    using Clock = std::chrono::steady_clock;
    struct Sample {
        Clock::time_point at;
        std::int64_t finished;
    };
    std::chrono::milliseconds rate_window{10'000};
    std::unordered_map<JobId, std::deque<Sample>> rates;

    // Notifications gathered during a transaction, sent after its commit.
    struct Pending {
        std::vector<std::pair<UserId, ItemRecord>> items;
        std::vector<std::pair<JobSnapshot, bool>> jobs;  // snapshot, state changed
        std::vector<JobSnapshot> bulk;
        std::vector<JobSnapshot> created;
        std::vector<JobSnapshot> deleted;
    };

    void notify(Pending& pending) {
        if (!observer) return;
        for (const auto& job : pending.created) observer->on_job_created(with_rate(job));
        for (const auto& [user, item] : pending.items)
            observer->on_item_changed(user, item.job, item);
        for (const auto& job : pending.bulk) observer->on_items_changed_in_bulk(with_rate(job));
        for (const auto& [job, state_changed] : pending.jobs)
            observer->on_job_changed(with_rate(job), state_changed);
        for (const auto& job : pending.deleted) observer->on_job_deleted(with_rate(job));
    }

    // --- rate ---

    void record_progress(const JobSnapshot& job) {
        auto& samples = rates[job.id];
        auto now = Clock::now();
        samples.push_back({now, job.counts.done + job.counts.failed});
        prune(samples, now);
        if (job.state == JobState::done || job.state == JobState::cancelled) rates.erase(job.id);
    }

    void prune(std::deque<Sample>& samples, Clock::time_point now) {
        while (samples.size() > 1 && samples[1].at <= now - rate_window) samples.pop_front();
        // Bounded however fast results come: thin out to at most 64 samples.
        while (samples.size() > 64) samples.erase(samples.begin() + 1);
    }

    JobSnapshot with_rate(JobSnapshot job) {
        job.rate = 0;
        job.eta.reset();
        if (job.state == JobState::done) {
            job.eta = 0.0;
            return job;
        }
        auto it = rates.find(job.id);
        if (it != rates.end()) {
            auto now = Clock::now();
            prune(it->second, now);
            const auto& samples = it->second;
            if (samples.size() >= 2) {
                double seconds = std::chrono::duration<double>(now - samples.front().at).count();
                auto finished = samples.back().finished - samples.front().finished;
                // A fraction of a second is too short to call a rate.
                if (seconds >= 0.2 && finished > 0) job.rate = finished / seconds;
            }
        }
        if (job.state == JobState::running && job.rate > 0)
            job.eta =
                std::ceil(static_cast<double>(job.counts.queued + job.counts.active) / job.rate);
        return job;
    }

    // --- rows ---

    std::optional<JobSnapshot> load_job(JobId id) {
        auto stmt = db.prepare(std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id = ?");
        stmt.bind(1, id);
        if (!stmt.step()) return std::nullopt;
        return read_job(stmt);
    }

    std::optional<JobSnapshot> load_user_job(UserId user, JobId id) {
        auto job = load_job(id);
        if (!job || job->user != user) return std::nullopt;  // another user's job does not exist
        return job;
    }

    void write_job(JobSnapshot& job, TimeMs now) {
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

    std::vector<ItemId> active_items(JobId job) {
        std::vector<ItemId> ids;
        auto stmt =
            db.prepare("SELECT id FROM items WHERE job_id = ? AND state = 'active' ORDER BY id");
        stmt.bind(1, job);
        while (stmt.step()) ids.push_back(stmt.column_int64(0));
        return ids;
    }

    JobSnapshot create_job(UserId user, std::string_view name,
                           const std::vector<std::string_view>& urls,
                           const FetchLimits& admission) {
        TimeMs now = now_ms();
        JobSnapshot job;
        job.user = user;
        job.created = job.updated = now;
        Pending pending;
        {
            // Accepting a job is a promise: fsync this commit (see Database).
            struct SyncFull {
                Database& db;
                explicit SyncFull(Database& d) : db(d) { db.set_synchronous_full(true); }
                ~SyncFull() {
                    try {
                        db.set_synchronous_full(false);
                    } catch (...) {
                        // Staying at FULL is slower, never less safe.
                    }
                }
            } sync_full(db);
            Transaction txn(db);
            auto insert_job = db.prepare(
                "INSERT INTO jobs(user_id, name, state, created, updated) VALUES (?, ?, 'queued', "
                "?, ?)");
            std::string job_name = sanitize_text(trim(name), 200);
            insert_job.bind(1, user).bind(2, job_name).bind(3, now).bind(4, now).run();
            job.id = db.last_insert_rowid();
            job.name = job_name.empty() ? "job " + std::to_string(job.id) : job_name;

            auto insert_item = db.prepare(
                "INSERT INTO items(job_id, position, url, state, reason, updated) "
                "VALUES (?, ?, ?, ?, ?, ?)");
            ItemId first = 0, last = 0;
            std::int64_t position = 0;
            for (std::string_view raw : urls) {
                auto text = trim(raw);
                UrlCheck check = check_url(text, admission);
                insert_item.bind(1, job.id).bind(2, position++).bind(6, now);
                if (check.ok) {
                    insert_item.bind(3, check.url).bind(4, "queued").bind(5, nullptr);
                    ++job.counts.queued;
                } else {
                    auto reason =
                        check.reason == FailureReason::none ? FailureReason::bad_url : check.reason;
                    insert_item.bind(3, sanitize_text(text, kMaxStoredBadUrl));
                    insert_item.bind(4, "failed").bind(5, to_string(reason));
                    ++job.counts.failed;
                }
                insert_item.run();
                last = db.last_insert_rowid();
                if (first == 0) first = last;
            }
            job.counts.total = static_cast<std::int64_t>(urls.size());
            settle_state(job);
            auto finish = db.prepare(
                "UPDATE jobs SET name = ?, state = ?, first_item = ?, last_item = ?, total = ?, "
                "queued = ?, failed = ? WHERE id = ?");
            finish.bind(1, job.name).bind(2, to_string(job.state)).bind(3, first).bind(4, last);
            finish.bind(5, job.counts.total).bind(6, job.counts.queued).bind(7, job.counts.failed);
            finish.bind(8, job.id).run();
            txn.commit();
        }
        pending.created.push_back(job);
        notify(pending);
        return with_rate(job);
    }

    std::vector<JobSnapshot> list_jobs(UserId user) {
        std::vector<JobSnapshot> jobs;
        auto stmt = db.prepare(std::string("SELECT ") + kJobColumns +
                               " FROM jobs WHERE user_id = ? ORDER BY id DESC");
        stmt.bind(1, user);
        while (stmt.step()) jobs.push_back(with_rate(read_job(stmt)));
        return jobs;
    }

    // --- claims ---

    std::vector<ClaimedItem> claim(std::size_t max) {
        std::vector<ClaimedItem> claimed;
        if (max == 0) return claimed;

        // Runnable jobs per user, in id order (the partial index jobs_runnable).
        std::map<UserId, std::vector<std::pair<JobId, std::int64_t>>> runnable;
        {
            auto stmt = db.prepare(
                "SELECT user_id, id, queued FROM jobs WHERE state IN ('queued', 'running') AND "
                "queued > 0 ORDER BY user_id, id");
            while (stmt.step())
                runnable[stmt.column_int64(0)].push_back(
                    {stmt.column_int64(1), stmt.column_int64(2)});
        }
        if (runnable.empty()) return claimed;

        // Hand out slots one at a time: users in turn starting after the one
        // served last, and within a user, jobs in turn after the one served
        // last. A user's share does not grow with how many jobs they submit.
        std::map<JobId, std::int64_t> quota;
        std::map<JobId, UserId> owner;
        std::vector<UserId> users;
        for (const auto& [user, jobs] : runnable) users.push_back(user);
        std::rotate(users.begin(), std::upper_bound(users.begin(), users.end(), last_user),
                    users.end());
        std::size_t assigned = 0;
        bool progress = true;
        while (assigned < max && progress) {
            progress = false;
            for (UserId user : users) {
                if (assigned >= max) break;
                auto& jobs = runnable[user];
                // The next job after the last served one that still has items to give.
                auto start = std::upper_bound(jobs.begin(), jobs.end(), last_job[user],
                                              [](JobId id, const auto& j) { return id < j.first; });
                for (std::size_t k = 0; k < jobs.size(); ++k) {
                    auto& [job, available] =
                        *(jobs.begin() + ((start - jobs.begin()) + k) % jobs.size());
                    if (quota[job] >= available) continue;
                    ++quota[job];
                    owner[job] = user;
                    last_job[user] = job;
                    last_user = user;
                    ++assigned;
                    progress = true;
                    break;
                }
            }
        }

        TimeMs now = now_ms();
        Pending pending;
        Transaction txn(db);
        for (const auto& [job_id, count] : quota) {
            if (count == 0) continue;
            auto job = load_job(job_id);
            if (!job) continue;
            std::vector<ItemRecord> items;
            {
                auto select = db.prepare(std::string("SELECT ") + kItemColumns +
                                         " FROM items WHERE job_id = ? AND state = 'queued' "
                                         "ORDER BY id LIMIT ?");
                select.bind(1, job_id).bind(2, count);
                while (select.step()) items.push_back(read_item(select));
            }
            auto activate =
                db.prepare("UPDATE items SET state = 'active', updated = ? WHERE id = ?");
            for (auto& item : items) {
                activate.bind(1, now).bind(2, item.id).run();
                item.state = ItemState::active;
                item.updated = now;
                claimed.push_back({item.id, job_id, job->user, item.url});
                pending.items.push_back({job->user, std::move(item)});
            }
            auto n = static_cast<std::int64_t>(items.size());
            bool was_queued = job->state == JobState::queued;
            job->counts.queued -= n;
            job->counts.active += n;
            if (was_queued) job->state = JobState::running;
            write_job(*job, now);
            if (was_queued) record_progress(*job);  // the rate's starting point
            pending.jobs.push_back({*job, was_queued});
        }
        txn.commit();
        notify(pending);
        return claimed;
    }

    // --- results ---

    ApplySummary apply(const std::vector<FetchResult>& results) {
        ApplySummary summary;
        if (results.empty()) return summary;
        TimeMs now = now_ms();
        Pending pending;
        std::map<JobId, std::pair<JobSnapshot, JobState>> jobs;  // current, state before
        Transaction txn(db);
        for (const FetchResult& result : results) {
            ItemRecord item;
            {
                auto select =
                    db.prepare(std::string("SELECT ") + kItemColumns + " FROM items WHERE id = ?");
                select.bind(1, static_cast<std::int64_t>(result.id));
                if (!select.step()) {
                    ++summary.ignored;  // deleted meanwhile
                    if (result.ok()) summary.orphaned.push_back({result.sha256, result.format});
                    continue;
                }
                item = read_item(select);
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
            --job.counts.active;
            item.updated = now;

            if (result.ok()) {
                item.state = ItemState::done;
                item.reason = FailureReason::none;
                item.http_status = result.http_status;
                item.sha256 = result.sha256;
                item.bytes = result.bytes;
                item.width = result.width;
                item.height = result.height;
                item.format = result.format;
                item.attempts += result.attempts;
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
                ++job.counts.done;
                job.bytes += result.bytes;
                ++summary.done;
                summary.bytes += result.bytes;
            } else if (result.reason == FailureReason::cancelled &&
                       job.state != JobState::cancelled) {
                // Cancelled because its job was paused (or paused and resumed
                // before this came back): it was not the user's cancel, so it
                // waits in the queue again and is not counted as cancelled.
                item.state = ItemState::queued;
                auto update =
                    db.prepare("UPDATE items SET state = 'queued', updated = ? WHERE id = ?");
                update.bind(1, now).bind(2, item.id).run();
                ++job.counts.queued;
                ++summary.requeued;
            } else {
                bool cancelled = result.reason == FailureReason::cancelled;
                item.state = cancelled ? ItemState::cancelled : ItemState::failed;
                item.reason = result.reason;
                item.http_status = result.http_status;
                item.attempts += result.attempts;
                auto update = db.prepare(
                    "UPDATE items SET state = ?, reason = ?, http_status = ?, attempts = ?, "
                    "updated = ? WHERE id = ?");
                update.bind(1, to_string(item.state)).bind(2, to_string(item.reason));
                if (item.http_status)
                    update.bind(3, item.http_status);
                else
                    update.bind(3, nullptr);
                update.bind(4, item.attempts).bind(5, now).bind(6, item.id).run();
                ++job.counts.of(item.state);
                ++(cancelled ? summary.cancelled : summary.failed);
            }
            pending.items.push_back({job.user, std::move(item)});
        }
        for (auto& [id, entry] : jobs) {
            auto& [job, state_before] = entry;
            settle_state(job);
            write_job(job, now);
            record_progress(job);
            pending.jobs.push_back({job, job.state != state_before});
        }
        txn.commit();
        notify(pending);
        return summary;
    }

    // --- user actions ---

    JobOpResult pause(UserId user, JobId id) {
        JobOpResult result;
        auto job = load_user_job(user, id);
        if (!job) return result;
        result.status = JobOpStatus::ok;
        if (job->state == JobState::paused) {
            result.job = with_rate(*job);
            return result;
        }
        if (!is_runnable(job->state)) {
            result.status = JobOpStatus::conflict;
            result.job = with_rate(*job);
            return result;
        }
        Pending pending;
        Transaction txn(db);
        job->state = JobState::paused;
        write_job(*job, now_ms());
        result.in_flight = active_items(id);
        txn.commit();
        pending.jobs.push_back({*job, true});
        notify(pending);
        result.job = with_rate(*job);
        return result;
    }

    JobOpResult resume(UserId user, JobId id) {
        JobOpResult result;
        auto job = load_user_job(user, id);
        if (!job) return result;
        result.status = JobOpStatus::ok;
        if (job->state == JobState::cancelled) result.status = JobOpStatus::conflict;
        if (job->state != JobState::paused) {
            result.job = with_rate(*job);
            return result;
        }
        Pending pending;
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
        settle_state(*job);
        write_job(*job, now_ms());
        txn.commit();
        pending.jobs.push_back({*job, true});
        notify(pending);
        result.job = with_rate(*job);
        return result;
    }

    JobOpResult cancel(UserId user, JobId id) {
        JobOpResult result;
        auto job = load_user_job(user, id);
        if (!job) return result;
        result.status = JobOpStatus::ok;
        if (job->state == JobState::cancelled) {
            result.job = with_rate(*job);
            return result;
        }
        if (job->state == JobState::done) {
            result.status = JobOpStatus::conflict;
            result.job = with_rate(*job);
            return result;
        }
        TimeMs now = now_ms();
        Pending pending;
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
        rates.erase(id);
        pending.bulk.push_back(*job);
        pending.jobs.push_back({*job, true});
        notify(pending);
        result.job = with_rate(*job);
        return result;
    }

    JobOpResult retry(UserId user, JobId id) {
        JobOpResult result;
        auto job = load_user_job(user, id);
        if (!job) return result;
        result.status = JobOpStatus::ok;
        if (job->state == JobState::cancelled) {
            result.status = JobOpStatus::conflict;
            result.job = with_rate(*job);
            return result;
        }
        TimeMs now = now_ms();
        Pending pending;
        Transaction txn(db);
        // bad_url items would fail the same way again: they stay failed.
        auto update = db.prepare(
            "UPDATE items SET state = 'queued', reason = NULL, http_status = NULL, updated = ? "
            "WHERE job_id = ? AND state = 'failed' AND reason IS NOT 'bad_url'");
        update.bind(1, now).bind(2, id).run();
        auto requeued = static_cast<std::int64_t>(db.changes());
        if (requeued == 0) {
            result.job = with_rate(*job);
            return result;  // nothing to retry; the transaction rolls back unchanged
        }
        JobState before = job->state;
        job->counts.failed -= requeued;
        job->counts.queued += requeued;
        if (job->state == JobState::done) job->state = JobState::running;
        write_job(*job, now);
        txn.commit();
        pending.bulk.push_back(*job);
        pending.jobs.push_back({*job, job->state != before});
        notify(pending);
        result.job = with_rate(*job);
        return result;
    }

    JobOpResult remove(UserId user, JobId id) {
        JobOpResult result;
        auto job = load_user_job(user, id);
        if (!job) return result;
        result.status = JobOpStatus::ok;
        Pending pending;
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
        rates.erase(id);
        pending.deleted.push_back(*job);
        notify(pending);
        result.job = with_rate(*job);
        return result;
    }

    // --- recovery ---

    std::int64_t requeue_active() {
        TimeMs now = now_ms();
        Pending pending;
        Transaction txn(db);
        std::vector<JobId> touched;
        {
            auto stmt = db.prepare("SELECT id FROM jobs WHERE active > 0");
            while (stmt.step()) touched.push_back(stmt.column_int64(0));
        }
        auto update =
            db.prepare("UPDATE items SET state = 'queued', updated = ? WHERE state = 'active'");
        update.bind(1, now).run();
        auto requeued = static_cast<std::int64_t>(db.changes());
        for (JobId id : touched) {
            auto job = load_job(id);
            if (!job) continue;
            job->counts.queued += job->counts.active;
            job->counts.active = 0;
            write_job(*job, now);
            pending.bulk.push_back(*job);
            pending.jobs.push_back({*job, false});
        }
        txn.commit();
        notify(pending);
        return requeued;
    }

    RecoverySummary recover() {
        RecoverySummary summary;
        summary.requeued = requeue_active();
        TimeMs now = now_ms();
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
            auto stmt = db.prepare(std::string("SELECT ") + kJobColumns + " FROM jobs");
            while (stmt.step()) jobs.push_back(read_job(stmt));
        }
        for (auto& job : jobs) {
            JobSnapshot fixed = job;
            fixed.counts = counts[job.id];
            fixed.bytes = static_cast<std::uint64_t>(bytes[job.id]);
            // A finished job that has queued items again (a crash between
            // steps cannot cause that today, but a hand-edited file can).
            if (fixed.state == JobState::done && fixed.counts.queued > 0)
                fixed.state = JobState::running;
            settle_state(fixed);
            if (fixed.counts != job.counts || fixed.bytes != job.bytes ||
                fixed.state != job.state) {
                write_job(fixed, now);
                ++summary.jobs_repaired;
            }
        }
        txn.commit();
        return summary;
    }
};

JobStore::JobStore(Database& db) : impl_(std::make_unique<Impl>(db)) {}
JobStore::~JobStore() = default;

void JobStore::set_observer(StoreObserver* observer) {
    std::lock_guard lock(impl_->db.mutex());
    impl_->observer = observer;
}

JobSnapshot JobStore::create_job(UserId user, std::string_view name,
                                 const std::vector<std::string_view>& urls,
                                 const FetchLimits& admission) {
    std::lock_guard lock(impl_->db.mutex());
    return impl_->create_job(user, name, urls, admission);
}

JobSnapshot JobStore::create_job(UserId user, std::string_view name,
                                 const std::vector<std::string_view>& urls, bool allow_private) {
    FetchLimits admission;
    admission.allow_private = allow_private;
    return create_job(user, name, urls, admission);
}

JobSnapshot JobStore::create_job(UserId user, std::string_view name,
                                 const std::vector<std::string>& urls, bool allow_private) {
    std::vector<std::string_view> views(urls.begin(), urls.end());
    return create_job(user, name, views, allow_private);
}

std::vector<JobSnapshot> JobStore::list_jobs(UserId user) {
    std::lock_guard lock(impl_->db.mutex());
    return impl_->list_jobs(user);
}

std::optional<JobSnapshot> JobStore::get_job(UserId user, JobId job) {
    std::lock_guard lock(impl_->db.mutex());
    auto found = impl_->load_user_job(user, job);
    if (!found) return std::nullopt;
    return impl_->with_rate(*found);
}

void JobStore::visit_jobs(UserId user,
                          const std::function<void(const std::vector<JobSnapshot>&)>& visit) {
    std::lock_guard lock(impl_->db.mutex());
    visit(impl_->list_jobs(user));
}

std::optional<ItemPage> JobStore::list_items(UserId user, JobId job, const ItemQuery& query) {
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
    int limit = std::clamp(query.limit, 1, 1000);
    ItemPage page;
    // One row more than asked tells whether there is a next page.
    auto collect = [&](Statement& stmt) {
        while (stmt.step()) {
            if (static_cast<int>(page.items.size()) == limit) {
                page.next = page.items.back().id;
                break;
            }
            page.items.push_back(read_item(stmt));
        }
    };
    if (query.state) {
        auto stmt = db.prepare(std::string("SELECT ") + kItemColumns +
                               " FROM items WHERE job_id = ? AND state = ? AND id > ? "
                               "ORDER BY id LIMIT ?");
        stmt.bind(1, job).bind(2, to_string(*query.state)).bind(3, query.after).bind(4, limit + 1);
        collect(stmt);
    } else {
        // A rowid range scan: the job's items have contiguous ids.
        auto stmt = db.prepare(std::string("SELECT ") + kItemColumns +
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

std::optional<ItemRecord> JobStore::get_item(UserId user, JobId job, ItemId item) {
    std::lock_guard lock(impl_->db.mutex());
    auto stmt = impl_->db.prepare(std::string("SELECT ") + kItemColumns +
                                  " FROM items WHERE id = ? AND job_id = ? AND job_id IN "
                                  "(SELECT id FROM jobs WHERE user_id = ?)");
    stmt.bind(1, item).bind(2, job).bind(3, user);
    if (!stmt.step()) return std::nullopt;
    return read_item(stmt);
}

std::optional<ImageFormat> JobStore::find_user_blob(UserId user, std::string_view sha256) {
    if (!is_sha256_hex(sha256)) return std::nullopt;
    std::lock_guard lock(impl_->db.mutex());
    auto stmt = impl_->db.prepare(
        "SELECT i.format FROM items i JOIN jobs j ON j.id = i.job_id "
        "WHERE i.sha256 = ? AND i.state = 'done' AND j.user_id = ? LIMIT 1");
    stmt.bind(1, sha256).bind(2, user);
    if (!stmt.step()) return std::nullopt;
    return parse_extension(stmt.column_text(0));
}

bool JobStore::blob_referenced(std::string_view sha256) {
    std::lock_guard lock(impl_->db.mutex());
    auto stmt = impl_->db.prepare("SELECT 1 FROM items WHERE sha256 = ? LIMIT 1");
    stmt.bind(1, sha256);
    return stmt.step();
}

JobOpResult JobStore::pause_job(UserId user, JobId job) {
    std::lock_guard lock(impl_->db.mutex());
    return impl_->pause(user, job);
}

JobOpResult JobStore::resume_job(UserId user, JobId job) {
    std::lock_guard lock(impl_->db.mutex());
    return impl_->resume(user, job);
}

JobOpResult JobStore::cancel_job(UserId user, JobId job) {
    std::lock_guard lock(impl_->db.mutex());
    return impl_->cancel(user, job);
}

JobOpResult JobStore::retry_job(UserId user, JobId job) {
    std::lock_guard lock(impl_->db.mutex());
    return impl_->retry(user, job);
}

JobOpResult JobStore::delete_job(UserId user, JobId job) {
    std::lock_guard lock(impl_->db.mutex());
    return impl_->remove(user, job);
}

std::vector<ClaimedItem> JobStore::claim_next_items(std::size_t max) {
    std::lock_guard lock(impl_->db.mutex());
    return impl_->claim(max);
}

ApplySummary JobStore::apply_results(const std::vector<FetchResult>& results) {
    std::lock_guard lock(impl_->db.mutex());
    return impl_->apply(results);
}

std::int64_t JobStore::requeue_active() {
    std::lock_guard lock(impl_->db.mutex());
    return impl_->requeue_active();
}

RecoverySummary JobStore::recover() {
    std::lock_guard lock(impl_->db.mutex());
    return impl_->recover();
}

std::int64_t JobStore::queued_total() {
    std::lock_guard lock(impl_->db.mutex());
    return impl_->db.query_int64(
        "SELECT coalesce(sum(queued), 0) FROM jobs WHERE state IN ('queued', 'running') AND queued "
        "> 0");
}

bool JobStore::has_runnable() {
    std::lock_guard lock(impl_->db.mutex());
    return impl_->db.query_int64(
               "SELECT count(*) FROM (SELECT 1 FROM jobs WHERE state IN ('queued', 'running') AND "
               "queued > 0 LIMIT 1)") > 0;
}

void JobStore::set_rate_window(std::chrono::milliseconds window) {
    std::lock_guard lock(impl_->db.mutex());
    impl_->rate_window = window;
}

}  // namespace litchi
