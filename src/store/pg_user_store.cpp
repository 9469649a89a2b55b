// Users, passwords (argon2id) and tokens (random, stored as SHA-256) on
// PostgreSQL: see user_store.hpp for the promises, user_secrets.hpp for the
// rules shared with the SQLite store.
//
// Argon2 runs with no pool connection held: a connection is the scarce thing
// here (StoreOptions::pool_size), and a login must not hold one for the tens
// of milliseconds a hash takes. Every statement is a single one (autocommit);
// uniqueness comes from the constraints (ON CONFLICT), not from a lock.
#include "store/pg_user_store.hpp"

#include <sodium.h>
#include <spdlog/spdlog.h>

#include <stdexcept>

#include "store/pg_connection.hpp"
#include "store/user_secrets.hpp"

namespace litchi {
namespace {

using user_secrets::check_password;
using user_secrets::hash_password;
using user_secrets::kLastUsedResolutionMs;
using user_secrets::password_matches;

UserRecord user_from_row(const pg::Result& r, int row, int c) {
    return UserRecord{r.int64(row, c), std::string(r.text(row, c + 1)), r.int64(row, c + 2)};
}

// An unknown kind (a newer Litchi's) counts as the least powerful one.
TokenKind token_kind(std::string_view text) {
    return parse_token_kind(text).value_or(TokenKind::link);
}

// The columns token_from_row reads, in order.
constexpr const char* kTokenColumns =
    "id, user_id, kind, name, created, last_used, expires, revoked IS NOT NULL";

TokenRecord token_from_row(const pg::Result& r, int i) {
    TokenRecord record;
    record.id = r.int64(i, 0);
    record.user = r.int64(i, 1);
    record.kind = token_kind(r.text(i, 2));
    if (!r.is_null(i, 3)) record.name = std::string(r.text(i, 3));
    record.created = r.int64(i, 4);
    record.last_used = r.optional_int64(i, 5);
    record.expires = r.optional_int64(i, 6);
    record.revoked = r.boolean(i, 7);
    return record;
}

}  // namespace

PgUserStore::PgUserStore(pg::Pool& pool, UserLimits limits, std::function<TimeMs()> clock)
    : pool_(pool), limits_(limits), clock_(clock ? std::move(clock) : [] { return now_ms(); }) {
    if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
}

const std::string& PgUserStore::dummy_hash() {
    // Made on first use: opening the store (every CLI command) should not pay for it.
    std::call_once(dummy_hash_once_, [this] { dummy_hash_ = user_secrets::dummy_password_hash(); });
    return dummy_hash_;
}

CreateUserResult PgUserStore::create_user(std::string_view name, std::string_view password) {
    if (!valid_user_name(name)) return {std::nullopt, UserError::invalid_name};
    if (auto error = check_password(password, limits_); error != UserError::none)
        return {std::nullopt, error};
    std::string hash = hash_password(password);  // slow: before taking a connection

    UserRecord user{0, std::string(name), clock_()};
    auto conn = pool_.acquire();
    // Two nodes creating the same name at once: the constraint decides, one wins.
    auto inserted = conn->exec(
        "INSERT INTO users(name, password_hash, created) VALUES ($1, $2, $3) "
        "ON CONFLICT (name) DO NOTHING RETURNING id",
        pg::Params().add(name).add(hash).add(user.created));
    if (inserted.rows() == 0) return {std::nullopt, UserError::name_taken};
    user.id = inserted.int64(0, 0);
    return {user, UserError::none};
}

UserError PgUserStore::set_password(UserId user, std::string_view password) {
    if (auto error = check_password(password, limits_); error != UserError::none) return error;
    std::string hash = hash_password(password);
    auto conn = pool_.acquire();
    auto updated = conn->exec("UPDATE users SET password_hash = $1 WHERE id = $2",
                              pg::Params().add(hash).add(user));
    return updated.affected() == 1 ? UserError::none : UserError::not_found;
}

std::optional<UserRecord> PgUserStore::find_user(std::string_view name) {
    // No such name can exist; and text parameters end at a NUL byte, so
    // "alice\0x" must not reach the server (it would find alice).
    if (!valid_user_name(name)) return std::nullopt;
    auto conn = pool_.acquire();
    auto r =
        conn->exec("SELECT id, name, created FROM users WHERE name = $1", pg::Params().add(name));
    if (r.rows() == 0) return std::nullopt;
    return user_from_row(r, 0, 0);
}

std::optional<UserRecord> PgUserStore::find_user(UserId id) {
    auto conn = pool_.acquire();
    auto r = conn->exec("SELECT id, name, created FROM users WHERE id = $1", pg::Params().add(id));
    if (r.rows() == 0) return std::nullopt;
    return user_from_row(r, 0, 0);
}

std::int64_t PgUserStore::user_count() {
    auto conn = pool_.acquire();
    return conn->exec("SELECT count(*) FROM users").int64(0, 0);
}

std::vector<UserRecord> PgUserStore::list_users() {
    auto conn = pool_.acquire();
    auto r = conn->exec("SELECT id, name, created FROM users ORDER BY id");
    std::vector<UserRecord> users;
    for (int i = 0; i < r.rows(); ++i) users.push_back(user_from_row(r, i, 0));
    return users;
}

bool PgUserStore::delete_user(UserId user) {
    // Tokens and jobs cascade; items have no foreign key (pg_schema.cpp), so
    // any left by the caller go in the same transaction.
    return pool_.transaction([&](pg::Connection& conn) {
        conn.exec("DELETE FROM items WHERE job_id IN (SELECT id FROM jobs WHERE user_id = $1)",
                  pg::Params().add(user));
        return conn.exec("DELETE FROM users WHERE id = $1", pg::Params().add(user)).affected() == 1;
    });
}

std::optional<UserRecord> PgUserStore::verify_password(std::string_view name,
                                                       std::string_view password) {
    std::optional<UserRecord> user;
    std::string stored_hash;
    if (valid_user_name(name)) {  // see find_user: no NUL or invalid UTF-8 in a query
        auto conn = pool_.acquire();
        auto r = conn->exec("SELECT id, name, created, password_hash FROM users WHERE name = $1",
                            pg::Params().add(name));
        if (r.rows() > 0) {
            user = user_from_row(r, 0, 0);
            stored_hash = std::string(r.text(0, 3));
        }
    }  // the connection goes back before hashing
    // An unknown name costs the same argon2 run as a wrong password; an
    // oversized password still costs one (short) hash, then fails.
    bool too_long = password.size() > limits_.max_password_length;
    bool matches = password_matches(user ? stored_hash : dummy_hash(),
                                    too_long ? std::string_view() : password);
    if (!user || !matches || too_long) return std::nullopt;
    return user;
}

IssuedToken PgUserStore::create_token(UserId user, TokenKind kind,
                                      std::optional<std::chrono::milliseconds> lifetime,
                                      std::string_view name) {
    IssuedToken issued = user_secrets::issue_token(user, kind, lifetime, limits_, clock_());
    issued.record.name = std::string(name);

    pg::Params params;
    params.add(user).add(hash_token(issued.token)).add(to_string(kind)).add(issued.record.created);
    if (issued.record.expires)
        params.add(*issued.record.expires);
    else
        params.add_null();
    if (name.empty())
        params.add_null();
    else
        params.add(name);
    auto conn = pool_.acquire();
    // A foreign-key failure (unknown user) throws PgError: a caller bug.
    auto r = conn->exec(
        "INSERT INTO tokens(user_id, hash, kind, created, expires, name) "
        "VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        params);
    issued.record.id = r.int64(0, 0);
    return issued;
}

std::optional<IssuedToken> PgUserStore::exchange_link(std::string_view token) {
    if (!user_secrets::plausible_token(token)) return std::nullopt;
    std::string hash = hash_token(token);
    TimeMs now = clock_();
    UserId user = 0;
    {
        auto conn = pool_.acquire();
        // One statement: of two nodes exchanging the same link, one updates the row.
        auto r = conn->exec(
            "UPDATE tokens SET revoked = $1, last_used = $1 WHERE hash = $2 AND kind = 'link' "
            "AND revoked IS NULL AND (expires IS NULL OR expires > $1) RETURNING user_id",
            pg::Params().add(now).add(hash));
        if (r.rows() == 0) return std::nullopt;
        user = r.int64(0, 0);
    }
    return create_token(user, TokenKind::session, std::nullopt, {});
}

std::optional<TokenRecord> PgUserStore::find_token(TokenId id) {
    auto conn = pool_.acquire();
    auto r = conn->exec(std::string("SELECT ") + kTokenColumns + " FROM tokens WHERE id = $1",
                        pg::Params().add(id));
    if (r.rows() == 0) return std::nullopt;
    return token_from_row(r, 0);
}

std::optional<Authenticated> PgUserStore::authenticate(std::string_view token) {
    // Cheap shape check first: no hashing or query for obvious garbage (and
    // nothing that is not valid text reaches the server).
    if (!user_secrets::plausible_token(token)) return std::nullopt;
    std::string hash = hash_token(token);
    TimeMs now = clock_();

    auto conn = pool_.acquire();
    auto r = conn->exec(
        "SELECT t.id, t.kind, t.expires, t.revoked IS NOT NULL, t.last_used, u.id, u.name, "
        "u.created FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = $1",
        pg::Params().add(hash));
    if (r.rows() == 0) return std::nullopt;
    if (r.boolean(0, 3)) return std::nullopt;  // revoked
    auto expires = r.optional_int64(0, 2);
    if (expires && *expires <= now) return std::nullopt;
    auto kind = token_kind(r.text(0, 1));
    if (kind == TokenKind::link) return std::nullopt;  // exchanged, never presented
    Authenticated auth;
    auth.token_id = r.int64(0, 0);
    auth.kind = kind;
    auth.expires = expires;
    auth.user = user_from_row(r, 0, 5);
    auto last_used = r.optional_int64(0, 4);
    if (!last_used || now - *last_used >= kLastUsedResolutionMs) {
        // Bookkeeping only: a failed write must not turn a valid token away.
        // The condition repeats the check in SQL, so nodes racing on one
        // token write it once.
        try {
            conn->exec(
                "UPDATE tokens SET last_used = $1 WHERE id = $2 "
                "AND (last_used IS NULL OR last_used <= $1::bigint - $3)",
                pg::Params().add(now).add(auth.token_id).add(kLastUsedResolutionMs));
        } catch (const std::exception& e) {
            spdlog::warn("store: could not record a token's last use: {}", e.what());
        }
    }
    return auth;
}

bool PgUserStore::revoke_token(std::string_view token) {
    std::string hash = hash_token(token);
    auto conn = pool_.acquire();
    auto r = conn->exec("UPDATE tokens SET revoked = $1 WHERE hash = $2 AND revoked IS NULL",
                        pg::Params().add(clock_()).add(hash));
    return r.affected() == 1;
}

bool PgUserStore::revoke_token(UserId user, TokenId id) {
    auto conn = pool_.acquire();
    auto r = conn->exec(
        "UPDATE tokens SET revoked = $1 WHERE id = $2 AND user_id = $3 AND revoked IS NULL",
        pg::Params().add(clock_()).add(id).add(user));
    return r.affected() == 1;
}

bool PgUserStore::token_active(TokenId id) {
    auto conn = pool_.acquire();
    auto r = conn->exec("SELECT expires, revoked IS NOT NULL FROM tokens WHERE id = $1",
                        pg::Params().add(id));
    if (r.rows() == 0 || r.boolean(0, 1)) return false;
    return r.is_null(0, 0) || r.int64(0, 0) > clock_();
}

std::vector<TokenRecord> PgUserStore::list_tokens(UserId user) {
    auto conn = pool_.acquire();
    auto r = conn->exec(
        std::string("SELECT ") + kTokenColumns + " FROM tokens WHERE user_id = $1 ORDER BY id",
        pg::Params().add(user));
    std::vector<TokenRecord> tokens;
    tokens.reserve(static_cast<std::size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i) tokens.push_back(token_from_row(r, i));
    return tokens;
}

}  // namespace litchi
