// The store's outbox of change notifications (observer.hpp): commits queue
// their StoreChanges while they still hold the database lock, so the queue is
// in commit order; the committing thread delivers after releasing the lock.
//
//   { lock db; ... commit; queue.push(changes) }   // numbered in commit order
//   queue.deliver();                                // outside the db lock
//
// One delivery runs at a time (delivery_mutex). A thread that finds another
// delivering waits for it and then delivers whatever is left, so when
// deliver() returns everything its caller committed has reached the observer:
// callers keep the "notified before the call returns" behaviour they had when
// notifications ran under the lock, without holding the lock for them.
//
// Lock order: delivery_mutex, then the database lock, then the queue's own
// mutex (a leaf). Deliveries never take the database lock.
#pragma once

#include <deque>
#include <mutex>

#include "store/observer.hpp"

namespace litchi {

class ChangeQueue {
  public:
    // Waits for a delivery in progress.
    void set_observer(StoreObserver* observer);

    // Under the database lock, right after the commit. Numbers the changes
    // (commit = previous + 1); empty changes are dropped without a number.
    void push(StoreChanges&& changes);

    // The number of the last pushed commit. Under the database lock.
    CommitId last_commit() const { return last_commit_; }

    // Outside the database lock: hands every queued commit to the observer,
    // in order. An observer that throws is logged and skipped.
    void deliver();

    // Held by readers that must see no delivery while they take a snapshot
    // (JobStore::visit_jobs), before they take the database lock.
    std::mutex& delivery_mutex() { return delivery_mutex_; }

  private:
    std::mutex delivery_mutex_;
    StoreObserver* observer_ = nullptr;  // guarded by delivery_mutex_

    std::mutex queue_mutex_;
    std::deque<StoreChanges> queue_;  // guarded by queue_mutex_
    CommitId last_commit_ = 0;        // guarded by the database lock
};

}  // namespace litchi
