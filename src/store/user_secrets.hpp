// The secret-handling rules both user stores share (sqlite_user_store.cpp,
// pg_user_store.cpp), kept in one place so that the backends cannot drift
// apart on what is security-relevant: password limits, argon2id hashing and
// verification, token generation, the cheap shape check a token must pass
// before it is hashed and looked up, and how often last_used is written.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "core/records.hpp"
#include "store/user_store.hpp"

namespace litchi::user_secrets {

// Writing last_used on every request would turn reads into writes.
inline constexpr TimeMs kLastUsedResolutionMs = 60'000;

UserError check_password(std::string_view password, const UserLimits& limits);

// crypto_pwhash_str (argon2id, interactive limits). Slow: never under a lock.
std::string hash_password(std::string_view password);
bool password_matches(const std::string& stored_hash, std::string_view password);

// A hash of a random, discarded password: what verify_password checks an
// unknown name against, so that both paths cost one argon2 run.
std::string dummy_password_hash();

// "lt_" + 32 random bytes in url-safe base64.
std::string new_token();

// A new token for `user` with its record filled in but for the row id (the
// store sets it on insert): created at `now`, and an expiry when `lifetime` is
// given, or the session lifetime for a session token.
IssuedToken issue_token(UserId user, TokenKind kind,
                        std::optional<std::chrono::milliseconds> lifetime, const UserLimits& limits,
                        TimeMs now);

// False for text that cannot be a token (no hashing, no query for it).
bool plausible_token(std::string_view token);

}  // namespace litchi::user_secrets
