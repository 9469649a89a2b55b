// Users, passwords and tokens: argon2id verification, token issue/lookup,
// revocation and expiry, that only a hash of a token is stored, and how often
// last_used is written. Every test runs on both backends (store_backends.hpp).
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>

#include "store_backends.hpp"

namespace litchi {
namespace {

using testing::Backend;
using testing::kPassword;
using testing::StoreBackend;

StoreOptions user_test_options(std::shared_ptr<std::atomic<TimeMs>> clock = nullptr) {
    auto options = tool_store_options();
    options.pool_size = 4;
    if (clock) options.clock = [clock] { return clock->load(); };
    return options;
}

class StoreUsers : public ::testing::TestWithParam<Backend> {
  protected:
    // The store's clock: tests move it forward instead of sleeping.
    std::shared_ptr<std::atomic<TimeMs>> clock =
        std::make_shared<std::atomic<TimeMs>>(1'700'000'000'000);
    void advance(TimeMs ms) { *clock += ms; }

    StoreBackend db{GetParam()};
    std::unique_ptr<Store> store = db.open(user_test_options(clock));
    UserStore& users = store->users();
};

LITCHI_BOTH_BACKENDS(StoreUsers);

TEST_P(StoreUsers, CreatesAndVerifiesUsers) {
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

TEST_P(StoreUsers, RejectsBadNamesPasswordsAndDuplicates) {
    EXPECT_EQ(users.create_user("", kPassword).error, UserError::invalid_name);
    EXPECT_EQ(users.create_user("has space", kPassword).error, UserError::invalid_name);
    EXPECT_EQ(users.create_user(std::string(65, 'a'), kPassword).error, UserError::invalid_name);
    EXPECT_EQ(users.create_user("bob", "short").error, UserError::invalid_password);
    ASSERT_TRUE(users.create_user("bob", kPassword).user);
    EXPECT_EQ(users.create_user("bob", kPassword).error, UserError::name_taken);
    EXPECT_EQ(users.user_count(), 1);
}

TEST_P(StoreUsers, PasswordIsStoredAsArgon2idHash) {
    auto user = users.create_user("carol", kPassword).user;
    ASSERT_TRUE(user);
    auto id = std::to_string(user->id);
    EXPECT_EQ(db.scalar("SELECT count(*) FROM users WHERE id = " + id +
                        " AND substr(password_hash, 1, 10) = '$argon2id$'"),
              1);
    EXPECT_EQ(db.scalar("SELECT count(*) FROM users WHERE id = " + id +
                        " AND password_hash LIKE '%" + std::string(kPassword) + "%'"),
              0);
}

TEST_P(StoreUsers, SetPasswordReplacesTheOldOne) {
    auto user = users.create_user("dave", kPassword).user;
    ASSERT_TRUE(user);
    EXPECT_EQ(users.set_password(user->id, "another long password"), UserError::none);
    EXPECT_FALSE(users.verify_password("dave", kPassword));
    EXPECT_TRUE(users.verify_password("dave", "another long password"));
    EXPECT_EQ(users.set_password(9999, "another long password"), UserError::not_found);
}

TEST_P(StoreUsers, TokensAuthenticateAndOnlyTheirHashIsStored) {
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

    auto id = std::to_string(issued.record.id);
    EXPECT_EQ(db.scalar("SELECT count(*) FROM tokens WHERE id = " + id + " AND hash = '" +
                        UserStore::hash_token(issued.token) + "'"),
              1);
    EXPECT_EQ(db.scalar("SELECT count(*) FROM tokens WHERE hash LIKE '%" +
                        issued.token.substr(3, 20) + "%'"),
              0);
    EXPECT_EQ(
        db.scalar("SELECT count(*) FROM tokens WHERE id = " + id + " AND last_used IS NOT NULL"), 1)
        << "authenticate records last_used";
}

TEST_P(StoreUsers, GarbageAndUnknownTokensAreRejected) {
    EXPECT_FALSE(users.authenticate(""));
    EXPECT_FALSE(users.authenticate("lt_"));
    EXPECT_FALSE(users.authenticate("Bearer something"));
    EXPECT_FALSE(users.authenticate("lt_" + std::string(43, 'A')));
    EXPECT_FALSE(users.authenticate(std::string(100000, 'x')));
    EXPECT_FALSE(users.authenticate(std::string("lt_\0\xff\xfe", 6) + std::string(40, 'a')));
}

TEST_P(StoreUsers, RevokedTokensAreRejected) {
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

// The first start's login link: never a credential, exchanged once for a new
// session, then dead; nothing else can be exchanged.
TEST_P(StoreUsers, LoginLinkIsExchangedOnceForANewSession) {
    auto user = users.create_user("admin", kPassword).user;
    ASSERT_TRUE(user);
    auto link = users.create_token(user->id, TokenKind::link);
    EXPECT_TRUE(link.record.expires) << "an unused link expires";
    EXPECT_FALSE(users.authenticate(link.token)) << "a link is no bearer token";

    auto session = users.exchange_link(link.token);
    ASSERT_TRUE(session);
    EXPECT_NE(session->token, link.token);
    EXPECT_EQ(session->record.kind, TokenKind::session);
    EXPECT_EQ(session->record.user, user->id);
    auto auth = users.authenticate(session->token);
    ASSERT_TRUE(auth);
    EXPECT_EQ(auth->kind, TokenKind::session);

    EXPECT_FALSE(users.exchange_link(link.token)) << "used up";
    EXPECT_FALSE(users.exchange_link(session->token)) << "a session is not a link";
    auto api = users.create_token(user->id, TokenKind::api, std::nullopt, "script");
    EXPECT_FALSE(users.exchange_link(api.token));
    EXPECT_TRUE(users.authenticate(api.token)) << "a refused exchange leaves the token alone";
    EXPECT_FALSE(users.exchange_link("lt_garbage"));

    auto expired = users.create_token(user->id, TokenKind::link, std::chrono::milliseconds(1000));
    advance(2000);
    EXPECT_FALSE(users.exchange_link(expired.token));

    auto found = users.find_token(api.record.id);
    ASSERT_TRUE(found);
    EXPECT_EQ(found->name, "script");
    EXPECT_EQ(found->user, user->id);
    auto listed = users.list_tokens(user->id);
    ASSERT_EQ(listed.size(), 4u);  // the link, its session, the API token, the expired link
    EXPECT_EQ(listed[0].kind, TokenKind::link);
    EXPECT_TRUE(listed[0].revoked);
}

TEST_P(StoreUsers, ListsAndDeletesUsers) {
    auto a = users.create_user("amy", kPassword).user;
    auto b = users.create_user("ben", kPassword).user;
    ASSERT_TRUE(a && b);
    auto token = users.create_token(b->id, TokenKind::api);
    auto all = users.list_users();
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(all[0].name, "amy");
    EXPECT_EQ(all[1].name, "ben");
    EXPECT_TRUE(users.delete_user(b->id));
    EXPECT_FALSE(users.delete_user(b->id));
    EXPECT_FALSE(users.authenticate(token.token)) << "tokens go with the user";
    EXPECT_FALSE(users.find_token(token.record.id));
    EXPECT_EQ(users.list_users().size(), 1u);
}

TEST_P(StoreUsers, ExpiredTokensAreRejected) {
    auto user = users.create_user("heidi", kPassword).user;
    ASSERT_TRUE(user);
    auto session = users.create_token(user->id, TokenKind::session);
    ASSERT_TRUE(session.record.expires) << "session tokens expire by default";
    EXPECT_GT(*session.record.expires, session.record.created);

    auto brief = users.create_token(user->id, TokenKind::session, std::chrono::milliseconds(50));
    EXPECT_TRUE(users.authenticate(brief.token));
    advance(49);
    EXPECT_TRUE(users.authenticate(brief.token));
    advance(1);
    EXPECT_FALSE(users.authenticate(brief.token));
    EXPECT_FALSE(users.token_active(brief.record.id));
    EXPECT_TRUE(users.authenticate(session.token));
}

TEST_P(StoreUsers, TokensSurviveReopen) {
    std::string token;
    auto user = users.create_user("ivan", kPassword).user;
    ASSERT_TRUE(user);
    token = users.create_token(user->id, TokenKind::api).token;
    auto reopened = db.open(user_test_options());
    auto auth = reopened->users().authenticate(token);
    ASSERT_TRUE(auth);
    EXPECT_EQ(auth->user.name, "ivan");
}

TEST_P(StoreUsers, LastUsedIsWrittenAtMostOnceAMinute) {
    auto user = users.create_user("judy", kPassword).user;
    ASSERT_TRUE(user);
    auto issued = users.create_token(user->id, TokenKind::api);
    auto id = std::to_string(issued.record.id);
    auto last_used = [&] { return db.scalar("SELECT last_used FROM tokens WHERE id = " + id); };
    const TimeMs first = clock->load();
    ASSERT_TRUE(users.authenticate(issued.token));
    EXPECT_EQ(last_used(), first);

    // Every request within the next minute is no write.
    for (int i = 0; i < 59; ++i) {
        advance(1'000);
        ASSERT_TRUE(users.authenticate(issued.token));
        EXPECT_EQ(last_used(), first) << "after " << i + 1 << " s";
    }
    advance(999);
    ASSERT_TRUE(users.authenticate(issued.token));
    EXPECT_EQ(last_used(), first);

    // A minute after the last write: written again, once.
    advance(1);
    ASSERT_TRUE(users.authenticate(issued.token));
    EXPECT_EQ(last_used(), first + 60'000);
    advance(30'000);
    ASSERT_TRUE(users.authenticate(issued.token));
    EXPECT_EQ(last_used(), first + 60'000);
    auto listed = users.list_tokens(user->id);
    ASSERT_EQ(listed.size(), 1u);
    EXPECT_EQ(listed[0].last_used, last_used());
}

TEST_P(StoreUsers, FailingToRecordLastUseDoesNotFailAuthentication) {
    auto user = users.create_user("kim", kPassword).user;
    ASSERT_TRUE(user);
    auto issued = users.create_token(user->id, TokenKind::api);
    // Every write of last_used now fails inside the database.
    if (db.is_postgresql()) {
        db.exec(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'last_used is read-only'; END $$");
        db.exec(
            "CREATE TRIGGER refuse_last_used BEFORE UPDATE OF last_used ON tokens "
            "FOR EACH ROW EXECUTE FUNCTION refuse()");
    } else {
        db.exec(
            "CREATE TRIGGER refuse_last_used BEFORE UPDATE OF last_used ON tokens "
            "BEGIN SELECT RAISE(ABORT, 'last_used is read-only'); END");
    }
    // Each attempt a minute after the last: every one tries the write.
    for (int i = 0; i < 3; ++i) {
        auto auth = users.authenticate(issued.token);
        ASSERT_TRUE(auth) << "attempt " << i;
        EXPECT_EQ(auth->user.id, user->id);
        advance(61'000);
    }
    EXPECT_EQ(db.scalar("SELECT count(*) FROM tokens WHERE last_used IS NOT NULL"), 0);
    // The store still works afterwards (on PostgreSQL: the pool's connections).
    EXPECT_TRUE(users.token_active(issued.record.id));
    EXPECT_EQ(users.user_count(), 1);
}

TEST_P(StoreUsers, NamesThatCannotExistAreNeverLookedUp) {
    ASSERT_TRUE(users.create_user("alice", kPassword).user);
    // A NUL ends a text parameter on PostgreSQL: "alice\0x" must not find alice.
    std::string with_nul("alice\0x", 7);
    EXPECT_FALSE(users.find_user(with_nul));
    EXPECT_FALSE(users.verify_password(with_nul, kPassword));
    EXPECT_FALSE(users.find_user("\xff\xfe"));
    EXPECT_FALSE(users.verify_password("\xff\xfe", kPassword));
    EXPECT_TRUE(users.verify_password("alice", kPassword));
}

TEST_P(StoreUsers, SameNameFromTwoStoresIsTakenOnce) {
    auto other = db.open(user_test_options());
    std::optional<CreateUserResult> first, second;
    std::thread a([&] { first = users.create_user("lena", kPassword); });
    std::thread b([&] { second = other->users().create_user("lena", kPassword); });
    a.join();
    b.join();
    EXPECT_NE(first->user.has_value(), second->user.has_value());
    EXPECT_EQ((first->user ? second : first)->error, UserError::name_taken);
    EXPECT_EQ(users.user_count(), 1);
}

}  // namespace
}  // namespace litchi
