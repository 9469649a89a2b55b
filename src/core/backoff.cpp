#include "core/backoff.hpp"

#include <algorithm>
#include <charconv>

namespace litchi {

std::chrono::milliseconds backoff_delay(const BackoffPolicy& policy, int attempt,
                                        double unit_random) {
    if (attempt < 1) attempt = 1;
    // Cap the exponent so the shift cannot overflow; the cap bounds it anyway.
    int exp = std::min(attempt - 1, 30);
    double ceiling = std::min<double>(double(policy.cap.count()),
                                      double(policy.base.count()) * double(1ull << exp));
    unit_random = std::clamp(unit_random, 0.0, 0.999999);
    return std::chrono::milliseconds(static_cast<long long>(ceiling * unit_random));
}

std::optional<std::chrono::seconds> parse_retry_after_seconds(std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() &&
           (v.back() == ' ' || v.back() == '\t' || v.back() == '\r' || v.back() == '\n'))
        v.remove_suffix(1);
    if (v.empty()) return std::nullopt;
    long long s = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), s);
    if (ec != std::errc() || p != v.data() + v.size() || s < 0) return std::nullopt;
    return std::chrono::seconds(s);
}

}  // namespace litchi
