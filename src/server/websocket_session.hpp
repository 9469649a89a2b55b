// The progress WebSocket (docs/protocol.md), on both URL forms:
// `/api/litchi/{token}` (the seed client's) and `/api/ws` (cookie, or
// `Sec-WebSocket-Protocol: litchi.v1, bearer.TOKEN`, answered `litchi.v1`).
//
// Shaped like Beast's chat-multi `websocket_session`, with its rule: exactly
// one write in flight, always. There is no outgoing queue of our own: the hub's
// Subscription holds what is not written yet at bounded cost, and a session
// pops more only when its last write finished, then writes everything it
// popped as one buffer of frames. The only local queue, answers to client
// messages (pong, error), is capped: a client that keeps asking without
// reading is closed with 1013.
//
// Beast answers the upgrade (it checks the request and writes the 101); the
// frames after it are read and written with ws_frames.hpp, which is what lets
// one write carry many messages. Keep-alive follows Beast's suggested server
// timeouts: a ping after half the idle timeout without input, a drop when the
// next half passes without any either.
//
// Judging the upgrade (token, Origin: judge_upgrade in auth.hpp) happens before
// the 101, on the worker pool since it reads SQLite: a refusal is an ordinary
// HTTP 401/403 reply.
#pragma once

#include <array>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "events/event_hub.hpp"
#include "server/api_error.hpp"
#include "server/auth.hpp"
#include "server/event_wiring.hpp"
#include "server/http_types.hpp"
#include "server/metrics.hpp"
#include "server/ws_frames.hpp"
#include "store/user_store.hpp"

namespace litchi::server {

inline constexpr std::string_view kWebSocketPath = "/api/ws";

// Is `path` (decoded, no query) one of the two WebSocket endpoints?
bool is_event_socket_path(std::string_view path);

class WebSocketSession : public LiveSocket, public std::enable_shared_from_this<WebSocketSession> {
  public:
    // `connection` keeps the socket under --max-connections, `slot` under the
    // user's --max-sockets-per-user, both until the session ends.
    WebSocketSession(boost::asio::ip::tcp::socket&& socket, std::shared_ptr<EventWiring> events,
                     Authenticated auth, bool answer_subprotocol, ConnectionSlot connection,
                     UserSocketSlot slot);
    ~WebSocketSession() override;
    WebSocketSession(const WebSocketSession&) = delete;
    WebSocketSession& operator=(const WebSocketSession&) = delete;

    // Completes the handshake for `req` (already judged), then subscribes.
    void run(Request req);

    std::int64_t write_started_ms() const override {
        return write_started_ms_.load(std::memory_order_relaxed);
    }
    void abort() override;

  private:
    // Where the closing handshake stands.
    enum class Closing {
        no,        // open
        queued,    // a close frame waits for the write in flight
        sent,      // our close frame is written and the send side shut: waiting for the peer's EOF
        finished,  // the socket is closed
    };

    void on_accept(beast::error_code ec);
    void on_subscribed(std::shared_ptr<events::Subscription> subscription, bool still_valid);
    void do_read();
    void on_read(beast::error_code ec, std::size_t bytes);
    void handle_frame(ws::Incoming& incoming);
    void handle_client_message(std::string_view text);
    void queue_reply(std::string text);
    void queue_error(LiveError error, std::string_view message);
    void on_notify();
    void do_write();
    bool gather();
    void append_message(const std::string& text);
    void on_write(beast::error_code ec, std::size_t bytes);
    void do_close(events::CloseRequest why);
    void queue_close(events::CloseRequest why);
    void close_socket();
    void arm_timer(std::chrono::steady_clock::duration after);
    void on_timer(beast::error_code ec);

    // Beast answers the upgrade; after the 101 the frames are ours (ws_frames.hpp),
    // read from and written to the socket directly, and the Beast stream is gone.
    std::optional<beast::websocket::stream<beast::tcp_stream>> handshake_;
    boost::asio::ip::tcp::socket socket_;
    boost::asio::steady_timer timer_;  // keep-alive ping and idle drop; the closing linger
    std::shared_ptr<EventWiring> events_;
    ConnectionSlot connection_;
    UserSocketSlot user_slot_;
    Authenticated auth_;
    bool answer_subprotocol_;
    std::uint64_t registration_ = 0;

    // One read's worth of client bytes. Read granularity, not a limit: clients
    // send little, and a message may still be up to --ws-max-message long.
    std::array<char, 2048> read_buffer_;
    ws::FrameReader reader_;
    std::vector<ws::Incoming> incoming_;
    bool read_since_tick_ = false;  // input since the keep-alive timer last fired
    bool ping_sent_ = false;        // the last tick found no input and sent a ping

    std::shared_ptr<events::Subscription> subscription_;
    events::OutgoingBatch batch_;  // popped, written in order
    std::size_t batch_next_ = 0;   // next message of batch_ to write
    bool pop_again_ = false;       // the hub has more, or notified since the last pop
    // Pong / error answers, capped. An answer to a message that arrived while
    // the hub had output not yet popped (a `resume` just asked for a replay)
    // waits until that output is written: a client that sends `resume` then
    // `ping` sees the replay before the pong.
    struct Reply {
        std::string text;
        std::uint64_t after_batch = 0;  // write once batches_done_ reaches this
    };
    std::deque<Reply> replies_;
    std::uint64_t batches_popped_ = 0;  // pops so far
    std::uint64_t batches_done_ = 0;    // pops whose messages were all gathered for a write
    std::string control_out_;           // framed pongs and pings, sent before anything else
    std::size_t unsent_pongs_ = 0;      // pongs in control_out_ (capped at max_pending_replies)

    // One write in flight: the frames gathered into one buffer, one system call
    // for many messages (most of a fan-out's cost is per write, not per byte).
    std::string out_;
    std::size_t out_messages_ = 0;  // hub and reply messages in out_, for the metrics
    bool writing_ = false;
    std::optional<events::CloseRequest> close_request_;
    Closing closing_ = Closing::no;
    std::atomic<std::int64_t> write_started_ms_{0};
};

}  // namespace litchi::server
