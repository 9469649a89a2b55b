// A job's request options and the webhook outbox on PostgreSQL (job_store.hpp,
// "request options and webhooks"; sqlite_webhooks.cpp is the same on SQLite).
// The outbox rows are written by the jobs_webhook_on_end trigger (pg_schema.cpp,
// schema 3) in the transaction that ends a job. Any node may send any
// delivery: a claim takes due rows FOR UPDATE SKIP LOCKED and leases them, so
// two nodes never hold the same delivery at once; a node that dies mid-attempt
// leaves a lease that runs out, and another node tries again.
#include <string>

#include "store/pg_job_store_impl.hpp"

namespace litchi {
namespace {

constexpr const char* kDeliveryColumns =
    "d.id, d.job_id, coalesce(j.user_id, 0), d.delivery, d.event, d.state, d.attempts, "
    "d.created, d.updated, coalesce(d.body, ''), coalesce(d.http_status, 0), "
    "coalesce(d.error, '')";

WebhookDelivery read_delivery(const pg::Result& r, int row) {
    WebhookDelivery out;
    out.id = r.int64(row, 0);
    out.job = r.int64(row, 1);
    out.user = r.int64(row, 2);
    out.delivery = r.text(row, 3);
    out.event = r.text(row, 4);
    out.state = r.text(row, 5);
    out.attempts = static_cast<int>(r.int64(row, 6));
    out.created = r.int64(row, 7);
    out.updated = r.int64(row, 8);
    out.body = r.text(row, 9);
    out.http_status = static_cast<int>(r.int64(row, 10));
    out.error = r.text(row, 11);
    return out;
}

}  // namespace

std::optional<RequestOptions> PgJobStore::request_options(JobId job) {
    auto conn = impl_->pool.acquire();
    auto result =
        conn->exec("SELECT coalesce(options, '') FROM jobs WHERE id = $1", pg::Params().add(job));
    if (!result.rows()) return std::nullopt;
    auto options = decode_request_options(result.text(0, 0));
    return options ? options : RequestOptions{};  // a newer Litchi's text: none we understand
}

std::vector<WebhookDelivery> PgJobStore::claim_webhooks(std::size_t max) {
    if (max == 0) return {};
    TimeMs now = impl_->now();
    return impl_->pool.transaction([&](pg::Connection& conn) {
        auto result = conn.exec(
            std::string("WITH claimed AS (UPDATE webhook_deliveries SET lease_until = $2, "
                        "attempts = attempts + 1 WHERE id IN (SELECT id FROM webhook_deliveries "
                        "WHERE state = 'pending' AND next_at <= $1 AND lease_until <= $1 "
                        "ORDER BY next_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING *) "
                        "SELECT ") +
                kDeliveryColumns +
                " FROM claimed d LEFT JOIN jobs j ON j.id = d.job_id ORDER BY d.id",
            pg::Params()
                .add(now)
                .add(now + impl_->options.lease.count())
                .add(static_cast<std::int64_t>(max)));
        std::vector<WebhookDelivery> out;
        for (int i = 0; i < result.rows(); ++i) out.push_back(read_delivery(result, i));
        return out;
    });
}

void PgJobStore::keep_webhook_body(std::int64_t id, const std::string& body) {
    auto conn = impl_->pool.acquire();
    conn->exec("UPDATE webhook_deliveries SET body = coalesce(body, $1) WHERE id = $2",
               pg::Params().add(body).add(id));
}

void PgJobStore::finish_webhook_attempt(const WebhookAttempt& attempt) {
    auto conn = impl_->pool.acquire();
    pg::Params params;
    params.add(attempt.state).add(attempt.next_at).add(attempt.body);
    if (attempt.http_status)
        params.add(attempt.http_status);
    else
        params.add_null();
    if (attempt.error.empty())
        params.add_null();
    else
        params.add(attempt.error);
    params.add(impl_->now()).add(attempt.id);
    conn->exec(
        "UPDATE webhook_deliveries SET state = $1, next_at = $2, lease_until = 0, "
        "body = coalesce(body, $3), http_status = $4, error = $5, updated = $6 WHERE id = $7",
        params);
}

std::optional<WebhookDelivery> PgJobStore::last_webhook(JobId job) {
    auto conn = impl_->pool.acquire();
    auto result = conn->exec(std::string("SELECT ") + kDeliveryColumns +
                                 " FROM webhook_deliveries d LEFT JOIN jobs j ON j.id = "
                                 "d.job_id WHERE d.job_id = $1 ORDER BY d.id DESC LIMIT 1",
                             pg::Params().add(job));
    if (!result.rows()) return std::nullopt;
    return read_delivery(result, 0);
}

std::optional<JobSnapshot> PgJobStore::find_job(JobId job) {
    auto conn = impl_->pool.acquire();
    auto result =
        conn->exec(std::string("SELECT ") + pg_rows::kJobColumns + " FROM jobs WHERE id = $1",
                   pg::Params().add(job));
    if (!result.rows()) return std::nullopt;
    return pg_rows::read_job(result, 0).job;
}

}  // namespace litchi
