// See body_budget.hpp.
#include "server/body_budget.hpp"

namespace litchi::server {

bool BodyBudget::try_reserve(std::uint64_t bytes) {
    auto used = used_.load(std::memory_order_relaxed);
    do {
        if (bytes > capacity_ || used > capacity_ - bytes) return false;
    } while (!used_.compare_exchange_weak(used, used + bytes, std::memory_order_acq_rel,
                                          std::memory_order_relaxed));
    return true;
}

}  // namespace litchi::server
