// Every limit of the download engine, with its default and its flag (the same
// flags on `litchi fetch` and `litchi serve`). The CLI shows these defaults in
// --help; the engine reads the same struct.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "core/address.hpp"
#include "core/backoff.hpp"
#include "core/version.hpp"

namespace litchi {

// How hard a downloaded image is checked before it counts as done.
//   header  the structure of the file, read by core/image_header for PNG, JPEG,
//           GIF, WebP and BMP (libvips's header read for TIFF, HEIF, AVIF):
//           microseconds per image.
//   decode  that, then every pixel decoded by libvips (off the network
//           thread): proof the pixels are whole, at the cost of a full decode.
enum class VerifyMode { header, decode };

// One request header (core/request_options.hpp has the rules for them).
struct HeaderField {
    std::string name;
    std::string value;
    bool operator==(const HeaderField&) const = default;
};

struct FetchLimits {
    int concurrency = 32;                   // -j: transfers at once
    int per_host = 0;                       // --per-host: transfers at once to one host (0: as -j)
    int retries = 3;                        // --retries: extra attempts for transient failures
    std::uint64_t max_bytes = 50ull << 20;  // --max-bytes: body size cap (50 MiB)
    // --min-free: a download fails with `io` rather than leave less than this
    // free on the blob folder's filesystem (checked as it starts and every
    // MiB), so a full disk fails items instead of leaving the database no
    // room to record what became of them. 0: off.
    std::uint64_t min_free_bytes = 64ull << 20;
    std::uint64_t max_pixels = 100'000'000;             // --max-pixels: width*height*pages cap
    VerifyMode verify = VerifyMode::header;             // --verify header|decode
    std::chrono::milliseconds connect_timeout{10'000};  // --connect-timeout
    std::chrono::milliseconds total_timeout{120'000};   // --timeout: whole transfer
    long low_speed_bytes = 1024;                        // --min-speed: below this many bytes/s ...
    std::chrono::seconds low_speed_time{10};  // --min-speed-time: ... for this long: timeout
    int max_redirects = 5;                    // --max-redirects
    bool allow_private = false;               // --allow-private: lift the SSRF address check
    std::vector<CidrRange>
        allowed_ranges;          // --allow-cidr: let just these non-global ranges through
    bool use_proxy_env = false;  // honour http_proxy & co. only when asked
    int probe_threads = 4;  // --probe-threads: image checks + fdatasync, off the network thread
    // --network-threads: threads driving transfers, each its own libcurl multi
    // handle and its share of -j; one dispatch (fair queue, hosts) for all.
    // `litchi fetch`: 2; `litchi serve`: 1 (server/server_config.hpp).
    int network_threads = 2;
    BackoffPolicy backoff{};  // --retry-base, --retry-cap
    // --retry-after-cap: never wait longer than this for a server's Retry-After.
    std::chrono::milliseconds retry_after_cap{60'000};
    // --per-host-rate: requests per second to one host (0: no limit); every
    // request counts (retries and redirect hops too), spaced >= 1/rate apart.
    double per_host_rate = 0;
    // Host health (docs/architecture.md): --host-failures connection, TLS or
    // DNS failures (or timeouts without an answer) in a row take a host down
    // for --host-cooloff; each failed probe doubles it, up to
    // --host-cooloff-cap. While down its items fail at once with its reason.
    int host_failures = 3;
    std::chrono::milliseconds host_cooloff{5'000};
    std::chrono::milliseconds host_cooloff_cap{300'000};
    // --user-agent: the User-Agent of every request unless a job sets its own.
    std::string user_agent{kServerName};
    // -H (fetch only): extra headers on every request (checked by the header
    // rules); a job's own headers come after them.
    std::vector<HeaderField> headers;
};

// Empty when `limits` are usable, otherwise what is wrong with them (naming
// the flags). Single values are range-checked by the CLI; this checks pairs.
std::string validate_fetch_limits(const FetchLimits& limits);

}  // namespace litchi
