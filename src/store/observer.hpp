// How the rest of the server hears about changes in the store: every change
// of a job's counts or state, every item transition, every job created or
// deleted produces exactly one call, after its transaction committed.
//
// Calls are made with the store's lock held, in commit order, so an observer
// that queues them never sees a count go backwards. In exchange an observer
// must be quick and must NOT call back into the store from a callback. Lock
// order is store first, observer's own locks second: code that holds an
// observer-side lock must not call the store (use JobStore::visit_jobs to take
// a snapshot and register atomically instead).
#pragma once

#include "store/records.hpp"

namespace litchi {

class StoreObserver {
  public:
    virtual ~StoreObserver() = default;

    virtual void on_job_created(const JobSnapshot& job) { (void)job; }

    // Counts and/or state changed. `state_changed` tells coalescing code to
    // send this one at once.
    virtual void on_job_changed(const JobSnapshot& job, bool state_changed) {
        (void)job;
        (void)state_changed;
    }

    // The job's last snapshot before it was removed.
    virtual void on_job_deleted(const JobSnapshot& job) { (void)job; }

    // Many items of one job changed at once (cancel, retry, recovery): too
    // many to list, so item-level watchers should re-read the job's items.
    // The matching on_job_changed follows.
    virtual void on_items_changed_in_bulk(const JobSnapshot& job) { (void)job; }

    // One item changed state (or was requeued). Called before the
    // on_job_changed of the same commit.
    virtual void on_item_changed(UserId user, JobId job, const ItemRecord& item) {
        (void)user;
        (void)job;
        (void)item;
    }
};

}  // namespace litchi
