// The SQLite wrapper and the schema migrations: WAL on, migrations
// idempotent, transactions roll back unless committed, statements reusable.
#include <gtest/gtest.h>

#include "store/database.hpp"
#include "store/sqlite_store.hpp"
#include "store_test_support.hpp"

namespace litchi {
namespace {

using testing::TempDir;

TEST(StoreDatabase, OpensInWalModeWithForeignKeys) {
    TempDir dir;
    Database db(dir.path() / "x.db");
    std::lock_guard lock(db.mutex());
    auto mode = db.prepare("PRAGMA journal_mode");
    ASSERT_TRUE(mode.step());
    EXPECT_EQ(mode.column_text(0), "wal");
    EXPECT_EQ(db.query_int64("PRAGMA foreign_keys"), 1);
    EXPECT_EQ(db.query_int64("PRAGMA synchronous"), 1);  // NORMAL
}

TEST(StoreDatabase, MigrationsAreIdempotent) {
    TempDir dir;
    {
        Database db(dir.path() / "x.db");
        migrate(db);
        EXPECT_EQ(db.user_version(), kSchemaVersion);
        migrate(db);  // a second run changes nothing and does not throw
        EXPECT_EQ(db.user_version(), kSchemaVersion);
        std::lock_guard lock(db.mutex());
        EXPECT_EQ(db.query_int64("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                                 "name IN ('users', 'tokens', 'jobs', 'items')"),
                  4);
    }
    // Reopening through Store migrates again (no-op) and recovers.
    SqliteStore store(dir.path());
    EXPECT_EQ(SqliteStore::database_path(dir.path()), dir.path() / "litchi.db");
    EXPECT_EQ(store.database().user_version(), kSchemaVersion);
}

TEST(StoreDatabase, RefusesNewerSchema) {
    TempDir dir;
    {
        Database db(dir.path() / "litchi.db");
        db.set_user_version(kSchemaVersion + 1);
    }
    EXPECT_THROW(SqliteStore store(dir.path()), std::runtime_error);
}

TEST(StoreDatabase, TransactionRollsBackUnlessCommitted) {
    TempDir dir;
    Database db(dir.path() / "x.db");
    std::lock_guard lock(db.mutex());
    db.exec("CREATE TABLE t (v INTEGER)");
    {
        Transaction txn(db);
        db.prepare("INSERT INTO t VALUES (?)").bind(1, 1).run();
    }  // no commit
    EXPECT_EQ(db.query_int64("SELECT count(*) FROM t"), 0);
    {
        Transaction txn(db);
        db.prepare("INSERT INTO t VALUES (?)").bind(1, 2).run();
        txn.commit();
    }
    EXPECT_EQ(db.query_int64("SELECT count(*) FROM t"), 1);
    try {
        Transaction txn(db);
        db.prepare("INSERT INTO t VALUES (?)").bind(1, 3).run();
        throw std::runtime_error("boom");
    } catch (const std::runtime_error&) {
    }
    EXPECT_EQ(db.query_int64("SELECT sum(v) FROM t"), 2);
}

TEST(StoreDatabase, CachedStatementsAreReusedAndGuarded) {
    TempDir dir;
    Database db(dir.path() / "x.db");
    std::lock_guard lock(db.mutex());
    db.exec("CREATE TABLE t (v INTEGER, s TEXT)");
    for (int i = 0; i < 5; ++i)
        db.prepare("INSERT INTO t VALUES (?, ?)").bind(1, i).bind(2, std::to_string(i)).run();
    auto outer = db.prepare("SELECT v, s FROM t ORDER BY v");
    // The same SQL text while in use would clobber the outer cursor.
    EXPECT_THROW(db.prepare("SELECT v, s FROM t ORDER BY v"), std::logic_error);
    int rows = 0;
    while (outer.step()) {
        EXPECT_EQ(outer.column_int64(0), rows);
        EXPECT_EQ(outer.column_text(1), std::to_string(rows));
        ++rows;
    }
    EXPECT_EQ(rows, 5);
}

TEST(StoreDatabase, SqlErrorsThrowWithContext) {
    TempDir dir;
    Database db(dir.path() / "x.db");
    std::lock_guard lock(db.mutex());
    EXPECT_THROW(db.prepare("SELECT * FROM no_such_table"), DatabaseError);
    EXPECT_THROW(db.exec("NOT SQL"), DatabaseError);
}

TEST(StoreDatabase, UnopenablePathIsAClearError) {
    TempDir dir;
    try {
        Database db(dir.path() / "missing" / "deeper" / "x.db");
        FAIL() << "opened a file in a folder that does not exist";
    } catch (const DatabaseError& e) {
        EXPECT_NE(std::string(e.what()).find("cannot open"), std::string::npos);
    }
}

}  // namespace
}  // namespace litchi
