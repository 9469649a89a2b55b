// The engine's dispatch order (fetch/fair_queue.hpp), driven by hand: which
// queued transfer starts next when a slot frees up. Max-min over what each
// user, job and host runs now; work-conserving; --per-host across groups.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "fetch/fair_queue.hpp"

namespace litchi {
namespace {

// A tiny engine: `slots` at once; start() fills free slots from the queue
// and remembers what runs, end() gives one back.
struct Slots {
    explicit Slots(int slots, int per_host) : queue(per_host), free(slots) {}

    struct Running {
        DispatchKey key;
        std::string host;
        int item;
    };
    void start() {
        while (free > 0) {
            auto next = queue.pop();
            if (!next) return;
            queue.started(next->key, next->host);
            running.push_back({next->key, next->host, next->item});
            started.push_back(next->item);
            --free;
        }
    }
    // Ends the first running transfer of `key` and refills.
    void end(DispatchKey key) {
        for (auto it = running.begin(); it != running.end(); ++it)
            if (it->key == key) {
                queue.finished(it->key, it->host);
                running.erase(it);
                ++free;
                start();
                return;
            }
        FAIL() << "nothing of that group runs";
    }
    // What the engine does to a group over its share: its newest running
    // transfer goes back to the front of its queue and the slot is refilled.
    void preempt(DispatchKey key) {
        for (auto it = running.rbegin(); it != running.rend(); ++it)
            if (it->key == key) {
                queue.finished(it->key, it->host);
                queue.push(it->key, it->host, it->item, /*front=*/true);
                running.erase(std::next(it).base());
                ++free;
                ++preempted;
                start();
                return;
            }
        FAIL() << "nothing of that group runs";
    }
    // The engine's rebalance: preempt while a group is named.
    void rebalance(int slots) {
        while (auto over = queue.over_share(slots)) preempt(*over);
    }
    int running_of(DispatchKey key) const {
        int n = 0;
        for (const auto& r : running) n += r.key == key;
        return n;
    }
    int running_on(const std::string& host) const {
        int n = 0;
        for (const auto& r : running) n += r.host == host;
        return n;
    }

    FairQueue<int> queue;
    int free;
    std::vector<Running> running;
    std::vector<int> started;
    int preempted = 0;
};

const DispatchKey kSlowJob{1, 10};  // alice's job on a slow host
const DispatchKey kFastJob{2, 20};  // bob's job on a fast host

TEST(FetchFairQueue, AGroupAloneTakesEverySlot) {
    Slots slots(8, 8);
    for (int i = 0; i < 20; ++i) slots.queue.push(kSlowJob, "http://slow", i);
    slots.start();
    EXPECT_EQ(slots.running_of(kSlowJob), 8);
    EXPECT_EQ(slots.queue.pending(), 12u);
    EXPECT_EQ(slots.started, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7})) << "FIFO within a host";
}

TEST(FetchFairQueue, ASlowHostKeepsItsShareAndNoMore) {
    // Both jobs queued; the slow job's transfers never end in this test, the
    // fast job's end one after another. Before: every freed slot went to
    // whoever came next in turn, so slow transfers piled up to hold all 8.
    Slots slots(8, 8);
    for (int i = 0; i < 100; ++i) slots.queue.push(kSlowJob, "http://slow", 1000 + i);
    for (int i = 0; i < 100; ++i) slots.queue.push(kFastJob, "http://fast", i);
    slots.start();
    EXPECT_EQ(slots.running_of(kSlowJob), 4);
    EXPECT_EQ(slots.running_of(kFastJob), 4);
    for (int i = 0; i < 90; ++i) {
        slots.end(kFastJob);
        ASSERT_EQ(slots.running_of(kSlowJob), 4) << "after " << i + 1 << " fast transfers ended";
        ASSERT_EQ(slots.running_of(kFastJob), 4);
    }
}

TEST(FetchFairQueue, IdleSlotsGoToWhoeverHasWorkAndComeBackAsTheyFree) {
    Slots slots(8, 8);
    for (int i = 0; i < 100; ++i) slots.queue.push(kSlowJob, "http://slow", 1000 + i);
    slots.start();
    ASSERT_EQ(slots.running_of(kSlowJob), 8) << "alone: all slots";
    // Bob arrives: nothing running is cut, but every slot alice gives back
    // goes to bob until both hold their share.
    for (int i = 0; i < 10; ++i) slots.queue.push(kFastJob, "http://fast", i);
    slots.start();
    EXPECT_EQ(slots.running_of(kFastJob), 0);
    for (int i = 0; i < 4; ++i) slots.end(kSlowJob);
    EXPECT_EQ(slots.running_of(kFastJob), 4);
    EXPECT_EQ(slots.running_of(kSlowJob), 4);
    slots.end(kSlowJob);  // a tie at 4-3 after this end: alice is below her share
    EXPECT_EQ(slots.running_of(kSlowJob), 4);
    // Bob's 10 end; once he has nothing left queued, alice takes his slots back.
    for (int i = 0; i < 10; ++i) slots.end(kFastJob);
    EXPECT_EQ(slots.running_of(kFastJob), 0);
    EXPECT_EQ(slots.running_of(kSlowJob), 8);
}

TEST(FetchFairQueue, UsersFirstThenTheirJobs) {
    // Alice has three jobs, bob one: half the slots are bob's, alice's half
    // is split across her jobs.
    Slots slots(12, 12);
    const DispatchKey a1{1, 1}, a2{1, 2}, a3{1, 3}, b{2, 4};
    for (int i = 0; i < 50; ++i) {
        slots.queue.push(a1, "http://h", i);
        slots.queue.push(a2, "http://h", i);
        slots.queue.push(a3, "http://h", i);
        slots.queue.push(b, "http://h", i);
    }
    slots.start();
    EXPECT_EQ(slots.running_of(b), 6);
    EXPECT_EQ(slots.running_of(a1), 2);
    EXPECT_EQ(slots.running_of(a2), 2);
    EXPECT_EQ(slots.running_of(a3), 2);
    // One of alice's jobs gives back a slot: it goes back to alice's job
    // with the fewest running, the one that gave it.
    slots.end(a2);
    EXPECT_EQ(slots.running_of(a2), 2);
    EXPECT_EQ(slots.running_of(b), 6);
}

TEST(FetchFairQueue, PerHostLimitHoldsAcrossGroups) {
    Slots slots(10, 3);
    for (int i = 0; i < 20; ++i) {
        slots.queue.push(kSlowJob, "http://shared", i);
        slots.queue.push(kFastJob, "http://shared", 100 + i);
    }
    slots.queue.push(kFastJob, "http://other", 500);
    slots.start();
    EXPECT_EQ(slots.running_on("http://shared"), 3) << "--per-host counts every group";
    EXPECT_EQ(slots.running_on("http://other"), 1);
    EXPECT_EQ(slots.running.size(), 4u) << "the rest waits for the host, not for a slot";
    EXPECT_EQ(slots.queue.running("http://shared"), 3);
}

TEST(FetchFairQueue, WithinAJobASlowHostDoesNotCrowdOutAFastOne) {
    // One group (litchi fetch): hosts are shared max-min too, so the fast
    // host keeps half the slots while the slow one's transfers never end.
    Slots slots(6, 6);
    for (int i = 0; i < 50; ++i) {
        slots.queue.push({}, "http://slow", 1000 + i);
        slots.queue.push({}, "http://fast", i);
    }
    slots.start();
    for (int i = 0; i < 40; ++i) {
        // The fast host's transfers end, one at a time; the slow ones never.
        std::stable_partition(slots.running.begin(), slots.running.end(),
                              [](const Slots::Running& r) { return r.host == "http://fast"; });
        slots.end({});
        int fast = slots.running_on("http://fast");
        int slow = slots.running_on("http://slow");
        ASSERT_EQ(fast + slow, 6);
        ASSERT_EQ(slow, 3) << "after " << i + 1 << " ends";
    }
}

TEST(FetchFairQueue, AGroupHoldingMoreThanItsShareGivesItBackToANewcomer) {
    Slots slots(8, 8);
    for (int i = 0; i < 100; ++i) slots.queue.push(kSlowJob, "http://slow", 1000 + i);
    slots.start();
    EXPECT_FALSE(slots.queue.over_share(8)) << "alone, every slot is its share";
    for (int i = 0; i < 10; ++i) slots.queue.push(kFastJob, "http://fast", i);
    auto over = slots.queue.over_share(8);
    ASSERT_TRUE(over);
    EXPECT_EQ(*over, kSlowJob);
    slots.rebalance(8);
    EXPECT_EQ(slots.preempted, 4);
    EXPECT_EQ(slots.running_of(kSlowJob), 4);
    EXPECT_EQ(slots.running_of(kFastJob), 4);
    // The preempted ones start first when alice's turn comes again.
    for (int i = 0; i < 10; ++i) slots.end(kFastJob);
    EXPECT_EQ(slots.running_of(kSlowJob), 8);
    EXPECT_EQ(slots.started.back(), 1007) << "back at the front of its queue, in order";
}

TEST(FetchFairQueue, OneSlotOfDifferenceIsNoReasonToPreempt) {
    // 3 slots, two users: 2 + 1 is as fair as it gets; moving one would only
    // turn it round.
    Slots slots(3, 3);
    for (int i = 0; i < 10; ++i) slots.queue.push(kSlowJob, "http://a", i);
    slots.start();
    for (int i = 0; i < 10; ++i) slots.queue.push(kFastJob, "http://b", 100 + i);
    slots.rebalance(3);
    EXPECT_EQ(slots.preempted, 1);
    EXPECT_EQ(slots.running_of(kSlowJob), 2);
    EXPECT_EQ(slots.running_of(kFastJob), 1);
    EXPECT_FALSE(slots.queue.over_share(3));
}

TEST(FetchFairQueue, NoPreemptionForAGroupWhoseHostIsAtItsLimit) {
    // Bob waits, but only for a host already at --per-host: a slot taken
    // from alice could not start anything of his.
    Slots slots(4, 2);
    for (int i = 0; i < 10; ++i) {
        slots.queue.push(kSlowJob, "http://a", i);
        slots.queue.push(kSlowJob, "http://b", 100 + i);
    }
    slots.start();
    ASSERT_EQ(slots.running_of(kSlowJob), 4);
    slots.queue.push(kFastJob, "http://a", 500);
    EXPECT_FALSE(slots.queue.over_share(4));
}

TEST(FetchFairQueue, OneHostWithEverySlotIsNoObstacleWhenThePerHostLimitIsJ) {
    // --per-host 0 (= -j): alice and bob on the same host, alice holding all
    // of it. Putting one of hers back frees the host too, so bob is waiting.
    Slots slots(4, 4);
    for (int i = 0; i < 10; ++i) slots.queue.push(kSlowJob, "http://same", i);
    slots.start();
    for (int i = 0; i < 10; ++i) slots.queue.push(kFastJob, "http://same", 100 + i);
    slots.rebalance(4);
    EXPECT_EQ(slots.preempted, 2);
    EXPECT_EQ(slots.running_of(kSlowJob), 2);
    EXPECT_EQ(slots.running_of(kFastJob), 2);
}

TEST(FetchFairQueue, WithinAUserAJobHoldingHerSlotsSharesThemWithHerNextJob) {
    Slots slots(8, 8);
    const DispatchKey first{1, 1}, second{1, 2};
    for (int i = 0; i < 50; ++i) slots.queue.push(first, "http://h", i);
    slots.start();
    for (int i = 0; i < 50; ++i) slots.queue.push(second, "http://h2", 100 + i);
    auto over = slots.queue.over_share(8);
    ASSERT_TRUE(over);
    EXPECT_EQ(*over, first);
    slots.rebalance(8);
    EXPECT_EQ(slots.running_of(first), 4);
    EXPECT_EQ(slots.running_of(second), 4);
}

TEST(FetchFairQueue, FrontPushesStartFirstAndDrainReturnsEverything) {
    FairQueue<int> queue(4);
    queue.push(kFastJob, "http://h", 1);
    queue.push(kFastJob, "http://h", 2);
    queue.push(kFastJob, "http://h", 0, /*front=*/true);  // a retry that waited already
    auto next = queue.pop();
    ASSERT_TRUE(next);
    EXPECT_EQ(next->item, 0);
    EXPECT_EQ(next->key, kFastJob);
    EXPECT_EQ(next->host, "http://h");
    std::vector<int> drained;
    queue.drain([&](int item) { drained.push_back(item); });
    EXPECT_EQ(drained, (std::vector<int>{1, 2}));
    EXPECT_EQ(queue.pending(), 0u);
    EXPECT_FALSE(queue.pop());
}

// The engine closes a host for now (a Retry-After pause, a --per-host-rate
// wait): its transfers do not start, and a group whose only queued work is
// there is not "waiting" (no one is put back for it).
TEST(FetchFairQueue, AClosedHostIsSkippedAndWaitsForNoShare) {
    Slots slots(4, 4);
    bool paused = true;
    slots.queue.set_host_filter(
        [&](const std::string& host) { return !(paused && host == "http://paused"); });
    for (int i = 0; i < 10; ++i) slots.queue.push(kSlowJob, "http://slow", i);
    slots.start();
    ASSERT_EQ(slots.running_of(kSlowJob), 4);
    for (int i = 100; i < 104; ++i) slots.queue.push(kFastJob, "http://paused", i);
    slots.start();
    EXPECT_FALSE(slots.queue.over_share(4)) << "bob's only host is paused: nothing to start";
    slots.rebalance(4);
    EXPECT_EQ(slots.preempted, 0);
    // The pause ends: bob is owed half the slots again.
    paused = false;
    slots.rebalance(4);
    EXPECT_EQ(slots.running_of(kFastJob), 2);
    EXPECT_EQ(slots.running_of(kSlowJob), 2);
}

// A parked host's items leave the queue, from every group, in their order.
TEST(FetchFairQueue, TakeHostTakesOutOneHostsItemsInEveryGroup) {
    FairQueue<int> queue(8);
    for (int i = 0; i < 3; ++i) queue.push(kSlowJob, "http://a", i);
    for (int i = 10; i < 12; ++i) queue.push(kFastJob, "http://a", i);
    queue.push(kFastJob, "http://b", 20);
    std::vector<std::pair<DispatchKey, int>> taken;
    queue.take_host("http://a", [&](DispatchKey key, int item) { taken.push_back({key, item}); });
    std::sort(taken.begin(), taken.end());
    EXPECT_EQ(taken,
              (std::vector<std::pair<DispatchKey, int>>{
                  {kSlowJob, 0}, {kSlowJob, 1}, {kSlowJob, 2}, {kFastJob, 10}, {kFastJob, 11}}));
    EXPECT_EQ(queue.pending(), 1u);
    auto next = queue.pop();
    ASSERT_TRUE(next);
    EXPECT_EQ(next->item, 20);
    EXPECT_FALSE(queue.pop());
}

}  // namespace
}  // namespace litchi
