// PostgreSQL for unit tests: each test asks fresh_pg_database() for an empty
// database of its own and gets its libpq URI. The server behind it is, once
// per test process and only if a test asks, a throwaway one started with
// scripts/pg-temp.sh (own folder, free port on 127.0.0.1) and stopped when the
// tests end; or, when LITCHI_TEST_PG holds a server URI (say
// postgresql://postgres@127.0.0.1:5432/postgres, a role that may CREATE
// DATABASE), that server, where the databases made are dropped at the end.
//
// Missing PostgreSQL binaries fail the test with a message naming the fix
// (`scripts/install-deps.sh test`, which `make test` runs); they never skip it.
//
// Linked into the unit tests whose file names contain `_pg_` (tests/CMakeLists.txt).
#pragma once

#include <string>

namespace litchi::testing {

// The URI of a new, empty database (unique name) on the test server. Throws
// std::runtime_error, which fails the calling test, if there is no server.
std::string fresh_pg_database();

// The URI of the test server's own database (`litchi` on a throwaway server),
// starting the server if needed; for tests that administer the server itself.
std::string pg_test_server();

// A throwaway server of one test's own, for tests that restart or crash the
// server (the shared one above may be an outside server, LITCHI_TEST_PG, or
// serve other test processes at once: never disturb it). Always started with
// scripts/pg-temp.sh, whatever the environment says; this process is its
// --owner. Costs about a second to start.
class PrivatePgServer {
  public:
    // Throws std::runtime_error (the script's output) if it cannot start.
    PrivatePgServer();
    ~PrivatePgServer();
    PrivatePgServer(const PrivatePgServer&) = delete;
    PrivatePgServer& operator=(const PrivatePgServer&) = delete;

    // Its `litchi` database.
    const std::string& uri() const { return uri_; }
    // Stops it (fast: clients are disconnected) and starts it again on the
    // same port with the same data; returns once it accepts connections.
    void restart();
    // Crashes it (SIGKILL to every server process); restart() recovers.
    void kill();

  private:
    std::string dir_;
    std::string uri_;
};

}  // namespace litchi::testing
