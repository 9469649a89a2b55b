// The settings of `litchi serve`: where it listens, where its data lives, and
// every limit the server enforces, each with its default and the flag that
// sets it (src/cli/serve_command.cpp shows them all in --help). Nothing else
// in src/server hard-codes a limit: what is left as a constant is protocol
// (RFC sizes, magic strings) or a shape rule, said so where it is defined.
//
// The defaults live here and only here; the CLI reads them back for --help,
// and validate_server_config() is the one check of a filled-in config.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "jobs/scheduler.hpp"
#include "server/live_limits.hpp"
#include "server/webhook_sender.hpp"

namespace litchi::server {

struct HttpLimits {
    std::uint32_t max_header_bytes = 16 * 1024;      // --max-header: request line + headers
    std::uint64_t max_job_body_bytes = 16ull << 20;  // --max-body: POST /api/jobs body (16 MiB)
    std::uint64_t max_other_body_bytes = 64 * 1024;  // --max-other-body: every other request body
    // --max-body-in-flight: all request bodies being read or handled at once,
    // summed (declared lengths; a chunked body counts as its route's limit).
    // A body that does not fit now gets 503 `busy`. At least --max-body.
    std::uint64_t max_body_in_flight = 256ull << 20;
    std::size_t max_urls_per_job = 100'000;  // --max-urls
    // --max-job-name: longer names are refused with 400 (and admission cuts
    // names at the same length, jobs/admission.hpp).
    std::size_t max_job_name_bytes = 200;
    std::chrono::seconds read_timeout{30};   // --read-timeout: to receive one whole request
    std::chrono::seconds idle_timeout{75};   // --idle-timeout: keep-alive wait for the next request
    std::chrono::seconds write_timeout{60};  // --write-timeout: for one write to make progress
    // --min-write-rate: a reply of N bytes gets write_timeout + N / this seconds,
    // so a large download on a slow link is not cut, and a stalled reader is.
    std::uint64_t min_write_rate = 64 * 1024;
    // --linger: after refusing a body (413), how long to read and drop what the
    // client still sends, so it reads our answer instead of a reset.
    std::chrono::seconds linger_time{3};
    // --shutdown-grace: on SIGINT/SIGTERM, how long open replies may take to finish.
    std::chrono::seconds shutdown_grace{5};
    std::size_t max_connections = 4096;  // --max-connections: beyond, new sockets are closed
    // --accept-retry: after a failed accept() (no descriptors left), wait this
    // long before the next; --accept-log-interval: log such failures at most
    // once per interval (with their count).
    std::chrono::milliseconds accept_retry{100};
    std::chrono::seconds accept_log_interval{10};
    int login_attempts_per_window = 10;          // --login-rate: per client IP ...
    std::chrono::seconds login_window{60};       // --login-window: ... in any window this long
    std::size_t login_tracked_clients = 10'000;  // --login-clients: IPs remembered (memory bound)
    // --login-account-free, --login-account-delay, --login-account-max-delay:
    // the per-account throttle (rate_limiter.hpp).
    int login_account_free = 5;
    std::chrono::seconds login_account_delay{1};
    std::chrono::seconds login_account_max_delay{60};
    int thumb_min = 16, thumb_max = 1024;        // --thumb-min, --thumb-max: ?thumb=N bounds
                                                 // (then snapped up to kThumbnailSizes)
    std::size_t items_page_default = 100;        // --items-page: items per page without ?limit=
    std::size_t items_page_max = 1000;           // --items-page-max: the largest ?limit=
    std::size_t stream_piece_bytes = 64 * 1024;  // --stream-piece: one chunk of a manifest or zip
    int stream_item_page = 500;  // --stream-page: items read per query while streaming
    int io_threads = 1;          // --io-threads: sockets; handlers never block them
    int worker_threads = 4;      // --workers: SQLite, argon2id, libvips, zip
    int thumb_threads = 2;       // --thumb-workers: GET /api/images (thumbnails), apart
};

// Where the state lives and who this node is (docs/scale-out.md). With
// PostgreSQL, any number of nodes share `db` and `blobs_dir`.
struct ClusterConfig {
    std::string db;                   // --db / LITCHI_DB: "" or sqlite:PATH or postgresql://...
    std::filesystem::path blobs_dir;  // --blobs: empty = DATA/blobs
    std::string node;                 // --node: empty = hostname:port
    std::chrono::seconds lease{30};   // --lease
    int db_connections = 8;           // --db-connections (PostgreSQL pool)
    std::chrono::minutes event_retention{10};  // --event-retention (PostgreSQL log)
};

struct ServerConfig {
    std::string listen = "127.0.0.1:9527";
    std::filesystem::path data_dir = "var";
    ClusterConfig cluster{};
    std::string node;  // the resolved node name (run_server fills it in)
    std::filesystem::path web_dir = "web/dist";
    std::vector<std::string>
        allowed_origins;  // --allow-origin: browser Origins allowed besides our own
    // -j, --per-host, --allow-private, ... One network thread, not fetch's
    // two: the server's own threads (HTTP, store, scheduler) share the cores,
    // and on two of them a second lane made a 2,000-image job slower
    // (docs/benchmarks.md, "Fair shares").
    FetchLimits fetch = [] {
        FetchLimits limits;
        limits.network_threads = 1;
        return limits;
    }();
    HttpLimits http{};
    LiveLimits live{};  // WebSocket/SSE and the event hub
    // --outstanding-per-slot, --in-engine-per-slot, --feeder-poll. Its `limits`
    // member is not read: the scheduler gets `fetch` above, the one copy.
    SchedulerOptions scheduler{};
    // --webhook-timeout, --webhook-retry-base, --webhook-retry-cap,
    // --webhook-retry-for, --webhook-poll.
    WebhookOptions webhooks{};
};

// Empty when `config` is usable, otherwise what is wrong, naming the flag
// ("--thumb-min must not exceed --thumb-max"). Ranges of single values are
// checked by the CLI; this checks what relates two values, and the event
// hub's own rules (events::validate_event_limits).
std::string validate_server_config(const ServerConfig& config);

}  // namespace litchi::server
