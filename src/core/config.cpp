// See config.hpp: the checks that relate two limits.
#include "core/config.hpp"

namespace litchi {

std::string validate_fetch_limits(const FetchLimits& limits) {
    if (limits.backoff.base > limits.backoff.cap) return "--retry-base must not exceed --retry-cap";
    return {};
}

}  // namespace litchi
