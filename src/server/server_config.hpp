// The settings of `litchi serve`: where it listens, where its data lives, and
// every limit the HTTP front end enforces, each with its default. The CLI shows
// these defaults in --help; nothing else in src/server hard-codes a limit.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "server/live_limits.hpp"

namespace litchi::server {

struct HttpLimits {
    std::uint32_t max_header_bytes = 16 * 1024;      // request line + headers
    std::uint64_t max_job_body_bytes = 16ull << 20;  // --max-body: POST /api/jobs body (16 MiB)
    std::uint64_t max_other_body_bytes = 64 * 1024;  // every other request body
    std::size_t max_urls_per_job = 100'000;          // --max-urls
    std::chrono::seconds read_timeout{30};           // to receive one whole request
    std::chrono::seconds idle_timeout{75};           // keep-alive wait for the next request
    std::chrono::seconds write_timeout{60};          // for one write to make progress
    std::size_t max_connections = 4096;              // beyond this, new sockets are closed
    int login_attempts_per_minute = 10;              // --login-rate: per client IP
    int thumb_min = 16, thumb_max = 1024;            // ?thumb=N bounds
    std::size_t items_page_default = 100, items_page_max = 1000;
    int io_threads = 1;      // sockets; handlers never block them
    int worker_threads = 4;  // SQLite, argon2id, libvips, zip
};

struct ServerConfig {
    std::string listen = "127.0.0.1:9527";
    std::filesystem::path data_dir = "var";
    std::filesystem::path web_dir = "web/dist";
    std::vector<std::string> allowed_origins;  // --allow-origin: browser Origins allowed besides our own
    FetchLimits fetch{};                       // -j, --per-host, --allow-private, ...
    HttpLimits http{};
    LiveLimits live{};                         // WebSocket/SSE and the event hub
};

}  // namespace litchi::server
