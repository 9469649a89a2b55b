// See limit_flags.hpp.
#include "cli/limit_flags.hpp"

#include <cstdint>
#include <sstream>

#include "core/request_options.hpp"

namespace litchi::cli {

CLI::Option* add_seconds(CLI::App* cmd, const std::string& name, std::chrono::milliseconds& field,
                         const std::string& help, double lo, double hi) {
    auto* option = cmd->add_option_function<double>(
        name,
        [&field](const double& seconds) {
            field = std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000.0));
        },
        help);
    std::ostringstream text;  // "120", "0.5": no trailing zeros
    text << std::chrono::duration<double>(field).count();
    option->default_str(text.str());
    option->check(CLI::Range(lo, hi));
    return option;
}

void add_backoff_flags(CLI::App* cmd, BackoffPolicy& backoff, const std::string& what) {
    using std::chrono::milliseconds;
    add_duration<milliseconds>(
        cmd, "--retry-base", backoff.base,
        "Milliseconds of the first " + what + " delay; doubles each time (full jitter)", 1,
        600'000);
    add_duration<milliseconds>(cmd, "--retry-cap", backoff.cap,
                               "Milliseconds a " + what + " delay grows to at most", 1, 86'400'000);
}

void add_fetch_limit_flags(CLI::App* cmd, FetchLimits& limits) {
    add_limit(cmd, "-j,--jobs", limits.concurrency,
              "Transfers at once, in all, shared max-min by users, jobs and hosts (see --per-host)",
              1, 1024);
    add_limit(cmd, "--per-host", limits.per_host, "Transfers at once to one host (0: same as -j)",
              0, 1024);
    add_limit(cmd, "--retries", limits.retries, "Extra attempts for transient failures", 0, 20);
    add_seconds(cmd, "--timeout", limits.total_timeout, "Seconds one transfer may take in all", 0.1,
                86400.0);
    add_seconds(cmd, "--connect-timeout", limits.connect_timeout,
                "Seconds to wait for a connection", 0.1, 3600.0);
    add_limit(cmd, "--min-speed", limits.low_speed_bytes,
              "A transfer slower than this many bytes/s for --min-speed-time times out (0: off)",
              0L, 1L << 30);
    add_duration<std::chrono::seconds>(cmd, "--min-speed-time", limits.low_speed_time,
                                       "Seconds below --min-speed before giving up", 1, 3600);
    add_limit(cmd, "--max-bytes", limits.max_bytes, "Largest image accepted, in bytes",
              std::uint64_t(1), std::uint64_t(1) << 40);
    add_limit(cmd, "--min-free", limits.min_free_bytes,
              "Bytes a download leaves free on the image folder's disk; below, it fails with "
              "reason io (0: off)",
              std::uint64_t(0), std::uint64_t(1) << 50);
    add_limit(cmd, "--max-pixels", limits.max_pixels, "Largest width*height*pages accepted",
              std::uint64_t(1), std::uint64_t(1) << 50);
    cmd->add_option_function<std::string>(
           "--verify",
           [&limits](const std::string& mode) {
               limits.verify = mode == "decode" ? VerifyMode::decode : VerifyMode::header;
           },
           "How a downloaded image is checked: header (its structure, read without a decoder) "
           "or decode (every pixel decoded by libvips)")
        ->check(CLI::IsMember({"header", "decode"}))
        ->option_text("header|decode=header")
        ->default_str("header");
    add_limit(cmd, "--max-redirects", limits.max_redirects, "Redirects one URL may follow", 0, 50);
    add_limit(cmd, "--probe-threads", limits.probe_threads,
              "Threads that check downloaded images (and create .part files ahead)", 1, 256);
    add_limit(cmd, "--network-threads", limits.network_threads,
              "Threads that drive transfers, sharing -j (never more than -j)", 1, 16);
    add_backoff_flags(cmd, limits.backoff, "retry");
    add_duration<std::chrono::seconds>(cmd, "--retry-after-cap", limits.retry_after_cap,
                                       "Seconds a server's Retry-After is honoured at most", 0,
                                       86'400);
    add_limit(cmd, "--per-host-rate", limits.per_host_rate,
              "Requests per second to one host, retries and redirects included (0: no limit)", 0.0,
              100'000.0);
    add_limit(cmd, "--host-failures", limits.host_failures,
              "Connection/TLS/DNS failures in a row that take a host down (its items then fail "
              "at once)",
              1, 1000);
    add_seconds(cmd, "--host-cooloff", limits.host_cooloff,
                "Seconds a down host is left alone before one probe; doubles per failed probe",
                0.01, 86400.0);
    add_seconds(cmd, "--host-cooloff-cap", limits.host_cooloff_cap,
                "Seconds a host's cool-off grows to at most", 0.01, 86400.0);
    cmd->add_option("--user-agent", limits.user_agent,
                    "User-Agent of every request (a job's own user_agent wins)")
        ->capture_default_str()
        ->check(CLI::Validator(
            [](std::string& value) { return check_header_text("--user-agent", value); }, "TEXT"));
}

}  // namespace litchi::cli
