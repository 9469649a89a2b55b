// `litchi watch [JOB] --server URL [--token T]`: follows a server's jobs live
// over the progress WebSocket and draws the same bar as `litchi fetch`. The
// protocol work (seq rules, resume, reconnect with backoff) is in
// src/server/watch_client.*; this file maps flags, draws and picks the exit status.
//
// With JOB: follows that job and exits when it is done (0: every item
// downloaded; 1: some failed) or cancelled/deleted/unknown (1).
// Without JOB: follows all of the user's jobs as one bar (cancelled items
// count as finished, not left) and exits 0 with a one-line summary on stderr
// when none is queued, running or paused any more. A user with no jobs exits
// 0 at once. Connection trouble is one status line, rewritten in place;
// --retry-for (default 60 s) without a connection gives up (exit 1).
// Exit 2: usage errors, and a token the server refuses.
#include <fmt/format.h>

#include <boost/json.hpp>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "cli/commands.hpp"
#include "cli/limit_flags.hpp"
#include "cli/progress_view.hpp"
#include "events/protocol_messages.hpp"
#include "server/watch_client.hpp"

namespace litchi::cli {

namespace json = boost::json;

namespace {

struct WatchOptions {
    std::string job;
    std::string server;
    std::string token;
    std::string progress = "auto";
    double retry_for_s = 60;
    server::WatchSettings settings;  // --connect-timeout, --idle-timeout, --retry-base, --retry-cap
};

std::uint64_t number_of(const json::object& object, std::string_view key) {
    const auto* value = object.if_contains(key);
    if (!value) return 0;
    if (value->is_uint64()) return value->get_uint64();
    if (value->is_int64())
        return value->get_int64() > 0 ? static_cast<std::uint64_t>(value->get_int64()) : 0;
    if (value->is_double())
        return value->get_double() > 0 ? static_cast<std::uint64_t>(value->get_double()) : 0;
    return 0;
}

// Cancelled items are finished, not left: the bar counts them as such.
void add_counts(ProgressCounts& sum, std::uint64_t& cancelled, const json::object& job) {
    if (const auto* counts = job.if_contains("counts"); counts && counts->is_object()) {
        sum.total += number_of(counts->as_object(), "total");
        sum.done += number_of(counts->as_object(), "done");
        sum.failed += number_of(counts->as_object(), "failed");
        sum.cancelled += number_of(counts->as_object(), "cancelled");
    }
    cancelled = sum.cancelled;
    sum.bytes += number_of(job, "bytes");
}

std::string_view state_of(const json::object& job) {
    const auto* state = job.if_contains("state");
    return state && state->is_string() ? std::string_view(state->as_string()) : std::string_view();
}

int usage_error(const std::string& message) {
    std::fprintf(stderr, "litchi watch: %s\n", message.c_str());
    return 2;
}

int run_watch_command(WatchOptions& opt) {
    if (opt.token.empty()) {
        if (const char* env = std::getenv("LITCHI_TOKEN")) opt.token = env;
    }
    if (opt.token.empty()) return usage_error("a token is required: --token T or LITCHI_TOKEN");
    std::optional<JobId> job_key;
    if (!opt.job.empty()) {
        job_key = events::job_id_of(json::value(opt.job));
        if (!job_key) return usage_error("JOB must be a job id");
    }
    ProgressMode mode;
    if (!parse_progress_mode(opt.progress, stderr, mode))
        return usage_error("--progress must be auto, bar, json or none");
    std::string error;
    auto target = server::parse_watch_server(opt.server, error);
    if (!target) return usage_error(error);

    ProgressView view(mode, stderr);
    ProgressCounts last{};
    int exit_status = 1;
    bool seen_job = false;
    std::string final_json;
    std::string summary;  // without JOB: the closing line on stderr

    server::WatchCallbacks callbacks;
    // Connection news: one status line in place, not a line per attempt.
    callbacks.on_notice = [&view](std::string_view notice) {
        view.status("litchi watch: " + std::string(notice));
    };
    callbacks.on_state = [&](const server::JobsById& jobs) {
        ProgressCounts counts{};
        std::uint64_t cancelled = 0;
        if (job_key) {
            auto found = jobs.find(*job_key);
            if (found == jobs.end()) {
                std::fprintf(stderr, "litchi watch: %s job %lld\n",
                             seen_job ? "deleted:" : "no such", static_cast<long long>(*job_key));
                exit_status = 1;
                return true;
            }
            seen_job = true;
            add_counts(counts, cancelled, found->second);
            last = counts;
            auto state = state_of(found->second);
            if (state == "done" || state == "cancelled") {
                exit_status = state == "done" && counts.failed == 0 ? 0 : 1;
                final_json = json::serialize(found->second);
                return true;
            }
            view.update(counts);
            return false;
        }
        bool all_final = true;
        std::size_t cancelled_jobs = 0;
        for (const auto& [key, job] : jobs) {
            add_counts(counts, cancelled, job);
            auto state = state_of(job);
            if (state != "done" && state != "cancelled") all_final = false;
            if (state == "cancelled") ++cancelled_jobs;
        }
        last = counts;
        if (all_final) {
            // Every watched job ended: that is success for a watcher; what
            // they ended with is the summary's business, not the status's.
            exit_status = 0;
            if (mode == ProgressMode::json) {
                summary = json::serialize(json::object{{"type", "summary"},
                                                       {"jobs", jobs.size()},
                                                       {"cancelled_jobs", cancelled_jobs},
                                                       {"total", counts.total},
                                                       {"done", counts.done},
                                                       {"failed", counts.failed},
                                                       {"cancelled", counts.cancelled}});
            } else {
                summary = fmt::format(
                    "litchi watch: all {} job{} ended: {} done, {} failed, {} cancelled ({} job{} "
                    "cancelled)",
                    jobs.size(), jobs.size() == 1 ? "" : "s", counts.done, counts.failed,
                    counts.cancelled, cancelled_jobs, cancelled_jobs == 1 ? "" : "s");
            }
            return true;
        }
        view.update(counts);
        return false;
    };

    server::WatchSettings settings = opt.settings;
    settings.retry_for = std::chrono::seconds(static_cast<std::int64_t>(opt.retry_for_s));
    if (settings.backoff.base > settings.backoff.cap)
        return usage_error("--retry-base must not exceed --retry-cap");
    auto outcome = server::run_watch(*target, opt.token, settings, callbacks);
    switch (outcome) {
        case server::WatchOutcome::stopped:
            view.finish(last);
            if (!final_json.empty()) std::printf("%s\n", final_json.c_str());
            if (!summary.empty()) std::fprintf(stderr, "%s\n", summary.c_str());
            return exit_status;
        case server::WatchOutcome::unauthorized:
            view.end_status();
            std::fprintf(stderr, "litchi watch: the server refused the token\n");
            return 2;
        case server::WatchOutcome::revoked:
            view.end_status();
            std::fprintf(stderr, "litchi watch: the token was revoked\n");
            return 1;
        case server::WatchOutcome::gave_up:
            view.end_status();
            std::fprintf(stderr, "litchi watch: no connection to %s for %.0f s; giving up\n",
                         opt.server.c_str(), opt.retry_for_s);
            return 1;
    }
    return 1;
}

}  // namespace

void add_watch_command(CLI::App& app, int& status) {
    auto opt = std::make_shared<WatchOptions>();
    auto* cmd =
        app.add_subcommand("watch", "Follow a server's jobs live, with the same bar as fetch");
    cmd->add_option("JOB", opt->job, "Job id to follow (default: all of your jobs)");
    cmd->add_option("--server", opt->server, "Server URL, e.g. http://127.0.0.1:9527")->required();
    cmd->add_option("--token", opt->token, "API token (default: $LITCHI_TOKEN); never printed");
    cmd->add_option("--progress", opt->progress,
                    "auto|bar|json|none (auto: a bar when stderr is a terminal)")
        ->capture_default_str();
    cmd->add_option("--retry-for", opt->retry_for_s,
                    "Give up after this many seconds without a connection (0: never)")
        ->capture_default_str()
        ->check(CLI::Range(0.0, 86400.0 * 365));
    add_duration<std::chrono::seconds>(cmd, "--connect-timeout", opt->settings.connect_timeout,
                                       "Seconds to connect and upgrade to the WebSocket", 1, 3600);
    add_duration<std::chrono::seconds>(cmd, "--idle-timeout", opt->settings.idle_timeout,
                                       "Seconds without a word from the server before reconnecting "
                                       "(keep above half the server's --ws-idle-timeout)",
                                       2, 86'400);
    add_backoff_flags(cmd, opt->settings.backoff, "reconnect");
    cmd->footer(
        "With JOB: exits 0 when the job is done with every item downloaded, 1 when items failed or "
        "the job was\n"
        "cancelled, deleted or not found; prints the final job JSON on stdout. Without JOB: exits "
        "0 with a summary\n"
        "once no job is queued, running or paused. Exit 2: usage error or a token the server "
        "refuses. Reconnects with\n"
        "backoff and resumes by seq after any drop.");
    cmd->callback([opt, &status] { status = run_watch_command(*opt); });
}

}  // namespace litchi::cli
