// litchi_queue_bench: the queue alone, through the real store (no network, no
// engine, no blobs). Creates one job of N items, then K threads each claim
// batches (claim_next_items) and apply an outcome for every claimed item
// (apply_outcomes, fenced by the claim's lease), the two calls a node's
// scheduler makes per batch. Reports items/s through claim + fenced completion,
// and the time per call. Used by bench/cluster/run.sh (part ii).
//
//   litchi_queue_bench --db postgresql://...|sqlite:PATH [--items 200000]
//                      [--threads 4] [--batch 256] [--stores N]
//
// --stores: how many Store objects the threads share, round robin. PostgreSQL
// default: one per thread, each with its own node name (K nodes with one
// feeder each, the way a cluster claims); SQLite: one (a single node).
// Prints one JSON line on stdout; progress notes go to stderr.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "store/store.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

[[noreturn]] void usage(const std::string& message) {
    std::cerr
        << "litchi_queue_bench: " << message
        << "\nusage: litchi_queue_bench --db URL|sqlite:PATH [--items N] [--threads K] [--batch B] "
           "[--stores S]\n";
    std::exit(2);
}

long parse_number(std::string_view flag, const char* text, long low, long high) {
    char* end = nullptr;
    long value = std::strtol(text, &end, 10);
    if (end == text || *end != '\0' || value < low || value > high)
        usage(std::string(flag) + " must be a number in " + std::to_string(low) + ".." +
              std::to_string(high));
    return value;
}

// A distinct, plausible sha256 per item (64 hex digits).
std::string fake_sha(litchi::ItemId id) {
    char buffer[65];
    std::snprintf(buffer, sizeof buffer, "%064llx", static_cast<unsigned long long>(id));
    return buffer;
}

struct Totals {
    std::atomic<long> items{0};
    std::atomic<long> fenced{0};
    std::atomic<long> claims{0};
    std::atomic<long> applies{0};
    std::atomic<long long> claim_us{0};
    std::atomic<long long> apply_us{0};
};

}  // namespace

int main(int argc, char** argv) {
    std::string db;
    long items = 200000, threads = 4, batch = 256, stores = 0;
    for (int i = 1; i < argc; ++i) {
        std::string_view flag = argv[i];
        if (i + 1 >= argc) usage(std::string(flag) + " needs a value");
        const char* value = argv[++i];
        if (flag == "--db")
            db = value;
        else if (flag == "--items")
            items = parse_number(flag, value, 1, 100000000);
        else if (flag == "--threads")
            threads = parse_number(flag, value, 1, 256);
        else if (flag == "--batch")
            batch = parse_number(flag, value, 1, 100000);
        else if (flag == "--stores")
            stores = parse_number(flag, value, 1, 256);
        else
            usage("unknown flag " + std::string(flag));
    }
    if (db.empty()) usage("--db is required");
    std::string error;
    auto location = litchi::parse_store_location(db, ".", &error);
    if (!location) usage("--db: " + error);
    bool pg = location->kind == litchi::StoreLocation::Kind::postgresql;
    if (stores == 0) stores = pg ? threads : 1;
    stores = std::min(stores, threads);

    try {
        std::vector<std::unique_ptr<litchi::Store>> opened;
        for (long s = 0; s < stores; ++s) {
            litchi::StoreOptions options;
            options.node = "bench-" + std::to_string(s + 1);
            options.lease = std::chrono::minutes(10);  // nothing expires during a run
            options.recover_on_open = false;
            options.pool_size = static_cast<int>((threads + stores - 1) / stores) + 1;
            opened.push_back(litchi::open_store(*location, options));
        }
        auto& first = *opened.front();
        auto user = first.users().find_user("bench");
        if (!user) {
            auto created = first.users().create_user("bench", "bench-password-1");
            if (!created.user) throw std::runtime_error("cannot create user bench");
            user = created.user;
        }

        litchi::NewJob job;
        job.user = user->id;
        job.name = "queue bench";
        job.items.reserve(static_cast<std::size_t>(items));
        for (long i = 0; i < items; ++i)
            job.items.push_back(
                {job.texts.keep("http://127.0.0.1:9/img/" + std::to_string(i) + ".png"), {}});
        auto create_start = Clock::now();
        auto created = first.jobs().create_job(job);
        double create_s = seconds_since(create_start);
        std::cerr << "created job " << created.id << " (" << items << " items) in " << create_s
                  << " s\n";
        job.items.clear();
        job.items.shrink_to_fit();

        Totals totals;
        std::mutex failure_lock;
        std::string failure;
        auto run_start = Clock::now();
        std::vector<std::thread> workers;
        for (long t = 0; t < threads; ++t) {
            workers.emplace_back([&, t] {
                auto& jobs = opened[static_cast<std::size_t>(t % stores)]->jobs();
                try {
                    std::vector<litchi::ItemOutcome> outcomes;
                    for (;;) {
                        auto start = Clock::now();
                        auto claimed = jobs.claim_next_items(static_cast<std::size_t>(batch));
                        auto claimed_at = Clock::now();
                        totals.claim_us += std::chrono::duration_cast<std::chrono::microseconds>(
                                               claimed_at - start)
                                               .count();
                        ++totals.claims;
                        if (claimed.empty()) {
                            if (!jobs.has_runnable()) return;
                            continue;  // the rest is claimed by other threads
                        }
                        outcomes.clear();
                        for (const auto& item : claimed) {
                            litchi::ItemOutcome outcome;
                            outcome.item = item.item;
                            outcome.lease = item.lease;
                            outcome.http_status = 200;
                            outcome.attempts = 1;
                            outcome.sha256 = fake_sha(item.item);
                            outcome.bytes = 4096;
                            outcome.format = litchi::ImageFormat::png;
                            outcome.width = 64;
                            outcome.height = 48;
                            outcomes.push_back(std::move(outcome));
                        }
                        auto summary = jobs.apply_outcomes(outcomes);
                        totals.apply_us += std::chrono::duration_cast<std::chrono::microseconds>(
                                               Clock::now() - claimed_at)
                                               .count();
                        ++totals.applies;
                        totals.items += static_cast<long>(summary.done);
                        totals.fenced += static_cast<long>(summary.fenced);
                    }
                } catch (const std::exception& e) {
                    std::lock_guard lock(failure_lock);
                    failure = e.what();
                }
            });
        }
        for (auto& worker : workers) worker.join();
        double run_s = seconds_since(run_start);
        if (!failure.empty()) throw std::runtime_error(failure);

        auto final_job = first.jobs().get_job(user->id, created.id);
        long done = final_job ? static_cast<long>(final_job->counts.done) : -1;
        std::printf(
            "{\"backend\":\"%s\",\"items\":%ld,\"threads\":%ld,\"stores\":%ld,\"batch\":%ld,"
            "\"create_s\":%.3f,\"run_s\":%.3f,\"items_per_s\":%.0f,\"done\":%ld,\"fenced\":%ld,"
            "\"claim_ms\":%.2f,\"apply_ms\":%.2f}\n",
            pg ? "postgresql" : "sqlite", items, threads, stores, batch, create_s, run_s,
            static_cast<double>(totals.items) / run_s, done, totals.fenced.load(),
            totals.claims ? totals.claim_us / 1000.0 / static_cast<double>(totals.claims) : 0.0,
            totals.applies ? totals.apply_us / 1000.0 / static_cast<double>(totals.applies) : 0.0);
        if (done != items) {
            std::cerr << "litchi_queue_bench: the job ended with " << done << " done of " << items
                      << "\n";
            return 1;
        }
    } catch (const std::exception& e) {
        std::cerr << "litchi_queue_bench: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
