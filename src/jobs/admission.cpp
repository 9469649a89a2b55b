// See admission.hpp.
#include "jobs/admission.hpp"

#include <algorithm>

#include "fetch/url_check.hpp"

namespace litchi {
namespace {

// Bounded, valid UTF-8, control characters replaced: every JSON writer and
// terminal downstream can show it.
std::string sanitize_text(std::string_view text, std::size_t max_bytes) {
    std::string out;
    out.reserve(std::min(text.size(), max_bytes));
    std::size_t i = 0;
    while (i < text.size() && out.size() < max_bytes) {
        auto c = static_cast<unsigned char>(text[i]);
        std::size_t length = c < 0x80           ? 1
                             : (c >> 5) == 0x6  ? 2
                             : (c >> 4) == 0xE  ? 3
                             : (c >> 3) == 0x1E ? 4
                                                : 0;
        bool valid = length > 0 && i + length <= text.size();
        for (std::size_t k = 1; valid && k < length; ++k)
            valid = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
        if (valid && length == 1 && (c < 0x20 || c == 0x7F)) valid = false;
        if (!valid) {
            out += "\xEF\xBF\xBD";  // U+FFFD
            ++i;
            continue;
        }
        if (out.size() + length > max_bytes) break;
        out.append(text.substr(i, length));
        i += length;
    }
    return out;
}

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
    job.name = sanitize_text(trim(request.name), limits.max_name_bytes);
    job.items.reserve(request.urls.size());
    for (std::string_view raw : request.urls) {
        auto text = trim(raw);
        UrlCheck check = check_url(text, engine);
        if (check.ok) {
            job.items.push_back({std::move(check.url), FailureReason::none});
        } else {
            auto reason =
                check.reason == FailureReason::none ? FailureReason::bad_url : check.reason;
            job.items.push_back({sanitize_text(text, limits.max_refused_url_bytes), reason});
        }
    }
    return job;
}

}  // namespace litchi
