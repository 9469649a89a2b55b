// The server's persistent state in one object: opens DATA/litchi.db, runs the
// versioned migrations, recovers from a crash (active items back to queued,
// counters recomputed), and hands out the user and job stores that share the
// one connection.
//
//   Store store(data_dir);                 // DATA/litchi.db, recovers (the server)
//   store.users().create_user("admin", pw);
//   store.jobs().create_job(user, "", urls, allow_private);
//
//   Store tool(data_dir, {.recover_on_open = false});  // any other process
//
// Recovery is only right for the one process that runs downloads on DATA (the
// server, which holds DATA/litchi.lock): `active` items are that process's
// transfers in flight, and anyone else requeueing them would have them
// downloaded twice and counted wrong. Every other opener (user/token commands,
// tools, tests that inspect a live server's file) passes recover_on_open = false.
#pragma once

#include <filesystem>
#include <memory>

#include "store/database.hpp"
#include "store/job_store.hpp"
#include "store/user_store.hpp"

namespace litchi {

inline constexpr int kSchemaVersion = 1;

// Brings the schema to kSchemaVersion (PRAGMA user_version), one transaction
// per step. Idempotent; refuses a file from a newer Litchi (throws).
void migrate(Database& db);

struct StoreOptions {
    DatabaseOptions database{};
    UserLimits users{};
    // Run JobStore::recover() on open. True only for the process that owns the
    // downloads (see the top of this file); false leaves every row as it is.
    bool recover_on_open = true;
};

class Store {
  public:
    // Creates `data_dir` if missing. Throws DatabaseError / std::runtime_error
    // on failure (start-up error).
    explicit Store(const std::filesystem::path& data_dir, StoreOptions options = {});

    static std::filesystem::path database_path(const std::filesystem::path& data_dir) {
        return data_dir / "litchi.db";
    }

    Database& database() { return *db_; }
    UserStore& users() { return *users_; }
    JobStore& jobs() { return *jobs_; }
    // What open repaired; all zero when recover_on_open was false.
    const RecoverySummary& recovery() const { return recovery_; }

  private:
    std::unique_ptr<Database> db_;
    std::unique_ptr<UserStore> users_;
    std::unique_ptr<JobStore> jobs_;
    RecoverySummary recovery_;
};

}  // namespace litchi
