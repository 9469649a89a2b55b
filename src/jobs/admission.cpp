// See admission.hpp.
#include "jobs/admission.hpp"

#include "core/utf8.hpp"
#include "fetch/url_check.hpp"

namespace litchi {
namespace {

std::string_view trim(std::string_view text) {
    constexpr std::string_view kSpace = " \t\r\n\f\v";
    auto begin = text.find_first_not_of(kSpace);
    if (begin == std::string_view::npos) return {};
    auto end = text.find_last_not_of(kSpace);
    return text.substr(begin, end - begin + 1);
}

}  // namespace

std::vector<std::string_view> split_url_lines(std::string_view body) {
    std::vector<std::string_view> lines;
    while (!body.empty()) {
        auto newline = body.find('\n');
        auto line = trim(body.substr(0, newline));
        if (!line.empty()) lines.push_back(line);
        if (newline == std::string_view::npos) break;
        body.remove_prefix(newline + 1);
    }
    return lines;
}

NewJob admit_job(const JobRequest& request, const FetchLimits& engine,
                 const AdmissionLimits& limits) {
    NewJob job;
    job.user = request.user;
    job.name = sanitize_utf8(trim(request.name), limits.max_name_bytes);
    job.items.reserve(request.urls.size());
    for (std::string_view raw : request.urls) {
        auto text = trim(raw);
        UrlCheck check = check_url(text, engine);
        if (check.ok) {
            job.items.push_back({std::move(check.url), FailureReason::none});
        } else {
            auto reason =
                check.reason == FailureReason::none ? FailureReason::bad_url : check.reason;
            job.items.push_back({sanitize_utf8(text, limits.max_refused_url_bytes), reason});
        }
    }
    return job;
}

}  // namespace litchi
