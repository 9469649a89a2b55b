// Opening the PostgreSQL store (pg_store.hpp).
#include "store/pg_store.hpp"

#include "store/pg_connection.hpp"
#include "store/pg_event_log.hpp"
#include "store/pg_job_store.hpp"
#include "store/pg_user_store.hpp"

namespace litchi {

PgStore::PgStore(std::string uri, StoreOptions options)
    : uri_(std::move(uri)), options_(std::move(options)) {
    if (!options_.clock) options_.clock = [] { return now_ms(); };
    pool_ = std::make_unique<pg::Pool>(uri_, options_.pool_size);
    migrate_pg(*pool_);
    users_ = std::make_unique<PgUserStore>(*pool_, options_.users, options_.clock);
    jobs_ = std::make_unique<PgJobStore>(*pool_, options_);
    log_ = std::make_unique<PgEventLog>(*pool_, *jobs_, uri_, options_);
    if (options_.recover_on_open) recovery_ = jobs_->recover();
}

PgStore::~PgStore() = default;

UserStore& PgStore::users() {
    return *users_;
}
JobStore& PgStore::jobs() {
    return *jobs_;
}
EventLog* PgStore::event_log() {
    return log_.get();
}

StoreHealth PgStore::health() {
    try {
        auto conn = pool_->acquire();
        conn->exec("SELECT 1");
        return {};
    } catch (const StoreUnavailable& e) {
        return {false, e.what()};
    }
}

std::string PgStore::describe() const {
    return pg::redact_uri(uri_);
}

}  // namespace litchi
