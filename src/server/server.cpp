// See server.hpp.
#include "server/server.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <charconv>
#include <cstdio>
#include <functional>
#include <future>
#include <thread>

#include "blobs/blob_store.hpp"
#include "fetch/vips_library.hpp"
#include "jobs/scheduler.hpp"
#include "server/api.hpp"
#include "server/event_wiring.hpp"
#include "server/listener.hpp"
#include "server/log_redaction.hpp"
#include "server/server_state.hpp"
#include "server/sse_stream.hpp"
#include "server/static_files.hpp"
#include "server/thumbnails.hpp"
#include "server/webhook_sender.hpp"
#include "store/store.hpp"

namespace litchi::server {

namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// One server per data folder: two would both "recover" the other's active items.
class DataDirLock {
  public:
    explicit DataDirLock(const std::filesystem::path& dir) {
        std::filesystem::create_directories(dir);
        auto file = dir / "litchi.lock";
        fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd_ < 0) throw std::runtime_error("cannot open " + file.string());
        if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
            ::close(fd_);
            throw std::runtime_error("another litchi serve is using " + dir.string());
        }
    }
    ~DataDirLock() { ::close(fd_); }
    DataDirLock(const DataDirLock&) = delete;
    DataDirLock& operator=(const DataDirLock&) = delete;

  private:
    int fd_ = -1;
};

std::string random_password() {
    unsigned char bytes[15];
    randombytes_buf(bytes, sizeof bytes);
    char text[sodium_base64_ENCODED_LEN(sizeof bytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    sodium_bin2base64(text, sizeof text, bytes, sizeof bytes,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return text;
}

std::string url_host(const tcp::endpoint& endpoint) {
    auto address = endpoint.address();
    if (address.is_unspecified()) return address.is_v6() ? "[::1]" : "127.0.0.1";
    return address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
}

// First start: an `admin` with a random password and a login link, printed
// once on stdout (never logged). The link's token sits in the fragment,
// which browsers never send, so it cannot end up in an access log.
void create_first_user(UserStore& users, const std::string& base_url) {
    if (users.user_count() != 0) return;
    auto password = random_password();
    auto created = users.create_user("admin", password);
    // Nodes of a cluster starting together on an empty database race here:
    // the one that lost finds the admin already made, which is what it wanted.
    if (!created.user && created.error == UserError::name_taken) return;
    if (!created.user)
        throw std::runtime_error(std::string("cannot create admin: ") +
                                 std::string(to_string(created.error)));
    // One-time: the web app exchanges it for a session (POST /api/login
    // {"token"}); it is no bearer token, and dead once used.
    auto issued = users.create_token(created.user->id, TokenKind::link);
    std::printf(
        "Created the first user.\n  user:     admin\n  password: %s\n"
        "Log in with this one-time link (it works once; keep it private):\n"
        "  %s/login#token=%s\n",
        password.c_str(), base_url.c_str(), issued.token.c_str());
    std::fflush(stdout);
}

}  // namespace

bool parse_listen_address(const std::string& text, std::string& host, unsigned short& port) {
    std::string_view rest = text;
    std::string_view host_part;
    if (rest.starts_with('[')) {
        auto close = rest.find(']');
        if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':')
            return false;
        host_part = rest.substr(1, close - 1);
        rest.remove_prefix(close + 2);
    } else {
        auto colon = rest.rfind(':');
        if (colon == std::string_view::npos) return false;
        host_part = rest.substr(0, colon);
        if (host_part.find(':') != std::string_view::npos)
            return false;  // bare IPv6 needs brackets
        rest.remove_prefix(colon + 1);
    }
    unsigned value = 0;
    auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), value);
    if (rest.empty() || ec != std::errc() || end != rest.data() + rest.size() || value > 65535)
        return false;
    if (host_part.empty()) return false;
    host = std::string(host_part);
    port = static_cast<unsigned short>(value);
    return true;
}

int run_server(const ServerConfig& config, ServeMode mode) {
    // Logs go to stderr: stdout carries only the first-start credentials and
    // the listening line, for people and scripts to read.
    // Every line is scrubbed of token-shaped text on its way out.
    use_redacting_logger();
    std::string host;
    unsigned short port = 0;
    if (!parse_listen_address(config.listen, host, port)) {
        std::fprintf(stderr, "litchi serve: --listen %s is not HOST:PORT\n", config.listen.c_str());
        return 2;
    }
    if (auto error = validate_server_config(config); !error.empty()) {
        std::fprintf(stderr, "litchi serve: %s\n", error.c_str());
        return 2;
    }

    try {
        // libvips starts lazily; a server starts it now, so that a broken
        // libvips stops the start rather than the first thumbnail.
        ensure_image_library();
        net::io_context ioc{std::max(config.http.io_threads, 1)};
        tcp::endpoint endpoint;
        {
            tcp::resolver resolver(ioc);
            auto results =
                resolver.resolve(host, std::to_string(port), tcp::resolver::numeric_service);
            endpoint = results.begin()->endpoint();
        }

        DataDirLock lock(config.data_dir);
        std::string db_error;
        auto location = parse_store_location(config.cluster.db, config.data_dir, &db_error);
        if (!location) {
            std::fprintf(stderr, "litchi serve: %s\n", db_error.c_str());
            return 2;
        }
        // The node's name tags its leases, its part files and its metrics.
        ServerConfig effective = config;
        effective.node = config.cluster.node;
        if (effective.node.empty()) {
            char name[256] = {};
            if (::gethostname(name, sizeof name - 1) != 0) name[0] = 0;
            // Stable across restarts, so a restarted node takes its own claims
            // back at once instead of waiting for their leases to run out:
            // with port 0 the data folder (locked: one server each) names it.
            std::error_code ignored;
            auto folder = std::filesystem::weakly_canonical(config.data_dir, ignored).string();
            effective.node = std::string(name) + ":" + (port != 0 ? std::to_string(port) : folder);
        }
        StoreOptions store_options;
        store_options.node = effective.node;
        store_options.lease = config.cluster.lease;
        store_options.progress_interval = config.live.hub.progress_interval;
        store_options.event_retention = config.cluster.event_retention;
        store_options.pool_size = config.cluster.db_connections;
        std::unique_ptr<Store> store = open_store(*location, store_options);
        spdlog::info("node {}: store {}", effective.node, store->describe());
        if (store->recovery().requeued || store->recovery().jobs_repaired) {
            spdlog::info(
                "recovered after an unclean stop: {} items back in the queue, {} jobs repaired",
                store->recovery().requeued, store->recovery().jobs_repaired);
        }
        // Part files older than a lease belong to nobody: their node died or
        // gave the items up (its claims ran out), so any node may sweep them.
        BlobStoreOptions blob_options;
        blob_options.node = effective.node;
        blob_options.orphan_age = std::max(config.cluster.lease, std::chrono::seconds(1));
        const auto blobs_dir =
            config.cluster.blobs_dir.empty() ? config.data_dir / "blobs" : config.cluster.blobs_dir;
        BlobStore blobs(blobs_dir, BlobLayout::sharded, blob_options);
        if (location->kind == StoreLocation::Kind::sqlite) {
            // One server per data folder (the lock above): every part file
            // already there was left by a process that is gone, however young.
            blobs.sweep_orphans(std::chrono::system_clock::now() + blob_options.orphan_age +
                                std::chrono::seconds(1));
        }
        ThumbnailCache thumbs(config.data_dir / "thumbs");
        SchedulerOptions scheduler_options = config.scheduler;
        scheduler_options.limits = config.fetch;
        scheduler_options.lease = config.cluster.lease;
        Scheduler scheduler(store->jobs(), blobs, scheduler_options);
        JobServiceOptions job_options;
        job_options.admission.max_name_bytes = config.http.max_job_name_bytes;
        JobService jobs(store->jobs(), scheduler, job_options);

        auto state = std::make_shared<ServerState>(effective);
        state->set_users(&store->users());
        // Live progress: the store's changes reach the hub through the job
        // service; WebSocket and SSE read from the hub.
        auto events =
            std::make_shared<EventWiring>(ioc, state->workers(), *store, jobs, config.live);
        state->set_events(events);
        register_event_stream_route(state->router(), events, config.allowed_origins);
        Api api(*state, *store, jobs, scheduler, blobs, thumbs);
        api.register_routes(state->router());
        StaticFiles static_files(config.web_dir);
        for (auto method : {http::verb::get, http::verb::head}) {
            state->router().set_fallback(
                method, Placement::worker,
                [&static_files](RequestContext& ctx) { return static_files.serve(ctx.req); });
        }

        // What the router answers, as built: the OpenAPI document
        // (docs/openapi.json) is tested against this list.
        if (mode == ServeMode::print_routes) {
            for (const auto& route : state->router().routes()) {
                std::string pattern;
                for (const auto& segment : route.segments) pattern += "/" + segment;
                std::printf("%s %s\n", std::string(http::to_string(route.method)).c_str(),
                            pattern.empty() ? "/" : pattern.c_str());
            }
            return 0;
        }

        auto listener = std::make_shared<Listener>(ioc, endpoint, state);
        auto bound = listener->local_endpoint();
        std::string base_url = "http://" + url_host(bound) + ":" + std::to_string(bound.port());
        create_first_user(store->users(), base_url);

        std::promise<int> stop_signal;
        net::signal_set signals(ioc, SIGINT, SIGTERM);
        signals.async_wait([&stop_signal](beast::error_code ec, int signal) {
            if (!ec) stop_signal.set_value(signal);
        });

        // Observer (or log follower) in place before the first commit; in
        // cluster mode other nodes' changes wake the feeder too, and their
        // pauses, cancels and deletes stop this node's transfers.
        events->start(
            {.on_activity = [&scheduler] { scheduler.wake(); },
             .on_jobs_stopped =
                 [&scheduler](const std::vector<JobId>& jobs) { scheduler.stop_jobs(jobs); }});
        // Orphaned part files (a node killed mid-download) are swept every
        // half lease by every node; a sweep costs one directory listing.
        net::steady_timer sweep_timer(ioc);
        std::function<void(beast::error_code)> sweep_parts = [&](beast::error_code ec) {
            if (ec) return;
            net::post(state->workers(), [&blobs] {
                try {
                    blobs.sweep_orphans(std::chrono::system_clock::now());
                } catch (const std::exception& e) {
                    spdlog::warn("sweeping orphaned part files failed: {}", e.what());
                }
            });
            sweep_timer.expires_after(std::max(config.cluster.lease / 2, std::chrono::seconds(1)));
            sweep_timer.async_wait(sweep_parts);
        };
        sweep_timer.expires_after(std::max(config.cluster.lease / 2, std::chrono::seconds(1)));
        sweep_timer.async_wait(sweep_parts);
        scheduler.start();
        // Completion webhooks: any node sends any job's (claims are leased).
        WebhookSender webhooks(store->jobs(), config.fetch, config.webhooks);
        webhooks.start();
        listener->run();
        std::vector<std::thread> io_threads;
        for (int i = 0; i < std::max(config.http.io_threads, 1); ++i)
            io_threads.emplace_back([&ioc] { ioc.run(); });
        std::printf("Litchi is listening on %s/\n", base_url.c_str());
        std::fflush(stdout);
        if (!std::filesystem::is_regular_file(config.web_dir / "index.html")) {
            spdlog::warn("no web app in {}: serving a placeholder page", config.web_dir.string());
        }

        int signal = stop_signal.get_future().get();
        spdlog::info("received signal {}: shutting down", signal);
        listener->stop();
        net::post(ioc, [&sweep_timer] { sweep_timer.cancel(); });
        scheduler.stop();  // in-flight items go back to the queue
        webhooks.stop();   // an attempt in flight ends first (at most --webhook-timeout)
        events->stop();    // every watcher gets 1001 (SSE: the stream ends)
        state->stop_sessions();
        auto deadline = std::chrono::steady_clock::now() + config.http.shutdown_grace;
        while (state->metrics().open_connections() > 0 &&
               std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        ioc.stop();
        for (auto& thread : io_threads) thread.join();
        state->join_workers();
        spdlog::info("stopped cleanly");
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "litchi serve: %s\n", e.what());
        return 1;
    }
}

}  // namespace litchi::server
