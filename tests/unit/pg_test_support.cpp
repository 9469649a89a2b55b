// The test server behind pg_test_support.hpp: started lazily by the first
// test that wants a database (so a binary's other tests, and ctest's test
// discovery, never pay for it), stopped by a gtest Environment when the
// tests end. scripts/pg-temp.sh gets this process as --owner, so a binary
// that crashes or is killed on a timeout leaves no server running either.
#include "pg_test_support.hpp"

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#ifndef LITCHI_SOURCE_DIR
#error "LITCHI_SOURCE_DIR must name the source tree (tests/CMakeLists.txt defines it)"
#endif

namespace litchi::testing {
namespace {

std::string shell_quote(const std::string& text) {
    std::string quoted = "'";
    for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return quoted + "'";
}

struct CommandResult {
    int status = -1;
    std::string output;  // stdout and stderr together
};

CommandResult run_command(const std::string& command) {
    CommandResult result;
    FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
    if (pipe == nullptr) return result;
    char buffer[4096];
    while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) result.output += buffer;
    int status = ::pclose(pipe);
    result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return result;
}

std::string last_line(const std::string& text) {
    auto end = text.find_last_not_of("\r\n");
    if (end == std::string::npos) return {};
    auto begin = text.rfind('\n', end);
    return text.substr(begin == std::string::npos ? 0 : begin + 1, end + 1 - (begin + 1));
}

// `uri` with its database (the path) replaced by `database`; a query string
// (?sslmode=...) is kept.
std::string with_database(const std::string& uri, const std::string& database) {
    auto query = uri.find('?');
    std::string base = uri.substr(0, query);
    std::string rest = query == std::string::npos ? "" : uri.substr(query);
    auto authority = base.find("://") + 3;
    auto path = base.find('/', authority);
    return base.substr(0, path) + "/" + database + rest;
}

using Connection = std::unique_ptr<PGconn, decltype(&PQfinish)>;

// Runs one statement on the server; the error names no credentials (libpq's
// messages do not carry the password).
void execute(const std::string& uri, const std::string& sql) {
    Connection connection(PQconnectdb(uri.c_str()), &PQfinish);
    if (PQstatus(connection.get()) != CONNECTION_OK) {
        throw std::runtime_error("cannot connect to the test PostgreSQL server: " +
                                 std::string(PQerrorMessage(connection.get())));
    }
    std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(connection.get(), sql.c_str()),
                                                         &PQclear);
    if (PQresultStatus(result.get()) != PGRES_COMMAND_OK) {
        throw std::runtime_error("test PostgreSQL server: " + sql + ": " +
                                 PQerrorMessage(connection.get()));
    }
}

class PgTestServer {
  public:
    static PgTestServer& instance() {
        static PgTestServer server;
        return server;
    }

    std::string uri() {
        std::lock_guard lock(mutex_);
        return started_uri();
    }

    std::string fresh_database() {
        std::lock_guard lock(mutex_);
        const std::string server = started_uri();
        // pid + random: unique even among processes sharing one LITCHI_TEST_PG server.
        std::string name = "litchi_test_" + std::to_string(::getpid()) + "_" +
                           std::to_string(++counter_) + "_" + std::to_string(random_());
        execute(server, "CREATE DATABASE " + name);
        created_.push_back(name);
        return with_database(server, name);
    }

    // At the end of the tests: stop our own server (and its folder goes), or
    // drop what was created on a server we were given.
    void shutdown() {
        std::lock_guard lock(mutex_);
        if (!dir_.empty()) {
            auto stopped =
                run_command("bash " + shell_quote(script()) + " stop " + shell_quote(dir_));
            if (stopped.status != 0) std::fprintf(stderr, "%s", stopped.output.c_str());
            dir_.clear();
        } else if (!uri_.empty()) {
            for (const auto& name : created_) {
                try {
                    execute(uri_, "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
                } catch (const std::exception& error) {
                    std::fprintf(stderr, "%s\n", error.what());
                }
            }
        }
        created_.clear();
        uri_.clear();
    }

  private:
    static std::string script() { return std::string(LITCHI_SOURCE_DIR) + "/scripts/pg-temp.sh"; }

    std::string started_uri() {
        if (!uri_.empty()) return uri_;
        if (!error_.empty()) throw std::runtime_error(error_);  // tried once: fail fast
        std::string given_uri;
        if (const char* given = std::getenv("LITCHI_TEST_PG"); given != nullptr) given_uri = given;
        // ctest starts one server for the whole run (tests/CMakeLists.txt,
        // fixture pg_server) and names the file holding its URI.
        if (const char* file = std::getenv("LITCHI_TEST_PG_FILE");
            given_uri.empty() && file != nullptr && *file != '\0') {
            std::ifstream in(file);
            std::getline(in, given_uri);
        }
        if (!given_uri.empty()) {
            std::string uri = given_uri;
            if (uri.rfind("postgresql://", 0) != 0 && uri.rfind("postgres://", 0) != 0) {
                error_ = "LITCHI_TEST_PG must be a postgresql:// URI";
                throw std::runtime_error(error_);
            }
            return uri_ = uri;
        }
        // Short (a unix socket path lives in it) and unique per process.
        auto dir = std::filesystem::path("/tmp") /
                   ("litchi-pg-" + std::to_string(::getpid()) + "-" + std::to_string(random_()));
        auto started = run_command("bash " + shell_quote(script()) + " start " + shell_quote(dir) +
                                   " --owner " + std::to_string(::getpid()));
        std::string uri = last_line(started.output);
        if (started.status != 0 || uri.rfind("postgresql://", 0) != 0) {
            error_ =
                "could not start a throwaway PostgreSQL server for the tests (scripts/pg-temp.sh "
                "start; set LITCHI_TEST_PG=<server URI> to use an existing server instead):\n" +
                started.output;
            throw std::runtime_error(error_);
        }
        dir_ = dir.string();
        return uri_ = uri;
    }

    std::mutex mutex_;
    std::string uri_;    // the server's own database; empty until started
    std::string error_;  // why starting failed, once it has
    std::string dir_;    // our throwaway server's folder; empty for LITCHI_TEST_PG
    std::vector<std::string> created_;
    unsigned counter_ = 0;
    std::mt19937_64 random_{std::random_device{}()};
};

class PgTestEnvironment : public ::testing::Environment {
  public:
    void TearDown() override { PgTestServer::instance().shutdown(); }
};

// gtest owns and deletes the environment.
[[maybe_unused]] const ::testing::Environment* const registered =
    ::testing::AddGlobalTestEnvironment(new PgTestEnvironment);

}  // namespace

std::string fresh_pg_database() {
    return PgTestServer::instance().fresh_database();
}

std::string pg_test_server() {
    return PgTestServer::instance().uri();
}

namespace {

std::string pg_temp(const std::string& command, const std::string& dir,
                    const std::string& more = "") {
    auto script = std::string(LITCHI_SOURCE_DIR) + "/scripts/pg-temp.sh";
    auto done =
        run_command("bash " + shell_quote(script) + " " + command + " " + shell_quote(dir) + more);
    if (done.status != 0)
        throw std::runtime_error("scripts/pg-temp.sh " + command + " " + dir + " failed:\n" +
                                 done.output);
    return last_line(done.output);
}

}  // namespace

PrivatePgServer::PrivatePgServer() {
    static std::mt19937_64 random{std::random_device{}()};
    static std::mutex random_mutex;
    std::uint64_t suffix;
    {
        std::lock_guard lock(random_mutex);
        suffix = random();
    }
    dir_ = (std::filesystem::path("/tmp") /
            ("litchi-pgp-" + std::to_string(::getpid()) + "-" + std::to_string(suffix)))
               .string();
    uri_ = pg_temp("start", dir_, " --owner " + std::to_string(::getpid()));
    if (uri_.rfind("postgresql://", 0) != 0)
        throw std::runtime_error("scripts/pg-temp.sh start printed no URI: " + uri_);
}

PrivatePgServer::~PrivatePgServer() {
    try {
        pg_temp("stop", dir_);
    } catch (const std::exception& error) {
        std::fprintf(stderr, "%s\n", error.what());
    }
}

void PrivatePgServer::restart() {
    uri_ = pg_temp("restart", dir_);
}

void PrivatePgServer::kill() {
    pg_temp("kill", dir_);
}

}  // namespace litchi::testing
