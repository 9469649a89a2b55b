// Which queued transfer starts next when a slot frees up: max-min fairness
// over the transfers running now, in three levels. The user with the fewest
// running transfers goes first, then that user's job with the fewest, then
// that job's host with the fewest (a host with nothing running is taken at
// once). Ties go round-robin, after the one served last. Work-conserving: a
// group alone takes every slot, and a group's share frees up for the others
// as its transfers end; nothing running is ever cut short. The per-host limit
// (`--per-host`) holds across every group: a host at its limit is skipped.
// So is a host the engine closed for now (set_host_filter: a Retry-After
// pause, a --per-host-rate wait, a job's own lower per-host cap).
//
// Why running counts and not turns: a slow host keeps its slots for seconds
// while a fast one gives them back in milliseconds; handing out starts in
// turn fills every slot with slow transfers, one free slot at a time. Picking
// by what each group holds now keeps the slow group at its share.
//
// Pure logic for the engine's network thread (no locks, no I/O). `T` is what
// is queued (the engine's transfer, a number in tests). Costs per start: the
// users and the chosen user's jobs (a few), and the job's hosts up to the
// first with nothing running: at most one per running transfer (-j).
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/max_min.hpp"

namespace litchi {

// Whose transfer it is: slots are shared across users, then a user's jobs.
// `litchi fetch` has one group (0, 0).
struct DispatchKey {
    std::uint64_t user = 0;
    std::uint64_t job = 0;
    friend auto operator<=>(const DispatchKey&, const DispatchKey&) = default;
};

template <class T>
class FairQueue {
  public:
    // `per_host`: transfers at once to one host, across all groups (>= 1).
    explicit FairQueue(int per_host) : per_host_(std::max(1, per_host)) {}

    // Hosts for which `open(host)` is false are skipped by pop() and do not
    // make their group "waiting" in over_share(), as if at their limit.
    void set_host_filter(std::function<bool(const std::string&)> open) {
        host_open_ = std::move(open);
    }

    // Queues `item` for `host` in its group: at the back, or at the front
    // (a retry or a redirect hop, which has waited already).
    void push(DispatchKey key, const std::string& host, T item, bool front = false) {
        Job& job = users_[key.user].jobs[key.job];
        auto& queue = job.by_host[host];
        if (queue.empty()) job.hosts.push_back(host);
        if (front)
            queue.push_front(std::move(item));
        else
            queue.push_back(std::move(item));
        ++job.pending;
        ++users_[key.user].pending;
        ++pending_;
    }

    // The next transfer to start, or nothing when no group has one for a
    // host with room. Call started() when it does start.
    struct Next {
        DispatchKey key;
        std::string host;
        T item;
    };
    std::optional<Next> pop() {
        std::vector<std::uint64_t> tried_users;
        while (true) {
            auto user = least_running(users_, last_user_, tried_users,
                                      [](const User& u) { return u.pending > 0; });
            if (user == users_.end()) return std::nullopt;
            User& u = user->second;
            std::vector<std::uint64_t> tried_jobs;
            while (true) {
                auto job = least_running(u.jobs, u.last_job, tried_jobs,
                                         [](const Job& j) { return j.pending > 0; });
                if (job == u.jobs.end()) break;
                auto host = pick_host(job->second);
                if (!host) {
                    tried_jobs.push_back(job->first);  // every host of it is at its limit
                    continue;
                }
                Next next{{user->first, job->first}, job->second.hosts[*host], T{}};
                next.item = take(u, job->second, *host);
                last_user_ = user->first;
                u.last_job = job->first;
                forget_if_idle(next.key);
                return next;
            }
            tried_users.push_back(user->first);
        }
    }

    // A transfer of `key` to `host` started / gave its slot back.
    void started(DispatchKey key, const std::string& host) {
        User& u = users_[key.user];
        ++u.running;
        ++u.jobs[key.job].running;
        ++host_running_[host];
    }
    void finished(DispatchKey key, const std::string& host) {
        auto user = users_.find(key.user);
        if (user != users_.end()) {
            --user->second.running;
            auto job = user->second.jobs.find(key.job);
            if (job != user->second.jobs.end()) --job->second.running;
        }
        auto h = host_running_.find(host);
        if (h != host_running_.end() && --h->second <= 0) host_running_.erase(h);
        forget_if_idle(key);
    }

    // With every slot taken (`slots` in all, -j): a group that runs more than
    // its max-min share of them while another, with a transfer it could start
    // now (its host has room, or --per-host is -j), runs fewer than its own and at least two fewer
    // (so handing one slot over never turns the tables). Users first, then one
    // user's jobs (over the slots that user holds). The engine then puts one
    // of that group's transfers that has had no answer yet back in the queue:
    // a job never keeps more than its share while others wait, even when it
    // took every idle slot before they came.
    std::optional<DispatchKey> over_share(int slots) const {
        std::vector<std::uint64_t> ids;
        std::vector<const User*> users;
        std::vector<std::int64_t> demands;
        for (const auto& [id, u] : users_) {
            ids.push_back(id);
            users.push_back(&u);
            demands.push_back(u.running + static_cast<std::int64_t>(u.pending));
        }
        auto shares = max_min_split(demands, slots);
        // A host at its limit keeps a group from starting anything, unless
        // the limit is -j itself: then every slot is on that host, and the
        // one put back frees the host too.
        auto can_start = [&](const Job& job) {
            return job.pending > 0 && pick_host(job, /*ignore_limit=*/per_host_ >= slots);
        };
        if (auto pair = starved_and_over(users, shares, [&](const User& u) {
                for (const auto& [id, job] : u.jobs)
                    if (can_start(job)) return true;
                return false;
            }))
            return DispatchKey{ids[pair->second], busiest_job(*users[pair->second])};
        for (std::size_t i = 0; i < users.size(); ++i) {
            std::vector<std::uint64_t> job_ids;
            std::vector<const Job*> jobs;
            std::vector<std::int64_t> job_demands;
            for (const auto& [id, job] : users[i]->jobs) {
                job_ids.push_back(id);
                jobs.push_back(&job);
                job_demands.push_back(job.running + static_cast<std::int64_t>(job.pending));
            }
            auto job_shares = max_min_split(job_demands, users[i]->running);
            if (auto pair = starved_and_over(jobs, job_shares, can_start))
                return DispatchKey{ids[i], job_ids[pair->second]};
        }
        return std::nullopt;
    }

    std::size_t pending() const { return pending_; }

    // Takes out everything queued for `host`, in every group, in queue order
    // within each group: visit(key, item).
    template <class Visit>
    void take_host(const std::string& host, Visit visit) {
        std::vector<DispatchKey> touched;
        for (auto& [user_id, user] : users_)
            for (auto& [job_id, job] : user.jobs) {
                auto queue = job.by_host.find(host);
                if (queue == job.by_host.end()) continue;
                std::deque<T> items = std::move(queue->second);
                job.by_host.erase(queue);
                job.hosts.erase(std::remove(job.hosts.begin(), job.hosts.end(), host),
                                job.hosts.end());
                job.pending -= items.size();
                user.pending -= items.size();
                pending_ -= items.size();
                touched.push_back({user_id, job_id});
                for (auto& item : items) visit(DispatchKey{user_id, job_id}, std::move(item));
            }
        for (auto key : touched) forget_if_idle(key);
    }
    int running(const std::string& host) const {
        auto h = host_running_.find(host);
        return h == host_running_.end() ? 0 : h->second;
    }

    // Takes out everything queued (stop), in no particular order.
    template <class Visit>
    void drain(Visit visit) {
        for (auto& [user_id, user] : users_)
            for (auto& [job_id, job] : user.jobs)
                for (auto& [host, queue] : job.by_host)
                    for (auto& item : queue) visit(std::move(item));
        users_.clear();
        pending_ = 0;
    }

  private:
    struct Job {
        std::unordered_map<std::string, std::deque<T>> by_host;
        std::deque<std::string> hosts;  // with something queued; round-robin order
        std::size_t pending = 0;
        int running = 0;
    };
    struct User {
        std::map<std::uint64_t, Job> jobs;
        std::uint64_t last_job = 0;
        std::size_t pending = 0;
        int running = 0;
    };
    // Among the candidates with something queued and not tried in this pop,
    // the one with the fewest running; on a tie the first after `last`.
    template <class Map, class Pending>
    static typename Map::iterator least_running(Map& map, std::uint64_t last,
                                                const std::vector<std::uint64_t>& tried,
                                                Pending has_pending) {
        auto best = map.end();
        auto consider = [&](typename Map::iterator it) {
            if (!has_pending(it->second)) return;
            if (std::find(tried.begin(), tried.end(), it->first) != tried.end()) return;
            if (best == map.end() || it->second.running < best->second.running) best = it;
        };
        // Turn order: the ones after `last`, then the rest up to it.
        for (auto it = map.upper_bound(last); it != map.end(); ++it) consider(it);
        for (auto it = map.begin(); it != map.end() && it->first <= last; ++it) consider(it);
        return best;
    }

    static std::uint64_t busiest_job(const User& user) {
        std::uint64_t busiest = 0;
        int most = -1;
        for (const auto& [id, job] : user.jobs)
            if (job.running > most) {
                most = job.running;
                busiest = id;
            }
        return busiest;
    }

    // (starved, over): the indexes of the group furthest below its share
    // that could start something, and of the one furthest above its own.
    template <class Group, class Startable>
    static std::optional<std::pair<std::size_t, std::size_t>> starved_and_over(
        const std::vector<const Group*>& groups, const std::vector<std::int64_t>& shares,
        Startable can_start) {
        std::optional<std::size_t> starved, over;
        for (std::size_t i = 0; i < groups.size(); ++i) {
            const Group& g = *groups[i];
            if (g.running < shares[i] && can_start(g) &&
                (!starved || g.running < groups[*starved]->running))
                starved = i;
            if (g.running > shares[i] &&
                (!over || g.running - shares[i] > groups[*over]->running - shares[*over]))
                over = i;
        }
        if (!starved || !over || groups[*over]->running < groups[*starved]->running + 2)
            return std::nullopt;
        return std::make_pair(*starved, *over);
    }

    // The job's host with room and the fewest running, scanning in turn
    // order and stopping at the first with none running.
    // `ignore_limit`: --per-host does not count (the host filter still does).
    std::optional<std::size_t> pick_host(const Job& job, bool ignore_limit = false) const {
        std::optional<std::size_t> best;
        int best_running = 0;
        for (std::size_t i = 0; i < job.hosts.size(); ++i) {
            int n = running(job.hosts[i]);
            if (n >= per_host_ && !ignore_limit) continue;
            if (host_open_ && !host_open_(job.hosts[i])) continue;
            if (!best || n < best_running) {
                best = i;
                best_running = n;
                if (n == 0) break;
            }
        }
        return best;
    }

    // The first queued transfer for the job's `index`-th host in turn order.
    T take(User& user, Job& job, std::size_t index) {
        std::string host = std::move(job.hosts[index]);
        job.hosts.erase(job.hosts.begin() + static_cast<std::ptrdiff_t>(index));
        auto queue = job.by_host.find(host);
        T item = std::move(queue->second.front());
        queue->second.pop_front();
        if (queue->second.empty())
            job.by_host.erase(queue);
        else
            job.hosts.push_back(std::move(host));  // back of the line: round-robin across hosts
        --job.pending;
        --user.pending;
        --pending_;
        return item;
    }

    // Groups with nothing queued or running are dropped, so a long run over
    // many jobs stays small.
    void forget_if_idle(DispatchKey key) {
        auto user = users_.find(key.user);
        if (user == users_.end()) return;
        auto job = user->second.jobs.find(key.job);
        if (job != user->second.jobs.end() && job->second.pending == 0 && job->second.running <= 0)
            user->second.jobs.erase(job);
        if (user->second.jobs.empty() && user->second.running <= 0) users_.erase(user);
    }

    int per_host_;
    std::function<bool(const std::string&)> host_open_;
    std::map<std::uint64_t, User> users_;
    std::uint64_t last_user_ = 0;
    std::unordered_map<std::string, int> host_running_;
    std::size_t pending_ = 0;
};

}  // namespace litchi
