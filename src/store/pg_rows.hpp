// The PostgreSQL store's row mapping, shared by the job store and the event
// log (both read `jobs` rows; user_state must show exactly what list_jobs
// shows): the column lists and readers for jobs and items. The SQLite store
// has its own (sqlite_rows.hpp): the two schemas differ (rate and eta are
// columns here).
#pragma once

#include "core/records.hpp"

namespace litchi {

namespace pg {
class Result;
}

// pg_job_from_row reads a row selected with these, starting at first_column.
inline constexpr const char* kPgJobColumns =
    "id, user_id, name, state, created, updated, total, queued, active, done, failed, cancelled, "
    "bytes, rate, eta";
inline constexpr int kPgJobColumnCount = 15;

// pg_item_from_row likewise. `format` holds the file extension (as SQLite's).
inline constexpr const char* kPgItemColumns =
    "id, job_id, position, url, state, reason, http_status, sha256, bytes, width, height, "
    "format, attempts, updated";
inline constexpr int kPgItemColumnCount = 14;

JobSnapshot pg_job_from_row(const pg::Result& result, int row, int first_column = 0);
ItemRecord pg_item_from_row(const pg::Result& result, int row, int first_column = 0);

}  // namespace litchi
