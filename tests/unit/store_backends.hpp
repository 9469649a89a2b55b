// The store's tests run against both backends, parameterised: the same test
// body, once on a fresh SQLite file and once on a fresh PostgreSQL database
// (pg_test_support.hpp starts a throwaway server per test binary). Tests that
// need to look under the interface (recount items, corrupt counters, insert
// users without argon2) use the few raw-SQL helpers here, written in SQL both
// databases accept.
//
//   class StoreJobs : public ::testing::TestWithParam<Backend> { ... StoreBackend db{GetParam()};
//   }; INSTANTIATE_TEST_SUITE_P(Backends, StoreJobs, ::testing::Values(Backend::sqlite,
//                            Backend::postgresql), backend_name);
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "pg_test_support.hpp"
#include "store/database.hpp"
#include "store/pg_connection.hpp"
#include "store/sqlite_store.hpp"
#include "store/store.hpp"
#include "store_test_support.hpp"

namespace litchi::testing {

enum class Backend { sqlite, postgresql };

inline std::string backend_name(const ::testing::TestParamInfo<Backend>& info) {
    return info.param == Backend::sqlite ? "SQLite" : "PostgreSQL";
}

#define LITCHI_BOTH_BACKENDS(Suite)                                                     \
    INSTANTIATE_TEST_SUITE_P(Backends, Suite,                                           \
                             ::testing::Values(::litchi::testing::Backend::sqlite,      \
                                               ::litchi::testing::Backend::postgresql), \
                             ::litchi::testing::backend_name)

// One empty database of the given kind, removed (SQLite) or abandoned to the
// throwaway server (PostgreSQL) after the test.
class StoreBackend {
  public:
    explicit StoreBackend(Backend kind) : kind_(kind) {
        if (kind_ == Backend::postgresql) uri_ = fresh_pg_database();
    }

    Backend kind() const { return kind_; }
    bool is_postgresql() const { return kind_ == Backend::postgresql; }

    StoreLocation location() const {
        StoreLocation location;
        if (kind_ == Backend::postgresql) {
            location.kind = StoreLocation::Kind::postgresql;
            location.uri = uri_;
        } else {
            location.sqlite_file = SqliteStore::database_path(dir_.path());
        }
        return location;
    }

    // Opens (migrating on first use) a store on this database.
    std::unique_ptr<Store> open(StoreOptions options = {}) const {
        return open_store(location(), std::move(options));
    }

    // Raw SQL beside the store (its own connection), for checks under the interface.
    void exec(const std::string& sql) {
        if (kind_ == Backend::postgresql) {
            pg().exec(sql);
        } else {
            std::lock_guard lock(sqlite().mutex());
            sqlite().exec(sql);
        }
    }

    // The first column of the first row as an integer (0 when no row / NULL).
    std::int64_t scalar(const std::string& sql) {
        if (kind_ == Backend::postgresql) {
            auto result = pg().exec(sql);
            return result.rows() ? result.int64(0, 0) : 0;
        }
        std::lock_guard lock(sqlite().mutex());
        auto stmt = sqlite().prepare(sql);
        return stmt.step() ? stmt.column_int64(0) : 0;
    }

    // A user row without argon2 (fast), returning its id.
    UserId insert_user(const std::string& name) {
        exec("INSERT INTO users(name, password_hash, created) VALUES ('" + name + "', 'x', 0)");
        return scalar("SELECT id FROM users WHERE name = '" + name + "'");
    }

    // A job's counts recomputed from its items: the ground truth.
    JobCounts recount(JobId job) {
        JobCounts counts;
        for (auto state : {ItemState::queued, ItemState::active, ItemState::done, ItemState::failed,
                           ItemState::cancelled}) {
            counts.of(state) =
                scalar("SELECT count(*) FROM items WHERE job_id = " + std::to_string(job) +
                       " AND state = '" + std::string(to_string(state)) + "'");
            counts.total += counts.of(state);
        }
        return counts;
    }

  private:
    pg::Connection& pg() {
        if (!pg_) pg_ = std::make_unique<pg::Connection>(uri_);
        return *pg_;
    }
    Database& sqlite() {
        if (!sqlite_) sqlite_ = std::make_unique<Database>(SqliteStore::database_path(dir_.path()));
        return *sqlite_;
    }

    Backend kind_;
    TempDir dir_;
    std::string uri_;
    std::unique_ptr<pg::Connection> pg_;
    std::unique_ptr<Database> sqlite_;
};

}  // namespace litchi::testing
