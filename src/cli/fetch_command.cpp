// `litchi fetch`: download a list of image URLs into a folder, with a live
// progress bar and a manifest, without a server. The engine does the work;
// this file reads the input, resumes from an earlier manifest, shows
// progress, handles Ctrl-C and writes the manifest in input order.
#include <signal.h>

#include <atomic>
#include <boost/json.hpp>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <unordered_map>

#include "blobs/blob_store.hpp"
#include "cli/commands.hpp"
#include "cli/limit_flags.hpp"
#include "cli/progress_view.hpp"
#include "core/request_options.hpp"
#include "fetch/engine.hpp"
#include "fetch/manifest.hpp"
#include "fetch/url_check.hpp"
#include "fetch/vips_library.hpp"
#include "jobs/url_list.hpp"

namespace litchi::cli {
namespace {

std::atomic<int> g_signal{0};

void on_signal(int sig) {
    g_signal.store(sig);
}

struct FetchOptions {
    std::vector<std::string> urls;
    std::string input;
    std::string output;
    std::string manifest;
    std::string progress = "auto";
    std::vector<std::string> allow_cidrs;
    std::vector<std::string> header_lines;  // -H 'Name: value'
    // --checkpoint-interval: how often the manifest is rewritten during a run,
    // so even kill -9 loses at most this much finished work.
    std::chrono::seconds checkpoint_interval{10};
    FetchLimits limits;
};

int usage_error(const std::string& message) {
    std::cerr << "litchi fetch: " << message << "\n";
    return 2;
}

// How many failed URLs the end-of-run summary names per reason.
constexpr std::size_t kSummaryExamples = 3;

struct FailureGroup {
    std::size_t count = 0;
    std::vector<const ManifestEntry*> examples;  // the first few, in input order
};

// Failed entries by reason, in the vocabulary's order.
std::map<FailureReason, FailureGroup> group_failures(
    const std::vector<std::optional<ManifestEntry>>& entries) {
    std::map<FailureReason, FailureGroup> groups;
    for (const auto& entry : entries) {
        if (!entry || entry->done) continue;
        auto& group = groups[entry->reason];
        ++group.count;
        if (group.examples.size() < kSummaryExamples) group.examples.push_back(&*entry);
    }
    return groups;
}

// A URL as the summary shows it: without its user name and password, and
// with its query and fragment cut to "?..." / "#...": both often carry
// credentials (a password; a presigned URL's signature, a token; a redirect
// target with either inside), and the summary is what lands in terminals and
// CI logs. The manifest, which the user asked for, keeps every URL whole.
std::string shown_url(std::string_view url) {
    auto cut = url.find_first_of("?#");
    auto head = url.substr(0, cut);
    std::string shown(head);
    if (auto scheme_end = head.find("://"); scheme_end != std::string_view::npos) {
        auto authority = scheme_end + 3;
        auto at = head.substr(0, head.find('/', authority)).rfind('@');
        if (at != std::string_view::npos && at >= authority)
            shown = std::string(head.substr(0, authority)) + "***" + std::string(head.substr(at));
    }
    if (cut != std::string_view::npos) shown += url[cut] == '?' ? "?..." : "#...";
    return shown;
}

// "  http       3  http://a/x.png (404), http://a/y.png (500), ..." per reason;
// on a terminal (`width` > 0) each line is cut to fit, like the bar.
void print_failure_summary(const std::map<FailureReason, FailureGroup>& groups, int width) {
    if (groups.empty()) return;
    std::cerr << "litchi fetch: failures by reason:\n";
    for (const auto& [reason, group] : groups) {
        std::string line = "  " + std::string(to_string(reason));
        line.resize(std::max<std::size_t>(line.size(), 22), ' ');
        line += std::to_string(group.count);
        line.resize(std::max<std::size_t>(line.size(), 29), ' ');
        for (std::size_t i = 0; i < group.examples.size(); ++i) {
            const auto* entry = group.examples[i];
            line += (i ? ", " : "") + shown_url(entry->url);
            if (entry->http_status) line += " (" + std::to_string(entry->http_status) + ")";
        }
        if (group.count > group.examples.size()) line += ", ...";
        if (width > 4 && line.size() > static_cast<std::size_t>(width - 1)) {
            line.resize(static_cast<std::size_t>(width - 4));
            line += "...";
        }
        std::cerr << line << "\n";
    }
}

// The last line of --progress json: the totals and the same summary.
void print_json_summary(const ProgressCounts& counts,
                        const std::map<FailureReason, FailureGroup>& groups, bool interrupted) {
    boost::json::object failures;
    for (const auto& [reason, group] : groups) {
        boost::json::array examples;
        for (const auto* entry : group.examples) {
            boost::json::object example{{"url", shown_url(entry->url)}};
            if (entry->http_status) example["http_status"] = entry->http_status;
            examples.push_back(std::move(example));
        }
        failures[to_string(reason)] =
            boost::json::object{{"count", group.count}, {"examples", std::move(examples)}};
    }
    boost::json::object summary{{"type", "summary"},          {"total", counts.total},
                                {"done", counts.done},        {"failed", counts.failed},
                                {"interrupted", interrupted}, {"failures", std::move(failures)}};
    std::fprintf(stderr, "%s\n", boost::json::serialize(summary).c_str());
    std::fflush(stderr);
}

int run_fetch(FetchOptions& opt) {
    // The arguments, then the file's lines, through the one list rule
    // (jobs/url_list.hpp): blank lines, '#' comments and duplicates go.
    std::string text;
    if (!opt.input.empty()) {
        if (opt.input == "-") {
            text.assign(std::istreambuf_iterator<char>(std::cin), {});
        } else {
            std::error_code ec;
            if (std::filesystem::is_directory(opt.input, ec))
                return usage_error("cannot read " + opt.input + ": " + std::strerror(EISDIR));
            std::ifstream in(opt.input, std::ios::binary);
            if (!in) return usage_error("cannot read " + opt.input + ": " + std::strerror(errno));
            text.assign(std::istreambuf_iterator<char>(in), {});
            if (in.bad())
                return usage_error("cannot read " + opt.input + ": " + std::strerror(errno));
        }
    }
    std::vector<std::string_view> given(opt.urls.begin(), opt.urls.end());
    auto from_file = read_url_list(text);
    given.insert(given.end(), from_file.lines.begin(), from_file.lines.end());
    auto list = read_url_entries(given);
    std::vector<std::string> urls(list.lines.begin(), list.lines.end());
    if (std::size_t duplicates = list.duplicates + from_file.duplicates) {
        std::cerr << "litchi fetch: skipped " << duplicates << " duplicate URL"
                  << (duplicates == 1 ? "" : "s") << "\n";
    }
    if (urls.empty())
        return usage_error("no URLs given (pass them as arguments, or with -i FILE or -i -)");
    for (const auto& text : opt.allow_cidrs) {
        auto range = parse_cidr(text);
        if (!range) return usage_error("--allow-cidr: not an address range: " + text);
        opt.limits.allowed_ranges.push_back(*range);
    }
    if (auto error = validate_fetch_limits(opt.limits); !error.empty()) return usage_error(error);
    if (opt.limits.verify == VerifyMode::decode) {
        // Every item needs libvips then: a libvips that cannot start is said
        // once, here, not as a failure of every image.
        try {
            ensure_image_library();
        } catch (const std::runtime_error& e) {
            return usage_error(std::string("--verify decode: ") + e.what());
        }
    }
    ProgressMode mode;
    if (!parse_progress_mode(opt.progress, stderr, mode))
        return usage_error("--progress must be auto, bar, json or none");

    std::error_code ec;
    std::filesystem::create_directories(opt.output, ec);
    if (ec) return usage_error("cannot create " + opt.output + ": " + ec.message());

    const std::size_t n = urls.size();
    std::vector<std::optional<ManifestEntry>> entries(n);
    ProgressCounts counts;
    counts.total = n;

    // Resume: a URL already done in the manifest, whose file is still here
    // under its hash, is not fetched again.
    std::unordered_map<std::string, ManifestEntry> previous;
    if (!opt.manifest.empty() && std::filesystem::exists(opt.manifest)) {
        std::size_t bad = 0;
        for (auto& e : read_manifest(opt.manifest, &bad))
            if (e.done &&
                std::filesystem::is_regular_file(std::filesystem::path(opt.output) / e.file))
                previous.emplace(e.url, std::move(e));
        if (bad) std::cerr << "litchi fetch: skipped " << bad << " unreadable manifest line(s)\n";
    }

    // Each URL once (the list rule dropped duplicates): a request's id is
    // its line's index.
    std::vector<FetchRequest> requests;
    requests.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        if (auto it = previous.find(urls[i]); it != previous.end()) {
            entries[i] = it->second;
            ++counts.done;
            continue;
        }
        requests.push_back({i, urls[i]});
    }

    std::mutex mutex;
    std::condition_variable changed;
    std::size_t finished = counts.done;
    // Catch Ctrl-C before the engine exists: it pre-creates .part files at
    // once, and an interrupt that came before the handler would leave them.
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    struct sigaction old_int {
    }, old_term{};
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    BlobStore blobs(opt.output, BlobLayout::flat);
    Engine engine(opt.limits, blobs, [&](std::vector<FetchResult>&& batch) {
        std::lock_guard lock(mutex);
        for (auto& r : batch) {
            entries[r.id] = manifest_entry_from(r);
            ++finished;
            if (r.ok()) {
                ++counts.done;
                counts.bytes += r.bytes;
            } else {
                ++counts.failed;
            }
        }
        changed.notify_all();
    });

    ProgressView view(mode, stderr);
    engine.submit(std::move(requests));
    auto last_checkpoint = std::chrono::steady_clock::now();
    bool interrupted = false;
    {
        std::unique_lock lock(mutex);
        while (finished < n) {
            changed.wait_for(lock, std::chrono::milliseconds(100));
            if (g_signal.load()) {
                interrupted = true;
                break;
            }
            ProgressCounts shown = counts;
            shown.bytes = engine.stats().bytes_received;
            view.update(shown);
            // Checkpoint the manifest now and then, so even kill -9 keeps most of the work.
            if (!opt.manifest.empty() &&
                std::chrono::steady_clock::now() - last_checkpoint > opt.checkpoint_interval) {
                write_manifest(opt.manifest, entries);
                last_checkpoint = std::chrono::steady_clock::now();
            }
        }
    }
    // stop() reports everything already durable and drops the rest.
    engine.stop();
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGTERM, &old_term, nullptr);
    ProgressCounts shown = counts;
    shown.bytes = engine.stats().bytes_received;
    view.finish(shown);

    if (!opt.manifest.empty()) {
        try {
            write_manifest(opt.manifest, entries);
        } catch (const std::exception& e) {
            std::cerr << "litchi fetch: cannot write the manifest: " << e.what() << "\n";
            return 1;
        }
    }
    auto failures = group_failures(entries);
    if (mode == ProgressMode::json)
        print_json_summary(counts, failures, interrupted);
    else
        print_failure_summary(failures, mode == ProgressMode::bar ? terminal_width(stderr) : 0);
    if (mode == ProgressMode::none && !interrupted) {
        // A one-line summary even without a bar: what a script's log wants to see.
        std::cerr << "litchi fetch: " << counts.done << " done, " << counts.failed << " failed of "
                  << n << "\n";
    }
    if (interrupted) {
        std::cerr << "\nlitchi fetch: interrupted; " << counts.done << " done, " << counts.failed
                  << " failed, " << (n - counts.done - counts.failed) << " not finished\n";
        return 128 + g_signal.load();
    }
    return counts.failed ? 1 : 0;
}

}  // namespace

void add_fetch_command(CLI::App& app, int& status) {
    auto opt = std::make_shared<FetchOptions>();
    auto* cmd = app.add_subcommand(
        "fetch", "Download image URLs into a folder, with live progress and a manifest");
    cmd->add_option("urls", opt->urls, "URLs to download");
    cmd->add_option("-i,--input", opt->input, "Read URLs from FILE, one a line ('-' for stdin)");
    cmd->add_option("-o,--output", opt->output, "Folder for the images, stored as <sha256>.<ext>")
        ->required();
    add_fetch_limit_flags(cmd, opt->limits);
    cmd->add_flag("--allow-private", opt->limits.allow_private,
                  "Allow loopback, private and other non-global addresses (off: blocked_address)");
    cmd->add_option("--allow-cidr", opt->allow_cidrs,
                    "Allow just this non-global range, e.g. 127.0.0.1/32 (repeatable)")
        ->allow_extra_args(false);
    cmd->add_option("-H,--header", opt->header_lines,
                    "Send this header with every request, 'Name: value' (repeatable; not Host, "
                    "Content-Length, Transfer-Encoding, Connection, Cookie2, Proxy-*)")
        ->allow_extra_args(false)
        ->check(CLI::Validator(
            [](std::string& line) {
                std::string error;
                return parse_header_line(line, &error) ? std::string() : error;
            },
            "'NAME: VALUE'"));
    cmd->add_flag("--proxy-from-env", opt->limits.use_proxy_env,
                  "Honour http_proxy/https_proxy (ignored by default)");
    cmd->add_option("--manifest", opt->manifest,
                    "Write a JSON Lines manifest here; an existing one is resumed");
    cmd->add_option("--progress", opt->progress,
                    "auto|bar|json|none (auto: a bar when stderr is a terminal)")
        ->capture_default_str();
    add_duration<std::chrono::seconds>(cmd, "--checkpoint-interval", opt->checkpoint_interval,
                                       "Seconds between two writes of --manifest during a run", 1,
                                       86'400);
    cmd->callback([opt, &status] {
        for (const auto& line : opt->header_lines)
            opt->limits.headers.push_back(*parse_header_line(line, nullptr));  // checked above
        status = run_fetch(*opt);
    });
}

}  // namespace litchi::cli
