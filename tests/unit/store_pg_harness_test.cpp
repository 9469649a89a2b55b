// The PostgreSQL test harness itself (pg_test_support.hpp), which the
// PostgreSQL store's tests stand on: every fresh_pg_database() is a distinct,
// empty database, and what one test creates is not seen by another.
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <memory>
#include <string>

#include "pg_test_support.hpp"

namespace litchi {
namespace {

using testing::fresh_pg_database;

class Session {
  public:
    explicit Session(const std::string& uri) : connection_(PQconnectdb(uri.c_str()), &PQfinish) {
        if (PQstatus(connection_.get()) != CONNECTION_OK) {
            ADD_FAILURE() << "connect: " << PQerrorMessage(connection_.get());
        }
    }
    // The first column of the first row, as text ("" for none or NULL).
    std::string value(const std::string& sql) {
        std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(connection_.get(), sql.c_str()),
                                                             &PQclear);
        auto status = PQresultStatus(result.get());
        if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
            ADD_FAILURE() << sql << ": " << PQerrorMessage(connection_.get());
            return "";
        }
        if (PQntuples(result.get()) == 0 || PQgetisnull(result.get(), 0, 0)) return "";
        return PQgetvalue(result.get(), 0, 0);
    }

  private:
    std::unique_ptr<PGconn, decltype(&PQfinish)> connection_;
};

constexpr const char* kUserTables =
    "SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = "
    "c.relnamespace WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', "
    "'information_schema')";

TEST(StorePgHarness, FreshDatabasesAreDistinctEmptyAndIsolated) {
    const std::string first_uri = fresh_pg_database();
    const std::string second_uri = fresh_pg_database();
    ASSERT_NE(first_uri, second_uri);
    ASSERT_EQ(first_uri.rfind("postgresql://", 0), 0u) << first_uri;

    Session first(first_uri);
    Session second(second_uri);
    EXPECT_NE(first.value("SELECT current_database()"), second.value("SELECT current_database()"));
    EXPECT_EQ(first.value(kUserTables), "0");
    EXPECT_EQ(second.value(kUserTables), "0");

    first.value("CREATE TABLE probe (id bigint PRIMARY KEY)");
    first.value("INSERT INTO probe VALUES (1)");
    EXPECT_EQ(first.value("SELECT count(*) FROM probe"), "1");
    EXPECT_EQ(first.value(kUserTables), "1");
    EXPECT_EQ(second.value("SELECT to_regclass('public.probe') IS NULL"), "t");
    EXPECT_EQ(second.value(kUserTables), "0");
}

}  // namespace
}  // namespace litchi
