// libpq, held the way the PostgreSQL store needs it: a connection that
// classifies failures, parameters and results without ceremony, and a small
// pool of blocking connections shared by the server's threads.
//
// Why blocking connections on worker threads and not libpq's pipeline mode on
// the event loop: every store call already runs off the network threads (the
// scheduler's feeder and committer, the API's blocking pool), the SQLite
// backend is synchronous behind the same interface, and the hot paths are
// batched (one claim or one result batch per round trip), so pipelining would
// save little and turn every store method into a callback chain. The pool is
// small (StoreOptions::pool_size) and a call waits for a free connection.
//
// Failures come in two kinds. The database being unreachable (a connection
// that cannot be made or was lost, SQLSTATE class 08, an administrator's
// shutdown 57P01..57P03) throws StoreUnavailable, and the broken connection is
// dropped from the pool so the next call reconnects. Anything else (a bad
// statement, a constraint) is a bug and throws PgError with its SQLSTATE.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "store/store_error.hpp"

typedef struct pg_conn PGconn;
typedef struct pg_result PGresult;

namespace litchi::pg {

class PgError : public std::runtime_error {
  public:
    PgError(std::string sqlstate, const std::string& what)
        : std::runtime_error(what), sqlstate_(std::move(sqlstate)) {}
    const std::string& sqlstate() const { return sqlstate_; }
    // 40001 serialization_failure, 40P01 deadlock_detected: retry the transaction.
    bool retryable() const { return sqlstate_ == "40001" || sqlstate_ == "40P01"; }

  private:
    std::string sqlstate_;
};

// Text-format parameters ($1, $2...), built in order.
class Params {
  public:
    Params& add(std::int64_t value);
    Params& add(int value) { return add(static_cast<std::int64_t>(value)); }
    Params& add(std::uint64_t value);
    Params& add(double value);
    Params& add(bool value);
    Params& add(std::string_view text);
    Params& add(const std::string& text) { return add(std::string_view(text)); }
    Params& add(const char* text) { return add(std::string_view(text)); }
    Params& add_null();
    // An array literal for `= ANY($n::bigint[])` / unnest.
    Params& add_array(const std::vector<std::int64_t>& values);
    // A text[] literal (elements quoted and escaped).
    Params& add_text_array(const std::vector<std::string>& values);
    // A double precision[] literal; nullopt elements are NULL.
    Params& add_float_array(const std::vector<std::optional<double>>& values);

    int size() const { return static_cast<int>(values_.size()); }
    // Pointers for PQexecParams; valid while this object is unchanged.
    std::vector<const char*> pointers() const;

  private:
    std::vector<std::optional<std::string>> values_;
};

// A result; rows and columns are 0-based.
class Result {
  public:
    Result() = default;
    explicit Result(PGresult* result);
    Result(Result&& other) noexcept;
    Result& operator=(Result&& other) noexcept;
    ~Result();

    int rows() const;
    int columns() const;
    bool is_null(int row, int column) const;
    std::string_view text(int row, int column) const;  // "" for NULL
    std::int64_t int64(int row, int column) const;     // 0 for NULL
    double float64(int row, int column) const;
    bool boolean(int row, int column) const;  // 't'
    std::optional<std::int64_t> optional_int64(int row, int column) const;
    // Rows a command changed (UPDATE/DELETE/INSERT without RETURNING).
    std::int64_t affected() const;

  private:
    PGresult* result_ = nullptr;
};

class Connection {
  public:
    // Throws StoreUnavailable when it cannot connect.
    explicit Connection(const std::string& uri);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    Result exec(std::string_view sql);
    Result exec(std::string_view sql, const Params& params);
    // COPY table FROM STDIN, the rows written by `next` a piece at a time in
    // COPY text format (tab-separated, newline-terminated, escaped by
    // copy_escape): it appends rows to its (emptied) argument and returns
    // false once there are no more. Each piece goes to the server while the
    // next is written, so the server parses and inserts while the client
    // still formats.
    void copy_in(std::string_view copy_sql, const std::function<bool(std::string&)>& next);

    // False once a failure showed the connection is unusable.
    bool healthy() const { return healthy_; }
    // For a connection that sat idle: false if the server closed it meanwhile
    // (a restart, a crash, an idle timeout), which shows as something to read
    // on its socket. Cheap: one poll(2) with no wait.
    bool still_open();
    PGconn* raw() { return conn_; }

  private:
    Result check(PGresult* result, std::string_view sql);
    [[noreturn]] void fail_connection(const std::string& what);

    PGconn* conn_ = nullptr;
    bool healthy_ = true;
};

// Escapes one field for COPY text format (backslash, tab, newline, CR).
void copy_escape(std::string& out, std::string_view field);

// A URI with any password replaced by "***", for logs and errors.
std::string redact_uri(std::string_view uri);

class Pool {
  public:
    Pool(std::string uri, int size);
    ~Pool();

    // A connection for the duration of one call; returned to the pool when
    // the holder goes out of scope (dropped instead if it broke).
    class Handle {
      public:
        Handle(Pool& pool, std::unique_ptr<Connection> connection);
        Handle(Handle&&) noexcept = default;
        ~Handle();
        Connection* operator->() { return connection_.get(); }
        Connection& operator*() { return *connection_; }

      private:
        Pool* pool_;
        std::unique_ptr<Connection> connection_;
    };

    // Waits for a free connection (opens one while fewer than `size` exist).
    // Throws StoreUnavailable when connecting fails.
    Handle acquire();

    // Runs `body` inside BEGIN ... COMMIT on one connection and returns what it
    // returns; rolls back when it throws. Retries the whole transaction on a
    // serialization failure or deadlock (a few times); throws StoreUnavailable
    // when the connection breaks (whether the COMMIT happened is then unknown:
    // callers make their writes idempotent or fenced).
    template <class Body>
    auto transaction(Body&& body, std::string_view begin = "BEGIN") {
        for (int attempt = 1;; ++attempt) {
            auto conn = acquire();
            try {
                conn->exec(begin);
                if constexpr (std::is_void_v<decltype(body(*conn))>) {
                    body(*conn);
                    conn->exec("COMMIT");
                    return;
                } else {
                    auto result = body(*conn);
                    conn->exec("COMMIT");
                    return result;
                }
            } catch (const PgError& e) {
                rollback(*conn);
                if (!e.retryable() || attempt >= kMaxAttempts) throw;
            } catch (...) {
                rollback(*conn);
                throw;
            }
        }
    }

    const std::string& uri() const { return uri_; }

  private:
    static constexpr int kMaxAttempts = 5;
    static void rollback(Connection& conn);
    void give_back(std::unique_ptr<Connection> connection);

    std::string uri_;
    int size_;
    std::mutex mutex_;
    std::condition_variable available_;
    std::vector<std::unique_ptr<Connection>> idle_;
    int open_ = 0;  // idle + handed out
};

}  // namespace litchi::pg
