// See sqlite_rows.hpp.
#include "store/sqlite_rows.hpp"

#include <algorithm>

#include "store/database.hpp"

namespace litchi::sqlite_rows {

ItemState apply_outcome(const ItemOutcome& result, ItemRecord& item, JobSnapshot& job,
                        ApplySummary& summary, TimeMs now) {
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
        ++job.counts.done;
        job.bytes += result.bytes;
        ++summary.done;
        summary.bytes += result.bytes;
    } else if (result.reason == FailureReason::cancelled && job.state != JobState::cancelled) {
        // Cancelled because its job was paused (or paused and resumed before
        // this came back): it was not the user's cancel, so it waits in the
        // queue again and is not counted as cancelled.
        item.state = ItemState::queued;
        ++job.counts.queued;
        ++summary.requeued;
    } else {
        bool cancelled = result.reason == FailureReason::cancelled;
        item.state = cancelled ? ItemState::cancelled : ItemState::failed;
        item.reason = result.reason;
        item.http_status = result.http_status;
        item.attempts += result.attempts;
        ++job.counts.of(item.state);
        ++(cancelled ? summary.cancelled : summary.failed);
    }
    return item.state;
}

bool is_sha256_hex(std::string_view text) {
    if (text.size() != 64) return false;
    return std::all_of(text.begin(), text.end(),
                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

const char* const kJobColumns =
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

const char* const kItemColumns =
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

std::string retry_condition(const RetrySelection& which) {
    // The http condition is_transient() states (core/reason.cpp), in SQL.
    constexpr const char* kTransientHttp =
        "(reason = 'http' AND (http_status IN (408, 429) OR http_status BETWEEN 500 AND 599))";
    std::string any_of;
    auto add = [&any_of](const std::string& part) {
        any_of += any_of.empty() ? "(" : " OR ";
        any_of += part;
    };
    if (which.reasons.empty()) {
        add(which.http_transient_only ? std::string("reason <> 'http'") : "1 = 1");
        if (which.http_transient_only) add(kTransientHttp);
    }
    for (FailureReason reason : which.reasons) {
        if (reason == FailureReason::bad_url || reason == FailureReason::none) continue;
        if (reason == FailureReason::http && which.http_transient_only)
            add(kTransientHttp);
        else
            add("reason = '" + std::string(to_string(reason)) + "'");
    }
    if (any_of.empty()) return "1 = 0";  // only bad_url asked for: nothing
    // NULL reasons (none recorded) never match a comparison: excluded too.
    return "reason IS NOT NULL AND reason <> 'bad_url' AND " + any_of + ")";
}

}  // namespace litchi::sqlite_rows

namespace litchi {

RetrySelection RetrySelection::transient() {
    RetrySelection which;
    // What the engine retries by itself (is_transient), plus io: a local
    // storage failure (a full disk) is worth a retry once someone fixed it,
    // though not at once by the engine.
    for (auto reason : {FailureReason::dns, FailureReason::connect, FailureReason::timeout,
                        FailureReason::truncated, FailureReason::http})
        if (is_transient(reason, reason == FailureReason::http ? 503 : 0))
            which.reasons.push_back(reason);
    which.reasons.push_back(FailureReason::io);
    which.http_transient_only = true;
    return which;
}

}  // namespace litchi
