// The max-min split (core/max_min.hpp) every share in Litchi is made of.
#include <gtest/gtest.h>

#include "core/max_min.hpp"

namespace litchi {
namespace {

TEST(CoreMaxMin, SmallDemandsGetAllAndTheRestShareTheLevel) {
    EXPECT_EQ(max_min_split({5, 1000, 1000}, 65), (std::vector<std::int64_t>{5, 30, 30}));
    EXPECT_EQ(max_min_split({0, 3, 3}, 5), (std::vector<std::int64_t>{0, 3, 2}))
        << "the remainder goes in turn order";
    EXPECT_EQ(max_min_split({2, 2}, 100), (std::vector<std::int64_t>{2, 2}))
        << "never above demand";
    EXPECT_EQ(max_min_split({7, 7}, 0), (std::vector<std::int64_t>{0, 0}));
}

TEST(CoreMaxMin, ACapacityBeyondAllDemandsIsLeftOver) {
    EXPECT_EQ(max_min_split({1, 2, 3}, 100), (std::vector<std::int64_t>{1, 2, 3}));
    EXPECT_TRUE(max_min_split({}, 10).empty());
}

}  // namespace
}  // namespace litchi
