// The shared store: PostgreSQL 15 through libpq, for any number of
// `litchi serve` nodes on one database. It is the queue (claims with
// FOR UPDATE SKIP LOCKED under leases, fenced results), the event log
// (event_log.hpp: per-user seq assigned in the same transaction as the
// change, LISTEN/NOTIFY wake-ups carrying ids only) and the source of truth.
//
// Schema versions live in litchi_meta ('schema_version'); migrations run
// under an advisory lock, so nodes starting together migrate once.
#pragma once

#include <memory>
#include <string>

#include "store/store.hpp"

namespace litchi {

namespace pg {
class Pool;
}

inline constexpr int kPgSchemaVersion = 5;

class PgUserStore;
class PgJobStore;
class PgEventLog;

class PgStore final : public Store {
  public:
    // Connects, migrates, recovers when asked. Throws StoreUnavailable when
    // the database cannot be reached, std::runtime_error for a schema from a
    // newer Litchi.
    PgStore(std::string uri, StoreOptions options = {});
    ~PgStore() override;

    UserStore& users() override;
    JobStore& jobs() override;
    const RecoverySummary& recovery() const override { return recovery_; }
    EventLog* event_log() override;
    StoreHealth health() override;
    std::string describe() const override;

    pg::Pool& pool() { return *pool_; }
    const StoreOptions& options() const { return options_; }

  private:
    std::string uri_;
    StoreOptions options_;
    std::unique_ptr<pg::Pool> pool_;
    std::unique_ptr<PgUserStore> users_;
    std::unique_ptr<PgJobStore> jobs_;
    std::unique_ptr<PgEventLog> log_;
    RecoverySummary recovery_;
};

// Brings the database to kPgSchemaVersion (idempotent, concurrency-safe).
void migrate_pg(pg::Pool& pool);

}  // namespace litchi
