// See config.hpp: the checks that relate two limits.
#include "core/config.hpp"

namespace litchi {

std::string validate_fetch_limits(const FetchLimits& limits) {
    if (limits.backoff.base > limits.backoff.cap) return "--retry-base must not exceed --retry-cap";
    if (limits.host_cooloff > limits.host_cooloff_cap)
        return "--host-cooloff must not exceed --host-cooloff-cap";
    return {};
}

}  // namespace litchi
