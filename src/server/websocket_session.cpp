// See websocket_session.hpp.
#include "server/websocket_session.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>

#include "core/version.hpp"
#include "server/client_message.hpp"
#include "server/fail.hpp"

namespace litchi::server {

namespace net = boost::asio;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

bool is_event_socket_path(std::string_view path) {
    if (path == kWebSocketPath) return true;
    if (!path.starts_with(kSeedWebSocketPrefix)) return false;
    auto token = path.substr(kSeedWebSocketPrefix.size());
    return !token.empty() && token.find('/') == std::string_view::npos;
}

WebSocketSession::WebSocketSession(tcp::socket&& socket, std::shared_ptr<EventWiring> events,
                                   Authenticated auth, bool answer_subprotocol,
                                   ConnectionSlot connection, UserSocketSlot slot)
    : handshake_(std::in_place, std::move(socket)),
      socket_(handshake_->get_executor()),
      timer_(handshake_->get_executor()),
      events_(std::move(events)),
      connection_(std::move(connection)),
      user_slot_(std::move(slot)),
      auth_(std::move(auth)),
      answer_subprotocol_(answer_subprotocol),
      reader_(events_->limits().max_client_message) {
    events_->count_connection(true, +1);
}

WebSocketSession::~WebSocketSession() {
    if (subscription_) subscription_->cancel();
    if (registration_ != 0) events_->unregister_socket(registration_);
    events_->count_connection(true, -1);
}

void WebSocketSession::run(Request req) {
    const auto& limits = events_->limits();
    beast::error_code ignored;
    auto& socket = beast::get_lowest_layer(*handshake_).socket();
    // A bounded kernel buffer: a reader that stops costs at most this much
    // kernel memory, and its writes stall (then the hub resyncs or closes it).
    socket.set_option(
        net::socket_base::send_buffer_size(static_cast<int>(limits.socket_send_buffer)), ignored);
    socket.set_option(tcp::no_delay(true), ignored);
    // The websocket stream has its own handshake timer: the TCP layer's must be off.
    beast::get_lowest_layer(*handshake_).expires_never();
    handshake_->set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    websocket::permessage_deflate deflate;
    deflate.server_enable = false;
    handshake_->set_option(deflate);
    handshake_->set_option(websocket::stream_base::decorator(
        [subprotocol = answer_subprotocol_](websocket::response_type& res) {
            res.set(http::field::server, kServerName);
            // Only the protocol name: the bearer entry the client offered is never echoed.
            if (subprotocol) res.set(http::field::sec_websocket_protocol, kSubprotocol);
        }));
    handshake_->async_accept(
        req, beast::bind_front_handler(&WebSocketSession::on_accept, shared_from_this()));
}

void WebSocketSession::on_accept(beast::error_code ec) {
    if (ec) return fail(ec, "websocket accept");
    // The 101 is out and Beast read nothing past the request (it was handed
    // over whole): from here on the socket carries our frames.
    socket_ = beast::get_lowest_layer(*handshake_).release_socket();
    handshake_.reset();
    arm_timer(events_->limits().websocket_idle_timeout / 2);
    // Subscribe on the worker pool (the hub's hello reads SQLite).
    net::post(events_->workers(), [self = shared_from_this()] {
        events::SubscribeOptions options;
        options.credential_id = EventWiring::credential_id(self->auth_.token_id);
        options.notify = [weak = self->weak_from_this()] {
            if (auto session = weak.lock()) {
                net::post(session->socket_.get_executor(), [session] { session->on_notify(); });
            }
        };
        std::shared_ptr<events::Subscription> subscription;
        bool still_valid = false;
        try {
            subscription = self->events_->hub().subscribe(self->auth_.user.id, std::move(options));
            // A revocation between the upgrade and now would have missed this watcher.
            still_valid =
                subscription && self->events_->store().users().token_active(self->auth_.token_id);
        } catch (const std::exception& e) {
            spdlog::error("websocket subscribe failed: {}", e.what());
        }
        net::post(self->socket_.get_executor(), [self, subscription, still_valid] {
            self->on_subscribed(subscription, still_valid);
        });
    });
}

void WebSocketSession::on_subscribed(std::shared_ptr<events::Subscription> subscription,
                                     bool still_valid) {
    // The hello is waiting in the hub: start writing and reading. Reading
    // waits until now so that a `resume` sent right after the upgrade finds
    // the subscription it resumes.
    if (closing_ == Closing::finished) return;
    do_read();
    if (!subscription)
        return do_close({events::close_code::internal_error, "cannot load your jobs; try again"});
    if (!still_valid) {
        subscription->cancel();
        events_->count_revoked_close();
        return do_close({events::close_code::policy_violation, "token revoked"});
    }
    subscription_ = std::move(subscription);
    registration_ = events_->register_socket(
        std::static_pointer_cast<LiveSocket>(shared_from_this()), auth_.token_id);
    pop_again_ = true;
    do_write();
}

void WebSocketSession::abort() {
    net::post(socket_.get_executor(), [self = shared_from_this()] {
        // The peer stopped taking data: no close frame can get through, so drop the socket.
        spdlog::info("progress socket of user {} dropped: a write stalled", self->auth_.user.id);
        self->close_socket();
    });
}

void WebSocketSession::close_socket() {
    if (closing_ == Closing::finished) return;
    closing_ = Closing::finished;
    if (subscription_) subscription_->cancel();
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);  // ends the read and any write in flight
    timer_.cancel();
    replies_.clear();
    batch_ = {};
}

void WebSocketSession::do_read() {
    socket_.async_read_some(
        net::buffer(read_buffer_),
        beast::bind_front_handler(&WebSocketSession::on_read, shared_from_this()));
}

void WebSocketSession::on_read(beast::error_code ec, std::size_t bytes) {
    if (ec) {
        // EOF after our close (the peer's half of the closing handshake), a
        // peer that left, or close_socket() cancelling us: fail() logs only the rest.
        fail(ec, "websocket read");
        return close_socket();
    }
    read_since_tick_ = true;
    if (reader_.finished()) {
        // After a close either way only the peer's EOF matters; what else it sends is dropped.
        return do_read();
    }
    incoming_.clear();
    reader_.feed(std::string_view(read_buffer_.data(), bytes), incoming_);
    for (auto& incoming : incoming_) {
        handle_frame(incoming);
        if (closing_ == Closing::finished) return;
    }
    do_read();
}

void WebSocketSession::handle_frame(ws::Incoming& incoming) {
    using Kind = ws::Incoming::Kind;
    switch (incoming.kind) {
        case Kind::message:
            if (!incoming.text) return queue_error(LiveError::bad_message, "send JSON text frames");
            return handle_client_message(incoming.payload);
        case Kind::ping:
            if (closing_ != Closing::no) return;
            // Pongs wait for the socket like answers do, and are capped like them.
            if (++unsent_pongs_ > events_->limits().max_pending_replies) {
                return do_close({events::close_code::try_again_later, "too many unanswered pings"});
            }
            control_out_ += ws::control_frame(ws::Opcode::pong, incoming.payload);
            return do_write();
        case Kind::pong:
            return;
        case Kind::close:
            // Our close went first: this is the answer, the handshake is complete.
            if (closing_ == Closing::sent) return close_socket();
            // The peer's close: echo its code (none: a plain normal close).
            return do_close({incoming.code == ws::close_code::no_status ? ws::close_code::normal
                                                                        : incoming.code,
                             ""});
        case Kind::error:
            spdlog::debug("websocket of user {}: {}", auth_.user.id, incoming.payload);
            return do_close({incoming.code, incoming.payload});
    }
}

void WebSocketSession::handle_client_message(std::string_view text) {
    using Kind = ClientMessage::Kind;
    auto message = parse_client_message(text);
    if (message.kind == Kind::invalid) return queue_error(message.error, message.why);
    if (message.kind == Kind::ping) return queue_reply(R"({"type":"pong"})");
    if (!subscription_) return;
    switch (message.kind) {
        case Kind::resume:
            subscription_->resume(events::ResumePoint{message.since, std::move(message.epoch)});
            break;
        case Kind::subscribe:
            switch (subscription_->subscribe_items(message.job)) {
                case events::ItemSubscribeResult::subscribed:
                    break;
                case events::ItemSubscribeResult::not_found:
                    return queue_error(LiveError::not_found, "no such job");
                case events::ItemSubscribeResult::too_many:
                    return queue_error(LiveError::too_many_subscriptions,
                                       "this connection follows too many jobs");
                case events::ItemSubscribeResult::closed:
                    break;
            }
            break;
        case Kind::unsubscribe:
            if (!subscription_->unsubscribe_items(message.job))
                return queue_error(LiveError::not_found, "no such subscription");
            break;
        case Kind::ping:
        case Kind::invalid:
            return;
    }
    pop_again_ = true;
    do_write();
}

void WebSocketSession::queue_error(LiveError error, std::string_view message) {
    queue_reply(live_error_message(error, message));
}

void WebSocketSession::queue_reply(std::string text) {
    // Answers wait for the socket like everything else; a client that keeps
    // asking without reading them is closed rather than buffered for.
    if (closing_ != Closing::no) return;
    if (replies_.size() >= events_->limits().max_pending_replies) {
        return do_close({events::close_code::try_again_later, "too many unanswered requests"});
    }
    replies_.push_back({std::move(text), pop_again_ ? batches_popped_ + 1 : batches_popped_});
    do_write();
}

void WebSocketSession::on_notify() {
    // The hub has something for us; take it when the socket is free.
    pop_again_ = true;
    do_write();
}

void WebSocketSession::append_message(const std::string& text) {
    const ws::FrameHeader header = ws::frame_header(ws::Opcode::text, text.size());
    out_.append(reinterpret_cast<const char*>(header.bytes.data()), header.size);
    out_.append(text);
    ++out_messages_;
}

bool WebSocketSession::gather() {
    // Fills out_ in the order the protocol promises: control answers first
    // (they may go between any two frames); then an answer whose batch is
    // out, what is left of the popped batch, a new pop, any other answer;
    // a close last. Stops at about one socket buffer, so that a write in
    // flight is as old as the oldest byte the peer has not taken.
    const std::size_t budget = events_->limits().socket_send_buffer;
    out_ = std::move(control_out_);
    control_out_.clear();
    unsent_pongs_ = 0;
    out_messages_ = 0;
    if (closing_ == Closing::no) {
        while (out_.size() < budget) {
            if (!replies_.empty() && replies_.front().after_batch <= batches_done_) {
                append_message(replies_.front().text);
                replies_.pop_front();
                continue;
            }
            if (batch_next_ < batch_.messages.size()) {
                append_message(*batch_.messages[batch_next_++].text);
                if (batch_next_ == batch_.messages.size()) {
                    batches_done_ = batches_popped_;
                    batch_.messages.clear();  // release the shared texts: they are copied
                    batch_next_ = 0;
                }
                continue;
            }
            if (!subscription_ || !pop_again_) {
                // Nothing more from the hub: no answer has anything left to wait for.
                while (!replies_.empty() && out_.size() < budget) {
                    append_message(replies_.front().text);
                    replies_.pop_front();
                }
                break;
            }
            pop_again_ = false;
            batch_ = subscription_->pop(events_->limits().pop_batch);
            batch_next_ = 0;
            ++batches_popped_;
            if (batch_.close) {
                if (batch_.close->code == events::close_code::policy_violation)
                    events_->count_revoked_close();
                queue_close(*batch_.close);  // written right after what is gathered
                break;
            }
            pop_again_ = batch_.more;
            if (batch_.messages.empty()) batches_done_ = batches_popped_;
        }
    }
    if (closing_ == Closing::queued && close_request_) {
        auto why = std::move(*close_request_);
        close_request_.reset();
        out_ += ws::close_frame(why.code, why.reason);
        closing_ = Closing::sent;
    }
    return !out_.empty();
}

void WebSocketSession::do_write() {
    // Exactly one write in flight; everything ready goes into it.
    if (writing_ || closing_ == Closing::finished || closing_ == Closing::sent) return;
    if (!gather()) {
        out_ = std::string();  // an idle socket keeps no buffer
        return;
    }
    writing_ = true;
    write_started_ms_.store(steady_ms(), std::memory_order_relaxed);
    net::async_write(socket_, net::buffer(out_),
                     beast::bind_front_handler(&WebSocketSession::on_write, shared_from_this()));
}

void WebSocketSession::on_write(beast::error_code ec, std::size_t) {
    writing_ = false;
    write_started_ms_.store(0, std::memory_order_relaxed);
    if (ec) {
        fail(ec, "websocket write");
        return close_socket();
    }
    if (out_messages_ > 0) events_->count_messages_sent(out_messages_);
    if (closing_ == Closing::sent) {
        // Our close frame is out: nothing more to send. The peer answers with
        // its close and EOF; the timer drops it if it does not.
        beast::error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_send, ignored);
        arm_timer(events_->limits().close_linger);
        return;
    }
    do_write();
}

void WebSocketSession::do_close(events::CloseRequest why) {
    queue_close(std::move(why));
    do_write();
}

void WebSocketSession::queue_close(events::CloseRequest why) {
    // The close frame follows whatever is being written; nothing after it.
    if (closing_ != Closing::no) return;
    closing_ = Closing::queued;
    close_request_ = std::move(why);
    if (subscription_) subscription_->cancel();
    replies_.clear();
    batch_ = {};
}

void WebSocketSession::arm_timer(std::chrono::steady_clock::duration after) {
    timer_.expires_after(after);
    timer_.async_wait(beast::bind_front_handler(&WebSocketSession::on_timer, shared_from_this()));
}

void WebSocketSession::on_timer(beast::error_code ec) {
    // Every half idle timeout, as Beast's keep-alive does it: input since the
    // last tick keeps the socket; none, a ping; still none a tick after the
    // ping, the peer is gone. Deciding by "anything since the last tick", not
    // by a clock, means a peer that answers every ping is never dropped.
    if (ec || closing_ == Closing::finished) return;       // cancelled, or re-armed meanwhile
    if (closing_ == Closing::sent) return close_socket();  // the peer never finished the close
    if (read_since_tick_) {
        read_since_tick_ = false;
        ping_sent_ = false;
    } else if (!ping_sent_) {
        ping_sent_ = true;
        if (closing_ == Closing::no) {
            control_out_ += ws::control_frame(ws::Opcode::ping, "");
            do_write();
        }
    } else {
        spdlog::info("progress socket of user {} dropped: no answer to a keep-alive ping",
                     auth_.user.id);
        return close_socket();
    }
    arm_timer(events_->limits().websocket_idle_timeout / 2);
}

}  // namespace litchi::server
