// See webhook_sender.hpp.
#include "server/webhook_sender.hpp"

#include <spdlog/spdlog.h>

#include <random>
#include <vector>

#include "crypto/hmac.hpp"
#include "fetch/webhook_post.hpp"
#include "server/json.hpp"

namespace litchi::server {

std::string webhook_body(const WebhookDelivery& delivery, const JobSnapshot& job) {
    boost::json::object body{
        {"event", delivery.event}, {"delivery", delivery.delivery}, {"job", job_to_json(job)}};
    return to_json_text(body);
}

WebhookSender::WebhookSender(JobStore& jobs, FetchLimits limits, WebhookOptions options)
    : jobs_(jobs), limits_(std::move(limits)), options_(options) {}

WebhookSender::~WebhookSender() {
    stop();
}

void WebhookSender::start() {
    if (thread_.joinable()) return;
    thread_ = std::thread([this] { run(); });
}

void WebhookSender::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void WebhookSender::wake() {
    {
        std::lock_guard lock(mutex_);
        woken_ = true;
    }
    cv_.notify_all();
}

void WebhookSender::run() {
    for (;;) {
        std::size_t attempted = 0;
        try {
            attempted = deliver_due();
            if (failing_) spdlog::info("webhooks: the outbox is readable again");
            failing_ = false;
        } catch (const std::exception& e) {
            // The store is down or refusing: nothing is lost (the outbox is
            // durable); try again at the next poll.
            if (!failing_) spdlog::error("webhooks: reading the outbox failed: {}", e.what());
            failing_ = true;
        }
        std::unique_lock lock(mutex_);
        if (stopping_) return;
        if (attempted == options_.batch) continue;  // maybe more are due
        cv_.wait_for(lock, options_.poll, [this] { return stopping_ || woken_; });
        woken_ = false;
        if (stopping_) return;
    }
}

std::size_t WebhookSender::deliver_due() {
    auto due = jobs_.claim_webhooks(options_.batch);
    for (const auto& delivery : due) {
        {
            std::lock_guard lock(mutex_);
            if (stopping_) break;  // the rest are leased; another claim takes them after the lease
        }
        attempt(delivery);
    }
    return due.size();
}

void WebhookSender::attempt(const WebhookDelivery& delivery) {
    WebhookAttempt result;
    result.id = delivery.id;
    result.body = delivery.body;
    auto give_up = [&](std::string why) {
        result.state = "failed";
        result.error = std::move(why);
        jobs_.finish_webhook_attempt(result);
        spdlog::warn("webhook {} of job {} ({}): not delivered: {}", delivery.delivery,
                     delivery.job, delivery.event, result.error);
    };
    auto options = jobs_.request_options(delivery.job);
    if (!options || !options->webhook) return give_up("the job was deleted before delivery");
    if (result.body.empty()) {
        auto job = jobs_.find_job(delivery.job);
        if (!job) return give_up("the job was deleted before delivery");
        result.body = webhook_body(delivery, *job);
        jobs_.keep_webhook_body(delivery.id, result.body);
    }
    const auto& hook = *options->webhook;
    std::vector<std::string> headers{
        "X-Litchi-Event: " + delivery.event,
        "X-Litchi-Delivery: " + delivery.delivery,
        "X-Litchi-Signature: sha256=" + hmac_sha256_hex(hook.secret, result.body),
    };
    auto posted = post_json(hook.url, result.body, headers, limits_, options_.timeout);
    result.http_status = posted.http_status;
    if (posted.ok()) {
        result.state = "delivered";
        jobs_.finish_webhook_attempt(result);
        spdlog::info("webhook {} of job {} ({}): delivered, HTTP {}, attempt {}", delivery.delivery,
                     delivery.job, delivery.event, posted.http_status, delivery.attempts);
        return;
    }
    std::string why = posted.reason == FailureReason::none
                          ? posted.detail
                          : std::string(to_string(posted.reason)) + ": " + posted.detail;
    // The guard (or the URL check) will refuse it again: no retry.
    if (posted.reason == FailureReason::blocked_address || posted.reason == FailureReason::bad_url)
        return give_up(why);
    TimeMs now = now_ms();
    auto age = std::chrono::milliseconds(now - delivery.created);
    if (age >= options_.retry_for)
        return give_up("gave up after " + std::to_string(delivery.attempts) + " attempts: " + why);
    thread_local std::mt19937_64 random{std::random_device{}()};
    double unit = std::uniform_real_distribution<double>(0.0, 1.0)(random);
    auto delay = backoff_delay(options_.backoff, delivery.attempts, unit);
    result.state = "pending";
    result.error = why;
    result.next_at = now + delay.count();
    jobs_.finish_webhook_attempt(result);
    spdlog::info("webhook {} of job {} ({}): attempt {} failed ({}); next in {} ms",
                 delivery.delivery, delivery.job, delivery.event, delivery.attempts, why,
                 delay.count());
}

}  // namespace litchi::server
