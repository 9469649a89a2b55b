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



def post_head(port, path, length, headers=()):
    """An open socket that sent a POST header announcing `length` body bytes, and none of them."""
    s = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: text/plain",
             f"Content-Length: {length}", *headers]
    s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return s


class BodyBeforeAuthTest(ServerTestCase):
    """Item 3: the 401 comes before the body; bodies in flight share one budget."""

    # A 1 MiB budget: one --max-body (1 MiB) body fills it. A long --read-timeout,
    # so a server waiting for a body shows as a timeout of this test, not a close.
    extra_args = ("--max-body", "1048576", "--max-body-in-flight", "1048576", "--read-timeout", "120")

    def test_401_before_the_body_is_read(self):
        for headers in ((), ("Authorization: Bearer lt_" + "x" * 43,), ("Cookie: litchi_session=lt_nope",)):
            with self.subTest(headers=headers):
                s = post_head(self.server.port, "/api/jobs", 1 << 20, headers)
                with s:
                    status, _, body = read_response(s)
                self.assertEqual(status, 401)
                self.assertEqual(json.loads(body)["error"]["code"], "unauthorized")

    def test_expect_100_continue(self):
        """curl sends `Expect: 100-continue` for bodies over 1 MiB and waits up to a second
        for the go-ahead: a request that passes the header checks gets `100 Continue` at
        once (the body is sent only after it); one that does not gets its final answer
        instead, and no 100."""
        auth = f"Authorization: Bearer {self.token}"
        body = b"".join(f"http://127.0.0.1:9/c{i}.png\n".encode() for i in range(1000))
        with post_head(self.server.port, "/api/jobs", len(body), (auth, "Expect: 100-continue")) as s:
            # Nothing of the body sent yet: the server must speak first, with a 100.
            interim = b""
            while b"\r\n\r\n" not in interim:
                chunk = s.recv(1)
                self.assertTrue(chunk, "connection closed before the 100 Continue")
                interim += chunk
            self.assertTrue(interim.startswith(b"HTTP/1.1 100 Continue\r\n"), interim)
            s.sendall(body)
            status, _, answer = read_response(s)
        self.assertEqual(status, 201)
        self.assertEqual(json.loads(answer)["counts"]["total"], 1000)
        # Refused on the header (no token; a body over --max-body): the final answer, no 100.
        for headers, length, code in (((), len(body), 401), ((auth,), (1 << 20) + 1, 413)):
            with self.subTest(code=code):
                with post_head(self.server.port, "/api/jobs", length, (*headers, "Expect: 100-continue")) as s:
                    status, _, _ = read_response(s)
                self.assertEqual(status, code)

    def test_body_budget_is_shared(self):
        auth = f"Authorization: Bearer {self.token}"
        # One authenticated body of the whole budget, half sent: it holds the budget.
        first = post_head(self.server.port, "/api/jobs", 1 << 20, (auth,))
        self.addCleanup(first.close)
        first.sendall(b"x" * 1000)
        # Its header is judged on a worker thread: wait until the body holds the budget
        # (a small post sent before that would take a corner of it first).
        wait_for(lambda: metric(self.server.port, "litchi_request_body_bytes") == 1 << 20,
                 what="the first body to hold the budget")
        self.assertEqual(metric(self.server.port, "litchi_request_body_budget_bytes"), 1 << 20)
        # Any other body, even a small one, must wait: 503 busy, before its body is read.
        self.assertEqual(raw_status_of_small_post(self.server.port, auth), 503)
        with post_head(self.server.port, "/api/jobs", 100, (auth,)) as s:
            status, headers, body = read_response(s)
        self.assertEqual(status, 503)
        self.assertEqual(json.loads(body)["error"]["code"], "busy")
        self.assertEqual(headers.get("retry-after"), "1")
        # The first body ends (one URL line, then padding that is no URL): its
        # answer frees the budget, and the next body is read again.
        first.sendall(b"\n" + b" " * ((1 << 20) - 1001))
        status, _, _ = read_response(first)
        self.assertIn(status, (201, 400))
        url = "http://127.0.0.1:9/a.png\n".encode()

        def post_url():
            return raw_request(self.server.port, "\r\n".join([
                "POST /api/jobs HTTP/1.1", "Host: 127.0.0.1", "Content-Type: text/plain",
                f"Content-Length: {len(url)}", auth, "Connection: close"]), url)[0]
        # The budget comes back once the first answer is written (just after the client reads it).
        wait_for(lambda: metric(self.server.port, "litchi_request_body_bytes") == 0,
                 what="the budget to come back")
        self.assertEqual(post_url(), 201)


class CsrfTest(ServerTestCase):
    """Item 4: cookie-authenticated writes need the server's Origin or an --allow-origin."""

    ALLOWED = "http://app.localhost:5173"
    extra_args = ("--allow-origin", ALLOWED)

    def setUp(self):
        login = self.server.client()
        self.addCleanup(login.close)
        response = login.post("/api/login", {"username": "admin", "password": self.server.admin_password})
        self.assertEqual(response.status, 200, response)
        self.session = response.json()["token"]
        self.cookie = f"litchi_session={self.session}"

    def post_job(self, headers, token=None):
        c = self.server.client(token)
        self.addCleanup(c.close)
        return c.post("/api/jobs", "http://127.0.0.1:9/csrf.png\n", content_type="text/plain", headers=headers)

    def test_cookie_writes_need_our_origin(self):
        port = self.server.port
        for origin in (None, "null", f"http://127.0.0.1:{port + 1}", f"http://localhost:{port}", "http://evil.example"):
            with self.subTest(origin=origin):
                headers = {"Cookie": self.cookie}
                if origin:
                    headers["Origin"] = origin
                response = self.post_job(headers)
                self.assertEqual(response.status, 403, response)
                self.assertEqual(response.json()["error"]["code"], "forbidden_origin")
        before = len(self.admin.get("/api/jobs").json()["jobs"])
        for origin in (f"http://127.0.0.1:{port}", self.ALLOWED, self.ALLOWED + "/"):
            with self.subTest(origin=origin):
                response = self.post_job({"Cookie": self.cookie, "Origin": origin})
                self.assertEqual(response.status, 201, response)
        self.assertEqual(len(self.admin.get("/api/jobs").json()["jobs"]), before + 3, "refused posts made no job")

    def test_every_write_method_is_checked(self):
        job = self.admin.create_job(["http://127.0.0.1:9/x.png"])
        c = self.server.client()
        self.addCleanup(c.close)
        foreign = {"Cookie": self.cookie, "Origin": "http://127.0.0.1:1"}
        for method, path in (("POST", f"/api/jobs/{job['id']}/pause"), ("POST", f"/api/jobs/{job['id']}/cancel"),
                             ("DELETE", f"/api/jobs/{job['id']}"), ("POST", "/api/logout")):
            with self.subTest(method=method, path=path):
                response = c.request(method, path, headers=foreign)
                self.assertEqual(response.status, 403, response)
        # Reads need no Origin; the session is still alive (logout was refused).
        self.assertEqual(c.get(f"/api/jobs/{job['id']}", headers=foreign).status, 200)
        self.assertEqual(c.get("/api/me", headers={"Cookie": self.cookie}).status, 200)

    def test_bearer_requests_need_no_origin(self):
        for origin in (None, "http://evil.example"):
            with self.subTest(origin=origin):
                headers = {"Origin": origin} if origin else {}
                self.assertEqual(self.post_job(headers, token=self.session).status, 201)


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class AcceptBackoffTest(ServerTestCase):
    """Item 6: with no descriptors left, accept backs off and logs once per interval."""

    ACCEPT_ERRORS = ("Too many open files",)

    def accept_error_lines(self):
        return sum(1 for line in self.server.stderr_so_far().splitlines()
                   if "accept" in line and any(e in line for e in self.ACCEPT_ERRORS))

    def test_emfile_does_not_spin(self):
        pid = self.server.process.pid
        self.assertEqual(self.admin.get("/healthz").status, 200)
        self.admin.close()
        # Room for a few more descriptors, then none: the server's own limit, set from outside.
        soft = int(lt.subprocess.run(["prlimit", f"--pid={pid}", "--nofile", "--output=SOFT", "--noheadings"],
                                     check=True, capture_output=True, text=True).stdout.split()[0])
        limit = len(os.listdir(f"/proc/{pid}/fd")) + 4
        lt.subprocess.run(["prlimit", f"--pid={pid}", f"--nofile={limit}:"], check=True)
        held = []
        self.addCleanup(lambda: [s.close() for s in held])
        for _ in range(12):
            held.append(socket.create_connection(("127.0.0.1", self.server.port), timeout=WAIT))
        wait_for(lambda: self.accept_error_lines() > 0, what="the first accept failure in the log")
        # A measured window (not a wait for something to happen): how much log and
        # CPU one second of descriptor starvation costs.
        lines, cpu = self.accept_error_lines(), cpu_seconds(pid)
        time.sleep(1.0)
        lines_added, cpu_used = self.accept_error_lines() - lines, cpu_seconds(pid) - cpu
        self.assertLessEqual(lines_added, 1, "logged at most once per --accept-log-interval")
        self.assertLess(cpu_used, 0.3, "the accept loop does not spin")
        # Descriptors back: the connections that waited in the backlog are served.
        for s in held:
            s.close()
        held.clear()
        lt.subprocess.run(["prlimit", f"--pid={pid}", f"--nofile={soft}:"], check=True)
        status, _, _ = raw_request(self.server.port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close")
        self.assertEqual(status, 200)
        wait_for(lambda: "accept works again" in self.server.stderr_so_far(), what="the recovery line")


def metric(port, name):
    """The value of an unlabelled metric `name` from /metrics."""
    status, _, body = raw_request(port, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close")
    assert status == 200, status
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return int(line.split()[1])
    raise AssertionError(f"no {name} in /metrics")


def open_connections(port):
    """litchi_open_connections from /metrics (this request's own connection included)."""
    return metric(port, "litchi_open_connections")


def refused_at_once(port):
    """True when a new connection is closed without an answer (over --max-connections)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            return s.recv(100) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


class LiveSocketLimitsTest(ServerTestCase):
    """Item 5: upgraded sockets count toward --max-connections, a user has a
    socket cap, and a hello stays bounded however many jobs the user has."""

    extra_args = ("--max-connections", "6", "--max-sockets-per-user", "3", "--snapshot-jobs", "5",
                  "--retries", "0")

    def socket(self, token, path="/api/ws"):
        ws = live.RawWebSocket(self.server.port, path, headers={"Sec-WebSocket-Protocol": f"litchi.v1, bearer.{token}"})
        self.addCleanup(ws.close)
        return ws

    def user_token(self, name):
        result = add_user(self.server.data_dir, name, name + "-password-1")
        self.assertEqual(result.returncode, 0, result.describe())
        return create_token(self.server.data_dir, name)

    def test_upgraded_sockets_count_and_each_user_has_a_cap(self):
        self.admin.close()
        # Only the sockets below are open: what earlier tests opened has closed (the scrape is one).
        wait_for(lambda: open_connections(self.server.port) == 1, what="no other connection open")
        bob = self.user_token("bob")
        admin_sockets = [self.socket(self.token) for _ in range(3)]
        for ws in admin_sockets:
            self.assertEqual(ws.handshake(), 101)
            self.assertEqual(ws.recv_json()["type"], "hello")
        # A fourth live connection of the same user, WebSocket or SSE: 429.
        extra = self.socket(self.token)
        self.assertEqual(extra.handshake(), 429)
        self.assertEqual(json.loads(extra.response_body)["error"]["code"], "too_many_sockets")
        sse = live.SseReader(self.server.port, self.token)
        self.addCleanup(sse.close)
        self.assertEqual(sse.status, 429)
        extra.close()
        sse.close()
        wait_for(lambda: open_connections(self.server.port) == 4, what="only admin's 3 sockets open")
        # Another user is not affected by admin's cap.
        bob_sockets = [self.socket(bob) for _ in range(3)]
        for ws in bob_sockets:
            self.assertEqual(ws.handshake(), 101)
        # Six upgraded sockets fill --max-connections 6: a seventh connection is closed at once.
        self.assertTrue(refused_at_once(self.server.port), "upgraded sockets count toward --max-connections")
        # One socket less: room again, for a connection and for that user's socket.
        admin_sockets.pop().close()

        def reopened():
            # Refused (closed at once) while the closed socket still counts on the server.
            ws = self.socket(self.token)
            try:
                return ws.handshake() == 101
            except (live.ProtocolError, ConnectionResetError):
                return False
        wait_for(reopened, what="room under --max-connections and the user's cap for a new socket")

    def test_hello_is_bounded(self):
        carol = self.user_token("carol")
        client = self.server.client(carol)
        self.addCleanup(client.close)
        origin = lt.Origin().__enter__()
        self.addCleanup(origin.stop)

        def job(lines):
            response = client.post("/api/jobs", "\n".join(lines) + "\n", content_type="text/plain")
            self.assertEqual(response.status, 201, response)
            return response.json()["id"]

        finished = [job([f"not a url {i}"]) for i in range(8)]
        slow = [job([origin.url(f"/img/slow{i}.png?delay=120000")]) for i in range(2)]
        finished += [job([f"still not a url {i}"]) for i in range(3)]
        for job_id in finished:
            wait_for(lambda: client.get(f"/api/jobs/{job_id}").json()["state"] == "done", what=f"job {job_id} done")
        ws = self.socket(carol)
        self.assertEqual(ws.handshake(), 101)
        hello = ws.recv_json()
        self.assertEqual(hello["type"], "hello")
        self.assertTrue(hello.get("truncated"))
        self.assertEqual(hello["total"], 13)
        ids = [j["id"] for j in hello["jobs"]]
        self.assertEqual(sorted(ids), sorted(slow + finished[-3:]), "unfinished jobs first, then the newest finished")


def raw_status_of_small_post(port, auth):
    """The status of a 100-byte POST /api/jobs whose body is never sent (the
    server must answer it from the header alone, or not at all)."""
    with post_head(port, "/api/jobs", 100, (auth,)) as s:
        s.settimeout(5)
        try:
            return read_response(s)[0]
        except (socket.timeout, AssertionError):
            return None


if __name__ == "__main__":
    unittest.main()
