// The server's persistent state behind one interface: users and tokens
// (user_store.hpp), jobs and items (job_store.hpp), and what opening repaired.
// Two backends implement it: SQLite, the embedded one (sqlite_store.hpp), and
// PostgreSQL (pg_store.hpp), which any number of nodes share and which adds
// a durable event log (event_log.hpp). The rest of Litchi holds a Store&.
//
//   auto store = open_store(parse_store_location("", data_dir));  // DATA/litchi.db
//   store->users().create_user("admin", pw);
//
//   auto tool = open_store(location, tool_store_options());  // any other process
//
// Recovery is only right for the one process that runs downloads on DATA (the
// server, which holds DATA/litchi.lock): `active` items are that process's
// transfers in flight, and anyone else requeueing them would have them
// downloaded twice and counted wrong. Every other opener (user/token commands,
// tools, tests that inspect a live server's file) passes recover_on_open = false.
// On PostgreSQL, recovery only returns the items whose lease ran out (and the
// opener's own node's items, which a restart of that node left behind): other
// nodes' claims are theirs until their lease expires.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "store/event_log.hpp"
#include "store/job_store.hpp"
#include "store/store_error.hpp"
#include "store/user_store.hpp"

namespace litchi {

struct StoreOptions {
    UserLimits users{};
    // Run JobStore::recover() on open. True only for the process that owns the
    // downloads (see the top of this file); false leaves every row as it is.
    bool recover_on_open = true;

    // --- claims (leases) ---
    // The name this process claims items under (`--node`); unique per node.
    std::string node = "local";
    // How long a claim lasts without renewal (`--lease`). A node renews its
    // claims every lease/3; an item whose lease ran out goes back to the queue
    // for any node, and the old holder's late result is refused (fenced).
    std::chrono::milliseconds lease{std::chrono::seconds(30)};
    // Milliseconds since 1970 for every time a store writes or compares (job
    // and item times, leases, event times, token expiry and last_used);
    // injectable for tests. Default: the system clock (nodes need NTP-synced clocks; the
    // lease must be much longer than their skew).
    std::function<TimeMs()> clock;

    // --- the event log (PostgreSQL) ---
    // At most one `progress` entry per job per interval, cluster-wide.
    std::chrono::milliseconds progress_interval{100};
    // Entries older than this are pruned (resume from before it: a snapshot).
    std::chrono::milliseconds event_retention{std::chrono::minutes(10)};
    // Connections to the database this process opens at most (PostgreSQL).
    int pool_size = 8;
};

// Options for a process that only reads or administers the store (user and
// token commands, tools): no recovery (see the top of this file).
inline StoreOptions tool_store_options() {
    StoreOptions options;
    options.recover_on_open = false;
    options.pool_size = 1;
    return options;
}

// Where the store lives: `--db` (or LITCHI_DB).
struct StoreLocation {
    enum class Kind { sqlite, postgresql };
    Kind kind = Kind::sqlite;
    std::filesystem::path sqlite_file;  // sqlite
    std::string uri;  // postgresql: a libpq URI (never logged: it may hold a password)
};

// "" → DATA/litchi.db; "sqlite:PATH" → that file; "postgresql://…" or
// "postgres://…" → PostgreSQL. nullopt with `error` set for anything else.
std::optional<StoreLocation> parse_store_location(std::string_view text,
                                                  const std::filesystem::path& data_dir,
                                                  std::string* error = nullptr);

// Is the database reachable right now? (/healthz: "degraded" when not.)
struct StoreHealth {
    bool ok = true;
    std::string detail;  // why not, for operators (never holds a password)
};

class Store {
  public:
    virtual ~Store() = default;
    virtual UserStore& users() = 0;
    virtual JobStore& jobs() = 0;
    // What open repaired; all zero when recover_on_open was false.
    virtual const RecoverySummary& recovery() const = 0;
    // The shared event log, or nullptr for a store only one process uses
    // (SQLite: events go through the observer, in process).
    virtual EventLog* event_log() { return nullptr; }
    virtual StoreHealth health() { return {}; }
    // A URI or path safe to log (passwords removed).
    virtual std::string describe() const = 0;
};

// Opens (and migrates) the store. Throws DatabaseError / StoreUnavailable /
// std::runtime_error on failure (start-up error).
std::unique_ptr<Store> open_store(const StoreLocation& location, StoreOptions options = {});

}  // namespace litchi
