// URL admission: what a new job's lines become before the store sees them.
// Each line is trimmed and checked by the same rule the engine applies
// (check_url with the engine's own limits: allow_private, allowed_ranges), so
// what is accepted is what the engine will try; a refused line is kept, made
// safe to show (bounded, valid UTF-8, no control characters: core/utf8.hpp),
// and stored already failed with its reason (bad_url, blocked_address).
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "core/config.hpp"
#include "store/job_store.hpp"

namespace litchi {

// What a user asks for: one call, whatever the caller holds.
struct JobRequest {
    UserId user = 0;
    std::string_view name;               // trimmed and cleaned; empty: "job <id>"
    std::vector<std::string_view> urls;  // one per item, in input order
    RequestOptions options{};            // already checked (server/job_body.hpp)
};

struct AdmissionLimits {
    std::size_t max_name_bytes = 200;          // a longer name is cut (on a character boundary)
    std::size_t max_refused_url_bytes = 2048;  // a refused line is kept, cut to this
};

// The lines of a text/plain body by the list rule (url_list.hpp: trimmed;
// blank, comment and duplicate lines dropped). The views point into `body`.
std::vector<std::string_view> split_url_lines(std::string_view body);

// The NewJob's items may point into the text `request.urls` points into: keep
// that alive until the job is stored.
NewJob admit_job(const JobRequest& request, const FetchLimits& engine,
                 const AdmissionLimits& limits = {});

}  // namespace litchi
