// The server's persistent state behind one interface: users and tokens
// (user_store.hpp), jobs and items (job_store.hpp), and what opening repaired.
// A backend implements the three; SQLite is the embedded one
// (sqlite_store.hpp), and the rest of Litchi holds a Store&.
//
//   auto store = open_store(data_dir);     // DATA/litchi.db, recovers (the server)
//   store->users().create_user("admin", pw);
//
//   auto tool = open_store(data_dir, {.recover_on_open = false});  // any other process
//
// Recovery is only right for the one process that runs downloads on DATA (the
// server, which holds DATA/litchi.lock): `active` items are that process's
// transfers in flight, and anyone else requeueing them would have them
// downloaded twice and counted wrong. Every other opener (user/token commands,
// tools, tests that inspect a live server's file) passes recover_on_open = false.
#pragma once

#include <filesystem>
#include <memory>

#include "store/job_store.hpp"
#include "store/user_store.hpp"

namespace litchi {

struct StoreOptions {
    UserLimits users{};
    // Run JobStore::recover() on open. True only for the process that owns the
    // downloads (see the top of this file); false leaves every row as it is.
    bool recover_on_open = true;
};

class Store {
  public:
    virtual ~Store() = default;
    virtual UserStore& users() = 0;
    virtual JobStore& jobs() = 0;
    // What open repaired; all zero when recover_on_open was false.
    virtual const RecoverySummary& recovery() const = 0;
};

// The embedded store in `data_dir` (created if missing): DATA/litchi.db.
// Throws DatabaseError / std::runtime_error on failure (start-up error).
std::unique_ptr<Store> open_store(const std::filesystem::path& data_dir, StoreOptions options = {});

}  // namespace litchi
