// See fair_share.hpp.
#include "store/fair_share.hpp"

#include <algorithm>

namespace litchi {

std::map<JobId, std::int64_t> share_slots(
    const std::map<UserId, std::vector<RunnableJob>>& runnable, std::size_t max,
    FairnessCursor& cursor) {
    std::map<JobId, std::int64_t> quota;
    std::vector<UserId> users;
    for (const auto& [user, jobs] : runnable)
        if (!jobs.empty()) users.push_back(user);
    std::rotate(users.begin(), std::upper_bound(users.begin(), users.end(), cursor.last_user),
                users.end());
    std::size_t assigned = 0;
    bool progress = true;
    while (assigned < max && progress) {
        progress = false;
        for (UserId user : users) {
            if (assigned >= max) break;
            const auto& jobs = runnable.at(user);
            // The next job after the last served one that still has items to give.
            auto start =
                std::upper_bound(jobs.begin(), jobs.end(), cursor.last_job[user],
                                 [](JobId id, const RunnableJob& j) { return id < j.job; });
            for (std::size_t k = 0; k < jobs.size(); ++k) {
                const RunnableJob& job =
                    *(jobs.begin() + ((start - jobs.begin()) + k) % jobs.size());
                std::int64_t& given = quota[job.job];
                if (given >= job.queued) continue;
                ++given;
                cursor.last_job[user] = job.job;
                cursor.last_user = user;
                ++assigned;
                progress = true;
                break;
            }
        }
    }
    std::erase_if(quota, [](const auto& entry) { return entry.second == 0; });
    return quota;
}

}  // namespace litchi
