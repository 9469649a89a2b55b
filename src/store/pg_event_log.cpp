// SCAFFOLD: replaced by the real implementation on its branch. Do not merge.
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "store/pg_event_log.hpp"

#include <stdexcept>

#include "store/pg_connection.hpp"

namespace litchi {
[[noreturn]] [[maybe_unused]] static void unbuilt() {
    throw std::logic_error("PgEventLog: not built yet");
}
std::string PgEventLog::epoch() {
    unbuilt();
}
UserLogState PgEventLog::user_state(UserId user, std::size_t recent_limit) {
    unbuilt();
}
std::vector<LoggedEvent> PgEventLog::read_after(UserId user, std::uint64_t after,
                                                std::size_t limit) {
    unbuilt();
}
std::optional<TimeMs> PgEventLog::flush_progress() {
    unbuilt();
}
std::int64_t PgEventLog::prune() {
    unbuilt();
}
LogWakeup PgEventLog::wait_for_entries(std::chrono::milliseconds timeout) {
    unbuilt();
}
void PgEventLog::interrupt_wait() {
    unbuilt();
}
}  // namespace litchi
namespace litchi {
struct PgEventLog::Impl {};
// Constructs (so a PgStore opens for the job store's tests); every call throws.
PgEventLog::PgEventLog(pg::Pool&, PgJobStore&, std::string, const StoreOptions&) {}
PgEventLog::~PgEventLog() = default;
}  // namespace litchi
