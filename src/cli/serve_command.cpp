// `litchi serve`: the multi-user job server (HTTP API + web app). This file
// only maps flags onto ServerConfig; src/server does the rest.
#include <memory>

#include "cli/commands.hpp"
#include "server/server.hpp"

namespace litchi::cli {

void add_serve_command(CLI::App& app, int& status) {
    auto config = std::make_shared<server::ServerConfig>();
    auto timeout_s = std::make_shared<double>(
        std::chrono::duration<double>(config->fetch.total_timeout).count());
    auto* cmd = app.add_subcommand("serve", "Run the job server: HTTP API and web app");
    cmd->add_option("--listen", config->listen,
                    "Address to listen on, HOST:PORT (port 0: any free port)")
        ->capture_default_str();
    cmd->add_option("--data", config->data_dir, "Folder for the database, images and thumbnails")
        ->capture_default_str();
    cmd->add_option("--web", config->web_dir, "Folder of the built web app (index.html)")
        ->capture_default_str();
    cmd->add_flag("--allow-private", config->fetch.allow_private,
                  "Allow downloads from loopback, private and other non-global addresses");
    cmd->add_option("--allow-origin", config->allowed_origins,
                    "Extra browser Origin allowed on the WebSocket (repeatable)");
    cmd->add_option("--max-body", config->http.max_job_body_bytes,
                    "Largest POST /api/jobs body, in bytes")
        ->capture_default_str()
        ->check(CLI::Range(std::uint64_t(1024), std::uint64_t(1) << 32));
    cmd->add_option("--max-urls", config->http.max_urls_per_job, "Most URLs in one job")
        ->capture_default_str()
        ->check(CLI::Range(std::size_t(1), std::size_t(10'000'000)));
    cmd->add_option("--login-rate", config->http.login_attempts_per_minute,
                    "Login attempts per minute per client IP")
        ->capture_default_str()
        ->check(CLI::Range(1, 100'000));
    cmd->add_option("--max-connections", config->http.max_connections,
                    "Open HTTP connections at most")
        ->capture_default_str()
        ->check(CLI::Range(std::size_t(1), std::size_t(1'000'000)));
    cmd->add_option("--workers", config->http.worker_threads,
                    "Threads for database, hashing, thumbnails and zips")
        ->capture_default_str()
        ->check(CLI::Range(1, 256));
    cmd->add_option("-j,--jobs", config->fetch.concurrency, "Transfers at once, all jobs together")
        ->capture_default_str()
        ->check(CLI::Range(1, 1024));
    cmd->add_option("--per-host", config->fetch.per_host,
                    "Transfers at once to one host (0: same as -j)")
        ->capture_default_str()
        ->check(CLI::Range(0, 1024));
    cmd->add_option("--retries", config->fetch.retries, "Extra attempts for transient failures")
        ->capture_default_str()
        ->check(CLI::Range(0, 20));
    cmd->add_option("--timeout", *timeout_s, "Seconds one transfer may take in all")
        ->capture_default_str()
        ->check(CLI::Range(0.1, 86400.0));
    auto interval_ms = std::make_shared<std::int64_t>(config->live.hub.progress_interval.count());
    cmd->add_option("--progress-interval", *interval_ms, "Milliseconds between two progress messages of one job")
        ->capture_default_str()->check(CLI::Range(std::int64_t(0), std::int64_t(60'000)));
    cmd->add_option("--replay-capacity", config->live.hub.replay_capacity,
                    "Job-level events kept per user for resume (and a slow watcher's backlog)")
        ->capture_default_str()->check(CLI::Range(std::size_t(2), std::size_t(1'000'000)));
    cmd->add_option("--item-queue", config->live.hub.side_queue_capacity,
                    "Item events queued per watcher before the oldest are dropped")
        ->capture_default_str()->check(CLI::Range(std::size_t(2), std::size_t(1'000'000)));
    auto stall_s = std::make_shared<std::int64_t>(config->live.write_stall_timeout.count());
    cmd->add_option("--ws-stall-timeout", *stall_s, "Seconds a WebSocket frame may wait for a reader that stopped")
        ->capture_default_str()->check(CLI::Range(std::int64_t(1), std::int64_t(3600)));
    auto idle_s = std::make_shared<std::int64_t>(config->live.websocket_idle_timeout.count());
    cmd->add_option("--ws-idle-timeout", *idle_s,
                    "Seconds a WebSocket may send nothing: pinged after half, dropped if the next half brings nothing")
        ->capture_default_str()->check(CLI::Range(std::int64_t(2), std::int64_t(86'400)));
    cmd->add_option("--max-bytes", config->fetch.max_bytes, "Largest image accepted, in bytes")
        ->capture_default_str()
        ->check(CLI::Range(std::uint64_t(1), std::uint64_t(1) << 40));
    cmd->add_option("--max-pixels", config->fetch.max_pixels, "Largest width*height*pages accepted")
        ->capture_default_str()
        ->check(CLI::Range(std::uint64_t(1), std::uint64_t(1) << 50));
    cmd->footer(
        "Other limits: request header 16 KiB, other request bodies 64 KiB, read timeout 30 s, "
        "keep-alive idle 75 s,\n"
        "login rate window 60 s, thumbnails ?thumb=16..1024, item pages up to 1000.\n"
        "Live progress: client WebSocket messages 64 KiB (close 1009), 64 item subscriptions per watcher,\n"
        "idle user state kept 300 s, WebSocket send buffer 64 KiB, token re-check every 15 s, SSE keep-alive 15 s.");
    cmd->callback([config, timeout_s, interval_ms, stall_s, idle_s, &status] {
        config->live.hub.progress_interval = std::chrono::milliseconds(*interval_ms);
        config->live.write_stall_timeout = std::chrono::seconds(*stall_s);
        config->live.websocket_idle_timeout = std::chrono::seconds(*idle_s);
        config->fetch.total_timeout =
            std::chrono::milliseconds(static_cast<std::int64_t>(*timeout_s * 1000.0));
        status = server::run_server(*config);
    });
}

}  // namespace litchi::cli
