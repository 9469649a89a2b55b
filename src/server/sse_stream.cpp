// See sse_stream.hpp.
#include "server/sse_stream.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <charconv>

#include "server/api_error.hpp"
#include "server/auth.hpp"

namespace litchi::server {

namespace net = boost::asio;
namespace json = boost::json;

namespace {

std::optional<std::uint64_t> parse_seq(std::string_view text) {
    while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return value;
}

void append_message(std::string& out, const events::OutgoingMessage& message) {
    if (events::carries_event_id(message.kind)) out += fmt::format("id: {}\n", message.seq);
    out += "data: ";
    out += *message.text;  // serialised JSON never contains a newline
    out += "\n\n";
}

}  // namespace

SseStream::SseStream(std::shared_ptr<EventWiring> events, net::any_io_executor timer_executor)
    : events_(std::move(events)),
      keepalive_(std::move(timer_executor)),
      // EventSource waits this long before reconnecting after the stream ends.
      preface_(fmt::format("retry: {}\n\n", events_->limits().sse_retry.count())) {
    events_->count_connection(false, +1);
}

SseStream::~SseStream() {
    if (subscription_) subscription_->cancel();
    {
        std::lock_guard lock(mutex_);
        keepalive_.cancel();
    }
    events_->count_connection(false, -1);
}

bool SseStream::open(const Authenticated& auth, std::optional<events::ResumePoint> resume_from,
                     const std::vector<std::string>& item_jobs) {
    events::SubscribeOptions options;
    options.credential_id = EventWiring::credential_id(auth.token_id);
    options.resume_from = std::move(resume_from);
    // The hub notifies on the publishing thread (whichever thread committed):
    // hand over to our own executor so the messages are popped and written out
    // as SSE text there, not on the commit path.
    options.notify = [weak = weak_from_this(), executor = keepalive_.get_executor()] {
        net::post(executor, [weak] {
            if (auto self = weak.lock()) self->on_notify();
        });
    };
    subscription_ = events_->hub().subscribe(auth.user.id, std::move(options));
    if (!subscription_) return false;
    for (const auto& job : item_jobs) {
        // Ids come as text; the hub treats 7 and "7" alike.
        auto result = subscription_->subscribe_items(json::value(job));
        if (result == events::ItemSubscribeResult::not_found ||
            result == events::ItemSubscribeResult::too_many) {
            auto error = result == events::ItemSubscribeResult::not_found
                             ? live_error_message(LiveError::not_found, "no such job: " + job)
                             : live_error_message(LiveError::too_many_subscriptions,
                                                  "this stream follows too many jobs");
            preface_ += "data: " + error + "\n\n";
        }
    }
    return true;
}

bool SseStream::take_ready(std::string& out) {
    if (!ready_ || !subscription_) return true;
    auto batch = subscription_->pop(events_->limits().pop_batch);
    if (batch.close) {
        // No close codes in SSE: a comment says why, then the response ends.
        out += fmt::format(": closed {} {}\n\n", batch.close->code, batch.close->reason);
        if (batch.close->code == events::close_code::policy_violation)
            events_->count_revoked_close();
        return false;
    }
    for (const auto& message : batch.messages) {
        append_message(out, message);
        events_->count_message_sent();
    }
    ready_ = batch.more;
    return true;
}

void SseStream::pull(PieceHandler done) {
    std::string piece;
    bool more = true;
    {
        std::lock_guard lock(mutex_);
        if (ended_) {
            more = false;
        } else {
            piece = std::move(preface_);
            preface_.clear();
            if (!take_ready(piece)) {
                ended_ = true;
                more = false;
            }
            if (piece.empty() && more) {
                // Nothing yet: answer when the hub notifies or the keep-alive falls due.
                waiting_ = std::move(done);
                arm_keepalive();
                return;
            }
            keepalive_.cancel();
        }
    }
    done(std::move(piece), more, false);
}

void SseStream::on_notify() {
    // Runs on the stream's executor: pop, format, and hand over; never block.
    PieceHandler handler;
    std::string piece;
    bool more = true;
    {
        std::lock_guard lock(mutex_);
        ready_ = true;
        if (!waiting_) return;  // the next pull takes it
        if (!take_ready(piece)) {
            ended_ = true;
            more = false;
        }
        if (piece.empty() && more) return;
        handler = std::move(waiting_);
        waiting_ = nullptr;
        keepalive_.cancel();
    }
    handler(std::move(piece), more, false);
}

void SseStream::arm_keepalive() {
    keepalive_.expires_after(events_->limits().sse_keepalive);
    keepalive_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
        if (ec) return;
        auto self = weak.lock();
        if (!self) return;
        PieceHandler handler;
        {
            std::lock_guard lock(self->mutex_);
            if (!self->waiting_) return;
            handler = std::move(self->waiting_);
            self->waiting_ = nullptr;
        }
        handler(": keepalive\n\n", true, false);
    });
}

void register_event_stream_route(Router& router, std::shared_ptr<EventWiring> events,
                                 std::vector<std::string> allowed_origins) {
    router.add(
        http::verb::get, "/api/events", Placement::worker,
        [events, allowed_origins = std::move(allowed_origins)](RequestContext& ctx) -> Reply {
            auto auth = authenticate_request(events->store().users(), ctx.req);
            if (!auth) return unauthorized();
            if (!origin_allowed(ctx.req, allowed_origins)) {
                return error_response(ApiError::forbidden_origin,
                                      "this Origin may not open the event stream");
            }

            // Where the client left off: Last-Event-ID (EventSource's own
            // reconnect) first, else ?since=&epoch=.
            std::optional<events::ResumePoint> resume_from;
            auto last_id = ctx.req["Last-Event-ID"];
            auto since_text = ctx.query("since");
            std::optional<std::uint64_t> since;
            if (!last_id.empty()) {
                since = parse_seq(last_id);
            } else if (since_text && !since_text->empty()) {
                since = parse_seq(*since_text);
                if (!since) {
                    return error_response(ApiError::bad_query,
                                          "since must be a non-negative integer");
                }
            }
            if (since) {
                resume_from = events::ResumePoint{*since, std::nullopt};
                if (auto epoch = ctx.query("epoch"); epoch && !epoch->empty())
                    resume_from->epoch = *epoch;
            }
            std::vector<std::string> item_jobs;
            if (auto items = ctx.query("items"); items && !items->empty()) {
                std::string_view list = *items;
                while (!list.empty()) {
                    auto comma = list.find(',');
                    auto entry = list.substr(0, comma);
                    if (!entry.empty()) item_jobs.emplace_back(entry);
                    if (comma == std::string_view::npos) break;
                    list.remove_prefix(comma + 1);
                }
                if (item_jobs.size() > events->limits().hub.max_item_subscriptions) {
                    return error_response(ApiError::too_many_subscriptions,
                                          "too many jobs in ?items=");
                }
            }

            auto slot = events->admit_user_socket(auth->user.id);
            if (!slot) return too_many_sockets(events->limits().max_sockets_per_user);
            auto stream = std::make_shared<SseStream>(events, events->workers().get_executor());
            stream->hold_slot(std::move(*slot));
            if (!stream->open(*auth, std::move(resume_from), item_jobs)) {
                return error_response(ApiError::unavailable, "cannot load your jobs; try again");
            }
            StreamResponse res;
            res.head.result(http::status::ok);
            res.head.set(http::field::content_type, "text/event-stream; charset=utf-8");
            res.head.set(http::field::cache_control, "no-cache");
            res.head.set("X-Accel-Buffering", "no");
            res.body = std::move(stream);
            return res;
        });
}

}  // namespace litchi::server
