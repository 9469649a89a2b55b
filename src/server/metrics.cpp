// See metrics.hpp.
#include "server/metrics.hpp"

#include <fmt/format.h>

namespace litchi::server {

void ServerMetrics::count_request(unsigned status) {
    if (status < requests_by_status_.size())
        requests_by_status_[status].fetch_add(1, std::memory_order_relaxed);
}

std::string ServerMetrics::render(const DownloadFigures& downloads,
                                  const BodyFigures& bodies) const {
    std::string out;
    auto header = [&out](std::string_view name, std::string_view type, std::string_view help) {
        out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
    };

    header("litchi_node_info", "gauge", "This node's name (--node); counters below are its own.");
    out += fmt::format("litchi_node_info{{node=\"{}\"}} 1\n", downloads.node);
    header("litchi_downloads_total", "counter",
           "Finished items since start, by outcome and failure reason.");
    out +=
        fmt::format("litchi_downloads_total{{outcome=\"done\",reason=\"\"}} {}\n", downloads.done);
    out += fmt::format("litchi_downloads_total{{outcome=\"cancelled\",reason=\"\"}} {}\n",
                       downloads.cancelled);
    for (std::size_t i = 1; i < downloads.failed_by_reason.size(); ++i) {
        out += fmt::format("litchi_downloads_total{{outcome=\"failed\",reason=\"{}\"}} {}\n",
                           to_string(static_cast<FailureReason>(i)), downloads.failed_by_reason[i]);
    }
    header("litchi_fenced_results_total", "counter",
           "Downloads this node finished whose result the store refused: the item's lease "
           "had run out and passed to a later claim, which counts it instead.");
    out += fmt::format("litchi_fenced_results_total {}\n", downloads.fenced);
    header("litchi_stored_bytes_total", "counter",
           "Bytes of images downloaded and stored since start.");
    out += fmt::format("litchi_stored_bytes_total {}\n", downloads.stored_bytes);
    header("litchi_received_bytes_total", "counter",
           "Body bytes received from origins since start, all attempts.");
    out += fmt::format("litchi_received_bytes_total {}\n", downloads.received_bytes);
    header("litchi_queue_depth", "gauge", "Items waiting to be downloaded in runnable jobs.");
    out += fmt::format("litchi_queue_depth {}\n", downloads.queue_depth);
    header("litchi_leased_items", "gauge",
           "Items claimed under a lease by any node (the whole cluster).");
    out += fmt::format("litchi_leased_items {}\n", downloads.leased_total);
    header("litchi_node_leased_items", "gauge", "Items this node holds under a lease.");
    out += fmt::format("litchi_node_leased_items {}\n", downloads.node_leased);
    header("litchi_items_in_flight", "gauge",
           "Items handed to the download engine and not yet returned.");
    out += fmt::format("litchi_items_in_flight {}\n", downloads.in_flight);
    header("litchi_active_transfers", "gauge", "HTTP transfers in progress.");
    out += fmt::format("litchi_active_transfers {}\n", downloads.active_transfers);
    header("litchi_probing_items", "gauge", "Items downloaded and being checked or committed.");
    out += fmt::format("litchi_probing_items {}\n", downloads.probing);
    header("litchi_parked_items", "gauge",
           "Items in the engine waiting for a retry, a host's Retry-After pause or its probe.");
    out += fmt::format("litchi_parked_items {}\n", downloads.parked);
    header("litchi_preempted_transfers_total", "counter",
           "Transfers put back in the queue before any answer, so that a user or job below its "
           "share of -j could start one.");
    out += fmt::format("litchi_preempted_transfers_total {}\n", downloads.preempted);
    header("litchi_http_requests_total", "counter", "HTTP requests answered, by status code.");
    for (std::size_t status = 100; status < requests_by_status_.size(); ++status) {
        auto count = requests_by_status_[status].load(std::memory_order_relaxed);
        if (count != 0)
            out += fmt::format("litchi_http_requests_total{{status=\"{}\"}} {}\n", status, count);
    }
    header("litchi_open_connections", "gauge",
           "Connections open now (upgraded WebSockets included).");
    out += fmt::format("litchi_open_connections {}\n",
                       open_connections_.load(std::memory_order_relaxed));
    header("litchi_request_body_bytes", "gauge",
           "Bytes of request bodies being read or handled now, as reserved from "
           "--max-body-in-flight (a body that does not fit gets 503 busy).");
    out += fmt::format("litchi_request_body_bytes {}\n", bodies.reserved);
    header("litchi_request_body_budget_bytes", "gauge", "--max-body-in-flight.");
    out += fmt::format("litchi_request_body_budget_bytes {}\n", bodies.capacity);
    return out;
}

}  // namespace litchi::server
