// A job's request options and the webhook outbox in SQLite (job_store.hpp,
// "request options and webhooks"). The outbox rows are written by the
// jobs_webhook_on_end trigger (sqlite_store.cpp, schema 3) in the
// transaction that ends a job; here they are claimed, finished and read.
#include <string>

#include "store/sqlite_job_store_impl.hpp"
#include "store/sqlite_rows.hpp"

namespace litchi {
namespace {

constexpr const char* kDeliveryColumns =
    "d.id, d.job_id, coalesce(j.user_id, 0), d.delivery, d.event, d.state, d.attempts, "
    "d.created, d.updated, coalesce(d.body, ''), coalesce(d.http_status, 0), "
    "coalesce(d.error, '')";

WebhookDelivery read_delivery(const Statement& stmt) {
    WebhookDelivery out;
    out.id = stmt.column_int64(0);
    out.job = stmt.column_int64(1);
    out.user = stmt.column_int64(2);
    out.delivery = stmt.column_text(3);
    out.event = stmt.column_text(4);
    out.state = stmt.column_text(5);
    out.attempts = static_cast<int>(stmt.column_int64(6));
    out.created = stmt.column_int64(7);
    out.updated = stmt.column_int64(8);
    out.body = stmt.column_text(9);
    out.http_status = static_cast<int>(stmt.column_int64(10));
    out.error = stmt.column_text(11);
    return out;
}

}  // namespace

std::optional<RequestOptions> SqliteJobStore::request_options(JobId job) {
    std::lock_guard lock(impl_->db.mutex());
    auto stmt = impl_->db.prepare("SELECT coalesce(options, '') FROM jobs WHERE id = ?");
    stmt.bind(1, job);
    if (!stmt.step()) return std::nullopt;
    auto options = decode_request_options(stmt.column_text(0));
    return options ? options : RequestOptions{};  // a newer Litchi's text: none we understand
}

std::vector<WebhookDelivery> SqliteJobStore::claim_webhooks(std::size_t max) {
    std::vector<WebhookDelivery> out;
    if (max == 0) return out;
    std::lock_guard lock(impl_->db.mutex());
    auto& db = impl_->db;
    TimeMs now = impl_->now();
    std::vector<std::int64_t> ids;
    {
        Transaction txn(db);
        {
            auto pick = db.prepare(
                "SELECT id FROM webhook_deliveries WHERE state = 'pending' AND next_at <= ? AND "
                "lease_until <= ? ORDER BY next_at, id LIMIT ?");
            pick.bind(1, now).bind(2, now).bind(3, static_cast<std::int64_t>(max));
            while (pick.step()) ids.push_back(pick.column_int64(0));
        }
        for (auto id : ids) {
            auto lease = db.prepare(
                "UPDATE webhook_deliveries SET lease_until = ?, attempts = attempts + 1 "
                "WHERE id = ?");
            lease.bind(1, now + impl_->options.lease.count()).bind(2, id).run();
        }
        txn.commit();
    }
    for (auto id : ids) {
        auto read = db.prepare(std::string("SELECT ") + kDeliveryColumns +
                               " FROM webhook_deliveries d LEFT JOIN jobs j ON j.id = d.job_id "
                               "WHERE d.id = ?");
        read.bind(1, id);
        if (read.step()) out.push_back(read_delivery(read));
    }
    return out;
}

void SqliteJobStore::keep_webhook_body(std::int64_t id, const std::string& body) {
    std::lock_guard lock(impl_->db.mutex());
    auto stmt =
        impl_->db.prepare("UPDATE webhook_deliveries SET body = coalesce(body, ?) WHERE id = ?");
    stmt.bind(1, body).bind(2, id).run();
}

void SqliteJobStore::finish_webhook_attempt(const WebhookAttempt& attempt) {
    std::lock_guard lock(impl_->db.mutex());
    auto stmt = impl_->db.prepare(
        "UPDATE webhook_deliveries SET state = ?, next_at = ?, lease_until = 0, "
        "body = coalesce(body, ?), http_status = ?, error = ?, updated = ? WHERE id = ?");
    stmt.bind(1, attempt.state).bind(2, attempt.next_at).bind(3, attempt.body);
    if (attempt.http_status)
        stmt.bind(4, attempt.http_status);
    else
        stmt.bind(4, nullptr);
    if (attempt.error.empty())
        stmt.bind(5, nullptr);
    else
        stmt.bind(5, attempt.error);
    stmt.bind(6, impl_->now()).bind(7, attempt.id).run();
}

std::optional<WebhookDelivery> SqliteJobStore::last_webhook(JobId job) {
    std::lock_guard lock(impl_->db.mutex());
    auto stmt = impl_->db.prepare(std::string("SELECT ") + kDeliveryColumns +
                                  " FROM webhook_deliveries d LEFT JOIN jobs j ON j.id = "
                                  "d.job_id WHERE d.job_id = ? ORDER BY d.id DESC LIMIT 1");
    stmt.bind(1, job);
    if (!stmt.step()) return std::nullopt;
    return read_delivery(stmt);
}

std::optional<JobSnapshot> SqliteJobStore::find_job(JobId job) {
    std::lock_guard lock(impl_->db.mutex());
    return impl_->load_job(job);
}

}  // namespace litchi
