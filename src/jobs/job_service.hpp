// The jobs as users see and act on them: the one object the server talks to
// for jobs. It is where the engine meets the store:
//
//   create_job:  admission (admission.hpp) -> store (one txn) -> scheduler.wake()
//   pause/cancel/delete: store -> cancel the job's transfers in the engine
//                (delete also removes blob files nobody references any more)
//   resume/retry: store -> scheduler.wake()
//   reads:       store rows + rate and ETA (rate_estimator.hpp)
//
// It also stands between the store's change delivery and whoever listens
// (the server's event wiring): every commit's changes pass through here, get
// their jobs' rate and ETA, and go on in the same order. Rates are not rows,
// so the store never computes them.
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <vector>

#include "jobs/admission.hpp"
#include "jobs/rate_estimator.hpp"
#include "store/job_store.hpp"
#include "store/observer.hpp"

namespace litchi {

class Scheduler;

struct JobServiceOptions {
    AdmissionLimits admission{};
    std::chrono::milliseconds rate_window{10'000};  // how far back `rate` looks
};

class JobService final : private StoreObserver {
  public:
    // Registers as the store's observer; `store` and `scheduler` must outlive
    // this. The scheduler may be started before or after.
    JobService(JobStore& store, Scheduler& scheduler, JobServiceOptions options = {});
    ~JobService() override;  // unregisters from the store
    JobService(const JobService&) = delete;
    JobService& operator=(const JobService&) = delete;

    // Receives every commit's changes, rates filled in, in commit order;
    // nullptr to stop (waits for a delivery in progress).
    void set_observer(StoreObserver* observer);

    // Admits the URLs by the engine's rule, stores the job (fsynced) and
    // wakes the scheduler.
    JobSnapshot create_job(const JobRequest& request);

    std::vector<JobSnapshot> list_jobs(UserId user);
    std::optional<JobSnapshot> get_job(UserId user, JobId job);
    // JobStore::visit_jobs with rates filled in.
    void visit_jobs(UserId user, const JobsVisitor& visit);

    // The JobStore actions plus the engine side (see the top of this file).
    JobOpResult pause_job(UserId user, JobId job);
    JobOpResult resume_job(UserId user, JobId job);
    JobOpResult cancel_job(UserId user, JobId job);
    JobOpResult retry_job(UserId user, JobId job,
                          const RetrySelection& which = RetrySelection::transient());
    JobOpResult rename_job(UserId user, JobId job, std::string_view name);
    JobOpResult delete_job(UserId user, JobId job);

    JobStore& store() { return store_; }
    void set_rate_window(std::chrono::milliseconds window) { rates_.set_window(window); }

  private:
    void on_commit(StoreChanges& changes) override;
    JobOpResult with_rate(JobOpResult result);
    void fill_rate(JobSnapshot& job);

    JobStore& store_;
    Scheduler& scheduler_;
    JobServiceOptions options_;
    RateEstimator rates_;
    // Lock order: the store's delivery, then this, then the observer's own.
    std::mutex downstream_mutex_;
    StoreObserver* downstream_ = nullptr;  // guarded by downstream_mutex_
};

}  // namespace litchi
