// See pg_rows.hpp.
#include "store/pg_rows.hpp"

#include "store/pg_connection.hpp"

namespace litchi {

JobSnapshot pg_job_from_row(const pg::Result& r, int row, int c) {
    JobSnapshot job;
    job.id = r.int64(row, c + 0);
    job.user = r.int64(row, c + 1);
    job.name = std::string(r.text(row, c + 2));
    job.state = parse_job_state(r.text(row, c + 3)).value_or(JobState::queued);
    job.created = r.int64(row, c + 4);
    job.updated = r.int64(row, c + 5);
    job.counts.total = r.int64(row, c + 6);
    job.counts.queued = r.int64(row, c + 7);
    job.counts.active = r.int64(row, c + 8);
    job.counts.done = r.int64(row, c + 9);
    job.counts.failed = r.int64(row, c + 10);
    job.counts.cancelled = r.int64(row, c + 11);
    job.bytes = static_cast<std::uint64_t>(r.int64(row, c + 12));
    job.rate = r.float64(row, c + 13);
    if (!r.is_null(row, c + 14)) job.eta = r.float64(row, c + 14);
    return job;
}

ItemRecord pg_item_from_row(const pg::Result& r, int row, int c) {
    ItemRecord item;
    item.id = r.int64(row, c + 0);
    item.job = r.int64(row, c + 1);
    item.position = r.int64(row, c + 2);
    item.url = std::string(r.text(row, c + 3));
    item.state = parse_item_state(r.text(row, c + 4)).value_or(ItemState::queued);
    if (!r.is_null(row, c + 5))
        item.reason = parse_failure_reason(r.text(row, c + 5)).value_or(FailureReason::none);
    item.http_status = static_cast<int>(r.int64(row, c + 6));
    item.sha256 = std::string(r.text(row, c + 7));
    item.bytes = static_cast<std::uint64_t>(r.int64(row, c + 8));
    item.width = static_cast<int>(r.int64(row, c + 9));
    item.height = static_cast<int>(r.int64(row, c + 10));
    if (!r.is_null(row, c + 11))
        item.format = parse_extension(r.text(row, c + 11)).value_or(ImageFormat::unknown);
    item.attempts = static_cast<int>(r.int64(row, c + 12));
    item.updated = r.int64(row, c + 13);
    return item;
}

}  // namespace litchi
