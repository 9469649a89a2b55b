// Every limit Litchi has, with its default, in one place. The CLI shows these
// defaults in --help; the server reads the same structs.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "core/address.hpp"
#include "core/backoff.hpp"

namespace litchi {

struct FetchLimits {
    int concurrency = 32;                       // -j: transfers at once
    int per_host = 0;                           // --per-host: transfers at once to one host (0: as -j)
    int retries = 3;                            // --retries: extra attempts for transient failures
    std::uint64_t max_bytes = 50ull << 20;      // --max-bytes: body size cap (50 MiB)
    std::uint64_t max_pixels = 100'000'000;     // --max-pixels: width*height*pages cap
    std::chrono::milliseconds connect_timeout{10'000};
    std::chrono::milliseconds total_timeout{120'000};  // --timeout: whole transfer
    long low_speed_bytes = 1024;                // below this many bytes/s ...
    std::chrono::seconds low_speed_time{10};    // ... for this long: timeout
    int max_redirects = 5;
    bool allow_private = false;                 // --allow-private: lift the SSRF address check
    std::vector<CidrRange> allowed_ranges;      // --allow-cidr: let just these non-global ranges through
    bool use_proxy_env = false;                 // honour http_proxy & co. only when asked
    int probe_threads = 4;                      // image checks + fdatasync, off the network thread
    BackoffPolicy backoff{};
    std::chrono::milliseconds retry_after_cap{60'000};  // never wait longer than this for Retry-After
};

}  // namespace litchi
