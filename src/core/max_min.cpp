// See max_min.hpp. Rounds of an equal level over the demands still open:
// each round closes every demand below the level, so at most one round per
// distinct demand.
#include "core/max_min.hpp"

#include <algorithm>

namespace litchi {

std::vector<std::int64_t> max_min_split(const std::vector<std::int64_t>& demands,
                                        std::int64_t capacity) {
    std::vector<std::int64_t> share(demands.size(), 0);
    std::vector<std::size_t> open;  // still below their demand
    for (std::size_t i = 0; i < demands.size(); ++i)
        if (demands[i] > 0) open.push_back(i);
    std::int64_t left = std::max<std::int64_t>(capacity, 0);
    while (!open.empty() && left > 0) {
        auto level = left / static_cast<std::int64_t>(open.size());
        if (level == 0) {
            // Fewer units than takers: one each, in turn order.
            for (std::size_t k = 0; k < open.size() && left > 0; ++k, --left) ++share[open[k]];
            break;
        }
        std::vector<std::size_t> still;
        for (std::size_t i : open) {
            auto give = std::min(level, demands[i] - share[i]);
            share[i] += give;
            left -= give;
            if (share[i] < demands[i]) still.push_back(i);
        }
        open.swap(still);
    }
    return share;
}

}  // namespace litchi
