"""Integration tests of `litchi serve`: a real server process on 127.0.0.1
(port 0, read back from its stdout), a real SQLite file in a temporary data
folder, and the test origin serving the images.

Also the helpers other server tests import (`LitchiServer`, `ApiClient`):
test_server_crash.py uses them for the kill -9 loop.
"""

import hashlib
import http.client
import io
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import unittest
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import litchi_testing as lt  # noqa: E402

LISTEN_RE = re.compile(r"Litchi is listening on (http://127\.0\.0\.1:(\d+))/")
PASSWORD_RE = re.compile(r"password: (\S+)")
LINK_RE = re.compile(r"/login#token=(\S+)")

# The ASan build is slow to start and slow to hash passwords.
START_TIMEOUT = 60
JOB_TIMEOUT = 120


class LitchiServer:
    """`litchi serve` as a child process on a free port of 127.0.0.1."""

    def __init__(self, data_dir, extra_args=(), web_dir=None, allow_private=True):
        self.allow_private = allow_private
        self.data_dir = Path(data_dir)
        self.web_dir = Path(web_dir) if web_dir else self.data_dir / "no-web-app"
        self.extra_args = list(extra_args)
        self.process = None
        self.base = None
        self.port = None
        self.admin_password = None
        # The first start's one-time link is exchanged at once (POST
        # /api/login {"token"}): admin_link_token is the session it gave,
        # admin_link the link's own (now dead) token.
        self.admin_link = None
        self.admin_link_token = None
        self.logs = []  # stderr of every run so far, for leak checks

    def start(self):
        args = ["serve", "--listen", "127.0.0.1:0", "--data", self.data_dir, "--web", self.web_dir,
                *(["--allow-private"] if self.allow_private else []), *self.extra_args]
        self.admin_password = self.admin_link = self.admin_link_token = None
        self.process = lt.LitchiProcess(args)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            out = self.process.stdout_so_far()
            match = LISTEN_RE.search(out)
            if match:
                self.base, self.port = match.group(1), int(match.group(2))
                password, link = PASSWORD_RE.search(out), LINK_RE.search(out)
                if password and link:
                    self.admin_password, self.admin_link = password.group(1), link.group(1)
                    self.admin_link_token = self.exchange_link(self.admin_link)
                return self
            if not self.process.running():
                result = self.process.wait(timeout=5)
                raise RuntimeError("litchi serve exited at start:\n" + result.describe())
            time.sleep(0.05)
        result = self.process.wait(timeout=0)
        raise RuntimeError("litchi serve did not start in time:\n" + result.describe())

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Sends `sig` and waits; returns the LitchiResult."""
        if self.process is None:
            return None
        self.process.send_signal(sig)
        # wait() counts from the process's start; give the stop its own `timeout`.
        result = self.process.wait(timeout=time.monotonic() - self.process.started + timeout)
        self.logs.append(result.stderr)
        self.process = None
        return result

    def kill(self):
        return self.stop(signal.SIGKILL, timeout=10)

    def stderr_so_far(self):
        current = self.process.stderr_so_far() if self.process else ""
        return "".join(self.logs) + current

    def client(self, token=None):
        return ApiClient(self.port, token)

    def exchange_link(self, link_token):
        """The session token the one-time login link is exchanged for."""
        client = self.client()
        try:
            response = client.post("/api/login", {"token": link_token})
            if response.status != 200:
                raise RuntimeError(f"the login link was refused: {response}")
            return response.json()["token"]
        finally:
            client.close()


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        return self.headers.get(name.lower())

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


class ApiClient:
    """A tiny HTTP/1.1 client with keep-alive (one connection, reopened if the
    server closed it)."""

    def __init__(self, port, token=None, timeout=60):
        self.port = port
        self.token = token
        self.timeout = timeout
        self.cookie = None
        self.conn = None

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None

    def request(self, method, path, body=None, headers=None, token=..., content_type=None):
        headers = dict(headers or {})
        token = self.token if token is ... else token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if self.cookie and "Cookie" not in headers:
            headers["Cookie"] = self.cookie
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode()
        if content_type is not None:
            headers["Content-Type"] = content_type
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A keep-alive connection the server closed meanwhile: once more on a new one.
                self.close()
                if attempt == 1:
                    raise
                continue
            result = Response(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
            if response.will_close:
                self.close()
            return result
        raise AssertionError("unreachable")

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def create_job(self, urls, name=None):
        body = {"urls": urls}
        if name is not None:
            body["name"] = name
        response = self.post("/api/jobs", body)
        if response.status != 201:
            raise AssertionError(f"create job: {response}")
        return response.json()

    def job(self, job_id):
        response = self.get(f"/api/jobs/{job_id}")
        if response.status != 200:
            raise AssertionError(f"get job {job_id}: {response}")
        return response.json()

    def wait_job(self, job_id, states=("done",), timeout=JOB_TIMEOUT):
        deadline = time.monotonic() + timeout
        job = None
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if job["state"] in states:
                return job
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} not in {states} after {timeout}s: {job}")

    def all_items(self, job_id, state=None, limit=100):
        items, after = [], None
        for _ in range(100000):
            query = f"limit={limit}" + (f"&after={after}" if after is not None else "") + (
                f"&state={state}" if state else "")
            response = self.get(f"/api/jobs/{job_id}/items?{query}")
            if response.status != 200:
                raise AssertionError(f"items: {response}")
            page = response.json()
            items += page["items"]
            if "next" not in page:
                return items
            after = page["next"]
        raise AssertionError("items paging did not end")


def add_user(data_dir, name, password):
    return lt.run_litchi(["user", "add", name, "--data", data_dir], stdin_text=password + "\n", timeout=60)


def create_token(data_dir, name):
    result = lt.run_litchi(["token", "create", name, "--data", data_dir], timeout=60)
    if result.returncode != 0:
        raise AssertionError(result.describe())
    return result.stdout.strip()


def assert_error(testcase, response, status, code=None):
    testcase.assertEqual(response.status, status, response)
    testcase.assertTrue(response.header("content-type").startswith("application/json"), response.headers)
    body = response.json()
    testcase.assertIsInstance(body.get("error"), dict, body)
    testcase.assertIsInstance(body["error"].get("code"), str, body)
    testcase.assertIsInstance(body["error"].get("message"), str, body)
    if code is not None:
        testcase.assertEqual(body["error"]["code"], code, body)


MAX_BODY = 256 * 1024
MAX_URLS = 1000


LOG_CANARY = "lt_CANARYcanaryCANARY0123456789abcdefXYZ"


class ServerApiTest(unittest.TestCase):
    """One server for the whole class: admin (first start) and bob (CLI)."""

    @classmethod
    def setUpClass(cls):
        cls.origin = lt.Origin().__enter__()
        cls.tmp = Path(lt.tempfile.mkdtemp(prefix="litchi-server-"))
        cls.data = cls.tmp / "data"
        cls.web = cls.tmp / "web"
        (cls.web / "assets").mkdir(parents=True)
        (cls.web / "index.html").write_text("<!doctype html><title>app</title><div id=app></div>")
        (cls.web / "assets" / "app-1234.js").write_text("console.log('app')")
        (cls.tmp / "secret.txt").write_text("outside the web folder")
        cls.server = LitchiServer(cls.data, web_dir=cls.web,
                                  extra_args=["-j", "4", "--retries", "0", "--max-body", str(MAX_BODY),
                                              "--max-urls", str(MAX_URLS), "--login-rate", "1000"]).start()
        cls.admin_token = cls.server.admin_link_token
        cls.admin = cls.server.client(cls.admin_token)
        result = add_user(cls.data, "bob", "bob-password-1")
        if result.returncode != 0:
            raise AssertionError(result.describe())
        cls.bob_token = create_token(cls.data, "bob")
        cls.bob = cls.server.client(cls.bob_token)

    @classmethod
    def tearDownClass(cls):
        cls.admin.close()
        cls.bob.close()
        cls.server.stop()
        cls.origin.__exit__(None, None, None)
        lt.shutil.rmtree(cls.tmp, ignore_errors=True)
        # Whatever order the tests ran in, the server's whole log (complete:
        # the process has exited) holds none of the secrets any of them used.
        logs = cls.server.stderr_so_far()
        for name, secret in (("admin token", cls.admin_token), ("bob's token", cls.bob_token),
                             ("admin password", cls.server.admin_password), ("bob's password", "bob-password-1"),
                             ("canary", LOG_CANARY)):
            if secret and secret in logs:
                raise AssertionError(f"the server's log holds {name}")

    def wait_for_access_log(self, marker):
        """Sends GET /healthz?m=<marker> and waits for its access-log line: every
        request answered before it is logged by then."""
        c = self.server.client()
        c.get(f"/healthz?m={marker}")
        c.close()
        deadline = time.monotonic() + 10
        while marker not in self.server.stderr_so_far():
            self.assertLess(time.monotonic(), deadline, "no access-log line for the marker")
            time.sleep(0.02)
        return self.server.stderr_so_far()

    def wait_for(self, read, ready, timeout=30):
        """Polls read() until ready(value); returns that value."""
        deadline = time.monotonic() + timeout
        while not ready(value := read()):
            self.assertLess(time.monotonic(), deadline, f"still not ready: {value}")
            time.sleep(0.02)
        return value

    def img(self, label, ext="png", **query):
        q = "&".join(f"{k}={v}" for k, v in query.items())
        return self.origin.url(f"/img/{label}.{ext}" + (f"?{q}" if q else ""))

    # -- first start, login, tokens -------------------------------------------------

    def test_first_start_prints_credentials_and_link(self):
        self.assertTrue(self.server.admin_password)
        self.assertTrue(self.admin_token.startswith("lt_"), self.admin_token)
        me = self.admin.get("/api/me")
        self.assertEqual(me.status, 200, me)
        self.assertEqual(me.json()["name"], "admin")

    def test_login_sets_cookie_and_logout_revokes(self):
        client = self.server.client()
        response = client.post("/api/login", {"username": "admin", "password": self.server.admin_password})
        self.assertEqual(response.status, 200, response)
        token = response.json()["token"]
        cookie = response.header("set-cookie")
        self.assertIn(f"litchi_session={token}", cookie)
        self.assertIn("HttpOnly", cookie)
        self.assertIn("SameSite=Strict", cookie)
        client.cookie = f"litchi_session={token}"
        self.assertEqual(client.get("/api/jobs").status, 200)
        # The same token works as a bearer token too.
        self.assertEqual(client.get("/api/jobs", headers={"Cookie": "x=y"}, token=token).status, 200)
        # A cookie-authenticated POST needs the server's own Origin (CSRF), as a browser sends.
        assert_error(self, client.post("/api/logout"), 403, "forbidden_origin")
        response = client.post("/api/logout", headers={"Origin": self.server.base})
        self.assertEqual(response.status, 204, response)
        self.assertIn("Max-Age=0", response.header("set-cookie"))
        assert_error(self, client.get("/api/jobs"), 401, "unauthorized")
        assert_error(self, client.get("/api/jobs", headers={"Cookie": "x=y"}, token=token), 401, "unauthorized")
        client.close()

    def test_login_link_is_one_time(self):
        # The harness exchanged the first start's link when the server came
        # up (LitchiServer.start): that gave a new session, not the link.
        link = self.server.admin_link
        self.assertTrue(link and link.startswith("lt_"), link)
        self.assertNotEqual(link, self.admin_token)
        client = self.server.client()
        # Used once: a second exchange, from anyone, is refused...
        assert_error(self, client.post("/api/login", {"token": link}), 401, "invalid_credentials")
        # ...and the link never was a bearer token.
        assert_error(self, client.get("/api/jobs", token=link), 401, "unauthorized")
        assert_error(self, client.get("/api/jobs", headers={"Cookie": f"litchi_session={link}"}, token=None),
                     401, "unauthorized")
        assert_error(self, client.post("/api/login", {"token": "lt_not-a-token"}), 401)
        # A session or API token is not a link: it cannot be swapped for another session.
        assert_error(self, client.post("/api/login", {"token": self.admin_token}), 401)
        assert_error(self, client.post("/api/login", {"token": self.bob_token}), 401)
        self.assertEqual(self.admin.get("/api/me").status, 200, "the refused swap left the session alone")
        client.close()

    def test_login_bad_input(self):
        client = self.server.client()
        assert_error(self, client.post("/api/login", {"username": "admin", "password": "wrong-password"}), 401,
                     "invalid_credentials")
        assert_error(self, client.post("/api/login", {"username": "nobody", "password": "whatever1"}), 401,
                     "invalid_credentials")
        assert_error(self, client.post("/api/login", "{not json", content_type="application/json"), 400,
                     "malformed_json")
        assert_error(self, client.post("/api/login", {"username": 1, "password": []}), 400)
        assert_error(self, client.post("/api/login", "username=admin", content_type="application/x-www-form-urlencoded"),
                     415)
        client.close()

    def test_missing_and_bad_tokens(self):
        client = self.server.client()
        for headers in ({}, {"Authorization": "Bearer lt_wrong"}, {"Authorization": "Basic YWRtaW46eA=="},
                        {"Authorization": "Bearer"}, {"Cookie": "litchi_session=lt_wrong"}):
            for method, path in (("GET", "/api/jobs"), ("POST", "/api/jobs"), ("GET", "/api/jobs/1"),
                                 ("GET", "/api/images/" + "a" * 64), ("POST", "/api/logout")):
                response = client.request(method, path, headers=headers, token=None)
                assert_error(self, response, 401, "unauthorized")
        client.close()

    def test_api_token_from_cli(self):
        self.assertTrue(self.bob_token.startswith("lt_"))
        me = self.bob.get("/api/me")
        self.assertEqual(me.json()["name"], "bob")

    # -- jobs ---------------------------------------------------------------------

    def test_create_job_json_and_text(self):
        job = self.admin.create_job([self.img("cj1"), self.img("cj2", "jpg")], name="two")
        for key in ("id", "name", "state", "created", "counts", "bytes", "rate", "eta"):
            self.assertIn(key, job)
        self.assertEqual(job["name"], "two")
        self.assertEqual(job["counts"]["total"], 2)
        text = "\n".join([self.img("cj3"), "", "  " + self.img("cj4") + "  ", ""]) + "\r\n"
        response = self.admin.post("/api/jobs?name=from%20text", text, content_type="text/plain; charset=utf-8")
        self.assertEqual(response.status, 201, response)
        self.assertTrue(response.header("location").startswith("/api/jobs/"))
        text_job = response.json()
        self.assertEqual(text_job["counts"]["total"], 2)
        self.assertEqual(text_job["name"], "from text")
        for j in (job, text_job):
            done = self.admin.wait_job(j["id"])
            self.assertEqual(done["counts"]["done"], 2, done)
        listed = [j["id"] for j in self.admin.get("/api/jobs").json()["jobs"]]
        self.assertIn(job["id"], listed)
        self.assertIn(text_job["id"], listed)

    def test_create_job_bad_input(self):
        c = self.admin
        assert_error(self, c.post("/api/jobs", '{"urls": [', content_type="application/json"), 400, "malformed_json")
        assert_error(self, c.post("/api/jobs", '["http://a/"]', content_type="application/json"), 400)
        assert_error(self, c.post("/api/jobs", {"urls": "http://a/"}), 400)
        assert_error(self, c.post("/api/jobs", {"urls": [1, 2]}), 400)
        assert_error(self, c.post("/api/jobs", {"links": []}), 400)
        assert_error(self, c.post("/api/jobs", {"urls": []}), 400)
        assert_error(self, c.post("/api/jobs", {"urls": ["http://a/"], "name": 5}), 400)
        assert_error(self, c.post("/api/jobs", "urls=x", content_type="application/x-www-form-urlencoded"), 415)
        assert_error(self, c.post("/api/jobs", b"\x00\x01"), 415)  # no Content-Type at all
        assert_error(self, c.post("/api/jobs", {"urls": ["http://127.0.0.1/x"] * (MAX_URLS + 1)}), 413, "too_many_urls")
        lines = "\n".join(["http://127.0.0.1/x"] * (MAX_URLS + 1))
        assert_error(self, c.post("/api/jobs", lines, content_type="text/plain"), 413, "too_many_urls")
        huge = {"urls": ["http://127.0.0.1/" + "x" * 1000] * 300}
        self.assertGreater(len(json.dumps(huge)), MAX_BODY)
        assert_error(self, c.post("/api/jobs", huge), 413, "body_too_large")
        # A body larger than any limit, sent chunked (no Content-Length up front).
        def chunks():
            for _ in range(64):
                yield b"x" * 16384
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        conn.request("POST", "/api/jobs", body=chunks(), encode_chunked=True,
                     headers={"Authorization": f"Bearer {self.admin_token}", "Content-Type": "text/plain"})
        response = conn.getresponse()
        self.assertEqual(response.status, 413)
        conn.close()
        # The server is fine afterwards.
        self.assertEqual(c.get("/api/jobs").status, 200)

    def test_bad_urls_are_failed_items(self):
        bad = ["ftp://127.0.0.1/a.png", "not a url", "http://", "http://user:pw@127.0.0.1/a.png", "javascript:alert(1)"]
        job = self.admin.create_job(bad + [self.img("bu1")])
        self.assertEqual(job["counts"]["total"], 6)
        done = self.admin.wait_job(job["id"])
        self.assertEqual(done["counts"]["failed"], 5, done)
        self.assertEqual(done["counts"]["done"], 1, done)
        items = self.admin.all_items(job["id"])
        self.assertEqual([i["url"] for i in items], bad + [self.img("bu1")])
        for item in items[:5]:
            self.assertEqual(item["state"], "failed")
            self.assertEqual(item["reason"], "bad_url", item)

    def test_items_paging_and_filters(self):
        # (Two different URLs: a repeated line would be dropped as a duplicate.)
        urls = [self.img(f"pg{i}") for i in range(23)] + [self.origin.url("/status/404"),
                                                         self.origin.url("/status/404?again")]
        job = self.admin.create_job(urls)
        self.admin.wait_job(job["id"])
        items = self.admin.all_items(job["id"], limit=5)
        self.assertEqual(len(items), 25)
        self.assertEqual(len({i["id"] for i in items}), 25)
        self.assertEqual([i["url"] for i in items], urls)
        done = self.admin.all_items(job["id"], state="done", limit=7)
        self.assertEqual(len(done), 23)
        for item in done:
            for key in ("sha256", "bytes", "width", "height", "format", "attempts"):
                self.assertIn(key, item)
        failed = self.admin.all_items(job["id"], state="failed")
        self.assertEqual(len(failed), 2)
        self.assertEqual(failed[0]["reason"], "http")
        self.assertEqual(failed[0]["http_status"], 404)
        base = f"/api/jobs/{job['id']}/items"
        assert_error(self, self.admin.get(base + "?state=bogus"), 400)
        assert_error(self, self.admin.get(base + "?limit=0"), 400)
        assert_error(self, self.admin.get(base + "?limit=100000"), 400)
        assert_error(self, self.admin.get(base + "?after=-1"), 400)
        assert_error(self, self.admin.get(base + "?after=x"), 400)
        progress = self.admin.get(f"/api/jobs/{job['id']}/progress")
        self.assertEqual(progress.status, 200)
        self.assertEqual(progress.json()["type"], "progress")
        self.assertEqual(progress.json()["job"]["counts"]["done"], 23)

    def test_pause_resume_cancel(self):
        urls = [self.img(f"pr{i}", delay=150) for i in range(40)]
        job = self.admin.create_job(urls)
        base = f"/api/jobs/{job['id']}"
        response = self.admin.post(base + "/pause")
        self.assertEqual(response.status, 200, response)
        self.assertEqual(response.json()["state"], "paused")
        # In-flight items finish or come back; then nothing moves.
        paused = self.wait_for(lambda: self.admin.job(job["id"]), lambda j: j["counts"]["active"] == 0)
        time.sleep(1.0)  # a window in which nothing may happen: no event marks its end
        later = self.admin.job(job["id"])
        self.assertEqual(later["state"], "paused")
        self.assertEqual(paused["counts"]["done"], later["counts"]["done"], "downloads went on while paused")
        self.assertLess(later["counts"]["done"], 40)
        response = self.admin.post(base + "/resume")
        self.assertEqual(response.status, 200, response)
        done = self.admin.wait_job(job["id"])
        self.assertEqual(done["counts"]["done"], 40, done)
        self.assertEqual(sum(done["counts"][k] for k in ("queued", "active", "done", "failed", "cancelled")), 40)

        slow = self.admin.create_job([self.img(f"cx{i}", delay=300) for i in range(40)])
        response = self.admin.post(f"/api/jobs/{slow['id']}/cancel")
        self.assertEqual(response.status, 200, response)
        cancelled = response.json()
        self.assertEqual(cancelled["state"], "cancelled")
        self.assertGreater(cancelled["counts"]["cancelled"], 0)
        assert_error(self, self.admin.post(f"/api/jobs/{slow['id']}/resume"), 409, "conflict")
        final = self.admin.job(slow["id"])
        self.assertEqual(final["counts"]["queued"] + final["counts"]["active"], 0, final)

    def test_retry_failed(self):
        key = f"retry{time.time_ns()}"
        job = self.admin.create_job([self.origin.url(f"/flaky/{key}/1/rt1.png"), self.img("rt2")])
        first = self.admin.wait_job(job["id"])
        self.assertEqual(first["counts"]["failed"], 1, first)
        response = self.admin.post(f"/api/jobs/{job['id']}/retry")
        self.assertEqual(response.status, 200, response)
        second = self.admin.wait_job(job["id"])
        self.assertEqual(second["counts"]["done"], 2, second)
        self.assertEqual(second["counts"]["failed"], 0, second)

    def test_delete_job(self):
        job = self.admin.create_job([self.img("del1")])
        self.admin.wait_job(job["id"])
        sha = self.admin.all_items(job["id"])[0]["sha256"]
        self.assertEqual(self.admin.get(f"/api/images/{sha}").status, 200)
        response = self.admin.delete(f"/api/jobs/{job['id']}")
        self.assertEqual(response.status, 204, response)
        assert_error(self, self.admin.get(f"/api/jobs/{job['id']}"), 404, "not_found")
        assert_error(self, self.admin.delete(f"/api/jobs/{job['id']}"), 404)
        assert_error(self, self.admin.get(f"/api/images/{sha}"), 404)
        self.assertFalse(list(self.data.glob(f"blobs/*/{sha}.*")), "the blob of a deleted job stayed")

    def test_unknown_ids_and_routes(self):
        c = self.admin
        for path in ("/api/jobs/999999", "/api/jobs/0", "/api/jobs/abc", "/api/jobs/-1", "/api/jobs/1e3",
                     "/api/jobs/999999/items", "/api/jobs/999999/progress", "/api/jobs/999999/manifest.jsonl",
                     "/api/jobs/999999/archive.zip", "/api/images/" + "0" * 64, "/api/images/nothex",
                     "/api/nothing", "/api"):
            with self.subTest(path=path):
                assert_error(self, c.get(path), 404)
        for action in ("pause", "resume", "cancel", "retry"):
            assert_error(self, c.post(f"/api/jobs/999999/{action}"), 404)
        assert_error(self, c.delete("/api/jobs/999999"), 404)
        response = c.request("PUT", "/api/jobs")
        assert_error(self, response, 405)
        self.assertIn("GET", response.header("allow"))
        self.assertIn("POST", response.header("allow"))

    def test_other_users_ids_are_404(self):
        job = self.admin.create_job([self.img("iso1")])
        self.admin.wait_job(job["id"])
        sha = self.admin.all_items(job["id"])[0]["sha256"]
        base = f"/api/jobs/{job['id']}"
        b = self.bob
        for path in (base, base + "/items", base + "/progress", base + "/manifest.jsonl", base + "/archive.zip",
                     f"/api/images/{sha}", f"/api/images/{sha}?thumb=64"):
            assert_error(self, b.get(path), 404)
        for action in ("pause", "resume", "cancel", "retry"):
            assert_error(self, b.post(f"{base}/{action}"), 404)
        assert_error(self, b.delete(base), 404)
        self.assertNotIn(job["id"], [j["id"] for j in b.get("/api/jobs").json()["jobs"]])
        # Still intact for its owner.
        self.assertEqual(self.admin.job(job["id"])["counts"]["done"], 1)
        # Once bob downloads the same bytes himself, the image is his too.
        bob_job = b.create_job([self.img("iso1")])
        b.wait_job(bob_job["id"])
        self.assertEqual(b.get(f"/api/images/{sha}").status, 200)

    # -- exports ------------------------------------------------------------------

    def test_manifest(self):
        urls = [self.img("mf1"), self.origin.url("/status/500"), "ftp://x/y.png", self.img("mf2", "gif")]
        job = self.admin.create_job(urls)
        self.admin.wait_job(job["id"])
        response = self.admin.get(f"/api/jobs/{job['id']}/manifest.jsonl")
        self.assertEqual(response.status, 200, response)
        self.assertTrue(response.header("content-type").startswith("application/x-ndjson"))
        lines = [json.loads(line) for line in response.body.decode().splitlines() if line]
        self.assertEqual([e["url"] for e in lines], urls)
        self.assertEqual([e["status"] for e in lines], ["done", "failed", "failed", "done"])
        self.assertEqual(lines[1]["reason"], "http")
        self.assertEqual(lines[1]["http_status"], 500)
        self.assertEqual(lines[2]["reason"], "bad_url")
        for entry in (lines[0], lines[3]):
            self.assertEqual(entry["file"], f"{entry['sha256']}.{entry['format'] if entry['format'] != 'jpeg' else 'jpg'}")
            self.assertGreater(entry["bytes"], 0)
            self.assertGreater(entry["width"], 0)
            self.assertGreaterEqual(entry["attempts"], 1)

    def test_archive_zip(self):
        urls = [self.img(f"zp{i}", ext) for i, ext in enumerate(["png", "jpg", "gif", "webp", "png"])]
        urls += [self.origin.url("/same/1.png"), self.origin.url("/same/2.png"), self.origin.url("/status/404")]
        job = self.admin.create_job(urls)
        self.admin.wait_job(job["id"])
        done = self.admin.all_items(job["id"], state="done")
        self.assertEqual(len(done), 7)
        response = self.admin.get(f"/api/jobs/{job['id']}/archive.zip")
        self.assertEqual(response.status, 200, response)
        self.assertEqual(response.header("content-type"), "application/zip")
        self.assertEqual(response.header("transfer-encoding"), "chunked")
        with zipfile.ZipFile(io.BytesIO(response.body)) as archive:
            self.assertIsNone(archive.testzip())
            names = archive.namelist()
            self.assertEqual(len(names), len(set(names)))
            # The job's manifest comes last, one line per item.
            self.assertEqual(names[-1], "manifest.jsonl")
            manifest = archive.read("manifest.jsonl").decode().splitlines()
            self.assertEqual(len(manifest), len(urls))
            names = names[:-1]
            expected = {f"{i['sha256']}.{i['format'] if i['format'] != 'jpeg' else 'jpg'}" for i in done}
            self.assertEqual(set(names), expected)
            self.assertEqual(len(names), 6)  # the two /same/ URLs are one image
            for name in names:
                self.assertEqual(hashlib.sha256(archive.read(name)).hexdigest(), name.split(".")[0])

    def test_archive_of_job_without_images_is_empty_zip(self):
        job = self.admin.create_job(["ftp://nothing/here.png"])
        self.admin.wait_job(job["id"])
        response = self.admin.get(f"/api/jobs/{job['id']}/archive.zip")
        self.assertEqual(response.status, 200, response)
        with zipfile.ZipFile(io.BytesIO(response.body)) as archive:
            self.assertEqual(archive.namelist(), ["manifest.jsonl"])  # no image, only the manifest
            lines = archive.read("manifest.jsonl").decode().splitlines()
            self.assertEqual(len(lines), 1)
            self.assertEqual(json.loads(lines[0])["reason"], "bad_url")

    def test_images_and_thumbnails(self):
        job = self.admin.create_job([self.img("im1", w=300, h=200), self.img("im2", "jpg", w=40, h=30)])
        self.admin.wait_job(job["id"])
        big, small = self.admin.all_items(job["id"])
        response = self.admin.get(f"/api/images/{big['sha256']}")
        self.assertEqual(response.status, 200, response)
        self.assertEqual(hashlib.sha256(response.body).hexdigest(), big["sha256"])
        self.assertEqual(response.header("content-type"), "image/png")
        self.assertEqual(response.header("x-content-type-options"), "nosniff")
        self.assertIn("immutable", response.header("cache-control"))
        self.assertIn("private", response.header("cache-control"))
        etag = response.header("etag")
        self.assertEqual(etag, f'"{big["sha256"]}"')
        not_modified = self.admin.get(f"/api/images/{big['sha256']}", headers={"If-None-Match": etag})
        self.assertEqual(not_modified.status, 304)
        self.assertEqual(not_modified.body, b"")
        self.assertEqual(self.admin.get(f"/api/images/{small['sha256']}").header("content-type"), "image/jpeg")

        thumb = self.admin.get(f"/api/images/{big['sha256']}?thumb=64")
        self.assertEqual(thumb.status, 200, thumb)
        self.assertEqual(thumb.header("content-type"), "image/webp")
        self.assertEqual(thumb.body[:4], b"RIFF")
        self.assertEqual(thumb.body[8:12], b"WEBP")
        self.assertNotEqual(thumb.header("etag"), etag)
        self.assertEqual(webp_size(thumb.body), (64, 43))
        # Small images are not blown up.
        self.assertEqual(webp_size(self.admin.get(f"/api/images/{small['sha256']}?thumb=256").body), (40, 30))
        # Cached on disk, and served again the same.
        self.assertTrue(list(self.data.glob(f"thumbs/*/{big['sha256']}-64.webp")))
        again = self.admin.get(f"/api/images/{big['sha256']}?thumb=64")
        self.assertEqual(again.body, thumb.body)
        self.assertEqual(self.admin.get(f"/api/images/{big['sha256']}?thumb=64",
                                        headers={"If-None-Match": thumb.header("etag")}).status, 304)
        for bad in ("5", "15", "1025", "abc", "", "-64", "64.5"):
            assert_error(self, self.admin.get(f"/api/images/{big['sha256']}?thumb={bad}"), 400, "bad_thumb_size")

    # -- scheduling ---------------------------------------------------------------

    def test_small_job_after_big_finishes_first(self):
        big = self.admin.create_job([self.img(f"fb{i}", delay=400) for i in range(80)])
        # The big job is downloading before the small one arrives.
        self.wait_for(lambda: self.admin.job(big["id"]), lambda j: j["counts"]["active"] >= 1)
        small = self.admin.create_job([self.img(f"fs{i}", delay=400) for i in range(4)])
        done = self.admin.wait_job(small["id"], timeout=60)
        self.assertEqual(done["counts"]["done"], 4)
        big_now = self.admin.job(big["id"])
        self.assertNotEqual(big_now["state"], "done", "the big job finished before the small one")
        self.assertLess(big_now["counts"]["done"], 60, big_now)
        self.admin.post(f"/api/jobs/{big['id']}/cancel")

    # -- plumbing -----------------------------------------------------------------

    def test_healthz_and_metrics(self):
        response = self.admin.get("/healthz", token=None)
        self.assertEqual(response.status, 200)
        self.assertEqual(response.json()["status"], "ok")
        job = self.admin.create_job([self.img("mx1"), self.origin.url("/status/404")])
        self.admin.wait_job(job["id"])
        self.admin.get("/api/jobs/999999")
        response = self.admin.get("/metrics", token=None)
        self.assertEqual(response.status, 200)
        self.assertTrue(response.header("content-type").startswith("text/plain"))
        text = response.body.decode()
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        self.assertGreaterEqual(values['litchi_downloads_total{outcome="done",reason=""}'], 1)
        self.assertGreaterEqual(values['litchi_downloads_total{outcome="failed",reason="http"}'], 1)
        self.assertGreaterEqual(values['litchi_http_requests_total{status="200"}'], 1)
        self.assertGreaterEqual(values['litchi_http_requests_total{status="404"}'], 1)
        self.assertGreaterEqual(values["litchi_open_connections"], 1)
        self.assertGreater(values["litchi_stored_bytes_total"], 0)
        for name in ("litchi_queue_depth", "litchi_active_transfers", "litchi_received_bytes_total"):
            self.assertIn(name, values)
        self.assertNotIn(self.admin_token, text)

    def test_static_files_and_spa_fallback(self):
        c = self.server.client()
        for path in ("/", "/jobs", "/jobs/42", "/login"):
            response = c.get(path)
            self.assertEqual(response.status, 200, path)
            self.assertIn(b"<div id=app>", response.body)
            self.assertTrue(response.header("content-type").startswith("text/html"))
        js = c.get("/assets/app-1234.js")
        self.assertEqual(js.status, 200)
        self.assertTrue(js.header("content-type").startswith("text/javascript"))
        self.assertIn("immutable", js.header("cache-control"))
        self.assertEqual(c.get("/assets/missing.js").status, 404)
        head = c.request("HEAD", "/assets/app-1234.js")
        self.assertEqual(head.status, 200)
        self.assertEqual(head.body, b"")
        self.assertEqual(int(head.header("content-length")), len("console.log('app')"))
        self.assertEqual(c.request("POST", "/jobs").status, 405)
        c.close()
        # Path traversal, raw and encoded, never leaves the web folder.
        for raw in ("/../secret.txt", "/%2e%2e/secret.txt", "/assets/..%2f..%2fsecret.txt", "/..%5csecret.txt",
                    "/.%2e/secret.txt"):
            sock = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
            sock.putrequest("GET", raw, skip_accept_encoding=True)
            sock.endheaders()
            response = sock.getresponse()
            body = response.read()
            self.assertNotIn(b"outside the web folder", body, raw)
            sock.close()

    def test_keep_alive_and_limits(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        conn.request("GET", "/healthz")
        conn.getresponse().read()
        first = conn.sock
        for _ in range(5):
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            response.read()
            self.assertEqual(response.status, 200)
        self.assertIs(conn.sock, first, "the connection was not kept alive")
        conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        conn.request("GET", "/healthz", headers={"X-Big": "x" * 20000})
        response = conn.getresponse()
        self.assertEqual(response.status, 431)
        conn.close()
        # Garbage instead of HTTP gets a 400, not a hang or a crash.
        import socket
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as s:
            s.sendall(b"THIS IS NOT HTTP\r\n\r\n")
            self.assertTrue(s.recv(100).startswith(b"HTTP/1.1 400"))
        self.assertEqual(self.admin.get("/healthz").status, 200)

    def test_no_secret_in_logs(self):
        canary = LOG_CANARY
        self.admin.get("/api/me")
        self.bob.get("/api/jobs")
        self.assertEqual(self.server.client().post("/api/login", {"username": "bob",
                                                                  "password": "bob-password-1"}).status, 200)
        c = self.server.client()
        c.get("/api/jobs", token=canary)
        c.get(f"/api/jobs?token={canary}", token=canary)
        c.get(f"/api/litchi/{canary}")
        c.post("/api/login", {"username": "admin", "password": canary})
        c.post("/api/login", {"token": canary})
        c.get("/api/jobs", headers={"Cookie": f"litchi_session={canary}"}, token=None)
        c.close()
        logs = self.wait_for_access_log("no-secret-marker")
        self.assertIn("/api/jobs", logs, "no access log at all?")
        for secret in (canary, self.admin_token, self.bob_token, self.server.admin_password, "bob-password-1"):
            self.assertNotIn(secret, logs)


def webp_size(data):
    """(width, height) of a WebP file (VP8, VP8L or VP8X)."""
    chunk = data[12:16]
    if chunk == b"VP8X":
        w = 1 + int.from_bytes(data[24:27], "little")
        h = 1 + int.from_bytes(data[27:30], "little")
        return w, h
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":
        w = int.from_bytes(data[26:28], "little") & 0x3FFF
        h = int.from_bytes(data[28:30], "little") & 0x3FFF
        return w, h
    raise AssertionError(f"not a WebP: {data[:32]!r}")


class ServerLifecycleTest(unittest.TestCase):
    """Servers of their own: rate limits, the placeholder page, CLI errors,
    graceful shutdown and restart."""

    def setUp(self):
        self.tmp = lt.make_temp_dir(self)

    def test_login_rate_limit_and_placeholder_page(self):
        server = LitchiServer(self.tmp / "data", extra_args=["--login-rate", "3"]).start()
        self.addCleanup(server.stop)
        c = server.client()
        statuses = [c.post("/api/login", {"username": "admin", "password": "wrong-password"}).status
                    for _ in range(3)]
        self.assertEqual(statuses, [401, 401, 401])
        limited = c.post("/api/login", {"username": "admin", "password": server.admin_password})
        assert_error(self, limited, 429, "rate_limited")
        self.assertGreaterEqual(int(limited.header("retry-after")), 1)
        page = c.get("/jobs/1")
        self.assertEqual(page.status, 200)
        self.assertIn(b"not built", page.body)
        c.close()

    def test_cli_bad_input_exits_2(self):
        data = self.tmp / "data"
        self.assertEqual(add_user(data, "carol", "carol-password").returncode, 0)
        for name, password in (("bad name!", "long-enough-pw"), ("carol", "another-password"), ("dave", "short")):
            result = add_user(data, name, password)
            self.assertEqual(result.returncode, 2, result.describe())
            self.assertTrue(result.stderr.strip(), result.describe())
        result = lt.run_litchi(["user", "add", "erin", "--data", data], stdin_text="", timeout=60)
        self.assertEqual(result.returncode, 2, result.describe())
        result = lt.run_litchi(["token", "create", "nobody", "--data", data], timeout=60)
        self.assertEqual(result.returncode, 2, result.describe())
        self.assertEqual(result.stdout, "")
        result = lt.run_litchi(["token", "create", "carol", "--data", self.tmp / "empty"], timeout=60)
        self.assertEqual(result.returncode, 2, result.describe())
        token = create_token(data, "carol")
        self.assertRegex(token, r"^lt_[A-Za-z0-9_-]+$")
        result = lt.run_litchi(["serve", "--listen", "nonsense", "--data", data], timeout=60)
        self.assertEqual(result.returncode, 2, result.describe())

    def test_accepts_100k_urls_quickly(self):
        server = LitchiServer(self.tmp / "data", extra_args=["-j", "1"]).start()
        self.addCleanup(server.stop)
        c = server.client(server.admin_link_token)
        # Port 9 on loopback: nothing listens, so nothing is downloaded meanwhile.
        body = "\n".join(f"http://127.0.0.1:9/img/{i}.png" for i in range(100_000))
        started = time.monotonic()
        response = c.post("/api/jobs", body, content_type="text/plain")
        elapsed = time.monotonic() - started
        self.assertEqual(response.status, 201, response)
        job = response.json()
        self.assertEqual(job["counts"]["total"], 100_000)
        print(f"\n100,000 URLs accepted in {elapsed:.2f}s", file=sys.stderr)
        self.assertLess(elapsed, 15.0)  # the sanitizer build; a release build takes well under 1 s
        cancelled = c.post(f"/api/jobs/{job['id']}/cancel").json()
        self.assertEqual(cancelled["state"], "cancelled")
        self.assertEqual(cancelled["counts"]["queued"] + cancelled["counts"]["active"], 0)
        page = c.get(f"/api/jobs/{job['id']}/items?state=cancelled&limit=1000").json()
        self.assertEqual(len(page["items"]), 1000)
        self.assertIn("next", page)
        c.close()

    def test_second_server_on_same_data_refused(self):
        data = self.tmp / "data"
        server = LitchiServer(data).start()
        self.addCleanup(server.stop)
        result = lt.run_litchi(["serve", "--listen", "127.0.0.1:0", "--data", data], timeout=60)
        self.assertEqual(result.returncode, 1, result.describe())
        self.assertIn("another litchi serve", result.stderr)

    def test_sigterm_requeues_and_restart_continues(self):
        data = self.tmp / "data"
        with lt.Origin() as origin:
            server = LitchiServer(data, extra_args=["-j", "2"]).start()
            token = server.admin_link_token
            c = server.client(token)
            urls = [origin.url(f"/img/gs{i}.png?delay=250") for i in range(30)]
            job = c.create_job(urls)
            deadline = time.monotonic() + 60
            while c.job(job["id"])["counts"]["done"] < 4 and time.monotonic() < deadline:
                time.sleep(0.1)
            c.close()
            result = server.stop(signal.SIGTERM, timeout=30)
            self.assertEqual(result.returncode, 0, result.describe())
            self.assertFalse(result.timed_out)
            self.assertIn("stopped cleanly", result.stderr)
            with sqlite3.connect(data / "litchi.db") as db:
                active = db.execute("SELECT count(*) FROM items WHERE state = 'active'").fetchone()[0]
                done_before = db.execute("SELECT count(*) FROM items WHERE state = 'done'").fetchone()[0]
            self.assertEqual(active, 0, "a graceful stop left items active")
            self.assertLess(done_before, 30)
            self.assertEqual(lt.part_files(data / "blobs"), [])

            server.start()  # the same data folder: no new admin, the old token still works
            self.assertIsNone(server.admin_password)
            c = server.client(token)
            final = c.wait_job(job["id"])
            c.close()
            server.stop()
            counts = final["counts"]
            self.assertEqual(counts["done"], 30, final)
            self.assertEqual(counts["total"], 30)
            self.assertEqual(sum(counts[k] for k in ("queued", "active", "done", "failed", "cancelled")), 30)
            self.assertEqual(lt.blob_dir_problems(data / "blobs"), [])
            self.assertEqual(len(lt.blob_files(data / "blobs")), 30)


if __name__ == "__main__":
    unittest.main()
