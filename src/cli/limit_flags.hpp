// How a limit becomes a flag, the same way in every command: its default is
// shown in --help (read back from the config struct, so --help and the code
// cannot disagree), its range is checked by CLI11 (outside it: a usage error,
// exit status 2, naming the flag), and a duration binds straight to its
// std::chrono field in the unit the flag names.
//
// Also the download limits that `litchi fetch` and `litchi serve` share, so
// both commands spell them (and check them) alike.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <string>

#include "core/backoff.hpp"
#include "core/config.hpp"

namespace litchi::cli {

// `--name N` for a numeric limit, N in [lo, hi].
template <class T>
CLI::Option* add_limit(CLI::App* cmd, const std::string& name, T& field, const std::string& help,
                       T lo, T hi) {
    return cmd->add_option(name, field, help)->capture_default_str()->check(CLI::Range(lo, hi));
}

// `--name N` in whole `Unit`s (std::chrono::seconds, milliseconds) for a
// duration field of any unit, N in [lo, hi].
template <class Unit, class Rep, class Period>
CLI::Option* add_duration(CLI::App* cmd, const std::string& name,
                          std::chrono::duration<Rep, Period>& field, const std::string& help,
                          typename Unit::rep lo, typename Unit::rep hi) {
    using Count = typename Unit::rep;
    auto* option = cmd->add_option_function<Count>(
        name,
        [&field](const Count& value) {
            field = std::chrono::duration_cast<std::chrono::duration<Rep, Period>>(Unit(value));
        },
        help);
    option->default_str(std::to_string(std::chrono::duration_cast<Unit>(field).count()));
    option->check(CLI::Range(lo, hi));
    return option;
}

// `--name S` in seconds with a fraction ("0.5") for a millisecond field, S in [lo, hi].
CLI::Option* add_seconds(CLI::App* cmd, const std::string& name, std::chrono::milliseconds& field,
                         const std::string& help, double lo, double hi);

// --retry-base and --retry-cap (milliseconds) for a backoff policy.
void add_backoff_flags(CLI::App* cmd, BackoffPolicy& backoff, const std::string& what);

// The download engine's limits: -j, --per-host, --retries, --timeout,
// --connect-timeout, --min-speed, --min-speed-time, --max-bytes, --max-pixels,
// --max-redirects, --probe-threads, --retry-base, --retry-cap, --retry-after-cap,
// --per-host-rate, --host-failures, --host-cooloff, --host-cooloff-cap.
// Policy flags (--allow-private, --allow-cidr, --proxy-from-env) are each
// command's own, since their wording differs.
void add_fetch_limit_flags(CLI::App* cmd, FetchLimits& limits);

}  // namespace litchi::cli
