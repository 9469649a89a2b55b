// libpq connections, parameters, results and the pool (pg_connection.hpp).
#include "store/pg_connection.hpp"

#include <libpq-fe.h>
#include <poll.h>

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace litchi::pg {
namespace {

// SQLSTATEs that mean "the database is not reachable", not "your SQL is wrong".
bool is_unavailable(std::string_view sqlstate) {
    return sqlstate.starts_with("08") ||  // connection exception
           sqlstate == "57P01" ||         // admin_shutdown
           sqlstate == "57P02" ||         // crash_shutdown
           sqlstate == "57P03";           // cannot_connect_now (starting up)
}

std::string one_line(const char* message) {
    std::string text = message ? message : "";
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    for (char& c : text)
        if (c == '\n') c = ' ';
    return text;
}

}  // namespace

// --- Params ---

Params& Params::add(std::int64_t value) {
    values_.emplace_back(std::to_string(value));
    return *this;
}
Params& Params::add(std::uint64_t value) {
    values_.emplace_back(std::to_string(value));
    return *this;
}
Params& Params::add(double value) {
    char buffer[32];
    auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
    values_.emplace_back(std::string(buffer, ec == std::errc() ? end : buffer));
    return *this;
}
Params& Params::add(bool value) {
    values_.emplace_back(value ? "t" : "f");
    return *this;
}
Params& Params::add(std::string_view text) {
    values_.emplace_back(std::string(text));
    return *this;
}
Params& Params::add_null() {
    values_.emplace_back(std::nullopt);
    return *this;
}
Params& Params::add_array(const std::vector<std::int64_t>& values) {
    std::string text = "{";
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (i) text += ',';
        text += std::to_string(values[i]);
    }
    text += '}';
    values_.emplace_back(std::move(text));
    return *this;
}
Params& Params::add_text_array(const std::vector<std::string>& values) {
    std::string text = "{";
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (i) text += ',';
        text += '"';
        for (char c : values[i]) {
            if (c == '"' || c == '\\') text += '\\';
            text += c;
        }
        text += '"';
    }
    text += '}';
    values_.emplace_back(std::move(text));
    return *this;
}
Params& Params::add_float_array(const std::vector<std::optional<double>>& values) {
    std::string text = "{";
    char buffer[32];
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (i) text += ',';
        if (!values[i]) {
            text += "NULL";
            continue;
        }
        auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, *values[i]);
        text.append(buffer, ec == std::errc() ? end : buffer);
    }
    text += '}';
    values_.emplace_back(std::move(text));
    return *this;
}
std::vector<const char*> Params::pointers() const {
    std::vector<const char*> out;
    out.reserve(values_.size());
    for (const auto& v : values_) out.push_back(v ? v->c_str() : nullptr);
    return out;
}

// --- Result ---

Result::Result(PGresult* result) : result_(result) {}
Result::Result(Result&& other) noexcept : result_(other.result_) {
    other.result_ = nullptr;
}
Result& Result::operator=(Result&& other) noexcept {
    if (this != &other) {
        if (result_) PQclear(result_);
        result_ = other.result_;
        other.result_ = nullptr;
    }
    return *this;
}
Result::~Result() {
    if (result_) PQclear(result_);
}
int Result::rows() const {
    return result_ ? PQntuples(result_) : 0;
}
int Result::columns() const {
    return result_ ? PQnfields(result_) : 0;
}
bool Result::is_null(int row, int column) const {
    return PQgetisnull(result_, row, column) != 0;
}
std::string_view Result::text(int row, int column) const {
    return {PQgetvalue(result_, row, column),
            static_cast<std::size_t>(PQgetlength(result_, row, column))};
}
std::int64_t Result::int64(int row, int column) const {
    auto t = text(row, column);
    std::int64_t value = 0;
    std::from_chars(t.data(), t.data() + t.size(), value);
    return value;
}
double Result::float64(int row, int column) const {
    auto t = text(row, column);
    double value = 0;
    std::from_chars(t.data(), t.data() + t.size(), value);
    return value;
}
bool Result::boolean(int row, int column) const {
    auto t = text(row, column);
    return !t.empty() && t[0] == 't';
}
std::optional<std::int64_t> Result::optional_int64(int row, int column) const {
    if (is_null(row, column)) return std::nullopt;
    return int64(row, column);
}
std::int64_t Result::affected() const {
    const char* n = result_ ? PQcmdTuples(result_) : "";
    return n && *n ? std::strtoll(n, nullptr, 10) : 0;
}

// --- Connection ---

Connection::Connection(const std::string& uri) {
    // Defaults that the URI (processed last, so it wins) or libpq's own
    // environment variables may override: a database host that is gone must
    // cost a bounded wait, not the kernel's multi-minute TCP connect and
    // retransmission timeouts, so the node reports 503 and retries instead of
    // hanging a worker thread.
    std::vector<const char*> keys, values;
    auto fallback = [&](const char* key, const char* env, const char* value) {
        if (std::getenv(env) == nullptr) keys.push_back(key), values.push_back(value);
    };
    fallback("connect_timeout", "PGCONNECT_TIMEOUT", "10");
    keys.push_back("keepalives"), values.push_back("1");
    keys.push_back("keepalives_idle"), values.push_back("30");
    keys.push_back("keepalives_interval"), values.push_back("10");
    keys.push_back("keepalives_count"), values.push_back("3");
    keys.push_back("dbname"), values.push_back(uri.c_str());
    keys.push_back(nullptr), values.push_back(nullptr);
    conn_ = PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/1);
    if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
        std::string why = conn_ ? one_line(PQerrorMessage(conn_)) : "out of memory";
        if (conn_) PQfinish(conn_);
        conn_ = nullptr;
        throw StoreUnavailable("cannot connect to PostgreSQL at " + redact_uri(uri) + ": " + why);
    }
    // Notices (e.g. "there is no transaction in progress") are not our log's business.
    PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);
}

Connection::~Connection() {
    if (conn_) PQfinish(conn_);
}

void Connection::fail_connection(const std::string& what) {
    healthy_ = false;
    throw StoreUnavailable("PostgreSQL connection lost: " + what);
}

Result Connection::check(PGresult* raw, std::string_view sql) {
    Result result(raw);
    auto status = raw ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_COPY_IN)
        return result;
    const char* state = raw ? PQresultErrorField(raw, PG_DIAG_SQLSTATE) : nullptr;
    std::string sqlstate = state ? state : "";
    std::string message = one_line(raw ? PQresultErrorMessage(raw) : PQerrorMessage(conn_));
    if (message.empty()) message = one_line(PQerrorMessage(conn_));
    if (PQstatus(conn_) != CONNECTION_OK || is_unavailable(sqlstate)) fail_connection(message);
    std::string head(sql.substr(0, 60));
    throw PgError(sqlstate, message + " (in: " + head + (sql.size() > 60 ? "…" : "") + ")");
}

Result Connection::exec(std::string_view sql) {
    return check(PQexec(conn_, std::string(sql).c_str()), sql);
}

Result Connection::exec(std::string_view sql, const Params& params) {
    auto values = params.pointers();
    return check(PQexecParams(conn_, std::string(sql).c_str(), params.size(), nullptr,
                              values.data(), nullptr, nullptr, 0),
                 sql);
}

void Connection::copy_in(std::string_view copy_sql, const std::function<bool(std::string&)>& next) {
    check(PQexec(conn_, std::string(copy_sql).c_str()), copy_sql);
    std::string piece;
    while (true) {
        piece.clear();
        if (!next(piece)) break;
        if (piece.empty()) continue;
        if (PQputCopyData(conn_, piece.data(), static_cast<int>(piece.size())) != 1)
            fail_connection(one_line(PQerrorMessage(conn_)));
    }
    if (PQputCopyEnd(conn_, nullptr) != 1) fail_connection(one_line(PQerrorMessage(conn_)));
    // The COPY's own result, then the end of the command.
    for (PGresult* r; (r = PQgetResult(conn_)) != nullptr;) check(r, copy_sql);
}

void copy_escape(std::string& out, std::string_view field) {
    // Runs between the characters that need escaping are appended whole
    // (a URL usually has none): one append per field, not one per byte.
    std::size_t start = 0;
    for (std::size_t i = 0; i < field.size(); ++i) {
        const char* escaped = nullptr;
        switch (field[i]) {
            case '\\':
                escaped = "\\\\";
                break;
            case '\t':
                escaped = "\\t";
                break;
            case '\n':
                escaped = "\\n";
                break;
            case '\r':
                escaped = "\\r";
                break;
            default:
                continue;
        }
        out.append(field.data() + start, i - start);
        out += escaped;
        start = i + 1;
    }
    out.append(field.data() + start, field.size() - start);
}

std::string redact_uri(std::string_view uri) {
    // postgresql://user:password@host... → postgresql://user:***@host...
    std::string text(uri);
    auto scheme = text.find("://");
    if (scheme != std::string::npos) {
        auto at = text.find('@', scheme + 3);
        auto colon = text.find(':', scheme + 3);
        if (at != std::string::npos && colon != std::string::npos && colon < at)
            text.replace(colon + 1, at - colon - 1, "***");
    }
    // key=value form or a query parameter: password=...
    for (auto pos = text.find("password="); pos != std::string::npos;
         pos = text.find("password=", pos + 1)) {
        auto start = pos + 9;
        auto end = text.find_first_of(" &", start);
        text.replace(start, (end == std::string::npos ? text.size() : end) - start, "***");
    }
    return text;
}

// --- Pool ---

Pool::Pool(std::string uri, int size) : uri_(std::move(uri)), size_(size < 1 ? 1 : size) {}
Pool::~Pool() = default;

Pool::Handle::Handle(Pool& pool, std::unique_ptr<Connection> connection)
    : pool_(&pool), connection_(std::move(connection)) {}

Pool::Handle::~Handle() {
    if (connection_) pool_->give_back(std::move(connection_));
}

bool Connection::still_open() {
    if (!healthy_ || PQstatus(conn_) != CONNECTION_OK) return false;
    pollfd p{PQsocket(conn_), POLLIN, 0};
    if (p.fd < 0) return false;
    if (::poll(&p, 1, 0) == 0) return true;  // nothing pending: as we left it
    // Something came while it sat idle: the server's goodbye (FATAL "terminating
    // connection", then EOF) or, rarely, a notice. A pooled connection listens
    // to nothing, so either way it is dropped: a new one costs a connect.
    healthy_ = false;
    return false;
}

Pool::Handle Pool::acquire() {
    std::unique_lock lock(mutex_);
    while (true) {
        available_.wait(lock, [&] { return !idle_.empty() || open_ < size_; });
        if (idle_.empty()) break;
        auto connection = std::move(idle_.back());
        idle_.pop_back();
        // A connection the server closed while it sat here (PostgreSQL
        // restarted) would fail the caller's first statement: the request
        // would answer 503 although the database is back. Drop it, take
        // another or open a new one.
        if (connection->still_open()) return Handle(*this, std::move(connection));
        --open_;
    }
    ++open_;
    lock.unlock();
    try {
        return Handle(*this, std::make_unique<Connection>(uri_));
    } catch (...) {
        lock.lock();
        --open_;
        available_.notify_one();
        throw;
    }
}

void Pool::give_back(std::unique_ptr<Connection> connection) {
    std::lock_guard lock(mutex_);
    if (connection->healthy() && PQtransactionStatus(connection->raw()) == PQTRANS_IDLE)
        idle_.push_back(std::move(connection));
    else
        --open_;  // broken, or left mid-transaction: close it, the next caller reconnects
    available_.notify_one();
}

void Pool::rollback(Connection& conn) {
    if (!conn.healthy()) return;
    try {
        conn.exec("ROLLBACK");
    } catch (...) {
        // The connection is marked broken and will be dropped.
    }
}

}  // namespace litchi::pg
