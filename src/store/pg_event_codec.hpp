// How the PostgreSQL store writes a job or an item into an event-log entry's
// body, and reads it back: compact JSON with fixed keys, lossless for every
// field of JobSnapshot and ItemRecord (rate and eta included), so that every
// node decodes entry S into the same record and sends the same message.
// Not the API's JSON (server/json.hpp is the protocol; this is storage).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/records.hpp"

namespace litchi::pg {

std::string encode_job(const JobSnapshot& job);
std::string encode_item(const ItemRecord& item);
// nullopt for a body that is not what encode_* wrote (a corrupt row).
std::optional<JobSnapshot> decode_job(std::string_view body);
std::optional<ItemRecord> decode_item(std::string_view body);

// An `item` entry holds one or more items (one transaction's changes of one
// job's items, in order): their bodies joined by '\n' (encode_item's JSON
// never holds a raw newline). nullopt if any of them is corrupt.
void append_item(std::string& body, const ItemRecord& item);
std::optional<std::vector<ItemRecord>> decode_items(std::string_view body);

}  // namespace litchi::pg
