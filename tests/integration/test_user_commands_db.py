"""`litchi user add` and `litchi token create` with `--db` (and LITCHI_DB):
against a fresh PostgreSQL database (migrated by the first command; only the
argon2id hash of the password and the SHA-256 of the token are stored; no data
folder is made), against a `sqlite:PATH` file, and with a bad or unreachable
--db (exit status 2 resp. 1, a clear message, never the password).
"""

import hashlib
import os
import re
import unittest

import litchi_testing as lt
from pg_testing import psql, shared_postgres

PASSWORD = "correct horse battery"


def env_without_db():
    # A developer's LITCHI_DB must not redirect these tests.
    env = dict(os.environ)
    env.pop("LITCHI_DB", None)
    return env


def litchi(args, stdin_text=None, env=None, cwd=None):
    full = env_without_db()
    full.update(env or {})
    return lt.LitchiProcess([str(a) for a in args], stdin_text=stdin_text, env=full, cwd=cwd).wait(60)


class UserCommandsOnPostgres(unittest.TestCase):
    def setUp(self):
        self.db = shared_postgres().fresh_database()
        self.cwd = lt.make_temp_dir(self)

    def test_user_add_and_token_create(self):
        added = litchi(["user", "add", "alice", "--db", self.db], stdin_text=PASSWORD + "\n", cwd=self.cwd)
        self.assertEqual(added.returncode, 0, added.describe())
        self.assertEqual(added.stdout.strip(), "created user alice")
        hashed = psql(self.db, "SELECT password_hash FROM users WHERE name = 'alice'")
        self.assertTrue(hashed.startswith("$argon2id$"), hashed)
        self.assertNotIn(PASSWORD, hashed)

        created = litchi(["token", "create", "alice", "--db", self.db], cwd=self.cwd)
        self.assertEqual(created.returncode, 0, created.describe())
        token = created.stdout.strip()
        self.assertRegex(token, r"^lt_[A-Za-z0-9_-]{40,}$")
        self.assertEqual(created.stderr, "")
        digest = hashlib.sha256(token.encode()).hexdigest()
        self.assertEqual(psql(self.db, f"SELECT count(*) FROM tokens WHERE hash = '{digest}' AND kind = 'api'"), "1")
        self.assertEqual(psql(self.db, f"SELECT count(*) FROM tokens WHERE hash LIKE '%{token[3:20]}%'"), "0")

        # The data folder (default `var`, relative) is not touched on PostgreSQL.
        self.assertEqual(list(self.cwd.iterdir()), [])

    def test_litchi_db_environment_variable(self):
        env = {"LITCHI_DB": self.db}
        added = litchi(["user", "add", "bob"], stdin_text=PASSWORD + "\n", env=env, cwd=self.cwd)
        self.assertEqual(added.returncode, 0, added.describe())
        created = litchi(["token", "create", "bob"], env=env, cwd=self.cwd)
        self.assertEqual(created.returncode, 0, created.describe())
        self.assertEqual(psql(self.db, "SELECT count(*) FROM tokens t JOIN users u ON u.id = t.user_id "
                                       "WHERE u.name = 'bob'"), "1")
        # --db wins over LITCHI_DB.
        other = shared_postgres().fresh_database()
        added = litchi(["user", "add", "carol", "--db", other], stdin_text=PASSWORD + "\n", env=env, cwd=self.cwd)
        self.assertEqual(added.returncode, 0, added.describe())
        self.assertEqual(psql(other, "SELECT count(*) FROM users WHERE name = 'carol'"), "1")
        self.assertEqual(psql(self.db, "SELECT count(*) FROM users WHERE name = 'carol'"), "0")

    def test_refusals_exit_2(self):
        self.assertEqual(litchi(["user", "add", "dave", "--db", self.db], stdin_text=PASSWORD + "\n").returncode, 0)
        taken = litchi(["user", "add", "dave", "--db", self.db], stdin_text=PASSWORD + "\n")
        self.assertEqual(taken.returncode, 2, taken.describe())
        self.assertIn("exists", taken.stderr)
        nobody = litchi(["token", "create", "nobody", "--db", self.db])
        self.assertEqual(nobody.returncode, 2, nobody.describe())
        self.assertIn("no user named nobody", nobody.stderr)
        self.assertEqual(nobody.stdout, "")
        # A fresh database with no users: migrated, then "no such user" (not a crash).
        empty = shared_postgres().fresh_database()
        nobody = litchi(["token", "create", "dave", "--db", empty])
        self.assertEqual(nobody.returncode, 2, nobody.describe())


class BadDb(unittest.TestCase):
    def test_bad_db_is_a_usage_error_without_the_password(self):
        for bad in ("mysql://root:hunter2@127.0.0.1/litchi", "hunter2", "sqlite:"):
            for command in (["user", "add", "erin"], ["token", "create", "erin"]):
                with self.subTest(db=bad, command=command[0]):
                    result = litchi(command + ["--db", bad], stdin_text=PASSWORD + "\n")
                    self.assertEqual(result.returncode, 2, result.describe())
                    self.assertIn("--db", result.stderr)
                    self.assertEqual(result.stdout, "")
                    if bad.startswith("mysql"):
                        self.assertNotIn("hunter2", result.stderr)
                        self.assertIn("postgresql://", result.stderr)
        result = litchi(["token", "create", "erin"], env={"LITCHI_DB": "nonsense:"})
        self.assertEqual(result.returncode, 2, result.describe())
        self.assertIn("--db must be", result.stderr)

    def test_unreachable_postgres_exits_1_without_the_password(self):
        # Port 1 on 127.0.0.1: nothing listens, the connection is refused at once.
        db = "postgresql://postgres:hunter2@127.0.0.1:1/litchi"
        for command in (["user", "add", "erin"], ["token", "create", "erin"]):
            with self.subTest(command=command[0]):
                result = litchi(command + ["--db", db], stdin_text=PASSWORD + "\n")
                self.assertEqual(result.returncode, 1, result.describe())
                self.assertIn("cannot connect to PostgreSQL", result.stderr)
                self.assertNotIn("hunter2", result.stderr + result.stdout)

    def test_help_says_what_db_takes(self):
        for command in (["user", "add"], ["token", "create"]):
            result = litchi(command + ["--help"])
            self.assertEqual(result.returncode, 0, result.describe())
            self.assertRegex(result.stdout, r"--db.*sqlite:PATH")
            self.assertIn("postgresql://", result.stdout)
            self.assertIn("LITCHI_DB", result.stdout)


class UserCommandsOnSqliteFile(unittest.TestCase):
    def test_sqlite_path(self):
        tmp = lt.make_temp_dir(self)
        path = tmp / "elsewhere" / "users.db"
        # No database there yet: token create refuses (a mistyped path must not make an empty store).
        missing = litchi(["token", "create", "frank", "--db", f"sqlite:{path}"])
        self.assertEqual(missing.returncode, 2, missing.describe())
        self.assertIn("no database at", missing.stderr)
        path.parent.mkdir()
        added = litchi(["user", "add", "frank", "--db", f"sqlite:{path}"], stdin_text=PASSWORD + "\n", cwd=tmp)
        self.assertEqual(added.returncode, 0, added.describe())
        self.assertTrue(path.is_file())
        created = litchi(["token", "create", "frank", "--db", f"sqlite:{path}"], cwd=tmp)
        self.assertEqual(created.returncode, 0, created.describe())
        self.assertTrue(re.fullmatch(r"lt_[A-Za-z0-9_-]+", created.stdout.strip()), created.describe())
        self.assertFalse((tmp / "var").exists(), "--data is not used when --db names the file")


if __name__ == "__main__":
    unittest.main()
