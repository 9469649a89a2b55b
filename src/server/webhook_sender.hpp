// Completion webhooks, sent: a thread that takes due deliveries from the
// store's outbox (job_store.hpp, WebhookDelivery: written by the store in the
// transaction that ends a job) and POSTs each to its job's webhook URL.
//
//   outbox (claim: leased to this node) ──> body: {"event","delivery","job"}
//        ──> sign (HMAC-SHA256 with the job's secret) ──> post_json (SSRF guard)
//        ──> delivered | pending again at now + backoff | failed (gave up)
//
// At least once: a delivery is marked delivered only after a 2xx, so a crash
// between the answer and the mark sends it again (same X-Litchi-Delivery id;
// receivers dedupe on it). The body is built on the first attempt and stored,
// so every retry sends the same bytes with the same signature. Errors,
// timeouts and non-2xx answers are retried with full-jitter backoff
// (core/backoff.hpp) for --webhook-retry-for after the job ended; a URL the
// SSRF guard refuses is not retried. The secret is never logged.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string>
#include <thread>

#include "core/backoff.hpp"
#include "core/config.hpp"
#include "store/job_store.hpp"

namespace litchi::server {

struct WebhookOptions {
    std::chrono::milliseconds timeout{10'000};  // --webhook-timeout: one attempt in all
    // --webhook-retry-base, --webhook-retry-cap: the first retry comes within
    // 2 * base (4 s by default), later ones within the cap.
    BackoffPolicy backoff{std::chrono::milliseconds(2'000), std::chrono::milliseconds(300'000)};
    std::chrono::seconds retry_for{24 * 3600};  // --webhook-retry-for: then it has failed
    std::chrono::milliseconds poll{1'000};      // --webhook-poll: look for due deliveries
    std::size_t batch = 8;                      // deliveries claimed at once
};

// The JSON body of a delivery (what is signed): {"event","delivery","job"}.
std::string webhook_body(const WebhookDelivery& delivery, const JobSnapshot& job);

class WebhookSender {
  public:
    // `jobs` must outlive this. `limits`: the SSRF guard's (allow_private,
    // allowed_ranges), connect timeout and User-Agent.
    WebhookSender(JobStore& jobs, FetchLimits limits, WebhookOptions options);
    ~WebhookSender();  // stop()
    WebhookSender(const WebhookSender&) = delete;
    WebhookSender& operator=(const WebhookSender&) = delete;

    void start();
    // Waits for an attempt in progress to end. Idempotent.
    void stop();
    // There may be a new delivery (a job just ended). Any thread.
    void wake();

    // Claims the due deliveries (up to the batch) and attempts each; returns
    // how many. The thread's one step.
    std::size_t deliver_due();

  private:
    void run();
    void attempt(const WebhookDelivery& delivery);

    JobStore& jobs_;
    FetchLimits limits_;
    WebhookOptions options_;
    std::mutex mutex_;
    std::condition_variable cv_;
    bool stopping_ = false;
    bool woken_ = false;
    bool failing_ = false;  // the store refused a claim: logged once per streak
    std::thread thread_;
};

}  // namespace litchi::server
