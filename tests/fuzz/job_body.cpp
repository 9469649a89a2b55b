// Fuzz target: the body of POST /api/jobs (server/job_body.hpp) and what
// admission makes of its lines (jobs/admission.hpp): the URLs and name a user
// sends, before the store sees them.
//
// Input: one byte of flags, then the body. Flags: bit 0 text/plain (else
// application/json), bit 1 --allow-private, bits 2-3 pick small limits (so
// the too-many and too-long paths are reached). In text/plain the body's first
// line is also the ?name= of the request. Besides "no crash, no sanitizer
// report" it checks what the store is promised: one item per URL in order; an
// accepted item is what check_url admits; a refused one is bad_url or
// blocked_address and its text, like the job's name, is bounded, valid UTF-8
// and free of control characters.
#include "server/job_body.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "core/utf8.hpp"
#include "fetch/url_check.hpp"
#include "jobs/admission.hpp"

using namespace litchi;

namespace {

void require(bool ok, const char* what) {
    if (ok) return;
    std::fprintf(stderr, "job_body: %s\n", what);
    std::abort();
}

bool safe_text(std::string_view text, std::size_t max_bytes) {
    if (text.size() > max_bytes || !is_valid_utf8(text)) return false;
    for (unsigned char c : text)
        if (c < 0x20 || c == 0x7F) return false;
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const std::uint8_t flags = data[0];
    std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
    const bool text_plain = flags & 1;
    std::string_view name = text_plain ? body.substr(0, body.find('\n')) : std::string_view();

    server::JobBodyLimits limits;
    if (flags & 4) limits.max_urls = 3;
    if (flags & 8) limits.max_name_bytes = 5;
    server::JobBody job_body;
    auto error = server::read_job_body(text_plain ? "text/plain" : "application/json", body, name,
                                       limits, job_body);
    if (error) {
        require(!error->message.empty(), "a refusal without a message");
        return 0;
    }
    require(!job_body.urls.empty() && job_body.urls.size() <= limits.max_urls,
            "an accepted body with no URLs or too many");
    require(job_body.name.size() <= limits.max_name_bytes, "an accepted name over the limit");

    FetchLimits engine;
    engine.allow_private = flags & 2;
    AdmissionLimits admission;
    admission.max_name_bytes = 16;
    admission.max_refused_url_bytes = 64;
    NewJob job =
        admit_job({.user = 1, .name = job_body.name, .urls = job_body.urls}, engine, admission);
    require(job.user == 1, "the job changed hands");
    require(safe_text(job.name, admission.max_name_bytes), "a stored name is not safe text");
    require(job.items.size() == job_body.urls.size(), "not one item per URL");
    for (std::size_t i = 0; i < job.items.size(); ++i) {
        const auto& item = job.items[i];
        auto checked = check_url(job_body.urls[i], engine);
        if (item.refused == FailureReason::none) {
            require(checked.ok && checked.url == item.url,
                    "an accepted item is not what check_url admits");
        } else {
            require(item.refused == FailureReason::bad_url ||
                        item.refused == FailureReason::blocked_address,
                    "a refusal with an unexpected reason");
            require(!checked.ok, "a refused item that check_url admits");
            require(safe_text(item.url, admission.max_refused_url_bytes),
                    "a refused line is not safe text");
        }
    }
    return 0;
}
