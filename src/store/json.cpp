// JSON shapes of jobs and items for the API and the event hub: see json.hpp.
#include "store/json.hpp"

#include <cmath>
#include <cstdio>
#include <ctime>

namespace litchi {

std::string format_time_iso8601(TimeMs time) {
    std::time_t seconds = static_cast<std::time_t>(time / 1000);
    int millis = static_cast<int>(time % 1000);
    if (millis < 0) {
        millis += 1000;
        --seconds;
    }
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char buffer[96];  // roomy: the compiler cannot bound tm_year
    std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                  utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, millis);
    return buffer;
}

boost::json::object counts_to_json(const JobCounts& counts) {
    boost::json::object out;
    out["total"] = counts.total;
    out["queued"] = counts.queued;
    out["active"] = counts.active;
    out["done"] = counts.done;
    out["failed"] = counts.failed;
    out["cancelled"] = counts.cancelled;
    return out;
}

boost::json::object job_to_json(const JobSnapshot& job) {
    boost::json::object out;
    out["id"] = job.id;
    out["name"] = job.name;
    out["state"] = to_string(job.state);
    out["created"] = format_time_iso8601(job.created);
    out["counts"] = counts_to_json(job.counts);
    out["bytes"] = static_cast<std::int64_t>(job.bytes);
    // Two decimals are plenty for a human and keep messages short.
    out["rate"] = std::round(job.rate * 100.0) / 100.0;
    if (job.eta)
        out["eta"] = static_cast<std::int64_t>(std::llround(*job.eta));
    else
        out["eta"] = nullptr;
    return out;
}

boost::json::object item_to_json(const ItemRecord& item) {
    boost::json::object out;
    out["id"] = item.id;
    out["url"] = item.url;
    out["state"] = to_string(item.state);
    if (item.reason != FailureReason::none) out["reason"] = to_string(item.reason);
    if (item.http_status != 0) out["http_status"] = item.http_status;
    if (!item.sha256.empty()) out["sha256"] = item.sha256;
    if (item.state == ItemState::done) {
        out["bytes"] = static_cast<std::int64_t>(item.bytes);
        if (item.width > 0) out["width"] = item.width;
        if (item.height > 0) out["height"] = item.height;
        if (item.format != ImageFormat::unknown) out["format"] = format_name(item.format);
    }
    out["attempts"] = item.attempts;
    return out;
}

}  // namespace litchi
