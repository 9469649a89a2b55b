// The embedded store: one SQLite file (WAL) in DATA/litchi.db holding users,
// tokens, jobs and items, opened by open_store() (store.hpp). Tests and tools
// that need the SQL itself construct it directly and use database().
#pragma once

#include <filesystem>
#include <memory>

#include "store/database.hpp"
#include "store/sqlite_job_store.hpp"
#include "store/sqlite_user_store.hpp"
#include "store/store.hpp"

namespace litchi {

inline constexpr int kSchemaVersion = 4;

// Brings the schema to kSchemaVersion (PRAGMA user_version), one transaction
// per step. Idempotent; refuses a file from a newer Litchi (throws).
// `up_to` stops at an older version: tests make files as an older Litchi did.
void migrate(Database& db, int up_to = kSchemaVersion);

// A database file named outright (`--db sqlite:PATH`) rather than DATA/litchi.db.
struct SqliteFile {
    std::filesystem::path path;
};

class SqliteStore final : public Store {
  public:
    // Creates `data_dir` if missing, migrates, recovers when asked. Throws
    // DatabaseError / std::runtime_error on failure (start-up error).
    explicit SqliteStore(const std::filesystem::path& data_dir, StoreOptions options = {},
                         DatabaseOptions database = {});
    // The same for a file anywhere (its folder is created if missing).
    explicit SqliteStore(const SqliteFile& file, StoreOptions options = {},
                         DatabaseOptions database = {});
    ~SqliteStore() override;

    static std::filesystem::path database_path(const std::filesystem::path& data_dir) {
        return data_dir / "litchi.db";
    }

    Database& database() { return *db_; }
    UserStore& users() override { return *users_; }
    JobStore& jobs() override { return *jobs_; }
    const RecoverySummary& recovery() const override { return recovery_; }
    std::string describe() const override;

  private:
    std::unique_ptr<Database> db_;
    std::unique_ptr<SqliteUserStore> users_;
    std::unique_ptr<SqliteJobStore> jobs_;
    RecoverySummary recovery_;
};

}  // namespace litchi
