// A job's request options and the webhook outbox, on both backends: options
// are stored with the job and read back whole; a delivery is owed exactly
// when a job with a webhook ends with an event it asked for (written in the
// transaction that ends it, so it is there as soon as the end is); a claim
// leases it (no second claim while the lease runs, from this node or
// another), a failed attempt makes it due again at its next time, and a
// delivered one is never claimed again.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>

#include "store_backends.hpp"
#include "store_test_support.hpp"

namespace litchi {
namespace {

using namespace std::chrono_literals;
using testing::Backend;
using testing::new_job;
using testing::numbered_urls;
using testing::StoreBackend;

class StoreWebhooks : public ::testing::TestWithParam<Backend> {
  protected:
    static constexpr TimeMs kStart = 1'700'000'000'000;

    void SetUp() override {
        a = open_node("a", true);
        alice = db.insert_user("alice");
    }

    std::unique_ptr<Store> open_node(const std::string& node, bool recover = false) {
        StoreOptions options;
        options.node = node;
        options.lease = 1000ms;
        options.clock = [this] { return clock.load(); };
        options.recover_on_open = recover;
        options.pool_size = 2;
        return db.open(std::move(options));
    }

    static RequestOptions with_webhook(std::vector<std::string> events = {"done", "failed",
                                                                          "cancelled"}) {
        RequestOptions options;
        options.webhook = WebhookSpec{"http://127.0.0.1:9/hook", "s3cret", std::move(events)};
        return options;
    }

    JobSnapshot create(int urls, RequestOptions options) {
        auto request = new_job(alice, "j", numbered_urls(urls));
        request.options = std::move(options);
        return jobs().create_job(request);
    }

    // Claims and finishes every item of the job: done, or failed for the first `failed`.
    void finish_all(int failed = 0) {
        auto claimed = jobs().claim_next_items(100);
        std::vector<ItemOutcome> outcomes;
        for (const auto& item : claimed) {
            auto outcome = testing::done_outcome(item);
            if (failed-- > 0) {
                outcome = ItemOutcome{};
                outcome.item = item.item;
                outcome.lease = item.lease;
                outcome.reason = FailureReason::http;
                outcome.http_status = 404;
                outcome.attempts = 1;
            }
            outcomes.push_back(outcome);
        }
        jobs().apply_outcomes(outcomes);
    }

    JobStore& jobs() { return a->jobs(); }

    StoreBackend db{GetParam()};
    std::atomic<TimeMs> clock{kStart};
    std::unique_ptr<Store> a;
    UserId alice = 0;
};

LITCHI_BOTH_BACKENDS(StoreWebhooks);

TEST_P(StoreWebhooks, RequestOptionsAreStoredWithTheJob) {
    RequestOptions options = with_webhook({"failed"});
    options.user_agent = "ua/1";
    options.headers = {{"Authorization", "Bearer x"}, {"X-A", "1"}};
    options.referer = "http://example.com/";
    options.limits.retries = 1;
    options.limits.timeout = 2500ms;
    options.limits.per_host_rate = 0.5;
    auto job = create(2, options);
    auto plain = create(1, {});
    EXPECT_EQ(jobs().request_options(job.id), options);
    auto reopened = open_node("b");
    EXPECT_EQ(reopened->jobs().request_options(job.id), options) << "durable, any node";
    EXPECT_EQ(jobs().request_options(plain.id), RequestOptions{});
    EXPECT_FALSE(jobs().request_options(job.id + 1000));
    EXPECT_EQ(jobs().find_job(job.id)->user, alice);
}

TEST_P(StoreWebhooks, AnEndedJobOwesOneDeliveryOfItsEvent) {
    auto job = create(3, with_webhook());
    EXPECT_TRUE(jobs().claim_webhooks(10).empty()) << "nothing owed while the job runs";
    finish_all(1);
    ASSERT_EQ(jobs().find_job(job.id)->state, JobState::done);
    auto last = jobs().last_webhook(job.id);
    ASSERT_TRUE(last) << "owed as soon as the job ended";
    EXPECT_EQ(last->event, "failed") << "done with a failed item";
    EXPECT_EQ(last->state, "pending");
    EXPECT_EQ(last->delivery.size(), 32u);

    auto claimed = jobs().claim_webhooks(10);
    ASSERT_EQ(claimed.size(), 1u);
    EXPECT_EQ(claimed[0].job, job.id);
    EXPECT_EQ(claimed[0].user, alice);
    EXPECT_EQ(claimed[0].delivery, last->delivery);
    EXPECT_EQ(claimed[0].attempts, 1);
    auto b = open_node("b");
    EXPECT_TRUE(jobs().claim_webhooks(10).empty()) << "leased: not claimed twice";
    EXPECT_TRUE(b->jobs().claim_webhooks(10).empty()) << "nor by another node";

    // A failed attempt: due again at next_at, same delivery id, body kept.
    jobs().keep_webhook_body(claimed[0].id, "{\"a\":1}");
    jobs().finish_webhook_attempt(
        {claimed[0].id, "pending", kStart + 5000, "{\"a\":1}", 500, "answered HTTP 500"});
    EXPECT_TRUE(b->jobs().claim_webhooks(10).empty()) << "not due before next_at";
    clock = kStart + 5000;
    auto again = b->jobs().claim_webhooks(10);
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[0].delivery, claimed[0].delivery);
    EXPECT_EQ(again[0].attempts, 2);
    EXPECT_EQ(again[0].body, "{\"a\":1}");
    EXPECT_EQ(again[0].http_status, 500);
    b->jobs().finish_webhook_attempt({again[0].id, "delivered", 0, again[0].body, 200, ""});
    clock = kStart + 100'000;
    EXPECT_TRUE(jobs().claim_webhooks(10).empty()) << "delivered: never again";
    last = jobs().last_webhook(job.id);
    EXPECT_EQ(last->state, "delivered");
    EXPECT_EQ(last->http_status, 200);
    EXPECT_EQ(last->error, "");
}

TEST_P(StoreWebhooks, AnExpiredLeaseMakesTheDeliveryClaimableAgain) {
    create(1, with_webhook());
    finish_all();
    ASSERT_EQ(jobs().claim_webhooks(10).size(), 1u);
    auto b = open_node("b");
    clock = kStart + 999;
    EXPECT_TRUE(b->jobs().claim_webhooks(10).empty());
    clock = kStart + 1000;  // the claimer died: its lease ran out
    auto taken = b->jobs().claim_webhooks(10);
    ASSERT_EQ(taken.size(), 1u);
    EXPECT_EQ(taken[0].event, "done");
    EXPECT_EQ(taken[0].attempts, 2);
}

TEST_P(StoreWebhooks, OnlyTheEventsAskedForAreOwed) {
    auto quiet = create(1, with_webhook({"cancelled"}));
    finish_all();
    EXPECT_EQ(jobs().find_job(quiet.id)->state, JobState::done);
    EXPECT_FALSE(jobs().last_webhook(quiet.id));

    auto cancelled = create(2, with_webhook({"cancelled"}));
    ASSERT_EQ(jobs().cancel_job(alice, cancelled.id).status, JobOpStatus::ok);
    auto last = jobs().last_webhook(cancelled.id);
    ASSERT_TRUE(last);
    EXPECT_EQ(last->event, "cancelled");

    auto none = create(1, {});
    finish_all();
    EXPECT_FALSE(jobs().last_webhook(none.id)) << "no webhook, nothing owed";

    // Every line refused: the job is created done, and its end is owed too.
    NewJob refused{alice, "bad", {{"nope", FailureReason::bad_url}}};
    refused.options = with_webhook();
    auto job = jobs().create_job(refused);
    EXPECT_EQ(job.state, JobState::done);
    last = jobs().last_webhook(job.id);
    ASSERT_TRUE(last);
    EXPECT_EQ(last->event, "failed");
}

TEST_P(StoreWebhooks, AJobEndingAgainAfterRetryOwesANewDelivery) {
    auto job = create(1, with_webhook());
    finish_all(1);
    auto first = jobs().last_webhook(job.id);
    ASSERT_TRUE(first);
    ASSERT_EQ(jobs().retry_job(alice, job.id).status, JobOpStatus::ok);
    finish_all();
    auto second = jobs().last_webhook(job.id);
    ASSERT_TRUE(second);
    EXPECT_NE(second->delivery, first->delivery);
    EXPECT_EQ(second->event, "done");
}

}  // namespace
}  // namespace litchi
