// `litchi serve`: the multi-user job server (HTTP API + web app). This file
// only maps flags onto ServerConfig; src/server does the rest.
//
// Every limit of the server is a flag here, grouped in --help by the part of
// the server it bounds, with the default read back from ServerConfig (so the
// help text cannot drift from the code). Single values are range-checked by
// CLI11; run_server() checks the ones that relate two flags. Either way a
// bad value is exit status 2 with a message naming the flag.
#include <memory>

#include "cli/commands.hpp"
#include "cli/limit_flags.hpp"
#include "server/server.hpp"

namespace litchi::cli {

namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

void add_server_flags(CLI::App* cmd, server::ServerConfig& config) {
    cmd->option_defaults()->group("Server");
    cmd->add_option("--listen", config.listen,
                    "Address to listen on, HOST:PORT (port 0: any free port)")
        ->capture_default_str();
    cmd->add_option("--data", config.data_dir, "Folder for the database, images and thumbnails")
        ->capture_default_str();
    cmd->add_option("--web", config.web_dir, "Folder of the built web app (index.html)")
        ->capture_default_str();
    cmd->add_option("--db", config.cluster.db,
                    "Store: empty or sqlite:PATH (embedded; default DATA/litchi.db), or a "
                    "postgresql:// URI shared by any number of nodes (env LITCHI_DB)")
        ->envname("LITCHI_DB");
    cmd->add_option("--blobs", config.cluster.blobs_dir,
                    "Folder of downloaded images (default DATA/blobs); with PostgreSQL every "
                    "node uses the same shared folder");
    cmd->add_option("--node", config.cluster.node,
                    "This node's name in logs, metrics and leases; unique per node (default "
                    "HOSTNAME:PORT)");
    add_duration<seconds>(cmd, "--lease", config.cluster.lease,
                          "Seconds a claim on items lasts without renewal; then another node "
                          "redoes them",
                          2, 3600);
    add_limit(cmd, "--db-connections", config.cluster.db_connections,
              "PostgreSQL connections this node opens at most", 2, 256);
    add_duration<std::chrono::minutes>(cmd, "--event-retention", config.cluster.event_retention,
                                       "Minutes the PostgreSQL event log keeps events for resume",
                                       1, 7 * 24 * 60);
    cmd->add_option("--allow-origin", config.allowed_origins,
                    "Extra browser Origin allowed on the WebSocket and SSE and for "
                    "cookie-authenticated POST/PUT/DELETE (repeatable)");
    add_limit(cmd, "--max-connections", config.http.max_connections,
              "Open HTTP connections at most", std::size_t(1), std::size_t(1'000'000));
    add_duration<milliseconds>(cmd, "--accept-retry", config.http.accept_retry,
                               "Milliseconds to wait after a failed accept (no file descriptors "
                               "left) before the next",
                               1, 60'000);
    add_duration<seconds>(cmd, "--accept-log-interval", config.http.accept_log_interval,
                          "Seconds between two log lines about failing accepts", 1, 3600);
    add_limit(cmd, "--workers", config.http.worker_threads,
              "Threads for database, hashing and zips", 1, 256);
    add_limit(cmd, "--thumb-workers", config.http.thumb_threads,
              "Threads for images and thumbnails (apart, so they never slow the API)", 1, 256);
    add_limit(cmd, "--io-threads", config.http.io_threads,
              "Threads that run the sockets (handlers never block them)", 1, 256);
    add_duration<seconds>(cmd, "--shutdown-grace", config.http.shutdown_grace,
                          "Seconds open replies may take to finish on SIGINT/SIGTERM", 0, 3600);
}

void add_request_flags(CLI::App* cmd, server::HttpLimits& http) {
    cmd->option_defaults()->group("HTTP requests");
    add_limit(cmd, "--max-header", http.max_header_bytes,
              "Largest request line and headers, in bytes", std::uint32_t(1024),
              std::uint32_t(1) << 20);
    add_limit(cmd, "--max-body", http.max_job_body_bytes, "Largest POST /api/jobs body, in bytes",
              std::uint64_t(1024), std::uint64_t(1) << 32);
    add_limit(cmd, "--max-other-body", http.max_other_body_bytes,
              "Largest body of any other request, in bytes", std::uint64_t(1024),
              std::uint64_t(1) << 30);
    add_limit(cmd, "--max-body-in-flight", http.max_body_in_flight,
              "Bytes of all request bodies held at once (more: 503 busy); at least --max-body",
              std::uint64_t(1024), std::uint64_t(1) << 40);
    add_limit(cmd, "--max-urls", http.max_urls_per_job, "Most URLs in one job", std::size_t(1),
              std::size_t(10'000'000));
    add_limit(cmd, "--max-job-name", http.max_job_name_bytes,
              "Longest job name, in bytes (a longer one is refused with 400)", std::size_t(1),
              std::size_t(4096));
    add_duration<seconds>(
        cmd, "--read-timeout", http.read_timeout,
        "Seconds to receive a request body (waiting for the headers: --idle-timeout)", 1, 3600);
    add_duration<seconds>(cmd, "--idle-timeout", http.idle_timeout,
                          "Seconds a keep-alive connection may wait for its next request", 1,
                          86'400);
    add_duration<seconds>(cmd, "--write-timeout", http.write_timeout,
                          "Seconds one write may take, plus the size at --min-write-rate", 1, 3600);
    add_limit(cmd, "--min-write-rate", http.min_write_rate,
              "Bytes/s a slow reader is given time for (large replies get longer)",
              std::uint64_t(1), std::uint64_t(1) << 30);
    add_duration<seconds>(cmd, "--linger", http.linger_time,
                          "Seconds to read and drop the rest of a refused (413) body", 0, 60);
    add_limit(cmd, "--login-rate", http.login_attempts_per_window,
              "Login attempts per client IP within --login-window", 1, 100'000);
    add_duration<seconds>(cmd, "--login-window", http.login_window,
                          "Seconds of the sliding window --login-rate counts in", 1, 86'400);
    add_limit(cmd, "--login-clients", http.login_tracked_clients,
              "Client IPs the login limit remembers (the stalest are forgotten)", std::size_t(1),
              std::size_t(10'000'000));
    add_limit(cmd, "--login-account-free", http.login_account_free,
              "Failed logins in a row on one account name before each next attempt waits", 0,
              1'000);
    add_duration<seconds>(cmd, "--login-account-delay", http.login_account_delay,
                          "Seconds the first wait lasts; it doubles with every further failure", 1,
                          3600);
    add_duration<seconds>(cmd, "--login-account-max-delay", http.login_account_max_delay,
                          "Longest wait between attempts on one account (never a lockout)", 1,
                          86'400);
    add_limit(cmd, "--thumb-min", http.thumb_min, "Smallest ?thumb= size, in pixels", 1, 16'384);
    add_limit(cmd, "--thumb-max", http.thumb_max, "Largest ?thumb= size, in pixels", 1, 16'384);
    add_limit(cmd, "--items-page", http.items_page_default,
              "Items per page of /api/jobs/{id}/items without ?limit=", std::size_t(1),
              std::size_t(1'000'000));
    add_limit(cmd, "--items-page-max", http.items_page_max, "Largest ?limit= of an items page",
              std::size_t(1), std::size_t(1'000'000));
    add_limit(cmd, "--stream-piece", http.stream_piece_bytes,
              "Bytes per chunk of a streamed manifest or zip", std::size_t(4096),
              std::size_t(64) << 20);
    add_limit(cmd, "--stream-page", http.stream_item_page,
              "Items read per database query while streaming a manifest or zip", 1, 100'000);
}

void add_live_flags(CLI::App* cmd, server::LiveLimits& live) {
    cmd->option_defaults()->group("Live progress (WebSocket, SSE, event hub)");
    add_duration<milliseconds>(cmd, "--progress-interval", live.hub.progress_interval,
                               "Milliseconds between two progress messages of one job", 0, 60'000);
    add_limit(cmd, "--replay-capacity", live.hub.replay_capacity,
              "Job-level events kept per user for resume (and a slow watcher's backlog)",
              std::size_t(2), std::size_t(1'000'000));
    add_limit(cmd, "--item-queue", live.hub.side_queue_capacity,
              "Item events queued per watcher before the oldest are dropped", std::size_t(2),
              std::size_t(1'000'000));
    add_limit(cmd, "--max-item-subscriptions", live.hub.max_item_subscriptions,
              "Jobs one watcher may follow item by item", std::size_t(1), std::size_t(100'000));
    add_duration<seconds>(cmd, "--idle-user-ttl", live.hub.idle_user_ttl,
                          "Seconds a user's replay buffer outlives their last watcher", 0, 86'400);
    add_limit(cmd, "--snapshot-jobs", live.hub.max_snapshot_jobs,
              "Jobs a hello or snapshot lists at most (unfinished first, then the newest)",
              std::size_t(1), std::size_t(10'000'000));
    add_limit(cmd, "--max-sockets-per-user", live.max_sockets_per_user,
              "Live sockets (WebSocket and SSE) one user may have open (more: 429)", std::size_t(1),
              std::size_t(1'000'000));
    add_limit(cmd, "--ws-max-message", live.max_client_message,
              "Longest WebSocket message a client may send, in bytes (longer: close 1009)",
              std::size_t(1024), std::size_t(1) << 30);
    add_limit(cmd, "--ws-max-pending", live.max_pending_replies,
              "Answers (pong, error) a WebSocket client may leave unread (more: close 1013)",
              std::size_t(1), std::size_t(100'000));
    add_limit(cmd, "--ws-send-buffer", live.socket_send_buffer,
              "Kernel send buffer of a WebSocket, in bytes: what a slow reader can hold",
              std::size_t(4096), std::size_t(64) << 20);
    add_duration<seconds>(cmd, "--ws-stall-timeout", live.write_stall_timeout,
                          "Seconds a WebSocket frame may wait for a reader that stopped", 1, 3600);
    add_duration<seconds>(cmd, "--ws-idle-timeout", live.websocket_idle_timeout,
                          "Seconds a WebSocket may send nothing: pinged after half, dropped if "
                          "the next half brings nothing",
                          2, 86'400);
    add_duration<seconds>(cmd, "--ws-close-linger", live.close_linger,
                          "Seconds a closing WebSocket waits for the client's close frame", 0, 600);
    add_duration<seconds>(cmd, "--token-recheck", live.credential_check_interval,
                          "Seconds between re-checks of open sockets' tokens (revoked, expired)", 1,
                          86'400);
    add_duration<seconds>(cmd, "--sse-keepalive", live.sse_keepalive,
                          "Seconds of silence before an SSE stream gets a keep-alive comment", 1,
                          3600);
    add_duration<milliseconds>(cmd, "--sse-retry", live.sse_retry,
                               "Milliseconds an EventSource waits before reconnecting (retry:)", 0,
                               3'600'000);
    add_limit(cmd, "--live-batch", live.pop_batch,
              "Messages a WebSocket or SSE stream takes from the hub at a time", std::size_t(1),
              std::size_t(100'000));
    add_duration<seconds>(cmd, "--sweep-interval", live.sweep_interval,
                          "Seconds between two looks for stalled WebSocket writers", 1, 3600);
    add_duration<milliseconds>(cmd, "--hub-tick", live.idle_tick,
                               "Milliseconds between hub ticks when nothing is due (idle users "
                               "expire on a tick)",
                               10, 60'000);
}

void add_download_flags(CLI::App* cmd, server::ServerConfig& config) {
    cmd->option_defaults()->group("Downloads");
    cmd->add_flag("--allow-private", config.fetch.allow_private,
                  "Allow downloads from loopback, private and other non-global addresses");
    add_fetch_limit_flags(cmd, config.fetch);

    cmd->option_defaults()->group("Scheduling");
    add_limit(cmd, "--outstanding-per-slot", config.scheduler.outstanding_per_slot,
              "Items waiting for or on the network per -j slot, shared max-min by users and jobs",
              std::size_t(1), std::size_t(1000));
    add_limit(cmd, "--in-engine-per-slot", config.scheduler.in_engine_per_slot,
              "Items in the engine per -j slot, downloaded and not yet committed included",
              std::size_t(1), std::size_t(10'000));
    add_limit(cmd, "--parked-per-slot", config.scheduler.parked_per_slot,
              "Items parked in the engine (retry waits, host pauses; outside the two above) per "
              "-j slot, a memory bound",
              std::size_t(1), std::size_t(10'000));
    add_duration<milliseconds>(
        cmd, "--feeder-poll", config.scheduler.feeder_poll,
        "Milliseconds between looks for network room while there may be more to claim", 1, 10'000);

    cmd->option_defaults()->group("Webhooks");
    auto& hooks = config.webhooks;
    add_seconds(cmd, "--webhook-timeout", hooks.timeout,
                "Seconds one webhook delivery attempt may take in all", 0.1, 3600.0);
    add_duration<milliseconds>(cmd, "--webhook-retry-base", hooks.backoff.base,
                               "Milliseconds of the first webhook retry delay; doubles each time "
                               "(full jitter)",
                               1, 600'000);
    add_duration<milliseconds>(cmd, "--webhook-retry-cap", hooks.backoff.cap,
                               "Milliseconds a webhook retry delay grows to at most", 1,
                               86'400'000);
    add_duration<seconds>(cmd, "--webhook-retry-for", hooks.retry_for,
                          "Seconds after a job's end its webhook is retried; then it has failed", 1,
                          30 * 86'400);
    add_duration<milliseconds>(cmd, "--webhook-poll", hooks.poll,
                               "Milliseconds between looks for due webhook deliveries", 10, 60'000);
}

}  // namespace

void add_serve_command(CLI::App& app, int& status) {
    auto config = std::make_shared<server::ServerConfig>();
    auto* cmd = app.add_subcommand("serve", "Run the job server: HTTP API and web app");
    add_server_flags(cmd, *config);
    add_request_flags(cmd, config->http);
    add_live_flags(cmd, config->live);
    add_download_flags(cmd, *config);
    cmd->footer(
        "Fixed by protocol, not limits: WebSocket control frames carry at most 125 bytes "
        "(RFC 6455).\n"
        "Limits that relate two flags (--thumb-min <= --thumb-max, --items-page <= "
        "--items-page-max,\n"
        "--outstanding-per-slot <= --in-engine-per-slot, --retry-base <= --retry-cap) are "
        "checked at start (exit 2).");
    auto print_routes = std::make_shared<bool>(false);
    cmd->add_flag("--print-routes", *print_routes,
                  "Print the HTTP routes (METHOD PATH a line) and exit: opens the store as a "
                  "start would, listens on nothing")
        ->group("Server");
    cmd->callback([config, print_routes, &status] {
        status = server::run_server(
            *config, *print_routes ? server::ServeMode::print_routes : server::ServeMode::serve);
    });
}

}  // namespace litchi::cli
