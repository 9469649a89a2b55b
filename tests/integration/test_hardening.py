"""Hostile clients and unlucky operators (issue 10): a real `litchi serve` on
127.0.0.1 and real sockets.

- tokens in places the server never reads are still redacted in its log;
- a request without a valid token gets its 401 before the server reads the
  body, and bodies in flight share one byte budget;
- cookie-authenticated POST/PUT/DELETE need an Origin that is the server or
  an --allow-origin (CSRF), bearer-token requests do not;
- with no file descriptors left, the accept loop backs off and logs the
  condition once per interval instead of spinning;
- upgraded sockets count toward --max-connections, a user has a socket cap,
  and the `hello` of a user with many jobs stays bounded.
"""

import json
import os
import socket
import sys
import time
import unittest
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import litchi_testing as lt  # noqa: E402
import live_testing as live  # noqa: E402
from test_server import LitchiServer, add_user, create_token  # noqa: E402

WAIT = 30  # seconds any one awaited event may take (ASan build included)


def wait_for(predicate, timeout=WAIT, what="condition"):
    """Polls `predicate` until it is truthy (returned), or fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def raw_request(port, head, body=b"", timeout=WAIT):
    """Sends `head` (CRLF lines without the blank line) and `body` on a fresh
    socket; returns (status, headers, body) of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head.encode() + b"\r\n\r\n" + body)
        return read_response(s)


def read_response(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before an answer: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest[:length]


class ServerTestCase(unittest.TestCase):
    """One server per test class; `extra_args` are its flags."""

    extra_args = ()

    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(lt.tempfile.mkdtemp(prefix="litchi-harden-"))
        cls.server = LitchiServer(cls.tmp / "data", extra_args=["--login-rate", "1000", *cls.extra_args]).start()
        cls.token = cls.server.admin_link_token
        cls.admin = cls.server.client(cls.token)

    @classmethod
    def tearDownClass(cls):
        cls.admin.close()
        if cls.server.process is not None:
            cls.server.stop()
        lt.shutil.rmtree(cls.tmp, True)

    def logged(self, marker):
        """Waits until the server's stderr shows `marker` (its access log line), returns the log."""
        return wait_for(lambda: marker in self.server.stderr_so_far() and self.server.stderr_so_far(),
                        what=f"a log line with {marker}")


class TokenRedactionTest(ServerTestCase):
    """Item 9: a token sent where no route reads one is still not logged."""

    def test_token_shapes_are_redacted_on_every_route(self):
        token = self.token
        fake = "lt_" + uuid.uuid4().hex + "CANARY"
        c = self.server.client()
        self.addCleanup(c.close)
        for secret in (token, fake):
            for target in (f"/api//litchi/{secret}", f"/?t={secret}", f"/{secret}", f"/api/jobs?t={secret}",
                           f"/api/x/{secret}/y", f"/%6C{secret[1:]}"):
                c.get(target)
        marker = "done-" + uuid.uuid4().hex
        c.get(f"/healthz?{marker}")
        logs = self.logged(marker)
        self.assertIn("/api//litchi/", logs, "the access log shows the rest of the target")
        for secret in (token, fake):
            self.assertNotIn(secret, logs)
            self.assertNotIn(secret[3:], logs, "not even without its prefix")



if __name__ == "__main__":
    unittest.main()
