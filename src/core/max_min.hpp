// Max-min fair split of a capacity over demands: the one rule behind every
// share in Litchi (the claims of store/fair_share.hpp, the engine's transfer
// slots in fetch/fair_queue.hpp). Each gets what it asks or the common level,
// whichever is less; what the small demands leave is shared by the others.
#pragma once

#include <cstdint>
#include <vector>

namespace litchi {

// `demands` in turn order; the level's remainder (capacity not divisible)
// goes one each to the first open ones in that order. Never above a demand;
// a capacity beyond the sum of the demands is left over.
std::vector<std::int64_t> max_min_split(const std::vector<std::int64_t>& demands,
                                        std::int64_t capacity);

}  // namespace litchi
