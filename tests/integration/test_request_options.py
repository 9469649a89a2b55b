"""Per-job request options and the shared header rules, end to end: a real
`litchi serve` on 127.0.0.1, the test origin recording the headers it was
sent (/headers/<key>/, /seen-headers/<key>), and `litchi fetch` with
--user-agent and -H.

What users rely on: the User-Agent, headers and Referer a job names reach
the origin on every request; the headers the transfer owns, names that are
not tokens and values with CR/LF are refused with 400 (exit status 2 for
fetch); limits may only be tighter than the server's, and when tighter they
change what happens to the job's items; credential headers never show up in
an answer or a log.
"""

import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import litchi_testing as lt  # noqa: E402
from test_server import LitchiServer, assert_error  # noqa: E402

AUTH_SECRET = "reqopts-AUTH-7f3c9a1e5d"
KEY_SECRET = "reqopts-KEY-0b8e2d4c6a"
COOKIE_SECRET = "reqopts-COOKIE-5e1a3c7b9d"
FETCH_SECRET = "reqopts-FETCH-2c4e6a8b0d"

SERVER_LIMITS = {"per_host": 4, "retries": 2, "max_bytes": 10_000_000, "max_pixels": 50_000_000,
                 "timeout": 60}


def litchi_version():
    result = lt.run_litchi(["--version"], timeout=30)
    return result.stdout.split()[-1]


def header_dicts(origin, key):
    """The headers of every request the origin saw under /headers/<key>/, lower-case names."""
    return [{name.lower(): value for name, value in pairs}
            for pairs in origin.get_json(f"/seen-headers/{key}")["requests"]]


class RequestOptionsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.origin = lt.Origin().__enter__()
        cls.tmp = Path(lt.tempfile.mkdtemp(prefix="litchi-reqopts-"))
        cls.server = LitchiServer(cls.tmp / "data", extra_args=[
            "-j", "4", "--per-host", str(SERVER_LIMITS["per_host"]), "--retries", str(SERVER_LIMITS["retries"]),
            "--retry-base", "20", "--max-bytes", str(SERVER_LIMITS["max_bytes"]),
            "--max-pixels", str(SERVER_LIMITS["max_pixels"]), "--timeout", str(SERVER_LIMITS["timeout"])]).start()
        cls.client = cls.server.client(cls.server.admin_link_token)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.server.stop()
        cls.origin.__exit__(None, None, None)
        lt.shutil.rmtree(cls.tmp, ignore_errors=True)
        # The whole log (the server has exited): no credential header value in it.
        logs = cls.server.stderr_so_far()
        for secret in (AUTH_SECRET, KEY_SECRET, COOKIE_SECRET):
            if secret in logs:
                raise AssertionError(f"the server's log holds a credential header value ({secret})")

    def job_count(self):
        return len(self.client.get("/api/jobs").json()["jobs"])

    def create(self, body):
        response = self.client.post("/api/jobs", body)
        self.assertEqual(response.status, 201, response)
        return response.json()

    def test_user_agent_headers_and_referer_reach_the_origin(self):
        key = "opts"
        job = self.create({
            "urls": [self.origin.url(f"/headers/{key}/o{i}.png") for i in range(3)],
            "user_agent": "crawler-test/2.0 (+http://127.0.0.1/bot)",
            "headers": {"X-Custom-Thing": "value 1", "Authorization": "Bearer " + AUTH_SECRET,
                        "X-Api-Key": KEY_SECRET, "Cookie": "s=" + COOKIE_SECRET, "Accept-Language": "fr"},
            "referer": "http://127.0.0.1/gallery?page=2",
        })
        final = self.client.wait_job(job["id"])
        self.assertEqual(final["counts"]["done"], 3, final)
        seen = header_dicts(self.origin, key)
        self.assertEqual(len(seen), 3, seen)
        for headers in seen:
            self.assertEqual(headers.get("user-agent"), "crawler-test/2.0 (+http://127.0.0.1/bot)", headers)
            self.assertEqual(headers.get("referer"), "http://127.0.0.1/gallery?page=2", headers)
            self.assertEqual(headers.get("x-custom-thing"), "value 1", headers)
            self.assertEqual(headers.get("authorization"), "Bearer " + AUTH_SECRET, headers)
            self.assertEqual(headers.get("x-api-key"), KEY_SECRET, headers)
            self.assertEqual(headers.get("cookie"), "s=" + COOKIE_SECRET, headers)
            self.assertEqual(headers.get("accept-language"), "fr", headers)

        # The answers show the options, credentials redacted.
        for shown in (job, self.client.job(job["id"])):
            self.assertEqual(shown["user_agent"], "crawler-test/2.0 (+http://127.0.0.1/bot)")
            self.assertEqual(shown["referer"], "http://127.0.0.1/gallery?page=2")
            self.assertEqual(shown["headers"], {"X-Custom-Thing": "value 1", "Authorization": "<redacted>",
                                                "X-Api-Key": "<redacted>", "Cookie": "<redacted>",
                                                "Accept-Language": "fr"})
        raw = self.client.get(f"/api/jobs/{job['id']}").body.decode()
        for secret in (AUTH_SECRET, KEY_SECRET, COOKIE_SECRET):
            self.assertNotIn(secret, raw)

    def test_default_user_agent_is_litchi_version(self):
        key = "default-ua"
        job = self.create({"urls": [self.origin.url(f"/headers/{key}/d0.png")]})
        self.assertNotIn("headers", job)
        self.assertNotIn("user_agent", job)
        self.client.wait_job(job["id"])
        seen = header_dicts(self.origin, key)
        self.assertEqual([h.get("user-agent") for h in seen], [f"litchi/{litchi_version()}"])
        self.assertNotIn("referer", seen[0])

    def test_bad_headers_are_refused(self):
        before = self.job_count()
        url = self.origin.url("/img/never.png")
        refused = [
            {"headers": {"Host": "example.com"}},
            {"headers": {"host": "example.com"}},
            {"headers": {"Content-Length": "10"}},
            {"headers": {"Transfer-Encoding": "chunked"}},
            {"headers": {"Connection": "close"}},
            {"headers": {"Cookie2": "a=b"}},
            {"headers": {"Proxy-Authorization": "Basic eA=="}},
            {"headers": {"proxy-connection": "keep-alive"}},
            {"headers": {"Bad Name": "x"}},
            {"headers": {"X-A:B": "x"}},
            {"headers": {"": "x"}},
            {"headers": {"X-Inject": "a\r\nHost: evil"}},
            {"headers": {"X-Lf": "a\nb"}},
            {"headers": {"X-Cr": "a\rb"}},
            {"headers": {"X\r\nHost": "v"}},
            {"user_agent": "ua\r\nX-Evil: 1"},
            {"referer": "http://127.0.0.1/\nX-Evil: 1"},
        ]
        for options in refused:
            with self.subTest(options=options):
                response = self.client.post("/api/jobs", {"urls": [url], **options})
                assert_error(self, response, 400, "bad_header")
        for options in ({"headers": ["X-A: 1"]}, {"headers": {"X-A": 1}}, {"user_agent": 5}):
            with self.subTest(options=options):
                assert_error(self, self.client.post("/api/jobs", {"urls": [url], **options}), 400, "invalid_body")
        self.assertEqual(self.job_count(), before, "a refused job was created")
        self.assertEqual(self.origin.request_counts().get("/img/never.png"), None)

    def test_looser_limits_are_refused_naming_the_servers_limit(self):
        before = self.job_count()
        url = self.origin.url("/img/loose.png")
        looser = [("per_host", 5, "4"), ("retries", 3, "2"), ("max_bytes", 10_000_001, "10000000"),
                  ("max_pixels", 50_000_001, "50000000"), ("timeout", 61, "60")]
        for field, value, server_value in looser:
            for body in ({field: value}, {"limits": {field: value}}):
                with self.subTest(body=body):
                    response = self.client.post("/api/jobs", {"urls": [url], **body})
                    assert_error(self, response, 400, "limit_too_loose")
                    message = response.json()["error"]["message"]
                    self.assertIn(field, message)
                    self.assertIn(server_value, message)
        for body in ({"retries": -1}, {"retries": "1"}, {"per_host": 0}, {"timeout": 0},
                     {"max_bytes": 1.5}, {"per_host_rate": -2}, {"retries": 1, "limits": {"retries": 1}}):
            with self.subTest(body=body):
                assert_error(self, self.client.post("/api/jobs", {"urls": [url], **body}), 400, "invalid_body")
        self.assertEqual(self.job_count(), before, "a refused job was created")

    def test_tighter_limits_are_accepted_shown_and_applied(self):
        o = self.origin
        job = self.create({
            "urls": [o.url("/flaky/tight-retry/1/t0.png")],
            "retries": 0, "per_host": 2, "per_host_rate": 2.5, "timeout": 30, "max_bytes": 5_000_000,
            "max_pixels": 1_000_000})
        for field, value in (("retries", 0), ("per_host", 2), ("per_host_rate", 2.5), ("timeout", 30),
                             ("max_bytes", 5_000_000), ("max_pixels", 1_000_000)):
            self.assertEqual(job[field], value, job)
        # retries 0: the one 503 is final (the server's --retries 2 would have retried it).
        final = self.client.wait_job(job["id"])
        [item] = self.client.all_items(job["id"])
        self.assertEqual((item["state"], item.get("reason"), item.get("http_status"), item["attempts"]),
                         ("failed", "http", 503, 1), item)
        # The same URL shape without the option: retried, and done.
        plain = self.create({"urls": [o.url("/flaky/tight-plain/1/t1.png")]})
        self.assertEqual(self.client.wait_job(plain["id"])["counts"]["done"], 1)
        self.assertEqual(final["counts"]["failed"], 1)

        checks = [({"max_bytes": 100}, o.url("/img/big0.png"), "too_large"),
                  ({"max_pixels": 100}, o.url("/img/px0.png"), "too_many_pixels"),
                  ({"timeout": 0.5, "retries": 0}, o.url("/img/slow0.png?delay=3000"), "timeout")]
        for options, url, reason in checks:
            with self.subTest(options=options):
                limited = self.create({"urls": [url], **options})
                self.client.wait_job(limited["id"])
                [item] = self.client.all_items(limited["id"])
                self.assertEqual((item["state"], item.get("reason")), ("failed", reason), item)

    def test_per_host_one_means_one_transfer_at_a_time(self):
        o = self.origin
        paths = [f"/img/serial{i}.png" for i in range(4)]
        job = self.create({"urls": [o.url(p + "?delay=300") for p in paths], "per_host": 1})
        self.client.wait_job(job["id"])
        spans = []
        for p in paths:
            served = o.get_json(f"/served?path={p}")
            spans.append((served["arrived"][0], served["times"][0]))
        spans.sort()
        for (_, end), (start, _) in zip(spans, spans[1:]):
            self.assertLessEqual(end, start + 0.05, f"two transfers overlapped: {spans}")


class FetchHeaderFlagsTest(unittest.TestCase):
    def test_user_agent_and_headers_reach_the_origin(self):
        with lt.Origin() as origin, lt.temp_dir() as out:
            key = "fetch-h"
            result = lt.run_litchi(["fetch", "--allow-private", "--progress", "none", "-o", out,
                                    "--user-agent", "fetcher/1.0", "-H", "X-One: 1",
                                    "-H", f"Authorization: Bearer {FETCH_SECRET}", "--header", "X-Two:two",
                                    origin.url(f"/headers/{key}/f0.png"), origin.url(f"/headers/{key}/f1.png")])
            self.assertEqual(result.returncode, 0, result.describe())
            seen = header_dicts(origin, key)
            self.assertEqual(len(seen), 2, seen)
            for headers in seen:
                self.assertEqual(headers.get("user-agent"), "fetcher/1.0")
                self.assertEqual(headers.get("x-one"), "1")
                self.assertEqual(headers.get("x-two"), "two")
                self.assertEqual(headers.get("authorization"), f"Bearer {FETCH_SECRET}")
            self.assertNotIn(FETCH_SECRET, result.stderr + result.stdout)

    def test_default_user_agent(self):
        with lt.Origin() as origin, lt.temp_dir() as out:
            result = lt.run_litchi(["fetch", "--allow-private", "--progress", "none", "-o", out,
                                    origin.url("/headers/fetch-default/g0.png")])
            self.assertEqual(result.returncode, 0, result.describe())
            seen = header_dicts(origin, "fetch-default")
            self.assertEqual([h.get("user-agent") for h in seen], [f"litchi/{litchi_version()}"])

    def test_bad_headers_exit_2_naming_the_problem(self):
        with lt.temp_dir() as out:
            cases = [(["-H", "Host: example.com"], "Host"),
                     (["-H", "proxy-authorization: x"], "proxy-authorization"),
                     (["-H", "Transfer-Encoding: chunked"], "Transfer-Encoding"),
                     (["-H", "NoColonHere"], "Name: value"),
                     (["-H", "Bad Name: x"], "token"),
                     (["-H", "X-A: one\rtwo"], "CR or LF"),
                     (["--user-agent", "a\nb"], "CR or LF")]
            for flags, words in cases:
                with self.subTest(flags=flags):
                    result = lt.run_litchi(["fetch", "--allow-private", "-o", out, *flags,
                                            "http://127.0.0.1:1/x.png"], timeout=30)
                    self.assertEqual(result.returncode, 2, result.describe())
                    self.assertIn(words, result.stderr)


if __name__ == "__main__":
    unittest.main()
