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

// An unknown kind (a newer Litchi's) counts as the least powerful one.
TokenKind token_kind(std::string_view text) {
    return parse_token_kind(text).value_or(TokenKind::link);
}

// The columns token_from_row reads, in order.
constexpr const char* kTokenColumns =
    "id, user_id, kind, name, created, last_used, expires, revoked";

TokenRecord token_from_row(const Statement& stmt) {
    TokenRecord record;
    record.id = stmt.column_int64(0);
    record.user = stmt.column_int64(1);
    record.kind = token_kind(stmt.column_text(2));
    if (!stmt.is_null(3)) record.name = std::string(stmt.column_text(3));
    record.created = stmt.column_int64(4);
    record.last_used = optional_time(stmt, 5);
    record.expires = optional_time(stmt, 6);
    record.revoked = !stmt.is_null(7);
    return record;
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
            return "the password is too short or too long (passwords are 8 to 1024 characters)";
        case UserError::not_found:
            return "no such user";
    }
    return "error";
}

std::string describe_password_limits(const UserLimits& limits) {
    return "passwords are " + std::to_string(limits.min_password_length) + " to " +
           std::to_string(limits.max_password_length) + " characters";
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

std::vector<UserRecord> SqliteUserStore::list_users() {
    std::lock_guard lock(db_.mutex());
    auto stmt = db_.prepare("SELECT id, name, created FROM users ORDER BY id");
    std::vector<UserRecord> users;
    while (stmt.step())
        users.push_back(UserRecord{stmt.column_int64(0), std::string(stmt.column_text(1)),
                                   stmt.column_int64(2)});
    return users;
}

bool SqliteUserStore::delete_user(UserId user) {
    std::lock_guard lock(db_.mutex());
    // Tokens (and any job left) go with it: ON DELETE CASCADE.
    auto stmt = db_.prepare("DELETE FROM users WHERE id = ?");
    stmt.bind(1, user).run();
    return db_.changes() == 1;
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
                                          std::optional<std::chrono::milliseconds> lifetime,
                                          std::string_view name) {
    IssuedToken issued = user_secrets::issue_token(user, kind, lifetime, limits_, clock_());
    issued.record.name = std::string(name);

    std::lock_guard lock(db_.mutex());
    auto insert = db_.prepare(
        "INSERT INTO tokens(user_id, hash, kind, created, expires, name) VALUES (?, ?, ?, ?, ?, "
        "?)");
    insert.bind(1, user).bind(2, hash_token(issued.token)).bind(3, to_string(kind));
    insert.bind(4, issued.record.created);
    if (issued.record.expires)
        insert.bind(5, *issued.record.expires);
    else
        insert.bind(5, nullptr);
    if (name.empty())
        insert.bind(6, nullptr);
    else
        insert.bind(6, name);
    insert.run();  // a foreign-key failure (unknown user) throws: a caller bug
    issued.record.id = db_.last_insert_rowid();
    return issued;
}

std::optional<IssuedToken> SqliteUserStore::exchange_link(std::string_view token) {
    if (!user_secrets::plausible_token(token)) return std::nullopt;
    std::string hash = hash_token(token);
    TimeMs now = clock_();
    UserId user = 0;
    {
        std::lock_guard lock(db_.mutex());
        // Used up by this write, whoever else asks at the same time.
        auto stmt = db_.prepare(
            "UPDATE tokens SET revoked = ?, last_used = ? WHERE hash = ? AND kind = 'link' "
            "AND revoked IS NULL AND (expires IS NULL OR expires > ?) RETURNING user_id");
        stmt.bind(1, now).bind(2, now).bind(3, hash).bind(4, now);
        if (!stmt.step()) return std::nullopt;
        user = stmt.column_int64(0);
    }
    return create_token(user, TokenKind::session, std::nullopt, {});
}

std::optional<TokenRecord> SqliteUserStore::find_token(TokenId id) {
    std::lock_guard lock(db_.mutex());
    auto stmt = db_.prepare(std::string("SELECT ") + kTokenColumns + " FROM tokens WHERE id = ?");
    stmt.bind(1, id);
    if (!stmt.step()) return std::nullopt;
    return token_from_row(stmt);
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
    auto kind = token_kind(stmt.column_text(1));
    if (kind == TokenKind::link) return std::nullopt;  // exchanged, never presented
    Authenticated auth;
    auth.token_id = stmt.column_int64(0);
    auth.kind = kind;
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
    auto stmt = db_.prepare(std::string("SELECT ") + kTokenColumns +
                            " FROM tokens WHERE user_id = ? ORDER BY id");
    stmt.bind(1, user);
    std::vector<TokenRecord> tokens;
    while (stmt.step()) tokens.push_back(token_from_row(stmt));
    return tokens;
}

}  // namespace litchi
