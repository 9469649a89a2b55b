// SCAFFOLD: replaced by the real implementation on its branch. Do not merge.
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "store/pg_user_store.hpp"

#include <stdexcept>

namespace litchi {
[[noreturn]] [[maybe_unused]] static void unbuilt() {
    throw std::logic_error("PgUserStore: not built yet");
}
CreateUserResult PgUserStore::create_user(std::string_view name, std::string_view password) {
    unbuilt();
}
UserError PgUserStore::set_password(UserId user, std::string_view password) {
    unbuilt();
}
std::optional<UserRecord> PgUserStore::find_user(std::string_view name) {
    unbuilt();
}
std::optional<UserRecord> PgUserStore::find_user(UserId id) {
    unbuilt();
}
std::int64_t PgUserStore::user_count() {
    unbuilt();
}
std::optional<UserRecord> PgUserStore::verify_password(std::string_view name,
                                                       std::string_view password) {
    unbuilt();
}
IssuedToken PgUserStore::create_token(UserId user, TokenKind kind,
                                      std::optional<std::chrono::milliseconds> lifetime) {
    unbuilt();
}
std::optional<Authenticated> PgUserStore::authenticate(std::string_view token) {
    unbuilt();
}
bool PgUserStore::revoke_token(std::string_view token) {
    unbuilt();
}
bool PgUserStore::revoke_token(UserId user, TokenId id) {
    unbuilt();
}
bool PgUserStore::token_active(TokenId id) {
    unbuilt();
}
std::vector<TokenRecord> PgUserStore::list_tokens(UserId user) {
    unbuilt();
}
}  // namespace litchi
namespace litchi {
// Constructs (so a PgStore opens for the job store's tests); every call throws.
PgUserStore::PgUserStore(pg::Pool& pool, UserLimits limits) : pool_(pool), limits_(limits) {}
}  // namespace litchi
