// The API's JSON shapes for jobs and items (docs/api.md, "Objects"): the
// protocol, so it lives at the edge that speaks it, in one place so the HTTP
// handlers and the event hub send the same bytes:
//
//   job:  {"id","name","state","created","counts":{"total","queued","active",
//          "done","failed","cancelled"},"bytes","rate","eta"}
//   item: {"id","url","state","reason"?,"http_status"?,"sha256"?,"bytes"?,
//          "width"?,"height"?,"format"?,"attempts"}   (format: jpeg png gif webp ...)
//
// "created" is ISO 8601 UTC with milliseconds ("2024-05-01T12:00:00.123Z");
// "rate" is items/s over the recent window (a number, 0 when idle): one
// decimal below 10/s, whole from 10/s up, and stored as an integer whenever
// it is whole; "eta" is whole seconds or null when unknown. Optional item
// fields are left out, not null.
//
// Boost.JSON 1.81 writes every double in exponent form (0.5 -> "5E-1", 12.3 ->
// "1.23E1"). Valid JSON, but not what a person reading a message or a log
// expects; to_json_text() writes the same value with plain decimals, and
// every JSON reply and hub message goes through it.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <optional>
#include <string>

#include "core/records.hpp"
#include "core/request_options.hpp"
#include "store/job_store.hpp"

namespace litchi {

boost::json::object job_to_json(const JobSnapshot& job);
boost::json::object item_to_json(const ItemRecord& item);
boost::json::object counts_to_json(const JobCounts& counts);

// A job's request options as GET and POST answers show them (docs/api.md,
// "Request options"): set fields only; credential-looking headers'
// values as "<redacted>"; the webhook without its secret, with its last
// delivery when there is one. Added to the job object by the HTTP handlers
// (not to the events: they carry counts, and the options never change).
void add_request_options(boost::json::object& job, const RequestOptions& options,
                         const std::optional<WebhookDelivery>& last_delivery);
// {"id","event","state","attempts","http_status"?,"error"?,"created","updated"}
boost::json::object webhook_delivery_to_json(const WebhookDelivery& delivery);

// "2024-05-01T12:00:00.123Z"
std::string format_time_iso8601(TimeMs time);

// A job's rate as it goes on the wire: rounded as described above, an int64
// when whole. Exposed for tests and for anyone building a job object by hand.
boost::json::value rate_to_json(double items_per_second);

// boost::json::serialize, except that doubles are written as the shortest
// text that reads back the same: plain decimals (0.5, 12.3, 1500), an
// exponent only where that is shorter (1e+21, 1e-07); NaN and infinities,
// which JSON cannot carry, become null.
// Strings are escaped by Boost.JSON itself.
std::string to_json_text(const boost::json::value& value);

}  // namespace litchi
