"""Login throttling per account (issue 10, #8): guesses at one account from
many source addresses are limited together, and the owner still gets in
after at most --login-account-max-delay (no lockout an attacker can keep up).

Source addresses are 127.0.0.2..41 (all loopback)."""

import http.client
import json
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import litchi_testing as lt  # noqa: E402
from test_server import LitchiServer, add_user  # noqa: E402

PASSWORD = "alice-password-1"


def login(port, source, username, password):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    try:
        conn.request("POST", "/api/login", body=json.dumps({"username": username, "password": password}),
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.getheader("Retry-After"), response.read()
    finally:
        conn.close()


class AccountThrottleTest(unittest.TestCase):
    def setUp(self):
        tmp = lt.make_temp_dir(self)
        # The per-IP limit is generous: only the per-account one can stop this.
        self.server = LitchiServer(tmp / "data", extra_args=[
            "--login-rate", "10", "--login-account-free", "5", "--login-account-max-delay", "2"]).start()
        self.addCleanup(self.server.stop)
        result = add_user(self.server.data_dir, "alice", PASSWORD)
        self.assertEqual(result.returncode, 0, result.describe())

    def test_many_addresses_share_one_accounts_limit(self):
        statuses = []
        for i in range(40):
            status, retry_after, body = login(self.server.port, f"127.0.0.{2 + i}", "alice", "wrong guess")
            statuses.append(status)
            if status == 429:
                self.assertEqual(json.loads(body)["error"]["code"], "rate_limited")
                self.assertTrue(retry_after and 1 <= int(retry_after) <= 2, retry_after)
        self.assertLessEqual(statuses.count(401), 6, statuses)
        self.assertGreaterEqual(statuses.count(429), 34, statuses)
        # Unknown names are limited the same way (no hint which names exist).
        unknown = [login(self.server.port, f"127.0.1.{2 + i}", "nobody", "x")[0] for i in range(10)]
        self.assertIn(429, unknown)

        # The owner waits at most the cap (the server says how long), then gets in.
        status, retry_after, _ = login(self.server.port, "127.0.0.99", "alice", PASSWORD)
        if status == 429:
            deadline = lt.time.monotonic() + int(retry_after)
            while lt.time.monotonic() < deadline:  # the throttle's own wait, announced by Retry-After
                lt.time.sleep(deadline - lt.time.monotonic())
            status, _, _ = login(self.server.port, "127.0.0.99", "alice", PASSWORD)
        self.assertEqual(status, 200)
        # A success clears the count: the next wrong password is a plain 401.
        self.assertEqual(login(self.server.port, "127.0.0.100", "alice", "wrong")[0], 401)


if __name__ == "__main__":
    unittest.main()
