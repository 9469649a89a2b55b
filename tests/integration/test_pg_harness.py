"""Self-test of the PostgreSQL harness (pg_testing.py, scripts/pg-temp.sh) that
the cluster tests stand on: a throwaway server starts, hands out empty
databases psql can use, survives a restart and a crash on the same port with
its data, and leaves nothing behind. Needs PostgreSQL 15, not litchi.
"""

import unittest

from pg_testing import TempPostgres, psql, shared_postgres


class TempPostgresTest(unittest.TestCase):
    def test_fresh_database_restart_and_crash(self):
        with TempPostgres() as pg:
            self.assertTrue(pg.url.startswith("postgresql://postgres@127.0.0.1:"), pg.url)
            self.assertEqual(psql(pg.url, "SELECT current_database()"), "litchi")
            db = pg.fresh_database()
            self.assertNotEqual(db, pg.url)
            self.assertEqual(psql(db, "SELECT 1"), "1")
            psql(db, "CREATE TABLE probe (x int); INSERT INTO probe VALUES (7)")

            port = pg.port
            pg.restart()
            self.assertEqual(pg.port, port)
            self.assertEqual(psql(db, "SELECT 1"), "1")
            self.assertEqual(psql(db, "SELECT x FROM probe"), "7")

            pg.kill()
            with self.assertRaises(RuntimeError):
                psql(db, "SELECT 1")
            pg.restart()
            self.assertEqual(psql(db, "SELECT x FROM probe"), "7")  # recovered from the WAL
            folder = pg.dir
        self.assertFalse(folder.exists())
        pg.stop()  # a second stop is harmless

    def test_shared_server_databases_are_empty_and_isolated(self):
        pg = shared_postgres()
        first, second = pg.fresh_database(), pg.fresh_database()
        self.assertNotEqual(first, second)
        user_tables = "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        self.assertEqual(psql(first, user_tables), "0")
        psql(first, "CREATE TABLE probe (x int)")
        self.assertEqual(psql(first, user_tables), "1")
        self.assertEqual(psql(second, user_tables), "0")


if __name__ == "__main__":
    unittest.main()
