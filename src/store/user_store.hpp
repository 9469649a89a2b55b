// Users, passwords and tokens. Passwords are argon2id hashes (libsodium
// crypto_pwhash_str, interactive limits). A token is 32 random bytes shown
// once as "lt_" + url-safe base64; only its SHA-256 is stored, so a leaked
// database leaks no usable token, and lookup by hash is an index equality
// (no secret-dependent string compare). No method logs a token or password.
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/records.hpp"

namespace litchi {

class Database;

inline constexpr std::string_view kTokenPrefix = "lt_";

struct UserLimits {
    std::size_t min_password_length = 8;
    std::size_t max_password_length = 1024;       // argon2 takes anything; this caps request cost
    std::chrono::hours session_lifetime{24 * 7};  // default expiry for session tokens
};

enum class UserError { none, invalid_name, name_taken, invalid_password, not_found };
std::string_view to_string(UserError error);  // a human sentence for the CLI/API

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
    // Calls sodium_init(). `db` must be migrated (Store does that) and outlive this.
    explicit UserStore(Database& db, UserLimits limits = {});

    // Names: 1..64 chars of [A-Za-z0-9_.-], case-sensitive.
    static bool valid_user_name(std::string_view name);

    CreateUserResult create_user(std::string_view name, std::string_view password);
    UserError set_password(UserId user, std::string_view password);
    std::optional<UserRecord> find_user(std::string_view name);
    std::optional<UserRecord> find_user(UserId id);
    std::int64_t user_count();

    // The user when name and password match. Spends the same argon2 time on
    // an unknown name as on a wrong password (no user enumeration by timing).
    // Runs the slow hash without holding the database lock.
    std::optional<UserRecord> verify_password(std::string_view name, std::string_view password);

    // A new token. API tokens never expire unless `lifetime` is given;
    // session tokens default to UserLimits::session_lifetime.
    IssuedToken create_token(UserId user, TokenKind kind,
                             std::optional<std::chrono::milliseconds> lifetime = std::nullopt);

    // The owner of a token that exists, is not revoked and not expired;
    // nullopt otherwise (also for malformed text). Updates last_used at most
    // once a minute per token, so a request is not a write.
    std::optional<Authenticated> authenticate(std::string_view token);

    // True if it was active and is now revoked.
    bool revoke_token(std::string_view token);
    bool revoke_token(UserId user, TokenId id);

    // Still usable (not revoked, not expired)? For long-lived sockets.
    bool token_active(TokenId id);

    std::vector<TokenRecord> list_tokens(UserId user);

    // SHA-256 of the token text, hex (what the tokens table stores).
    static std::string hash_token(std::string_view token);

  private:
    Database& db_;
    UserLimits limits_;
    const std::string& dummy_hash();

    std::once_flag dummy_hash_once_;
    std::string dummy_hash_;  // verified against for unknown names
};

}  // namespace litchi
