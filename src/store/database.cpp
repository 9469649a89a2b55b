// SQLite connection wrapper: see database.hpp.
#include "store/database.hpp"

#include <sqlite3.h>

#include <string>

namespace litchi {

// --- Statement ---

Statement::Statement(Database& db, sqlite3_stmt* stmt, bool* in_use)
    : db_(&db), stmt_(stmt), in_use_(in_use) {}

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_), stmt_(other.stmt_), in_use_(other.in_use_) {
    other.stmt_ = nullptr;
    other.in_use_ = nullptr;
}

Statement::~Statement() {
    if (!stmt_) return;
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    *in_use_ = false;
}

namespace {
void check_bind(Database& db, int rc) {
    if (rc != SQLITE_OK) db.throw_error(rc, "bind");
}
}  // namespace

Statement& Statement::bind(int index, std::int64_t value) {
    check_bind(*db_, sqlite3_bind_int64(stmt_, index, value));
    return *this;
}

Statement& Statement::bind(int index, double value) {
    check_bind(*db_, sqlite3_bind_double(stmt_, index, value));
    return *this;
}

Statement& Statement::bind(int index, std::string_view text) {
    check_bind(*db_, sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT,
                                         SQLITE_UTF8));
    return *this;
}

Statement& Statement::bind_static(int index, std::string_view text) {
    check_bind(*db_, sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_STATIC,
                                         SQLITE_UTF8));
    return *this;
}

Statement& Statement::bind(int index, std::nullptr_t) {
    check_bind(*db_, sqlite3_bind_null(stmt_, index));
    return *this;
}

bool Statement::step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    // Reset so the error text is the statement's, then report it.
    db_->throw_error(rc, sqlite3_sql(stmt_));
}

void Statement::run() {
    while (step()) {
    }
    sqlite3_reset(stmt_);
}

void Statement::reset() {
    sqlite3_reset(stmt_);
}

bool Statement::is_null(int column) const {
    return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

std::int64_t Statement::column_int64(int column) const {
    return sqlite3_column_int64(stmt_, column);
}

std::string_view Statement::column_text(int column) const {
    const unsigned char* text = sqlite3_column_text(stmt_, column);
    if (!text) return {};
    return {reinterpret_cast<const char*>(text),
            static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column))};
}

// --- Database ---

namespace {

// Before the first connection: SQLite's allocation statistics (which nothing
// here reads) take a process-wide mutex on every malloc and free, a few per
// row inserted; off, inserting a large job's items is ~10% cheaper. Only
// possible before SQLite initialises; if something else got there first the
// call fails harmlessly and the statistics stay on.
void configure_sqlite_once() {
    static const bool configured = [] {
        return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK;
    }();
    (void)configured;
}

}  // namespace

Database::Database(const std::filesystem::path& file, DatabaseOptions options) : file_(file) {
    configure_sqlite_once();
    int flags = SQLITE_OPEN_NOMUTEX;  // we serialise with mutex_
    flags |=
        options.read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    int rc = sqlite3_open_v2(file.c_str(), &db_, flags, nullptr);
    if (rc != SQLITE_OK) {
        std::string message = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
        sqlite3_close_v2(db_);
        db_ = nullptr;
        throw DatabaseError(rc, "cannot open " + file.string() + ": " + message);
    }
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, options.busy_timeout_ms);
    try {
        if (!options.read_only) {
            exec("PRAGMA journal_mode=WAL");
            // Checked: journal_mode silently stays as it was on some filesystems.
            auto mode = prepare("PRAGMA journal_mode");
            if (!mode.step() || mode.column_text(0) != "wal")
                throw DatabaseError(SQLITE_ERROR, file.string() + ": WAL mode not available");
        }
        // NORMAL with WAL: a committed transaction survives a killed process
        // (invariant 2); power loss may drop the last commits, so job
        // acceptance switches to FULL around its commit (set_synchronous_full).
        exec("PRAGMA synchronous=NORMAL");
        exec("PRAGMA foreign_keys=ON");
        exec("PRAGMA temp_store=MEMORY");
    } catch (...) {
        for (auto& [sql, cached] : statements_) sqlite3_finalize(cached.stmt);
        statements_.clear();
        sqlite3_close_v2(db_);
        db_ = nullptr;
        throw;
    }
}

Database::~Database() {
    for (auto& [sql, cached] : statements_) sqlite3_finalize(cached.stmt);
    statements_.clear();
    if (db_) sqlite3_close_v2(db_);
}

void Database::throw_error(int code, std::string_view what) const {
    std::string message(what);
    message += ": ";
    message += db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(code);
    throw DatabaseError(code, message);
}

void Database::exec(std::string_view sql) {
    std::string text(sql);
    char* error = nullptr;
    int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &error);
    if (rc != SQLITE_OK) {
        std::string message = error ? error : sqlite3_errstr(rc);
        sqlite3_free(error);
        throw DatabaseError(rc, message + " (in: " + text.substr(0, 120) + ")");
    }
}

Statement Database::prepare(std::string_view sql) {
    auto it = statements_.find(std::string(sql));
    if (it == statements_.end()) {
        sqlite3_stmt* stmt = nullptr;
        int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
        if (rc != SQLITE_OK) throw_error(rc, "prepare: " + std::string(sql));
        CachedStatement cached{stmt, std::make_unique<bool>(false)};
        it = statements_.emplace(std::string(sql), std::move(cached)).first;
    }
    if (*it->second.in_use)
        throw std::logic_error("statement already in use: " + it->first.substr(0, 120));
    *it->second.in_use = true;
    return Statement(*this, it->second.stmt, it->second.in_use.get());
}

std::int64_t Database::query_int64(std::string_view sql) {
    auto stmt = prepare(sql);
    return stmt.step() ? stmt.column_int64(0) : 0;
}

std::int64_t Database::last_insert_rowid() const {
    return sqlite3_last_insert_rowid(db_);
}

int Database::changes() const {
    return sqlite3_changes(db_);
}

int Database::user_version() {
    return static_cast<int>(query_int64("PRAGMA user_version"));
}

void Database::set_user_version(int version) {
    exec("PRAGMA user_version=" + std::to_string(version));
}

void Database::set_synchronous_full(bool full) {
    exec(full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
}

void Database::defer_checkpoints(bool defer) {
    constexpr int kAutocheckpointPages = 1000;  // SQLite's default
    int rc = sqlite3_wal_autocheckpoint(db_, defer ? 0 : kAutocheckpointPages);
    if (rc != SQLITE_OK) throw_error(rc, "wal_autocheckpoint");
}

// --- Transaction ---

Transaction::Transaction(Database& db) : db_(db) {
    db_.exec("BEGIN IMMEDIATE");
}

Transaction::~Transaction() {
    if (!open_) return;
    // A rollback failure while unwinding cannot be reported; the connection
    // then still has the transaction open and the next BEGIN fails loudly.
    sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
}

void Transaction::commit() {
    db_.exec("COMMIT");
    open_ = false;
}

}  // namespace litchi
