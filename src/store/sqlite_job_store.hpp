// JobStore on the server's SQLite connection (see job_store.hpp for what each
// call promises). Changes go through a ChangeQueue: queued under the
// connection's mutex in commit order, delivered after it is released.
#pragma once

#include <memory>

#include "store/job_store.hpp"
#include "store/store.hpp"

namespace litchi {

class Database;

class SqliteJobStore final : public JobStore {
  public:
    // `db` must be migrated and outlive this. Does not run recover() itself
    // (SqliteStore does, on open).
    explicit SqliteJobStore(Database& db, const StoreOptions& options = {});
    ~SqliteJobStore() override;
    SqliteJobStore(const SqliteJobStore&) = delete;
    SqliteJobStore& operator=(const SqliteJobStore&) = delete;

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
    // Request options and webhooks (sqlite_webhooks.cpp).
    std::optional<RequestOptions> request_options(JobId job) override;
    std::vector<WebhookDelivery> claim_webhooks(std::size_t max) override;
    void keep_webhook_body(std::int64_t id, const std::string& body) override;
    void finish_webhook_attempt(const WebhookAttempt& attempt) override;
    std::optional<WebhookDelivery> last_webhook(JobId job) override;
    std::optional<JobSnapshot> find_job(JobId job) override;

  private:
    struct Impl;
    template <typename Work>
    auto write(Work&& work);

    std::unique_ptr<Impl> impl_;
};

}  // namespace litchi
