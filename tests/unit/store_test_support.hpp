// Shared fixtures for the store tests: a fresh data directory per test (a
// real SQLite file, removed afterwards) and a helper that recounts a job's
// items straight from SQL, to check the maintained counters against.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <string>

#include "store/database.hpp"
#include "store/store.hpp"

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

// Test passwords: fast enough with argon2id interactive limits.
inline constexpr const char* kPassword = "correct horse battery";

}  // namespace litchi::testing
