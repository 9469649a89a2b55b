// The body of POST /api/jobs (docs/api.md, "Create a job"), read: JSON
// ({"urls": [...], "name": ...}) or text/plain (one URL a line, the name from
// ?name=), both through the one list rule (jobs/url_list.hpp: blank lines,
// '#' comments and duplicates go). Only the shape is checked here; what each URL becomes is
// jobs/admission.hpp's business. No I/O and no Beast, so the reader is tested
// and fuzzed on its own (tests/fuzz/job_body.cpp).
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/request_options.hpp"
#include "server/api_codes.hpp"

namespace litchi::server {

// How deep a job's JSON body may nest. The documented shape nests two levels
// ({"urls": [...]}); this refuses pathological nesting early. A shape rule,
// not a resource limit: the body size limit already bounds the parser's memory.
inline constexpr unsigned kMaxJobJsonDepth = 8;

struct JobBodyLimits {
    std::size_t max_urls = 100'000;    // --max-urls
    std::size_t max_name_bytes = 200;  // --max-job-name
};

// What a body asks for. `urls` point into the body (text/plain) or into
// `json` (application/json): it is filled in place and neither copied nor
// moved, so the views stay valid as long as it and the body do.
struct JobBody {
    JobBody() = default;
    JobBody(const JobBody&) = delete;
    JobBody& operator=(const JobBody&) = delete;

    std::vector<std::string_view> urls;  // after the list rule (jobs/url_list.hpp)
    std::size_t duplicates = 0;          // entries dropped as repeats of an earlier one
    std::string name;
    // user_agent, headers, referer, the limits and the webhook, shape-checked
    // (header rules: core/request_options.hpp). Whether the limits are
    // tighter than the server's and the webhook URL passes the SSRF guard
    // needs the server's limits: Api::create_job checks those.
    RequestOptions options;
    boost::json::value json;
};

struct JobBodyError {
    ApiError error;
    std::string message;
};

// A webhook secret longer than this is refused (a shape rule: HMAC takes
// any length, but nobody needs more).
inline constexpr std::size_t kMaxWebhookSecretBytes = 1024;

// The request options of a JSON job body (read_job_body calls it).
std::optional<JobBodyError> read_request_options(const boost::json::object& object,
                                                 RequestOptions& out);

// `media_type` is the Content-Type without parameters, lower case;
// `query_name` the ?name= of a text/plain request.
std::optional<JobBodyError> read_job_body(std::string_view media_type, std::string_view body,
                                          std::string_view query_name, const JobBodyLimits& limits,
                                          JobBody& out);

}  // namespace litchi::server
