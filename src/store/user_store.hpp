// Users, passwords and tokens: the interface every store backend implements
// (SQLite today: sqlite_user_store.hpp). Passwords are argon2id hashes (libsodium
// crypto_pwhash_str, interactive limits). A token is 32 random bytes shown
// once as "lt_" + url-safe base64; only its SHA-256 is stored, so a leaked
// database leaks no usable token, and lookup by hash is an index equality
// (no secret-dependent string compare). No method logs a token or password.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/records.hpp"

namespace litchi {

inline constexpr std::string_view kTokenPrefix = "lt_";

struct UserLimits {
    std::size_t min_password_length = 8;
    std::size_t max_password_length = 1024;       // argon2 takes anything; this caps request cost
    std::chrono::hours session_lifetime{24 * 7};  // default expiry for session tokens
};

enum class UserError { none, invalid_name, name_taken, invalid_password, not_found };
std::string_view to_string(UserError error);  // a human sentence for the CLI/API

// "passwords are 8 to 1024 characters": what a refused password is told.
std::string describe_password_limits(const UserLimits& limits = {});

// Longest name a token may be given (POST /api/tokens).
inline constexpr std::size_t kMaxTokenNameBytes = 100;

struct CreateUserResult {
    std::optional<UserRecord> user;  // set on success
    UserError error = UserError::none;
};

struct IssuedToken {
    std::string token;  // the secret, "lt_..."; show it once, never log it
    TokenRecord record;
};

// Who a valid token belongs to.
struct Authenticated {
    UserRecord user;
    TokenId token_id = 0;
    TokenKind kind = TokenKind::api;
    std::optional<TimeMs> expires;
};

class UserStore {
  public:
    virtual ~UserStore() = default;

    // Names: 1..64 chars of [A-Za-z0-9_.-], case-sensitive.
    static bool valid_user_name(std::string_view name);
    // SHA-256 of the token text, hex (what a store keeps instead of the token).
    static std::string hash_token(std::string_view token);

    virtual CreateUserResult create_user(std::string_view name, std::string_view password) = 0;
    virtual UserError set_password(UserId user, std::string_view password) = 0;
    virtual std::optional<UserRecord> find_user(std::string_view name) = 0;
    virtual std::optional<UserRecord> find_user(UserId id) = 0;
    virtual std::int64_t user_count() = 0;
    // Every user, by id.
    virtual std::vector<UserRecord> list_users() = 0;
    // Removes the user and their tokens (their jobs are the job store's:
    // the caller deletes them first, to release their blobs). False if absent.
    virtual bool delete_user(UserId user) = 0;

    // The user when name and password match. Spends the same argon2 time on
    // an unknown name as on a wrong password (no user enumeration by timing),
    // and never holds a lock while hashing.
    virtual std::optional<UserRecord> verify_password(std::string_view name,
                                                      std::string_view password) = 0;

    // A new token. API tokens never expire unless `lifetime` is given;
    // session tokens default to UserLimits::session_lifetime.
    // Session and link tokens default to UserLimits::session_lifetime.
    virtual IssuedToken create_token(
        UserId user, TokenKind kind,
        std::optional<std::chrono::milliseconds> lifetime = std::nullopt,
        std::string_view name = {}) = 0;

    // The owner of a token that exists, is not revoked and not expired;
    // nullopt otherwise (also for malformed text, and for a link token: it is
    // not a credential, only something to exchange). Updates last_used at
    // most once a minute per token, so a request is not a write.
    virtual std::optional<Authenticated> authenticate(std::string_view token) = 0;

    // A login link (TokenKind::link) that is active: revoked and swapped for
    // a new session token of the same user, in one conditional write, so that
    // of two racing exchanges (two browsers, two nodes) exactly one wins.
    // nullopt for anything else (used, expired, unknown, not a link).
    virtual std::optional<IssuedToken> exchange_link(std::string_view token) = 0;

    // One token's record (for `litchi token revoke ID`), revoked ones too.
    virtual std::optional<TokenRecord> find_token(TokenId id) = 0;

    // True if it was active and is now revoked.
    virtual bool revoke_token(std::string_view token) = 0;
    virtual bool revoke_token(UserId user, TokenId id) = 0;

    // Still usable (not revoked, not expired)? For long-lived sockets.
    virtual bool token_active(TokenId id) = 0;

    virtual std::vector<TokenRecord> list_tokens(UserId user) = 0;
};

}  // namespace litchi
