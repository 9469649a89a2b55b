// The SQLite job store's inside, shared by its two files: sqlite_job_store.cpp
// (rows, creation, claims, outcomes, the public calls) and
// sqlite_job_actions.cpp (the user's state changes and crash recovery).
// Every Impl method runs with the database mutex held and queues its changes
// right after its commit.
#pragma once

#include <optional>
#include <vector>

#include "store/change_queue.hpp"
#include "store/database.hpp"
#include "store/fair_share.hpp"
#include "store/sqlite_job_store.hpp"

namespace litchi {

struct SqliteJobStore::Impl {
    Impl(Database& database, const StoreOptions& store_options)
        : db(database), options(store_options) {}

    Database& db;
    StoreOptions options;
    ChangeQueue changes;
    FairnessCursor fairness;

    // The store's clock (StoreOptions::clock, injectable for tests): every
    // time it writes (created, updated, leases, progress) comes from here.
    TimeMs now() const { return options.clock ? options.clock() : now_ms(); }

    // --- rows ---

    std::optional<JobSnapshot> load_job(JobId id);
    std::optional<JobSnapshot> load_user_job(UserId user, JobId id);
    void write_job(JobSnapshot& job, TimeMs now);
    std::vector<ItemId> active_items(JobId job);
    JobSnapshot create_job(const NewJob& request);
    std::vector<JobSnapshot> list_jobs(UserId user);

    // --- claims ---

    std::vector<ClaimedItem> claim(std::size_t max, const SlotLoad& load);

    // --- results ---

    ApplySummary apply(const std::vector<ItemOutcome>& outcomes);

    // --- user actions ---

    JobOpResult pause(UserId user, JobId id);
    JobOpResult resume(UserId user, JobId id);
    JobOpResult cancel(UserId user, JobId id);
    JobOpResult retry(UserId user, JobId id, const RetrySelection& which);
    JobOpResult rename(UserId user, JobId id, std::string_view name);
    JobOpResult remove(UserId user, JobId id);

    // --- leases and recovery ---

    // Which active items go back to the queue: this node's, or every node's
    // whose lease ran out.
    enum class Requeue { own_node, expired };
    std::int64_t requeue(Requeue which);
    std::int64_t requeue_active() { return requeue(Requeue::own_node); }
    std::int64_t expire_leases() { return requeue(Requeue::expired); }
    std::int64_t renew_leases();
    RecoverySummary recover();
};

}  // namespace litchi
