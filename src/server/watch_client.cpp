// See watch_client.hpp.
#include "server/watch_client.hpp"

#include <fmt/format.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <random>

#include "core/version.hpp"
#include "events/protocol_messages.hpp"
#include "server/auth.hpp"
#include "server/websocket_session.hpp"

namespace litchi::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace json = boost::json;
using tcp = net::ip::tcp;

namespace {

// The `id` of a job object the server sent.
std::optional<JobId> id_of(const json::object& job) {
    const json::value* id = job.if_contains("id");
    return id ? events::job_id_of(*id) : std::nullopt;
}

// Where this connection's stream stands (docs/protocol.md §4).
struct StreamState {
    JobsById jobs;
    std::optional<std::uint64_t> position;  // last applied seq
    std::string epoch;
    std::optional<std::uint64_t> asked_from;  // `since` of the resume already sent for a gap
};

std::optional<std::uint64_t> seq_of(const json::object& message) {
    const auto* seq = message.if_contains("seq");
    if (!seq) return std::nullopt;
    if (seq->is_uint64()) return seq->get_uint64();
    if (seq->is_int64() && seq->get_int64() >= 0)
        return static_cast<std::uint64_t>(seq->get_int64());
    return std::nullopt;
}

std::string resume_message(std::uint64_t since, const std::string& epoch) {
    json::object message{{"type", "resume"}, {"since", since}};
    if (!epoch.empty()) message["epoch"] = epoch;
    return json::serialize(message);
}

// Applies one server message; true when `jobs` changed. A gap sets `reply`
// to the resume that repairs it (once per position).
bool apply_message(StreamState& state, const json::object& message,
                   std::optional<std::string>& reply) {
    const auto* type_value = message.if_contains("type");
    if (!type_value || !type_value->is_string()) return false;
    std::string_view type = type_value->as_string();
    auto seq = seq_of(message);

    if (type == "hello" || type == "snapshot") {
        const auto* jobs = message.if_contains("jobs");
        if (!seq || !jobs || !jobs->is_array()) return false;
        state.jobs.clear();
        for (const auto& job : jobs->as_array()) {
            if (!job.is_object()) continue;
            if (auto key = id_of(job.as_object())) state.jobs[*key] = job.as_object();
        }
        state.position = *seq;
        if (const auto* epoch = message.if_contains("epoch"); epoch && epoch->is_string()) {
            state.epoch = std::string(epoch->as_string());
        }
        state.asked_from.reset();
        return true;
    }
    if (type != "progress" && type != "job") return false;  // item-level, pong, error
    if (!seq || !state.position || *seq <= *state.position) return false;  // already applied
    if (*seq != *state.position + 1) {
        if (state.asked_from != state.position) {
            state.asked_from = state.position;
            reply = resume_message(*state.position, state.epoch);
        }
        return false;
    }
    state.position = *seq;
    const auto* job = message.if_contains("job");
    if (!job || !job->is_object()) return false;
    auto key = id_of(job->as_object());
    if (!key) return false;
    const auto* event = message.if_contains("event");
    if (type == "job" && event && event->is_string() && event->as_string() == "deleted") {
        state.jobs.erase(*key);
    } else {
        state.jobs[*key] = job->as_object();
    }
    return true;
}

enum class SessionEnd { lost, stopped, unauthorized, revoked };

net::awaitable<SessionEnd> watch_session(const WatchTarget& target, const std::string& token,
                                         const WatchSettings& settings, WatchCallbacks& callbacks,
                                         StreamState& state, bool& connected) {
    auto executor = co_await net::this_coro::executor;
    tcp::resolver resolver(executor);
    websocket::stream<beast::tcp_stream> ws(executor);
    websocket::response_type response;
    try {
        auto endpoints =
            co_await resolver.async_resolve(target.host, target.port, net::use_awaitable);
        beast::get_lowest_layer(ws).expires_after(settings.connect_timeout);
        co_await beast::get_lowest_layer(ws).async_connect(endpoints, net::use_awaitable);
        beast::get_lowest_layer(ws).expires_never();

        auto timeouts = websocket::stream_base::timeout::suggested(beast::role_type::client);
        timeouts.handshake_timeout = settings.connect_timeout;
        // The server pings after half its --ws-idle-timeout (150 s by default)
        // without input; silence for longer than this means the server is gone.
        timeouts.idle_timeout = settings.idle_timeout;
        timeouts.keep_alive_pings = true;
        ws.set_option(timeouts);
        ws.set_option(websocket::stream_base::decorator([&token](websocket::request_type& req) {
            req.set(http::field::sec_websocket_protocol,
                    std::string(kSubprotocol) + ", bearer." + token);
            req.set(http::field::user_agent, kWatchUserAgent);
        }));
        co_await ws.async_handshake(response, target.host_header, kWebSocketPath,
                                    net::use_awaitable);
    } catch (const boost::system::system_error& e) {
        if (e.code() == websocket::error::upgrade_declined) {
            auto status = response.result_int();
            if (status == 401 || status == 403) co_return SessionEnd::unauthorized;
            if (callbacks.on_notice)
                callbacks.on_notice(fmt::format("the server answered HTTP {}", status));
        } else if (callbacks.on_notice) {
            callbacks.on_notice(fmt::format("cannot connect: {}", e.code().message()));
        }
        co_return SessionEnd::lost;
    }

    try {
        // Resume from where the last connection stopped; the hello comes
        // first regardless and replayed seqs at or below it are skipped.
        if (state.position) {
            ws.text(true);
            co_await ws.async_write(net::buffer(resume_message(*state.position, state.epoch)),
                                    net::use_awaitable);
        }
        beast::flat_buffer buffer;
        for (;;) {
            co_await ws.async_read(buffer, net::use_awaitable);
            auto data = buffer.cdata();
            json::error_code ec;
            auto value = json::parse(
                std::string_view(static_cast<const char*>(data.data()), data.size()), ec);
            buffer.consume(buffer.size());
            if (ec || !value.is_object()) continue;
            std::optional<std::string> reply;
            bool changed = apply_message(state, value.as_object(), reply);
            if (state.position) connected = true;
            if (reply) {
                ws.text(true);
                co_await ws.async_write(net::buffer(*reply), net::use_awaitable);
            }
            if (changed && callbacks.on_state && callbacks.on_state(state.jobs)) {
                beast::error_code ignored;
                co_await ws.async_close(websocket::close_code::normal,
                                        net::redirect_error(net::use_awaitable, ignored));
                co_return SessionEnd::stopped;
            }
        }
    } catch (const boost::system::system_error& e) {
        if (e.code() == websocket::error::closed) {
            auto code = ws.reason().code;
            if (code == websocket::close_code::policy_error) co_return SessionEnd::revoked;
            if (callbacks.on_notice) {
                callbacks.on_notice(fmt::format("the server closed the connection ({})",
                                                static_cast<unsigned>(code)));
            }
        } else if (callbacks.on_notice) {
            callbacks.on_notice(fmt::format("connection lost: {}", e.code().message()));
        }
    }
    co_return SessionEnd::lost;
}

}  // namespace

std::optional<WatchTarget> parse_watch_server(std::string_view url, std::string& error) {
    auto parsed = boost::urls::parse_uri(url);
    if (!parsed) {
        error = "--server must be a URL like http://127.0.0.1:9527";
        return std::nullopt;
    }
    auto scheme = parsed->scheme();
    if (scheme != "http" && scheme != "ws") {
        error = "--server must use http:// (or ws://); TLS is not supported by litchi watch";
        return std::nullopt;
    }
    WatchTarget target;
    target.host = std::string(parsed->encoded_host());
    if (target.host.empty()) {
        error = "--server has no host";
        return std::nullopt;
    }
    if (target.host.starts_with('[') && target.host.ends_with(']')) {
        target.host = target.host.substr(1, target.host.size() - 2);
    }
    target.port = parsed->has_port() ? std::string(parsed->port()) : "80";
    if (target.port.empty()) target.port = "80";
    target.host_header = std::string(parsed->encoded_host_and_port());
    return target;
}

WatchOutcome run_watch(const WatchTarget& target, const std::string& token,
                       const WatchSettings& settings, WatchCallbacks& callbacks) {
    net::io_context ioc;
    WatchOutcome outcome = WatchOutcome::gave_up;
    auto loop = [&]() -> net::awaitable<void> {
        StreamState state;
        std::mt19937_64 random(std::random_device{}());
        std::uniform_real_distribution<double> unit(0.0, 1.0);
        net::steady_timer timer(co_await net::this_coro::executor);
        int failures = 0;
        auto last_connected = std::chrono::steady_clock::now();
        for (;;) {
            bool connected = false;
            auto end = co_await watch_session(target, token, settings, callbacks, state, connected);
            switch (end) {
                case SessionEnd::stopped:
                    outcome = WatchOutcome::stopped;
                    co_return;
                case SessionEnd::unauthorized:
                    outcome = WatchOutcome::unauthorized;
                    co_return;
                case SessionEnd::revoked:
                    outcome = WatchOutcome::revoked;
                    co_return;
                case SessionEnd::lost:
                    break;
            }
            auto now = std::chrono::steady_clock::now();
            if (connected) {
                failures = 0;
                last_connected = now;
            }
            ++failures;
            if (settings.retry_for.count() > 0 && now - last_connected > settings.retry_for) {
                outcome = WatchOutcome::gave_up;
                co_return;
            }
            auto delay = backoff_delay(settings.backoff, failures, unit(random));
            if (callbacks.on_notice) {
                callbacks.on_notice(fmt::format("reconnecting in {:.1f} s",
                                                static_cast<double>(delay.count()) / 1000));
            }
            timer.expires_after(delay);
            beast::error_code ignored;
            co_await timer.async_wait(net::redirect_error(net::use_awaitable, ignored));
        }
    };
    net::co_spawn(ioc, loop, net::detached);
    ioc.run();
    return outcome;
}

}  // namespace litchi::server
