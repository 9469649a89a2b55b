// A small RAII wrapper around one SQLite connection: prepared statements
// cached by their SQL text, bind/step helpers, transactions that roll back
// unless committed, and the connection-wide mutex every store method holds.
//
// One connection, one mutex: SQLite serialises writers anyway, the hot write
// path (a batch of hundreds of results) is one short transaction, and a single
// lock gives observers a total order of commits (see observer.hpp). WAL keeps
// readers in other processes (sqlite3 CLI, tests) from blocking us.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>

struct sqlite3;
struct sqlite3_stmt;

namespace litchi {

// SQLite failures are bugs or start-up problems (disk full, corrupt file,
// another process holding the lock past busy_timeout): they throw.
class DatabaseError : public std::runtime_error {
  public:
    DatabaseError(int code, const std::string& what) : std::runtime_error(what), code_(code) {}
    int code() const { return code_; }

  private:
    int code_;
};

struct DatabaseOptions {
    int busy_timeout_ms = 5000;  // wait this long for another connection's lock
    bool read_only = false;      // open an existing file without writing (tools)
};

class Database;

// A cached prepared statement in use. Bind indexes are 1-based (as SQLite's);
// column indexes are 0-based. Destruction resets it and clears its bindings so
// the cache can hand it out again. Not copyable; at most one user at a time.
class Statement {
  public:
    Statement(Statement&& other) noexcept;
    Statement& operator=(Statement&&) = delete;
    Statement(const Statement&) = delete;
    ~Statement();

    Statement& bind(int index, std::int64_t value);
    Statement& bind(int index, int value) { return bind(index, static_cast<std::int64_t>(value)); }
    Statement& bind(int index, std::uint64_t value) {
        return bind(index, static_cast<std::int64_t>(value));
    }
    Statement& bind(int index, double value);
    Statement& bind(int index, std::string_view text);  // copied (SQLITE_TRANSIENT)
    // Not copied (SQLITE_STATIC): `text` must stay unchanged and alive until the
    // statement is reset or bound again. For hot loops over text that outlives them.
    Statement& bind_static(int index, std::string_view text);
    Statement& bind(int index, const char* text) { return bind(index, std::string_view(text)); }
    Statement& bind(int index, std::nullptr_t);

    // Runs to the next row: true while there is a row to read, false when done.
    bool step();
    // Runs a statement that returns no rows (INSERT/UPDATE/DELETE) to completion.
    void run();
    // Resets so the same bindings can be changed and the statement run again.
    void reset();

    bool is_null(int column) const;
    std::int64_t column_int64(int column) const;
    std::string_view column_text(int column) const;  // valid until the next step/reset

  private:
    friend class Database;
    Statement(Database& db, sqlite3_stmt* stmt, bool* in_use);
    Database* db_;
    sqlite3_stmt* stmt_;
    bool* in_use_;
};

class Transaction;

class Database {
  public:
    // Opens (creating if missing) the file, sets WAL, synchronous=NORMAL,
    // foreign_keys=ON and busy_timeout. Throws DatabaseError on failure.
    explicit Database(const std::filesystem::path& file, DatabaseOptions options = {});
    ~Database();
    Database(const Database&) = delete;
    Database& operator=(const Database&) = delete;

    // Every store method holds this while it touches the connection.
    std::mutex& mutex() { return mutex_; }

    // Runs one or more statements without results (schema, PRAGMAs).
    void exec(std::string_view sql);

    // A cached prepared statement for this SQL text. Throws std::logic_error
    // if the same text is already in use further up the stack.
    Statement prepare(std::string_view sql);

    // Convenience: the first column of the first row as an integer (0 if none).
    std::int64_t query_int64(std::string_view sql);

    std::int64_t last_insert_rowid() const;
    int changes() const;  // rows touched by the last statement

    int user_version();
    void set_user_version(int version);

    // With WAL, synchronous=NORMAL loses no committed transaction when the
    // process is killed (the WAL is in the OS page cache); only a power loss
    // can drop the last few. FULL fsyncs the WAL at every commit. Callers
    // switch to FULL around commits that must survive power loss (job
    // acceptance); not allowed inside a transaction.
    void set_synchronous_full(bool full);

    // After a commit that leaves the WAL over 1,000 pages (SQLite's default),
    // the committing call copies the WAL into the database file and syncs it
    // (a checkpoint). Deferred, the commit leaves that to the next commit
    // after deferral ends; the transaction is durable either way (in the WAL).
    void defer_checkpoints(bool defer);

    const std::filesystem::path& file() const { return file_; }
    sqlite3* handle() { return db_; }

    [[noreturn]] void throw_error(int code, std::string_view what) const;

  private:
    std::filesystem::path file_;
    sqlite3* db_ = nullptr;
    std::mutex mutex_;
    struct CachedStatement {
        sqlite3_stmt* stmt = nullptr;
        std::unique_ptr<bool> in_use;
    };
    std::unordered_map<std::string, CachedStatement> statements_;
};

// BEGIN IMMEDIATE (take the write lock up front, so a reader-turned-writer
// never fails with SQLITE_BUSY halfway) ... COMMIT, or ROLLBACK when
// destroyed without commit() (an exception unwound through it).
class Transaction {
  public:
    explicit Transaction(Database& db);
    ~Transaction();
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    void commit();

  private:
    Database& db_;
    bool open_ = true;
};

}  // namespace litchi
