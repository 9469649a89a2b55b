"""The OpenAPI document (docs/openapi.json, served at GET /api/openapi.json)
kept true against the server it describes:

  * it is served without authentication, byte for byte the file in docs/;
  * a standard validator from npm accepts it as OpenAPI 3.1, and rejects a
    broken copy (tests/openapi/check.mjs);
  * the router's table (`litchi serve --print-routes`, the routes as the
    server builds them) and the document's paths are the same both ways,
    method for method;
  * the live server answers every documented path with exactly the
    documented methods (405 and `Allow` for any other), and every
    documented operation without credentials with 401 unless the document
    says it needs none;
  * real answers of a real server (jobs downloaded from the test origin,
    errors provoked on purpose) match the status, media type and JSON
    schema the document gives for them (Ajv in check.mjs).

A real `litchi serve` on 127.0.0.1 with a real SQLite file, the test origin,
node with the packages of tests/openapi (`make test-deps`).
"""

import http.client
import json
import re
import shutil
import subprocess
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import litchi_testing as lt  # noqa: E402
from test_server import LitchiServer, add_user, create_token  # noqa: E402

DOCUMENT = lt.SOURCE_DIR / "docs" / "openapi.json"
CHECKER_DIR = lt.SOURCE_DIR / "tests" / "openapi"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Methods tried on a path to see its 405 (none is a WebSocket or a fallback).
PROBE_METHODS = ("PUT", "PATCH", "DELETE", "POST", "GET")
PARAM_RE = re.compile(r"\{[^/{}]*\}")
SERVER_VERSION_RE = re.compile(r"^litchi/(\S+)$")


def route_key(path):
    """"/api/jobs/{id}" and the router's "/api/jobs/{}" -> the same key."""
    return PARAM_RE.sub("{}", path)


def concrete(path):
    """A documented path with its parameters filled in with plausible values."""
    values = {"{id}": "1", "{sha256}": "0" * 64}
    return PARAM_RE.sub(lambda m: values.get(m.group(0), "x"), path)


def documented_operations(doc):
    """{path: {METHOD: operation}} of the document."""
    return {path: {m.upper(): op for m, op in item.items() if m in HTTP_METHODS}
            for path, item in doc["paths"].items()}


def run_checker(*args):
    node = shutil.which("node")
    if node is None:
        raise AssertionError("node is required (Debian package nodejs)")
    if not (CHECKER_DIR / "node_modules" / "@seriousme" / "openapi-schema-validator").is_dir():
        raise AssertionError(f"run `make test-deps`: {CHECKER_DIR}/node_modules is missing")
    return subprocess.run([node, str(CHECKER_DIR / "check.mjs"), *map(str, args)], capture_output=True,
                          text=True, timeout=120)


class OpenApiTest(unittest.TestCase):
    """One server for the class: admin (first start, password known) and bob (an API token)."""

    @classmethod
    def setUpClass(cls):
        cls.origin = lt.Origin().__enter__()
        cls.tmp = Path(lt.tempfile.mkdtemp(prefix="litchi-openapi-"))
        cls.server = LitchiServer(cls.tmp / "data", extra_args=["-j", "4", "--retries", "0",
                                                                "--login-rate", "1000"]).start()
        cls.admin_password = cls.server.admin_password
        result = add_user(cls.tmp / "data", "bob", "bob-password-1")
        if result.returncode != 0:
            raise AssertionError(result.describe())
        cls.bob_token = create_token(cls.tmp / "data", "bob")
        cls.bob = cls.server.client(cls.bob_token)
        cls.anonymous = cls.server.client()
        cls.doc = json.loads(DOCUMENT.read_text(encoding="utf-8"))

    @classmethod
    def tearDownClass(cls):
        cls.bob.close()
        cls.anonymous.close()
        cls.server.stop()
        cls.origin.__exit__(None, None, None)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def check_answers(self, records):
        """Runs check.mjs over `records`; fails with its report."""
        path = lt.make_temp_dir(self, "litchi-openapi-records-") / "records.json"
        path.write_text(json.dumps(records), encoding="utf-8")
        result = run_checker("answers", DOCUMENT, path)
        self.assertEqual(result.returncode, 0, f"{result.stdout}{result.stderr}")

    @staticmethod
    def record(method, template, response):
        return {"method": method, "path": template, "status": response.status,
                "content_type": response.header("content-type") or "",
                "body": response.body.decode("utf-8", errors="replace")}

    # -- the document itself ------------------------------------------------

    def test_document_is_served_without_authentication_as_the_file(self):
        response = self.anonymous.get("/api/openapi.json")
        self.assertEqual(response.status, 200, response)
        self.assertEqual(response.header("content-type"), "application/json")
        self.assertEqual(response.body, DOCUMENT.read_bytes())
        served = response.json()
        self.assertTrue(served["openapi"].startswith("3.1."), served["openapi"])
        # info.version is the server's own (the Server header, from CMakeLists.txt).
        version = SERVER_VERSION_RE.match(response.header("server") or "")
        self.assertIsNotNone(version, response.headers)
        self.assertEqual(served["info"]["version"], version.group(1))
        # A bad token does not matter either: the route needs none.
        self.assertEqual(self.anonymous.get("/api/openapi.json", token="lt_notatoken").status, 200)

    def test_standard_validator_accepts_the_document_and_rejects_a_broken_one(self):
        served = lt.make_temp_dir(self, "litchi-openapi-doc-") / "served.json"
        served.write_bytes(self.anonymous.get("/api/openapi.json").body)
        result = run_checker("validate", served)
        self.assertEqual(result.returncode, 0, f"{result.stdout}{result.stderr}")
        self.assertIn("valid OpenAPI 3.1 document", result.stdout)

        # The same checks fail on a document with a hole: they can fail.
        broken = json.loads(served.read_text(encoding="utf-8"))
        del broken["info"]
        broken["paths"]["/api/jobs"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] = {
            "$ref": "#/components/schemas/NoSuchSchema"}
        served.write_text(json.dumps(broken), encoding="utf-8")
        result = run_checker("validate", served)
        self.assertEqual(result.returncode, 1, f"{result.stdout}{result.stderr}")
        self.assertIn("info", result.stdout)
        self.assertIn("NoSuchSchema", result.stdout)

    # -- the router against the document, both ways ---------------------------

    def router_table(self):
        """{route key: {METHOD}} as `litchi serve --print-routes` lists the built router."""
        data = lt.make_temp_dir(self, "litchi-openapi-routes-")
        result = lt.run_litchi(["serve", "--print-routes", "--listen", "127.0.0.1:0", "--data", data],
                               timeout=120)
        self.assertEqual(result.returncode, 0, result.describe())
        self.assertNotIn("listening", result.stdout)
        table = {}
        for line in result.stdout.splitlines():
            match = re.fullmatch(r"([A-Z]+) (/\S*)", line)
            self.assertIsNotNone(match, f"not METHOD PATH: {line!r}")
            table.setdefault(route_key(match.group(2)), set()).add(match.group(1))
        return table

    def test_every_route_is_documented_and_every_documented_path_is_routed(self):
        routes = self.router_table()
        # The listing is the real table, not an empty one that would match anything.
        self.assertIn("POST", routes.get("/api/jobs", set()))
        self.assertIn("GET", routes.get("/api/openapi.json", set()))
        documented = {route_key(path): set(ops) for path, ops in documented_operations(self.doc).items()}
        for key in sorted(set(routes) | set(documented)):
            with self.subTest(path=key):
                self.assertIn(key, documented, f"the router has {sorted(routes[key])} {key}, the document "
                                               f"does not: add it to docs/openapi.json")
                self.assertIn(key, routes, f"the document has {key}, the router does not")
                self.assertEqual(documented[key], routes[key], f"methods of {key}: document vs router")

    def test_live_server_answers_each_documented_path_with_exactly_its_methods(self):
        for path, ops in documented_operations(self.doc).items():
            probe = next((m for m in PROBE_METHODS if m not in ops), None)
            self.assertIsNotNone(probe, path)
            with self.subTest(path=path, method=probe):
                response = self.anonymous.request(probe, concrete(path))
                self.assertEqual(response.status, 405, response)
                allow = {m.strip() for m in (response.header("allow") or "").split(",") if m.strip()}
                self.assertEqual(allow, set(ops))

    def test_operations_need_credentials_exactly_when_the_document_says(self):
        global_security = self.doc.get("security", [])
        records = []
        for path, ops in documented_operations(self.doc).items():
            for method, op in ops.items():
                open_route = op.get("security", global_security) == []
                with self.subTest(path=path, method=method):
                    response = self.anonymous.request(method, concrete(path))
                    unauthorized = response.status == 401 and response.json()["error"]["code"] == "unauthorized"
                    if open_route:
                        self.assertFalse(unauthorized, f"{method} {path} has security [] but asks for a token")
                    else:
                        self.assertTrue(unauthorized, f"{method} {path} needs a token, answered {response}")
                        self.assertEqual(response.header("www-authenticate"), "Bearer")
                    records.append(self.record(method, path, response))
        self.check_answers(records)

    # -- real answers against the schemas -------------------------------------

    def test_real_answers_match_the_document(self):
        records = []
        bob = self.bob

        def exchange(client, method, template, path=None, **kw):
            response = client.request(method, path or template, **kw)
            records.append(self.record(method, template, response))
            return response

        # Jobs: one that finishes (done, failed by status, bad URL), one to cancel.
        urls = [self.origin.url("/img/1.png"), self.origin.url("/img/2.jpg"), self.origin.url("/status/404"),
                "not a url"]
        job = exchange(bob, "POST", "/api/jobs", body={"name": "openapi", "urls": urls}).json()
        self.assertEqual(records[-1]["status"], 201)
        done = bob.wait_job(job["id"])
        self.assertEqual(done["counts"]["done"], 2, done)
        jid = f"/api/jobs/{job['id']}"
        exchange(bob, "POST", "/api/jobs", path="/api/jobs?name=text", body="\n".join(urls[:2]),
                 content_type="text/plain")
        exchange(bob, "POST", "/api/jobs", body={"urls": []})
        exchange(bob, "POST", "/api/jobs", body="{not json", content_type="application/json")
        exchange(bob, "POST", "/api/jobs", body="x", content_type="image/png")
        exchange(bob, "GET", "/api/jobs")
        exchange(bob, "GET", "/api/jobs/{id}", path=jid)
        exchange(bob, "GET", "/api/jobs/{id}", path="/api/jobs/999999")
        page = exchange(bob, "GET", "/api/jobs/{id}/items", path=f"{jid}/items?limit=1").json()
        self.assertIn("next", page)  # the optional field is exercised too
        items = exchange(bob, "GET", "/api/jobs/{id}/items", path=f"{jid}/items?limit=100").json()["items"]
        self.assertEqual({i["state"] for i in items}, {"done", "failed"})
        exchange(bob, "GET", "/api/jobs/{id}/items", path=f"{jid}/items?state=bogus")
        exchange(bob, "GET", "/api/jobs/{id}/progress", path=f"{jid}/progress")

        manifest = exchange(bob, "GET", "/api/jobs/{id}/manifest.jsonl", path=f"{jid}/manifest.jsonl")
        lines = [line for line in manifest.body.decode().splitlines() if line]
        self.assertEqual(len(lines), len(urls))
        records += [{"schema": "ManifestLine", "body": line} for line in lines]
        exchange(bob, "GET", "/api/jobs/{id}/archive.zip", path=f"{jid}/archive.zip")

        sha = next(i["sha256"] for i in items if i["state"] == "done")
        image = exchange(bob, "GET", "/api/images/{sha256}", path=f"/api/images/{sha}")
        self.assertEqual(image.status, 200, image)
        exchange(bob, "GET", "/api/images/{sha256}", path=f"/api/images/{sha}",
                 headers={"If-None-Match": image.header("etag")})
        exchange(bob, "GET", "/api/images/{sha256}", path=f"/api/images/{sha}?thumb=64")
        exchange(bob, "GET", "/api/images/{sha256}", path=f"/api/images/{sha}?thumb=5")
        exchange(bob, "GET", "/api/images/{sha256}", path="/api/images/" + "0" * 64)

        # State changes: 200 and 409 answers.
        exchange(bob, "POST", "/api/jobs/{id}/pause", path=f"{jid}/pause")  # done: 409
        exchange(bob, "POST", "/api/jobs/{id}/resume", path=f"{jid}/resume")  # done: no change
        exchange(bob, "POST", "/api/jobs/{id}/retry", path=f"{jid}/retry")
        slow = bob.create_job([self.origin.url(f"/img/{n}.png?delay=60000") for n in range(3)])
        sid = f"/api/jobs/{slow['id']}"
        exchange(bob, "POST", "/api/jobs/{id}/cancel", path=f"{sid}/cancel")
        exchange(bob, "POST", "/api/jobs/{id}/resume", path=f"{sid}/resume")  # cancelled: 409
        exchange(bob, "POST", "/api/jobs/{id}/cancel", path="/api/jobs/999999/cancel")
        exchange(bob, "DELETE", "/api/jobs/{id}", path=sid)
        exchange(bob, "DELETE", "/api/jobs/{id}", path=sid)  # gone: 404

        # Session: login (both forms and its errors), me, a cookie without Origin, logout.
        session = self.server.client()
        login = exchange(session, "POST", "/api/login",
                         body={"username": "admin", "password": self.admin_password})
        self.assertEqual(login.status, 200, login)
        exchange(session, "POST", "/api/login", body={"token": login.json()["token"]})
        exchange(session, "POST", "/api/login", body={"username": "admin", "password": "wrong"})
        exchange(session, "POST", "/api/login", body={"username": 7})
        exchange(session, "POST", "/api/login", body="[", content_type="application/json")
        exchange(session, "POST", "/api/login", body="user=admin", content_type="text/plain")
        session.cookie = f"litchi_session={login.json()['token']}"
        exchange(session, "GET", "/api/me")
        exchange(session, "POST", "/api/jobs/{id}/pause", path=f"{jid}/pause")  # no Origin: 403
        exchange(session, "POST", "/api/logout", headers={"Origin": self.server.base})
        session.close()

        # The event stream: its head only (the messages are docs/protocol.md's).
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        try:
            conn.request("GET", "/api/events", headers={"Authorization": f"Bearer {self.bob_token}"})
            stream = conn.getresponse()
            records.append({"method": "GET", "path": "/api/events", "status": stream.status,
                            "content_type": stream.getheader("content-type") or "", "body": ""})
            self.assertEqual(stream.status, 200)
        finally:
            conn.close()
        exchange(bob, "GET", "/api/events", path="/api/events?since=abc")

        exchange(self.anonymous, "GET", "/healthz")
        exchange(self.anonymous, "GET", "/metrics")
        exchange(self.anonymous, "GET", "/api/openapi.json")

        # Every status above is one the test meant to provoke (not, say, all 500s).
        statuses = {(r["method"], r["path"], r["status"]) for r in records if "status" in r}
        for expected in [("POST", "/api/jobs", 201), ("POST", "/api/jobs", 400), ("POST", "/api/jobs", 415),
                         ("GET", "/api/jobs/{id}", 404), ("GET", "/api/jobs/{id}/items", 400),
                         ("GET", "/api/images/{sha256}", 304), ("GET", "/api/images/{sha256}", 400),
                         ("GET", "/api/images/{sha256}", 404), ("POST", "/api/jobs/{id}/pause", 409),
                         ("POST", "/api/jobs/{id}/pause", 403), ("POST", "/api/jobs/{id}/cancel", 200),
                         ("POST", "/api/jobs/{id}/resume", 409), ("DELETE", "/api/jobs/{id}", 204),
                         ("DELETE", "/api/jobs/{id}", 404), ("POST", "/api/login", 200),
                         ("POST", "/api/login", 401), ("POST", "/api/login", 400), ("POST", "/api/login", 415),
                         ("POST", "/api/logout", 204), ("GET", "/api/me", 200), ("GET", "/api/events", 400),
                         ("GET", "/healthz", 200), ("GET", "/metrics", 200)]:
            self.assertIn(expected, statuses)
        self.check_answers(records)

    def test_checker_rejects_answers_the_document_does_not_allow(self):
        job = self.bob.create_job([self.origin.url("/img/9.png")])
        real = self.bob.get(f"/api/jobs/{job['id']}")
        body = real.json()
        body["surprise"] = True  # a field the document does not have
        records = [
            {"method": "GET", "path": "/api/jobs/{id}", "status": 200, "content_type": "application/json",
             "body": json.dumps(body)},
            {"method": "GET", "path": "/api/jobs/{id}", "status": 418, "content_type": "application/json",
             "body": real.body.decode()},
            {"method": "GET", "path": "/api/jobs/{id}", "status": 200, "content_type": "text/html",
             "body": real.body.decode()},
            {"method": "PUT", "path": "/api/jobs/{id}", "status": 200, "content_type": "application/json",
             "body": real.body.decode()},
        ]
        path = lt.make_temp_dir(self, "litchi-openapi-records-") / "records.json"
        path.write_text(json.dumps(records), encoding="utf-8")
        result = run_checker("answers", DOCUMENT, path)
        self.assertEqual(result.returncode, 1, f"{result.stdout}{result.stderr}")
        report = result.stdout.splitlines()
        self.assertEqual(len(report), 4, result.stdout)
        self.assertRegex(report[0], "additional properties|unevaluated properties")
        self.assertIn("418", report[1])
        self.assertIn("text/html", report[2])
        self.assertIn("no such operation", report[3])


if __name__ == "__main__":
    unittest.main()
