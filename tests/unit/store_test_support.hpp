// Shared fixtures for the store and jobs tests: a fresh data directory per
// test (a real SQLite file, removed afterwards), a helper that recounts a
// job's items straight from SQL, to check the maintained counters against,
// and builders for new jobs.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "store/database.hpp"
#include "store/sqlite_store.hpp"

namespace litchi::testing {

class TempDir {
  public:
    TempDir() {
        std::random_device random;
        path_ = std::filesystem::temp_directory_path() /
                ("litchi-store-test-" + std::to_string(random()) + std::to_string(random()));
        std::filesystem::create_directories(path_);
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    const std::filesystem::path& path() const { return path_; }

  private:
    std::filesystem::path path_;
};

// Counts recomputed from the items table, the ground truth.
inline JobCounts recount(Database& db, JobId job) {
    std::lock_guard lock(db.mutex());
    JobCounts counts;
    auto stmt = db.prepare("SELECT state, count(*) FROM items WHERE job_id = ? GROUP BY state");
    stmt.bind(1, job);
    while (stmt.step()) {
        auto state = parse_item_state(stmt.column_text(0));
        EXPECT_TRUE(state.has_value());
        if (!state) continue;
        counts.of(*state) = stmt.column_int64(1);
        counts.total += stmt.column_int64(1);
    }
    return counts;
}

inline std::vector<std::string> numbered_urls(int n,
                                              std::string_view prefix = "http://example.com/") {
    std::vector<std::string> urls;
    urls.reserve(n);
    for (int i = 0; i < n; ++i) urls.push_back(std::string(prefix) + std::to_string(i) + ".jpg");
    return urls;
}

// A job whose every line was admitted (the store's tests; admission itself is
// tested in jobs_admission_test).
inline NewJob new_job(UserId user, std::string name, const std::vector<std::string>& urls) {
    NewJob job{user, std::move(name), {}};
    for (const auto& url : urls) job.items.push_back({job.texts.keep(url), FailureReason::none});
    return job;
}

// A successful download of a claimed item, under the claim's lease, with a
// sha256 made from its id (distinct per item).
inline ItemOutcome done_outcome(const ClaimedItem& item, ImageFormat format = ImageFormat::png) {
    ItemOutcome r;
    r.item = item.item;
    r.lease = item.lease;
    r.http_status = 200;
    r.attempts = 1;
    char sha[65];
    std::snprintf(sha, sizeof sha, "%064llx", static_cast<unsigned long long>(item.item));
    r.sha256 = sha;
    r.bytes = 100;
    r.format = format;
    r.width = r.height = 1;
    return r;
}

inline std::vector<ItemOutcome> done_outcomes(const std::vector<ClaimedItem>& items,
                                              ImageFormat format = ImageFormat::png) {
    std::vector<ItemOutcome> out;
    for (const auto& item : items) out.push_back(done_outcome(item, format));
    return out;
}

// Test passwords: fast enough with argon2id interactive limits.
inline constexpr const char* kPassword = "correct horse battery";

}  // namespace litchi::testing
