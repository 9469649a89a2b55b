// The claim allocator (store/fair_share.hpp) alone: max-min water-filling
// across users, then jobs, from the load this node's engine holds.
#include <gtest/gtest.h>

#include <map>

#include "store/fair_share.hpp"

namespace litchi {
namespace {

using Quota = std::map<JobId, std::int64_t>;

TEST(StoreFairShare, EqualLoadsGoRoundRobinAcrossUsersThenJobs) {
    FairnessCursor cursor;
    std::map<UserId, std::vector<RunnableJob>> runnable{
        {1, {{10, 100}, {11, 100}}},
        {2, {{20, 100}}},
    };
    EXPECT_EQ(share_slots(runnable, 4, cursor), (Quota{{10, 1}, {11, 1}, {20, 2}}));
    // The turn carries over: one slot at a time alternates users, and alice's
    // slots alternate her jobs.
    Quota taken;
    for (int i = 0; i < 8; ++i)
        for (auto [job, n] : share_slots(runnable, 1, cursor)) taken[job] += n;
    EXPECT_EQ(taken, (Quota{{10, 2}, {11, 2}, {20, 4}}));
}

TEST(StoreFairShare, TheLeastLoadedUserIsFilledFirst) {
    // Alice's slow job holds 30 items in the engine, bob's fast one 2: the
    // room goes to bob until he holds as many, then alternates.
    FairnessCursor cursor;
    std::map<UserId, std::vector<RunnableJob>> runnable{{1, {{10, 1000}}}, {2, {{20, 1000}}}};
    SlotLoad load;
    load.add(1, 10, 30);
    load.add(2, 20, 2);
    EXPECT_EQ(share_slots(runnable, 20, cursor, load), (Quota{{20, 20}}));
    EXPECT_EQ(share_slots(runnable, 36, cursor, load), (Quota{{10, 4}, {20, 32}}));
}

TEST(StoreFairShare, AJobAloneTakesAllTheRoomAndNoMoreThanItHas) {
    FairnessCursor cursor;
    std::map<UserId, std::vector<RunnableJob>> runnable{{1, {{10, 5}}}, {2, {{20, 1000}}}};
    SlotLoad load;
    load.add(2, 20, 50);  // bob holds a lot, but alice has only 5 to give
    EXPECT_EQ(share_slots(runnable, 64, cursor, load), (Quota{{10, 5}, {20, 59}}));
}

TEST(StoreFairShare, AUsersLoadCountsJobsThatAreNoLongerRunnable) {
    // Alice's paused job still has 10 transfers in the engine: her new job
    // does not make her a newcomer.
    FairnessCursor cursor;
    std::map<UserId, std::vector<RunnableJob>> runnable{{1, {{11, 100}}}, {2, {{20, 100}}}};
    SlotLoad load;
    load.add(1, 10, 10);
    EXPECT_EQ(share_slots(runnable, 10, cursor, load), (Quota{{20, 10}}));
}

TEST(StoreFairShare, WithinAUserTheLeastLoadedJobIsFilledFirst) {
    FairnessCursor cursor;
    std::map<UserId, std::vector<RunnableJob>> runnable{{1, {{10, 100}, {11, 100}}}};
    SlotLoad load;
    load.add(1, 10, 6);
    EXPECT_EQ(share_slots(runnable, 8, cursor, load), (Quota{{10, 1}, {11, 7}}));
}

TEST(StoreFairShare, NothingRunnableOrNoRoomGivesNothing) {
    FairnessCursor cursor;
    EXPECT_TRUE(share_slots({}, 10, cursor).empty());
    std::map<UserId, std::vector<RunnableJob>> runnable{{1, {{10, 0}}}, {2, {{20, 3}}}};
    EXPECT_TRUE(share_slots(runnable, 0, cursor).empty());
    EXPECT_EQ(share_slots(runnable, 10, cursor), (Quota{{20, 3}}));
}

TEST(StoreFairShare, ANewcomerGetsItsShareOfAFullBuffer) {
    // Alice's job fills the buffer of 8; bob arrives. He is topped up to his
    // half at once; alice keeps what she holds (nothing is taken back) and
    // gets no more.
    FairnessCursor cursor;
    std::map<UserId, std::vector<RunnableJob>> runnable{{1, {{10, 50}}}, {2, {{20, 12}}}};
    SlotLoad load;
    load.add(1, 10, 8);
    load.capacity = 8;
    EXPECT_EQ(share_slots(runnable, 64, cursor, load), (Quota{{20, 4}}));
    // Once bob holds his half, nobody is given more until something ends.
    load.add(2, 20, 4);
    EXPECT_TRUE(share_slots(runnable, 64, cursor, load).empty());
    // Alice's load falls to 2: the buffer has room for 2, and it is hers.
    load.held[1][10] = 2;
    EXPECT_EQ(share_slots(runnable, 64, cursor, load), (Quota{{10, 2}}));
}

TEST(StoreFairShare, ANewJobOfAUserAtHerShareGetsItsPartAtOnce) {
    // Alice holds her half of the buffer with one job and starts another:
    // the new one gets its share of her half now (as a new user would),
    // though that puts her above her half until the first job's items end.
    FairnessCursor cursor;
    std::map<UserId, std::vector<RunnableJob>> runnable{{1, {{10, 50}, {11, 50}}}, {2, {{20, 50}}}};
    SlotLoad load;
    load.add(1, 10, 4);
    load.add(2, 20, 4);
    load.capacity = 8;
    EXPECT_EQ(share_slots(runnable, 64, cursor, load), (Quota{{11, 2}}));
}

}  // namespace
}  // namespace litchi
