// EventLog on PostgreSQL (event_log.hpp): reads of the `events` table,
// LISTEN on a connection of its own, pruning. Entries are written by
// PgJobStore, in the transactions that make the changes.
#pragma once

#include <memory>
#include <string>

#include "store/event_log.hpp"
#include "store/store.hpp"

namespace litchi {

namespace pg {
class Pool;
}
class PgJobStore;

// The channel every entry's NOTIFY goes to; its payload is the user id.
inline constexpr const char* kEventChannel = "litchi_events";
// The channel a pause, cancel or delete of a job with items in flight
// notifies; its payload is the job id. Every node stops its transfers of
// that job (LogWakeup::stopped_jobs).
inline constexpr const char* kStopChannel = "litchi_stops";

class PgEventLog final : public EventLog {
  public:
    PgEventLog(pg::Pool& pool, PgJobStore& jobs, std::string uri, const StoreOptions& options);
    ~PgEventLog() override;

    std::string epoch() override;
    UserLogState user_state(UserId user, std::size_t recent_limit) override;
    std::vector<LoggedEvent> read_after(UserId user, std::uint64_t after,
                                        std::size_t limit) override;
    std::optional<TimeMs> flush_progress() override;
    std::int64_t prune() override;
    LogWakeup wait_for_entries(std::chrono::milliseconds timeout) override;
    void interrupt_wait() override;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace litchi
