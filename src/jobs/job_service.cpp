// See job_service.hpp.
#include "jobs/job_service.hpp"

#include "jobs/scheduler.hpp"

namespace litchi {

JobService::JobService(JobStore& store, Scheduler& scheduler, JobServiceOptions options)
    : store_(store), scheduler_(scheduler), options_(options), rates_(options.rate_window) {
    store_.set_observer(this);
}

JobService::~JobService() {
    store_.set_observer(nullptr);
}

void JobService::set_observer(StoreObserver* observer) {
    // on_commit holds this while it calls the old observer: once we have it,
    // no delivery is using the old one, and every later one sees the new.
    std::lock_guard lock(downstream_mutex_);
    downstream_ = observer;
}

void JobService::on_commit(StoreChanges& changes) {
    for (const JobChange& change : changes.changed) rates_.observe(change.job);
    for (const JobSnapshot& job : changes.deleted) rates_.forget(job.id);
    std::lock_guard lock(downstream_mutex_);
    if (downstream_ == nullptr) return;
    for (JobSnapshot& job : changes.created) fill_rate(job);
    for (JobSnapshot& job : changes.items_reset) fill_rate(job);
    for (JobChange& change : changes.changed) fill_rate(change.job);
    for (JobSnapshot& job : changes.deleted) fill_rate(job);
    downstream_->on_commit(changes);
}

void JobService::fill_rate(JobSnapshot& job) {
    // A shared store computes rates itself, once, so every node shows the same.
    if (!store_.keeps_rates()) rates_.fill(job);
}

JobOpResult JobService::with_rate(JobOpResult result) {
    if (result.job) fill_rate(*result.job);
    return result;
}

JobSnapshot JobService::create_job(const JobRequest& request) {
    JobSnapshot job =
        store_.create_job(admit_job(request, scheduler_.limits(), options_.admission));
    scheduler_.wake();
    fill_rate(job);
    return job;
}

std::vector<JobSnapshot> JobService::list_jobs(UserId user) {
    std::vector<JobSnapshot> jobs = store_.list_jobs(user);
    for (JobSnapshot& job : jobs) fill_rate(job);
    return jobs;
}

std::optional<JobSnapshot> JobService::get_job(UserId user, JobId id) {
    std::optional<JobSnapshot> job = store_.get_job(user, id);
    if (job) fill_rate(*job);
    return job;
}

void JobService::visit_jobs(UserId user, const JobsVisitor& visit) {
    store_.visit_jobs(user, [&](const std::vector<JobSnapshot>& jobs, CommitId as_of) {
        std::vector<JobSnapshot> rated = jobs;
        for (JobSnapshot& job : rated) fill_rate(job);
        visit(rated, as_of);
    });
}

JobOpResult JobService::pause_job(UserId user, JobId job) {
    JobOpResult result = store_.pause_job(user, job);
    // Their cancelled results come back and are requeued, not counted.
    scheduler_.cancel_in_engine(result.in_flight);
    return with_rate(std::move(result));
}

JobOpResult JobService::resume_job(UserId user, JobId job) {
    JobOpResult result = store_.resume_job(user, job);
    if (result.status == JobOpStatus::ok) scheduler_.wake();
    return with_rate(std::move(result));
}

JobOpResult JobService::cancel_job(UserId user, JobId job) {
    JobOpResult result = store_.cancel_job(user, job);
    scheduler_.cancel_in_engine(result.in_flight);
    scheduler_.wake();  // slots freed in the engine go to other jobs
    return with_rate(std::move(result));
}

JobOpResult JobService::retry_job(UserId user, JobId job, const RetrySelection& which) {
    JobOpResult result = store_.retry_job(user, job, which);
    if (result.status == JobOpStatus::ok) scheduler_.wake();
    return with_rate(std::move(result));
}

JobOpResult JobService::rename_job(UserId user, JobId job, std::string_view name) {
    return with_rate(store_.rename_job(user, job, name));
}

JobOpResult JobService::delete_job(UserId user, JobId job) {
    JobOpResult result = store_.delete_job(user, job);
    scheduler_.cancel_in_engine(result.in_flight);
    scheduler_.remove_blobs_when_safe(result.unreferenced);
    scheduler_.wake();
    return with_rate(std::move(result));
}

}  // namespace litchi
