// See fair_share.hpp. Targets by a max-min split per level (users, then one
// user's jobs), then the gaps handed out one item at a time to the least
// loaded (so a claim cut short by `max` is fair too): O(max x (users + jobs
// of the chosen user)), with max the feeder's room (a few times -j).
#include "store/fair_share.hpp"

#include <algorithm>
#include <numeric>

namespace litchi {

std::map<JobId, std::int64_t> share_slots(
    const std::map<UserId, std::vector<RunnableJob>>& runnable, std::size_t max,
    FairnessCursor& cursor, const SlotLoad& load) {
    struct JobTurn {
        JobId id;
        std::int64_t load;
        std::int64_t gap = 0;  // what lifts it to its target, at most its queued items
    };
    struct UserTurn {
        UserId id;
        std::int64_t load = 0;
        std::vector<JobTurn> jobs;  // id order, rotated to start after the last served
        std::vector<std::int64_t> queued;
        std::int64_t gap = 0;
    };

    // Every user with queued items or a load, each with all their jobs.
    std::map<UserId, UserTurn> by_id;
    std::int64_t held = 0;
    for (const auto& [user, jobs] : load.held)
        for (const auto& [job, n] : jobs) {
            UserTurn& u = by_id.try_emplace(user, UserTurn{user, 0, {}, {}, 0}).first->second;
            u.jobs.push_back({job, n});
            u.queued.push_back(0);
            u.load += n;
            held += n;
        }
    for (const auto& [user, jobs] : runnable)
        for (const RunnableJob& job : jobs) {
            if (job.queued <= 0) continue;
            UserTurn& u = by_id.try_emplace(user, UserTurn{user, 0, {}, {}, 0}).first->second;
            auto found = std::find_if(u.jobs.begin(), u.jobs.end(),
                                      [&](const JobTurn& j) { return j.id == job.job; });
            if (found == u.jobs.end()) {
                u.jobs.push_back({job.job, 0});
                u.queued.push_back(job.queued);
            } else {
                u.queued[static_cast<std::size_t>(found - u.jobs.begin())] = job.queued;
            }
        }
    std::vector<UserTurn> users;
    for (auto& [id, u] : by_id) {
        // Jobs in id order with their queued counts alongside, then rotated.
        std::vector<std::size_t> order(u.jobs.size());
        std::iota(order.begin(), order.end(), 0);
        std::sort(order.begin(), order.end(),
                  [&](std::size_t a, std::size_t b) { return u.jobs[a].id < u.jobs[b].id; });
        JobId last = cursor.last_job[id];
        auto first = std::find_if(order.begin(), order.end(),
                                  [&](std::size_t k) { return u.jobs[k].id > last; });
        std::rotate(order.begin(), first, order.end());
        UserTurn sorted{id, u.load, {}, {}, 0};
        for (std::size_t k : order) {
            sorted.jobs.push_back(u.jobs[k]);
            sorted.queued.push_back(u.queued[k]);
        }
        users.push_back(std::move(sorted));
    }
    std::rotate(users.begin(),
                std::find_if(users.begin(), users.end(),
                             [&](const UserTurn& u) { return u.id > cursor.last_user; }),
                users.end());

    std::int64_t capacity =
        load.capacity > 0 ? load.capacity : static_cast<std::int64_t>(max) + held;
    std::vector<std::int64_t> demands;
    for (const UserTurn& u : users)
        demands.push_back(u.load +
                          std::accumulate(u.queued.begin(), u.queued.end(), std::int64_t{0}));
    auto user_targets = max_min_split(demands, capacity);
    for (std::size_t i = 0; i < users.size(); ++i) {
        UserTurn& u = users[i];
        std::vector<std::int64_t> job_demands;
        for (std::size_t k = 0; k < u.jobs.size(); ++k)
            job_demands.push_back(u.jobs[k].load + u.queued[k]);
        auto job_targets = max_min_split(job_demands, user_targets[i]);
        std::int64_t gaps = 0;
        for (std::size_t k = 0; k < u.jobs.size(); ++k) {
            u.jobs[k].gap =
                std::clamp<std::int64_t>(job_targets[k] - u.jobs[k].load, 0, u.queued[k]);
            gaps += u.jobs[k].gap;
        }
        // Not capped by the user's own gap: a user at (or above) their target
        // whose new job holds nothing yet still gets that job its share, as a
        // new user would get theirs. What the others hold beyond their
        // targets is the overshoot: at most one buffer.
        u.gap = gaps;
    }

    std::map<JobId, std::int64_t> quota;
    for (std::size_t assigned = 0; assigned < max; ++assigned) {
        // The least-loaded user with a gap left; the first in turn order on a
        // tie (the order is fixed for this call, so equal users alternate as
        // each one served rises above the others). Likewise their jobs.
        UserTurn* user = nullptr;
        for (UserTurn& u : users)
            if (u.gap > 0 && (!user || u.load < user->load)) user = &u;
        if (!user) break;
        JobTurn* job = nullptr;
        for (JobTurn& j : user->jobs)
            if (j.gap > 0 && (!job || j.load < job->load)) job = &j;
        --job->gap;
        ++job->load;
        --user->gap;
        ++user->load;
        ++quota[job->id];
        cursor.last_user = user->id;
        cursor.last_job[user->id] = job->id;
    }
    return quota;
}

}  // namespace litchi
