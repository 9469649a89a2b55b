// The one budget for request bodies being read, across all connections
// (--max-body-in-flight). A body is held in memory whole until its handler
// has run, so without this a few thousand connections each sending the
// largest body a route takes would hold thousands of times --max-body. A
// request reserves its declared length (or, for a chunked body of unknown
// size, its route's limit) before the first body byte is read; when the
// budget has no room, it gets a 503 instead of a read.
#pragma once

#include <atomic>
#include <cstdint>

namespace litchi::server {

class BodyBudget {
  public:
    explicit BodyBudget(std::uint64_t capacity) : capacity_(capacity) {}
    BodyBudget(const BodyBudget&) = delete;
    BodyBudget& operator=(const BodyBudget&) = delete;

    // Takes `bytes` from the budget if all of them fit; false (and nothing
    // taken) otherwise.
    bool try_reserve(std::uint64_t bytes);
    // Gives back what try_reserve took.
    void release(std::uint64_t bytes) { used_.fetch_sub(bytes, std::memory_order_acq_rel); }

    std::uint64_t used() const { return used_.load(std::memory_order_relaxed); }
    std::uint64_t capacity() const { return capacity_; }

  private:
    const std::uint64_t capacity_;
    std::atomic<std::uint64_t> used_{0};
};

// What one request holds of a BodyBudget; gives it back when reset or destroyed.
class BodyReservation {
  public:
    BodyReservation() = default;
    BodyReservation(BodyBudget& budget, std::uint64_t bytes) : budget_(&budget), bytes_(bytes) {}
    ~BodyReservation() { reset(); }
    BodyReservation(BodyReservation&& other) noexcept
        : budget_(other.budget_), bytes_(other.bytes_) {
        other.budget_ = nullptr;
    }
    BodyReservation& operator=(BodyReservation&& other) noexcept {
        if (this != &other) {
            reset();
            budget_ = other.budget_;
            bytes_ = other.bytes_;
            other.budget_ = nullptr;
        }
        return *this;
    }

    void reset() {
        if (budget_ != nullptr) budget_->release(bytes_);
        budget_ = nullptr;
    }

  private:
    BodyBudget* budget_ = nullptr;
    std::uint64_t bytes_ = 0;
};

}  // namespace litchi::server
