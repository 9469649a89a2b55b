// Users, passwords and tokens: argon2id verification, token issue/lookup,
// revocation and expiry, and that only a hash of a token is stored.
#include <gtest/gtest.h>

#include <thread>

#include "store/sqlite_store.hpp"
#include "store_test_support.hpp"

namespace litchi {
namespace {

using testing::kPassword;
using testing::TempDir;

class StoreUsers : public ::testing::Test {
  protected:
    TempDir dir;
    SqliteStore store{dir.path()};
    UserStore& users = store.users();
};

TEST_F(StoreUsers, CreatesAndVerifiesUsers) {
    EXPECT_EQ(users.user_count(), 0);
    auto created = users.create_user("alice", kPassword);
    ASSERT_TRUE(created.user) << to_string(created.error);
    EXPECT_EQ(created.user->name, "alice");
    EXPECT_EQ(users.user_count(), 1);

    auto ok = users.verify_password("alice", kPassword);
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->id, created.user->id);
    EXPECT_FALSE(users.verify_password("alice", "wrong password"));
    EXPECT_FALSE(users.verify_password("nobody", kPassword));
    EXPECT_FALSE(users.verify_password("alice", std::string(5000, 'x')));

    EXPECT_EQ(users.find_user("alice")->id, created.user->id);
    EXPECT_EQ(users.find_user(created.user->id)->name, "alice");
    EXPECT_FALSE(users.find_user("ALICE"));
}

TEST_F(StoreUsers, RejectsBadNamesPasswordsAndDuplicates) {
    EXPECT_EQ(users.create_user("", kPassword).error, UserError::invalid_name);
    EXPECT_EQ(users.create_user("has space", kPassword).error, UserError::invalid_name);
    EXPECT_EQ(users.create_user(std::string(65, 'a'), kPassword).error, UserError::invalid_name);
    EXPECT_EQ(users.create_user("bob", "short").error, UserError::invalid_password);
    ASSERT_TRUE(users.create_user("bob", kPassword).user);
    EXPECT_EQ(users.create_user("bob", kPassword).error, UserError::name_taken);
    EXPECT_EQ(users.user_count(), 1);
}

TEST_F(StoreUsers, PasswordIsStoredAsArgon2idHash) {
    auto user = users.create_user("carol", kPassword).user;
    ASSERT_TRUE(user);
    std::lock_guard lock(store.database().mutex());
    auto stmt = store.database().prepare("SELECT password_hash FROM users WHERE id = ?");
    stmt.bind(1, user->id);
    ASSERT_TRUE(stmt.step());
    std::string hash(stmt.column_text(0));
    EXPECT_EQ(hash.rfind("$argon2id$", 0), 0u) << hash;
    EXPECT_EQ(hash.find(kPassword), std::string::npos);
}

TEST_F(StoreUsers, SetPasswordReplacesTheOldOne) {
    auto user = users.create_user("dave", kPassword).user;
    ASSERT_TRUE(user);
    EXPECT_EQ(users.set_password(user->id, "another long password"), UserError::none);
    EXPECT_FALSE(users.verify_password("dave", kPassword));
    EXPECT_TRUE(users.verify_password("dave", "another long password"));
    EXPECT_EQ(users.set_password(9999, "another long password"), UserError::not_found);
}

TEST_F(StoreUsers, TokensAuthenticateAndOnlyTheirHashIsStored) {
    auto user = users.create_user("erin", kPassword).user;
    ASSERT_TRUE(user);
    auto issued = users.create_token(user->id, TokenKind::api);
    EXPECT_EQ(issued.token.rfind("lt_", 0), 0u);
    EXPECT_GE(issued.token.size(), 40u);
    for (char c : issued.token.substr(3))
        EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') << c;
    EXPECT_FALSE(issued.record.expires);

    auto auth = users.authenticate(issued.token);
    ASSERT_TRUE(auth);
    EXPECT_EQ(auth->user.id, user->id);
    EXPECT_EQ(auth->token_id, issued.record.id);
    EXPECT_EQ(auth->kind, TokenKind::api);
    EXPECT_TRUE(users.token_active(issued.record.id));

    // Two tokens are never the same.
    EXPECT_NE(users.create_token(user->id, TokenKind::api).token, issued.token);

    std::lock_guard lock(store.database().mutex());
    auto stmt = store.database().prepare("SELECT hash, last_used FROM tokens WHERE id = ?");
    stmt.bind(1, issued.record.id);
    ASSERT_TRUE(stmt.step());
    EXPECT_EQ(stmt.column_text(0), UserStore::hash_token(issued.token));
    EXPECT_EQ(stmt.column_text(0).find(issued.token), std::string::npos);
    EXPECT_FALSE(stmt.is_null(1)) << "authenticate records last_used";
}

TEST_F(StoreUsers, GarbageAndUnknownTokensAreRejected) {
    EXPECT_FALSE(users.authenticate(""));
    EXPECT_FALSE(users.authenticate("lt_"));
    EXPECT_FALSE(users.authenticate("Bearer something"));
    EXPECT_FALSE(users.authenticate("lt_" + std::string(43, 'A')));
    EXPECT_FALSE(users.authenticate(std::string(100000, 'x')));
    EXPECT_FALSE(users.authenticate(std::string("lt_\0\xff\xfe", 6) + std::string(40, 'a')));
}

TEST_F(StoreUsers, RevokedTokensAreRejected) {
    auto user = users.create_user("frank", kPassword).user;
    ASSERT_TRUE(user);
    auto a = users.create_token(user->id, TokenKind::session);
    auto b = users.create_token(user->id, TokenKind::api);
    EXPECT_TRUE(users.revoke_token(a.token));
    EXPECT_FALSE(users.revoke_token(a.token)) << "second revoke is a no-op";
    EXPECT_FALSE(users.authenticate(a.token));
    EXPECT_FALSE(users.token_active(a.record.id));
    EXPECT_TRUE(users.authenticate(b.token)) << "other tokens unaffected";

    // Revoking by id is scoped to the owner.
    auto other = users.create_user("grace", kPassword).user;
    ASSERT_TRUE(other);
    EXPECT_FALSE(users.revoke_token(other->id, b.record.id));
    EXPECT_TRUE(users.authenticate(b.token));
    EXPECT_TRUE(users.revoke_token(user->id, b.record.id));
    EXPECT_FALSE(users.authenticate(b.token));

    auto listed = users.list_tokens(user->id);
    ASSERT_EQ(listed.size(), 2u);
    EXPECT_TRUE(listed[0].revoked);
    EXPECT_TRUE(listed[1].revoked);
}

TEST_F(StoreUsers, ExpiredTokensAreRejected) {
    auto user = users.create_user("heidi", kPassword).user;
    ASSERT_TRUE(user);
    auto session = users.create_token(user->id, TokenKind::session);
    ASSERT_TRUE(session.record.expires) << "session tokens expire by default";
    EXPECT_GT(*session.record.expires, session.record.created);

    auto brief = users.create_token(user->id, TokenKind::session, std::chrono::milliseconds(50));
    EXPECT_TRUE(users.authenticate(brief.token));
    std::this_thread::sleep_for(std::chrono::milliseconds(80));
    EXPECT_FALSE(users.authenticate(brief.token));
    EXPECT_FALSE(users.token_active(brief.record.id));
    EXPECT_TRUE(users.authenticate(session.token));
}

TEST_F(StoreUsers, TokensSurviveReopen) {
    std::string token;
    auto user = users.create_user("ivan", kPassword).user;
    ASSERT_TRUE(user);
    token = users.create_token(user->id, TokenKind::api).token;
    SqliteStore reopened(dir.path());
    auto auth = reopened.users().authenticate(token);
    ASSERT_TRUE(auth);
    EXPECT_EQ(auth->user.name, "ivan");
}

}  // namespace
}  // namespace litchi
