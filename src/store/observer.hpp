// How the rest of the server hears about changes in the store: one typed
// StoreChanges per commit that changed something, delivered after the commit
// and AFTER the store's lock is released, in commit order.
//
// Why outside the lock: an observer turns changes into protocol messages and
// wakes sockets; doing that under the database lock made every claim and
// every result batch wait for the fan-out. The store queues each commit's
// changes under its lock (so the queue is in commit order) and whichever
// thread committed delivers the queue once it let go of the lock. Only one
// delivery runs at a time, so an observer sees commits one by one, in order,
// and never a count go backwards.
//
// A snapshot read through JobStore::visit_jobs is taken while no delivery
// runs, and says which commit it is as of: changes with a commit number at or
// below that are already in it (they may still be delivered afterwards, and
// the reader skips them). That is how the event hub's hello and the events
// after it fit exactly.
//
// An observer must not call JobStore::visit_jobs from on_commit (it would wait
// for its own delivery); other store calls are allowed but slow the delivery.
//
// The changes are the observer's to fill in: each commit goes to one observer
// and is dropped after, so one that adds what the store does not know (jobs/
// adds rates) and passes them on does so in place, not on a copy.
#pragma once

#include <vector>

#include "core/records.hpp"

namespace litchi {

// A job whose counts and/or state changed. `state_changed` tells coalescing
// code to send this one at once.
struct JobChange {
    JobSnapshot job;
    bool state_changed = false;
};

// One item that changed state (or was requeued), with its job's owner.
struct ItemChange {
    UserId user = 0;
    ItemRecord item;
};

// Everything one commit changed. Receivers apply the lists in this order:
// created, items, items_reset, changed, deleted.
struct StoreChanges {
    CommitId commit = 0;
    std::vector<JobSnapshot> created;
    std::vector<ItemChange> items;
    // Many items of these jobs changed at once (cancel, retry, recovery): too
    // many to list, so item-level watchers re-read the job's items. The
    // matching JobChange follows in `changed`.
    std::vector<JobSnapshot> items_reset;
    std::vector<JobChange> changed;
    std::vector<JobSnapshot> deleted;  // each job's last snapshot before removal

    bool empty() const {
        return created.empty() && items.empty() && items_reset.empty() && changed.empty() &&
               deleted.empty();
    }
};

class StoreObserver {
  public:
    virtual ~StoreObserver() = default;
    virtual void on_commit(StoreChanges& changes) = 0;
};

}  // namespace litchi
