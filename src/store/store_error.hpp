// The one failure every store backend may raise for a reason outside the
// caller's request: the database cannot be reached right now (PostgreSQL
// restarting, the network between a node and its database down). It is not a
// bug and not bad input: the API answers 503 with a JSON error, the scheduler
// keeps its results and retries, the event follower reconnects with backoff.
// Other failures stay what they were (DatabaseError for SQLite's, and
// std::runtime_error for start-up problems).
#pragma once

#include <stdexcept>
#include <string>

namespace litchi {

class StoreUnavailable : public std::runtime_error {
  public:
    explicit StoreUnavailable(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace litchi
