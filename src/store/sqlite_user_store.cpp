// Users, passwords (argon2id) and tokens (random, stored as SHA-256): see user_store.hpp.
#include "store/sqlite_user_store.hpp"

#include <sodium.h>
#include <spdlog/spdlog.h>

#include <mutex>
#include <stdexcept>

#include "crypto/sha256.hpp"
#include "store/database.hpp"
#include "store/user_secrets.hpp"

namespace litchi {
namespace {

using user_secrets::check_password;
using user_secrets::hash_password;
using user_secrets::kLastUsedResolutionMs;
using user_secrets::password_matches;

std::optional<TimeMs> optional_time(const Statement& stmt, int column) {
    if (stmt.is_null(column)) return std::nullopt;
    return stmt.column_int64(column);
}

}  // namespace

std::string_view to_string(UserError error) {
    switch (error) {
        case UserError::none:
            return "ok";
        case UserError::invalid_name:
            return "user names are 1 to 64 characters of letters, digits, '_', '.' and '-'";
        case UserError::name_taken:
            return "a user with that name exists";
        case UserError::invalid_password:
            return "the password is too short or too long";
        case UserError::not_found:
            return "no such user";
    }
    return "error";
}

SqliteUserStore::SqliteUserStore(Database& db, UserLimits limits, std::function<TimeMs()> clock)
    : db_(db), limits_(limits), clock_(clock ? std::move(clock) : [] { return now_ms(); }) {
    if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
}

const std::string& SqliteUserStore::dummy_hash() {
    // A hash to verify against when the name is unknown, so that both paths
    // cost one argon2 run. Its password is random and thrown away. Made on
    // first use: opening the store (every CLI command) should not pay for it.
    std::call_once(dummy_hash_once_, [this] { dummy_hash_ = user_secrets::dummy_password_hash(); });
    return dummy_hash_;
}

bool UserStore::valid_user_name(std::string_view name) {
    if (name.empty() || name.size() > 64) return false;
    for (char c : name) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '-';
        if (!ok) return false;
    }
    return true;
}

CreateUserResult SqliteUserStore::create_user(std::string_view name, std::string_view password) {
    if (!valid_user_name(name)) return {std::nullopt, UserError::invalid_name};
    if (auto error = check_password(password, limits_); error != UserError::none)
        return {std::nullopt, error};
    std::string hash = hash_password(password);  // slow: outside the lock

    std::lock_guard lock(db_.mutex());
    UserRecord user{0, std::string(name), clock_()};
    // The constraint decides, not a check first: another process (a CLI
    // command beside the server) may insert the same name in between.
    auto insert = db_.prepare(
        "INSERT INTO users(name, password_hash, created) VALUES (?, ?, ?) "
        "ON CONFLICT(name) DO NOTHING");
    insert.bind(1, name).bind(2, hash).bind(3, user.created).run();
    if (db_.changes() == 0) return {std::nullopt, UserError::name_taken};
    user.id = db_.last_insert_rowid();
    return {user, UserError::none};
}

UserError SqliteUserStore::set_password(UserId user, std::string_view password) {
    if (auto error = check_password(password, limits_); error != UserError::none) return error;
    std::string hash = hash_password(password);
    std::lock_guard lock(db_.mutex());
    auto update = db_.prepare("UPDATE users SET password_hash = ? WHERE id = ?");
    update.bind(1, hash).bind(2, user).run();
    return db_.changes() == 1 ? UserError::none : UserError::not_found;
}

std::optional<UserRecord> SqliteUserStore::find_user(std::string_view name) {
    std::lock_guard lock(db_.mutex());
    auto stmt = db_.prepare("SELECT id, name, created FROM users WHERE name = ?");
    stmt.bind(1, name);
    if (!stmt.step()) return std::nullopt;
    return UserRecord{stmt.column_int64(0), std::string(stmt.column_text(1)), stmt.column_int64(2)};
}

std::optional<UserRecord> SqliteUserStore::find_user(UserId id) {
    std::lock_guard lock(db_.mutex());
    auto stmt = db_.prepare("SELECT id, name, created FROM users WHERE id = ?");
    stmt.bind(1, id);
    if (!stmt.step()) return std::nullopt;
    return UserRecord{stmt.column_int64(0), std::string(stmt.column_text(1)), stmt.column_int64(2)};
}

std::int64_t SqliteUserStore::user_count() {
    std::lock_guard lock(db_.mutex());
    return db_.query_int64("SELECT count(*) FROM users");
}

std::optional<UserRecord> SqliteUserStore::verify_password(std::string_view name,
                                                           std::string_view password) {
    std::optional<UserRecord> user;
    std::string stored_hash;
    {
        std::lock_guard lock(db_.mutex());
        auto stmt =
            db_.prepare("SELECT id, name, created, password_hash FROM users WHERE name = ?");
        stmt.bind(1, name);
        if (stmt.step()) {
            user = UserRecord{stmt.column_int64(0), std::string(stmt.column_text(1)),
                              stmt.column_int64(2)};
            stored_hash = std::string(stmt.column_text(3));
        }
    }
    // An oversized password still costs one (short) hash, then fails.
    bool too_long = password.size() > limits_.max_password_length;
    bool matches = password_matches(user ? stored_hash : dummy_hash(),
                                    too_long ? std::string_view() : password);
    if (!user || !matches || too_long) return std::nullopt;
    return user;
}

std::string UserStore::hash_token(std::string_view token) {
    return sha256_hex(token);
}

IssuedToken SqliteUserStore::create_token(UserId user, TokenKind kind,
                                          std::optional<std::chrono::milliseconds> lifetime) {
    IssuedToken issued = user_secrets::issue_token(user, kind, lifetime, limits_, clock_());

    std::lock_guard lock(db_.mutex());
    auto insert = db_.prepare(
        "INSERT INTO tokens(user_id, hash, kind, created, expires) VALUES (?, ?, ?, ?, ?)");
    insert.bind(1, user).bind(2, hash_token(issued.token)).bind(3, to_string(kind));
    insert.bind(4, issued.record.created);
    if (issued.record.expires)
        insert.bind(5, *issued.record.expires);
    else
        insert.bind(5, nullptr);
    insert.run();  // a foreign-key failure (unknown user) throws: a caller bug
    issued.record.id = db_.last_insert_rowid();
    return issued;
}

std::optional<Authenticated> SqliteUserStore::authenticate(std::string_view token) {
    // Cheap shape check first: no hashing or query for obvious garbage.
    if (!user_secrets::plausible_token(token)) return std::nullopt;
    std::string hash = hash_token(token);
    TimeMs now = clock_();

    std::lock_guard lock(db_.mutex());
    auto stmt = db_.prepare(
        "SELECT t.id, t.kind, t.expires, t.revoked, t.last_used, u.id, u.name, u.created "
        "FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ?");
    stmt.bind(1, hash);
    if (!stmt.step()) return std::nullopt;
    if (!stmt.is_null(3)) return std::nullopt;  // revoked
    auto expires = optional_time(stmt, 2);
    if (expires && *expires <= now) return std::nullopt;
    Authenticated auth;
    auth.token_id = stmt.column_int64(0);
    auth.kind = stmt.column_text(1) == "session" ? TokenKind::session : TokenKind::api;
    auth.expires = expires;
    auth.user =
        UserRecord{stmt.column_int64(5), std::string(stmt.column_text(6)), stmt.column_int64(7)};
    auto last_used = optional_time(stmt, 4);
    stmt.reset();
    if (!last_used || now - *last_used >= kLastUsedResolutionMs) {
        // Bookkeeping only: a failed write must not turn a valid token away.
        try {
            auto touch = db_.prepare("UPDATE tokens SET last_used = ? WHERE id = ?");
            touch.bind(1, now).bind(2, auth.token_id).run();
        } catch (const std::exception& e) {
            spdlog::warn("store: could not record a token's last use: {}", e.what());
        }
    }
    return auth;
}

bool SqliteUserStore::revoke_token(std::string_view token) {
    std::string hash = hash_token(token);
    std::lock_guard lock(db_.mutex());
    auto stmt = db_.prepare("UPDATE tokens SET revoked = ? WHERE hash = ? AND revoked IS NULL");
    stmt.bind(1, clock_()).bind(2, hash).run();
    return db_.changes() == 1;
}

bool SqliteUserStore::revoke_token(UserId user, TokenId id) {
    std::lock_guard lock(db_.mutex());
    auto stmt = db_.prepare(
        "UPDATE tokens SET revoked = ? WHERE id = ? AND user_id = ? AND revoked IS NULL");
    stmt.bind(1, clock_()).bind(2, id).bind(3, user).run();
    return db_.changes() == 1;
}

bool SqliteUserStore::token_active(TokenId id) {
    std::lock_guard lock(db_.mutex());
    auto stmt = db_.prepare("SELECT expires, revoked FROM tokens WHERE id = ?");
    stmt.bind(1, id);
    if (!stmt.step() || !stmt.is_null(1)) return false;
    return stmt.is_null(0) || stmt.column_int64(0) > clock_();
}

std::vector<TokenRecord> SqliteUserStore::list_tokens(UserId user) {
    std::lock_guard lock(db_.mutex());
    auto stmt = db_.prepare(
        "SELECT id, kind, created, last_used, expires, revoked FROM tokens WHERE user_id = ? "
        "ORDER BY id");
    stmt.bind(1, user);
    std::vector<TokenRecord> tokens;
    while (stmt.step()) {
        TokenRecord record;
        record.id = stmt.column_int64(0);
        record.user = user;
        record.kind = stmt.column_text(1) == "session" ? TokenKind::session : TokenKind::api;
        record.created = stmt.column_int64(2);
        record.last_used = optional_time(stmt, 3);
        record.expires = optional_time(stmt, 4);
        record.revoked = !stmt.is_null(5);
        tokens.push_back(record);
    }
    return tokens;
}

}  // namespace litchi
