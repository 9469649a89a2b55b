// See change_queue.hpp.
#include "store/change_queue.hpp"

#include <spdlog/spdlog.h>

#include <exception>

namespace litchi {

void ChangeQueue::set_observer(StoreObserver* observer) {
    std::lock_guard delivery(delivery_mutex_);
    observer_ = observer;
}

void ChangeQueue::push(StoreChanges&& changes) {
    if (changes.empty()) return;
    changes.commit = ++last_commit_;
    std::lock_guard lock(queue_mutex_);
    queue_.push_back(std::move(changes));
}

void ChangeQueue::deliver() {
    std::lock_guard delivery(delivery_mutex_);
    while (true) {
        std::deque<StoreChanges> batch;
        {
            std::lock_guard lock(queue_mutex_);
            if (queue_.empty()) return;
            batch.swap(queue_);
        }
        if (observer_ == nullptr) continue;  // nobody listens: the changes are dropped
        for (StoreChanges& changes : batch) {
            try {
                observer_->on_commit(changes);
            } catch (const std::exception& e) {
                // The commit stands; one observer's bug must not stop the others.
                spdlog::error("store: observer failed on commit {}: {}", changes.commit, e.what());
            }
        }
    }
}

}  // namespace litchi
