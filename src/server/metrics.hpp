// Counters for GET /metrics (Prometheus text format 0.0.4). The HTTP side
// counts requests by status and open connections here; download outcomes
// come from the scheduler's counters at scrape time. Labels never carry user
// data (no URLs, no tokens): only status codes, outcomes and reasons.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "core/reason.hpp"

namespace litchi::server {

// Download figures read from the scheduler at scrape time.
struct DownloadFigures {
    std::uint64_t done = 0;
    std::uint64_t cancelled = 0;
    std::uint64_t fenced = 0;  // results refused: the item's lease had passed on
    std::array<std::uint64_t, static_cast<std::size_t>(FailureReason::cancelled) + 1>
        failed_by_reason{};
    std::uint64_t stored_bytes = 0;      // bytes of items that became done
    std::uint64_t received_bytes = 0;    // body bytes over the wire, all attempts
    std::int64_t queue_depth = 0;        // items waiting in runnable jobs (all nodes)
    std::int64_t leased_total = 0;       // items active under a lease (all nodes)
    std::uint64_t node_leased = 0;       // ... of which this node holds
    std::string node;                    // --node
    std::uint64_t in_flight = 0;         // items handed to the engine
    std::uint64_t active_transfers = 0;  // transfers in the multi handle right now
    std::uint64_t probing = 0;           // downloaded, being checked or committed
    std::uint64_t parked = 0;            // waiting for a retry, a host's pause or its probe
    std::uint64_t preempted = 0;         // transfers given back for a group below its share
};

// The request-body budget (--max-body-in-flight) at scrape time.
struct BodyFigures {
    std::uint64_t reserved = 0;  // bytes held by bodies being read or handled
    std::uint64_t capacity = 0;
};

class ServerMetrics {
  public:
    void connection_opened() { open_connections_.fetch_add(1, std::memory_order_relaxed); }
    void connection_closed() { open_connections_.fetch_sub(1, std::memory_order_relaxed); }
    std::int64_t open_connections() const {
        return open_connections_.load(std::memory_order_relaxed);
    }

    void count_request(unsigned status);

    std::string render(const DownloadFigures& downloads, const BodyFigures& bodies) const;

  private:
    std::atomic<std::int64_t> open_connections_{0};
    std::array<std::atomic<std::uint64_t>, 600> requests_by_status_{};
};

// One open connection in ServerMetrics::open_connections, the figure
// --max-connections is checked against. The HTTP session that accepted the
// socket holds it, and hands it on when the socket becomes a WebSocket, so an
// upgraded socket keeps counting until it closes. Holds the metrics alive.
class ConnectionSlot {
  public:
    ConnectionSlot() = default;
    explicit ConnectionSlot(std::shared_ptr<ServerMetrics> metrics) : metrics_(std::move(metrics)) {
        metrics_->connection_opened();
    }
    ~ConnectionSlot() {
        if (metrics_) metrics_->connection_closed();
    }
    ConnectionSlot(ConnectionSlot&&) noexcept = default;
    ConnectionSlot& operator=(ConnectionSlot&& other) noexcept {
        if (this != &other) {
            if (metrics_) metrics_->connection_closed();
            metrics_ = std::move(other.metrics_);
        }
        return *this;
    }

  private:
    std::shared_ptr<ServerMetrics> metrics_;
};

}  // namespace litchi::server
