"""User and token management on the command line, on a SQLite data folder and
on a PostgreSQL database (--db): `user list`, `user passwd NAME` (password on
stdin), `user delete NAME` (with their tokens, jobs and the images no other job
uses), `token list NAME` (ids, kinds, times; never a token), `token revoke ID`;
bad input exits 2 with a message. Also the command-line errors every command
shares: an unknown subcommand is named with the nearest one suggested.
"""

import os
import re
import unittest

import litchi_testing as lt
from pg_testing import shared_postgres
from test_server import LitchiServer, assert_error


def env_without_db():
    env = dict(os.environ)
    env.pop("LITCHI_DB", None)
    return env


def litchi(args, stdin_text=None):
    return lt.LitchiProcess([str(a) for a in args], stdin_text=stdin_text, env=env_without_db()).wait(60)


class UserCommandsBase:
    def store_args(self):
        raise NotImplementedError

    def server_store_args(self):
        """store_args() without --data, which LitchiServer passes itself."""
        args = [str(a) for a in self.store_args()]
        i = args.index("--data")
        return args[:i] + args[i + 2:]

    def setUp(self):
        self.tmp = lt.make_temp_dir(self)
        self.data = self.tmp / "data"

    def run_cli(self, *args, stdin_text=None):
        return litchi([*args, *self.store_args()], stdin_text=stdin_text)

    def add(self, name, password):
        result = self.run_cli("user", "add", name, stdin_text=password + "\n")
        self.assertEqual(result.returncode, 0, result.describe())

    def token(self, name):
        result = self.run_cli("token", "create", name)
        self.assertEqual(result.returncode, 0, result.describe())
        return result.stdout.strip()

    def test_list_passwd_delete(self):
        self.add("alice", "alice-password-1")
        self.add("bob", "bob-password-1")
        listed = self.run_cli("user", "list")
        self.assertEqual(listed.returncode, 0, listed.describe())
        rows = listed.stdout.strip().splitlines()
        self.assertEqual(rows[0].split(), ["ID", "NAME", "CREATED"])
        self.assertEqual([row.split()[1] for row in rows[1:]], ["alice", "bob"])

        # passwd: the new one works at the server, the old one does not.
        changed = self.run_cli("user", "passwd", "alice", stdin_text="alice-password-2\n")
        self.assertEqual(changed.returncode, 0, changed.describe())
        self.assertNotIn("alice-password-2", changed.stdout + changed.stderr)
        short = self.run_cli("user", "passwd", "alice", stdin_text="short\n")
        self.assertEqual(short.returncode, 2, short.describe())
        self.assertIn("8 to 1024 characters", short.stderr)
        missing = self.run_cli("user", "passwd", "nobody", stdin_text="long-enough-1\n")
        self.assertEqual(missing.returncode, 2, missing.describe())
        self.assertIn("no user named nobody", missing.stderr)

        server = LitchiServer(self.data, extra_args=self.server_store_args()).start()
        self.addCleanup(server.stop)
        client = server.client()
        self.addCleanup(client.close)
        assert_error(self, client.post("/api/login", {"username": "alice", "password": "alice-password-1"}), 401)
        self.assertEqual(client.post("/api/login", {"username": "alice", "password": "alice-password-2"}).status,
                         200)

        # delete: the user, their tokens and jobs go; bob stays.
        bob_token = self.token("bob")
        bob = server.client(bob_token)
        self.addCleanup(bob.close)
        with lt.Origin() as origin:
            job = bob.create_job([origin.url("/img/del1.png")])
            bob.wait_job(job["id"])
        deleted = self.run_cli("user", "delete", "bob")
        self.assertEqual(deleted.returncode, 0, deleted.describe())
        self.assertIn("deleted user bob (1 jobs", deleted.stdout)
        assert_error(self, bob.get("/api/jobs"), 401, "unauthorized")
        listed = self.run_cli("user", "list")
        self.assertNotIn("bob", listed.stdout)
        again = self.run_cli("user", "delete", "bob")
        self.assertEqual(again.returncode, 2, again.describe())

    def test_token_list_and_revoke(self):
        self.add("carol", "carol-password-1")
        first = self.token("carol")
        second = self.token("carol")
        listed = self.run_cli("token", "list", "carol")
        self.assertEqual(listed.returncode, 0, listed.describe())
        self.assertNotIn(first, listed.stdout)
        self.assertNotIn(second, listed.stdout)
        self.assertNotIn(first[3:15], listed.stdout)
        rows = [row.split() for row in listed.stdout.strip().splitlines()]
        self.assertEqual(rows[0][:2], ["ID", "KIND"])
        ids = [row[0] for row in rows[1:]]
        self.assertEqual(len(ids), 2)
        self.assertTrue(all(row[1] == "api" for row in rows[1:]))
        self.assertTrue(all("active" in row for row in rows[1:]))

        server = LitchiServer(self.data, extra_args=self.server_store_args()).start()
        self.addCleanup(server.stop)
        client = server.client(first)
        self.addCleanup(client.close)
        self.assertEqual(client.get("/api/jobs").status, 200)
        # last used is shown once the token was used.
        used = self.run_cli("token", "list", "carol")
        first_row = next(row for row in used.stdout.splitlines() if row.split()[0] == ids[0])
        self.assertRegex(first_row, r"\d{4}-\d\d-\d\d \d\d:\d\d UTC\s+\d{4}-\d\d-\d\d")

        revoked = self.run_cli("token", "revoke", ids[0])
        self.assertEqual(revoked.returncode, 0, revoked.describe())
        assert_error(self, client.get("/api/jobs"), 401, "unauthorized")
        self.assertEqual(server.client(second).get("/api/jobs").status, 200)
        self.assertIn("revoked", self.run_cli("token", "list", "carol").stdout)
        for args in (["token", "revoke", ids[0]], ["token", "revoke", "abc"], ["token", "revoke", "999999"],
                     ["token", "list", "nobody"]):
            with self.subTest(args=args):
                result = self.run_cli(*args)
                self.assertEqual(result.returncode, 2, result.describe())
                self.assertTrue(result.stderr.strip())


class UserCommandsOnSqlite(UserCommandsBase, unittest.TestCase):
    def store_args(self):
        return ["--data", self.data]

    def test_commands_on_a_missing_data_folder_exit_2(self):
        for args in (["user", "list"], ["user", "delete", "x"], ["token", "list", "x"], ["token", "revoke", "1"]):
            with self.subTest(args=args):
                result = litchi([*args, "--data", self.tmp / "nothing-here"])
                self.assertEqual(result.returncode, 2, result.describe())
                self.assertIn("no database at", result.stderr)


class UserCommandsOnPostgres(UserCommandsBase, unittest.TestCase):
    def store_args(self):
        if not hasattr(self, "_db"):
            self._db = shared_postgres().fresh_database()
        return ["--data", self.data, "--db", self._db]


class CommandLineErrors(unittest.TestCase):
    def test_unknown_subcommand_is_named_with_a_suggestion(self):
        for args, word, nearest in ((["fecth", "http://x/"], "fecth", "fetch"),
                                    (["user", "lst"], "lst", "list"),
                                    (["token", "revok", "1"], "revok", "revoke"),
                                    (["frobnicate"], "frobnicate", None)):
            with self.subTest(args=args):
                result = litchi(args)
                self.assertEqual(result.returncode, 2, result.describe())
                self.assertIn(f"unknown command '{word}'", result.stderr)
                if nearest:
                    self.assertIn(f"did you mean '{nearest}'?", result.stderr)
                else:
                    self.assertNotIn("did you mean", result.stderr)

    def test_user_add_says_the_password_limits(self):
        tmp = lt.make_temp_dir(self)
        result = litchi(["user", "add", "dave", "--data", tmp], stdin_text="short\n")
        self.assertEqual(result.returncode, 2, result.describe())
        self.assertIn("8 to 1024 characters", result.stderr)

    def test_unreadable_input_file_says_why(self):
        tmp = lt.make_temp_dir(self)
        result = litchi(["fetch", "-i", tmp / "missing.txt", "-o", tmp / "out"])
        self.assertEqual(result.returncode, 2, result.describe())
        self.assertRegex(result.stderr, re.escape(f"cannot read {tmp / 'missing.txt'}: ") + "No such file")
        folder = litchi(["fetch", "-i", tmp, "-o", tmp / "out"])
        self.assertEqual(folder.returncode, 2, folder.describe())
        self.assertIn("cannot read", folder.stderr)
        self.assertIn("directory", folder.stderr.lower())


if __name__ == "__main__":
    unittest.main()
