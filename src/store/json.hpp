// The API's JSON shapes for jobs and items (shared/DESIGN.md, "A job:" and
// "An item:"), in one place so the HTTP handlers and the event hub send the
// same bytes:
//
//   job:  {"id","name","state","created","counts":{"total","queued","active",
//          "done","failed","cancelled"},"bytes","rate","eta"}
//   item: {"id","url","state","reason"?,"http_status"?,"sha256"?,"bytes"?,
//          "width"?,"height"?,"format"?,"attempts"}   (format: jpeg png gif webp ...)
//
// "created" is ISO 8601 UTC with milliseconds ("2024-05-01T12:00:00.123Z");
// "rate" is items/s over the recent window (a number, 0 when idle); "eta" is
// whole seconds or null when unknown. Optional item fields are left out, not null.
#pragma once

#include <boost/json/object.hpp>
#include <string>

#include "store/records.hpp"

namespace litchi {

boost::json::object job_to_json(const JobSnapshot& job);
boost::json::object item_to_json(const ItemRecord& item);
boost::json::object counts_to_json(const JobCounts& counts);

// "2024-05-01T12:00:00.123Z"
std::string format_time_iso8601(TimeMs time);

}  // namespace litchi
