// GET /api/events: the progress protocol as Server-Sent Events (docs/protocol.md
// §8). The same messages as the WebSocket, one `data:` line each; messages that
// carry the stream position get `id: <seq>`, so a reconnecting EventSource
// sends Last-Event-ID and continues without a hello when the hub still holds
// the events. `?since=&epoch=` does the same for clients that open a new
// EventSource themselves; `?items=7,12` subscribes to item events.
//
// The stream is a BodyStream: the HTTP session pulls one piece, writes it as
// one chunk, and pulls the next only then, so (as on the WebSocket) nothing
// queues up here; the hub's Subscription holds what is not written yet. An
// idle stream gets a `: keepalive` comment so proxies keep it open and a
// vanished client is noticed by the failed write.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <mutex>
#include <string>

#include "events/event_hub.hpp"
#include "server/event_wiring.hpp"
#include "server/http_types.hpp"
#include "server/router.hpp"

namespace litchi::server {

class SseStream final : public BodyStream, public std::enable_shared_from_this<SseStream> {
  public:
    // `timer_executor` runs the keep-alive timer (any executor; the worker pool's is fine).
    SseStream(std::shared_ptr<EventWiring> events, boost::asio::any_io_executor timer_executor);
    ~SseStream() override;

    // Subscribes `user` (on the calling thread: it reads SQLite). False when
    // the hub could not load the user's jobs.
    // Holds the user's --max-sockets-per-user place while the stream is open.
    void hold_slot(UserSocketSlot slot) { slot_.emplace(std::move(slot)); }
    bool open(const Authenticated& auth, std::optional<events::ResumePoint> resume_from,
              const std::vector<std::string>& item_jobs);

    void pull(PieceHandler done) override;

  private:
    void on_notify();
    // Appends what the hub has ready to `out`; under mutex_. Returns false when the stream must
    // end.
    bool take_ready(std::string& out);
    void arm_keepalive();

    std::shared_ptr<EventWiring> events_;
    std::optional<UserSocketSlot> slot_;
    std::shared_ptr<events::Subscription> subscription_;
    std::mutex mutex_;  // guards everything below; never held while calling a PieceHandler
    boost::asio::steady_timer keepalive_;
    PieceHandler waiting_;  // a pull that found nothing ready
    std::string preface_;   // `retry:` and answers to ?items=, sent with the first piece
    bool ready_ = true;     // the hub may have something (notified, or the last pop had more)
    bool ended_ = false;
};

// Registers GET /api/events on `router`.
void register_event_stream_route(Router& router, std::shared_ptr<EventWiring> events,
                                 std::vector<std::string> allowed_origins);

}  // namespace litchi::server
