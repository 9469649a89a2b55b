// UserStore on PostgreSQL (see user_store.hpp for what each call promises;
// the rules are the SQLite store's, shared by both backends' tests).
#pragma once

#include <functional>
#include <mutex>

#include "store/user_store.hpp"

namespace litchi {

namespace pg {
class Pool;
}

class PgUserStore final : public UserStore {
  public:
    // Calls sodium_init(). `pool` must reach a migrated database and outlive
    // this. `clock`: token expiry and last_used (default now_ms).
    PgUserStore(pg::Pool& pool, UserLimits limits = {}, std::function<TimeMs()> clock = {});

    CreateUserResult create_user(std::string_view name, std::string_view password) override;
    UserError set_password(UserId user, std::string_view password) override;
    std::optional<UserRecord> find_user(std::string_view name) override;
    std::optional<UserRecord> find_user(UserId id) override;
    std::int64_t user_count() override;
    std::vector<UserRecord> list_users() override;
    bool delete_user(UserId user) override;
    std::optional<UserRecord> verify_password(std::string_view name,
                                              std::string_view password) override;
    IssuedToken create_token(UserId user, TokenKind kind,
                             std::optional<std::chrono::milliseconds> lifetime,
                             std::string_view name) override;
    std::optional<Authenticated> authenticate(std::string_view token) override;
    std::optional<IssuedToken> exchange_link(std::string_view token) override;
    std::optional<TokenRecord> find_token(TokenId id) override;
    bool revoke_token(std::string_view token) override;
    bool revoke_token(UserId user, TokenId id) override;
    bool token_active(TokenId id) override;
    std::vector<TokenRecord> list_tokens(UserId user) override;

  private:
    const std::string& dummy_hash();

    pg::Pool& pool_;
    UserLimits limits_;
    std::function<TimeMs()> clock_;
    std::once_flag dummy_hash_once_;
    std::string dummy_hash_;  // verified against for unknown names
};

}  // namespace litchi
