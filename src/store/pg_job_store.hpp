// JobStore on PostgreSQL, shared by every node of a cluster (see
// job_store.hpp for what each call promises, pg_store.hpp for the design).
//
// Claims take items with FOR UPDATE SKIP LOCKED, so nodes never wait for
// each other's claims, and record this node, a fresh lease id and the lease's
// expiry. Results are fenced on (state = 'active', lease_id). Every change is
// logged to the event log in its own transaction (event_log.hpp); nothing is
// delivered to an observer.
#pragma once

#include <memory>

#include "store/job_store.hpp"
#include "store/store.hpp"

namespace litchi {

namespace pg {
class Pool;
}

class PgJobStore final : public JobStore {
  public:
    // `pool` must reach a migrated database and outlive this.
    PgJobStore(pg::Pool& pool, const StoreOptions& options);
    ~PgJobStore() override;
    PgJobStore(const PgJobStore&) = delete;
    PgJobStore& operator=(const PgJobStore&) = delete;

    void set_observer(StoreObserver* observer) override;
    JobSnapshot create_job(const NewJob& job) override;
    std::vector<JobSnapshot> list_jobs(UserId user) override;
    std::optional<JobSnapshot> get_job(UserId user, JobId job) override;
    void visit_jobs(UserId user, const JobsVisitor& visit) override;
    std::optional<ItemPage> list_items(UserId user, JobId job, const ItemQuery& query) override;
    std::optional<ItemRecord> get_item(UserId user, JobId job, ItemId item) override;
    std::optional<ImageFormat> find_user_blob(UserId user, std::string_view sha256) override;
    bool blob_referenced(std::string_view sha256) override;
    JobOpResult pause_job(UserId user, JobId job) override;
    JobOpResult resume_job(UserId user, JobId job) override;
    JobOpResult cancel_job(UserId user, JobId job) override;
    JobOpResult retry_job(UserId user, JobId job, const RetrySelection& which) override;
    JobOpResult rename_job(UserId user, JobId job, std::string_view name) override;
    JobOpResult delete_job(UserId user, JobId job) override;
    std::vector<ClaimedItem> claim_next_items(std::size_t max, const SlotLoad& load = {}) override;
    ApplySummary apply_outcomes(const std::vector<ItemOutcome>& outcomes) override;
    std::int64_t requeue_active() override;
    RecoverySummary recover() override;
    std::int64_t renew_leases() override;
    std::vector<ItemId> released_claims(const std::vector<HeldClaim>& held) override;
    std::int64_t expire_leases() override;
    std::int64_t queued_total() override;
    std::int64_t leased_total() override;
    bool has_runnable() override;
    // Request options and webhooks (pg_webhooks.cpp).
    std::optional<RequestOptions> request_options(JobId job) override;
    std::vector<WebhookDelivery> claim_webhooks(std::size_t max) override;
    void keep_webhook_body(std::int64_t id, const std::string& body) override;
    void finish_webhook_attempt(const WebhookAttempt& attempt) override;
    std::optional<WebhookDelivery> last_webhook(JobId job) override;
    std::optional<JobSnapshot> find_job(JobId job) override;
    bool keeps_rates() const override { return true; }

    // Logs the coalesced progress entries that are due (PgEventLog calls it).
    std::optional<TimeMs> flush_progress();

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace litchi
