// See admission.hpp.
#include "jobs/admission.hpp"

#include <algorithm>
#include <future>
#include <span>
#include <thread>

#include "core/utf8.hpp"
#include "fetch/url_check.hpp"
#include "jobs/url_list.hpp"

namespace litchi {
namespace {

std::string_view trim(std::string_view text) {
    constexpr std::string_view kSpace = " \t\r\n\f\v";
    auto begin = text.find_first_not_of(kSpace);
    if (begin == std::string_view::npos) return {};
    auto end = text.find_last_not_of(kSpace);
    return text.substr(begin, end - begin + 1);
}

// Below this many lines per thread, starting a thread costs more than it saves.
constexpr std::size_t kMinLinesPerThread = 20000;
// A large job is one request among many: it gets a few cores, not all.
constexpr std::size_t kMaxAdmissionThreads = 4;

}  // namespace

std::vector<std::string_view> split_url_lines(std::string_view body) {
    return read_url_list(body).lines;
}

namespace {

// Admits `urls` into the same places of `items`; text that is not the
// caller's goes to `texts`.
void admit_lines(std::span<const std::string_view> urls, std::span<NewItem> items, TextArena& texts,
                 const FetchLimits& engine, const AdmissionLimits& limits) {
    UrlChecker checker(engine);
    for (std::size_t i = 0; i < urls.size(); ++i) {
        auto text = trim(urls[i]);
        UrlVerdict verdict = checker.check(text);
        if (verdict.ok()) {
            // Most lines are already in normal form: stored as they came, no copy.
            items[i] = {verdict.url == text ? text : texts.keep(std::string(verdict.url)),
                        FailureReason::none};
        } else {
            items[i] = {texts.keep(sanitize_utf8(text, limits.max_refused_url_bytes)),
                        verdict.reason};
        }
    }
}

}  // namespace

NewJob admit_job(const JobRequest& request, const FetchLimits& engine,
                 const AdmissionLimits& limits) {
    NewJob job;
    job.user = request.user;
    job.options = request.options;
    job.name = sanitize_utf8(trim(request.name), limits.max_name_bytes);
    const std::size_t n = request.urls.size();
    job.items.resize(n);
    std::span<const std::string_view> urls(request.urls);
    std::span<NewItem> items(job.items);

    // Checking a line costs about half a microsecond: a large job's lines are
    // shared among a few threads (this one included), each its own share.
    std::size_t threads = std::min<std::size_t>({std::max(1u, std::thread::hardware_concurrency()),
                                                 kMaxAdmissionThreads,
                                                 std::max<std::size_t>(1, n / kMinLinesPerThread)});
    std::size_t share = (n + threads - 1) / threads;
    std::vector<TextArena> texts(threads);
    // Declared after what the helpers use: destroying a future from std::async
    // waits for its thread, so nothing they touch goes away under them.
    std::vector<std::future<void>> helpers;
    for (std::size_t t = 1; t < threads; ++t) {
        std::size_t begin = std::min(n, t * share), count = std::min(n, begin + share) - begin;
        auto work = [&, t, begin, count] {
            admit_lines(urls.subspan(begin, count), items.subspan(begin, count), texts[t], engine,
                        limits);
        };
        try {
            helpers.push_back(std::async(std::launch::async, work));
        } catch (const std::system_error&) {
            work();  // no thread to be had: this one does that share too
        }
    }
    std::size_t mine = std::min(n, share);
    admit_lines(urls.first(mine), items.first(mine), texts[0], engine, limits);
    for (auto& helper : helpers) helper.get();  // rethrows what a helper threw
    for (auto& part : texts) job.texts.adopt(std::move(part));
    return job;
}

}  // namespace litchi
