"""What a signed-in user does to their account and jobs through the API, on a
real server over real sockets, once on SQLite and once on PostgreSQL:

- GET /api/me says how the request is signed in; GET/POST/DELETE /api/tokens
  list (never the secret), create (shown once) and revoke tokens (the
  revoked token's event stream closes, as at logout); POST /api/me/password
  (403 on a wrong current password, 400 naming the limits; CSRF like every
  cookie write);
- job ids are never reused after the newest job is deleted;
- PATCH /api/jobs/{id} renames (trimmed, limited, 400 otherwise) and the
  event stream carries the new name;
- POST /api/jobs/{id}/retry requeues transient failures by default, the
  reasons asked for otherwise, and says how many ("requeued");
- POST /api/jobs drops blank, comment and duplicate lines and reports the
  duplicates; a URL with credentials is refused as bad_url;
- archive.zip holds manifest.jsonl, and ?names=url names files from URLs.
"""

import io
import json
import time
import unittest
import zipfile

import litchi_testing as lt
import live_testing as live
from pg_testing import shared_postgres
from test_server import LitchiServer, assert_error


class AccountApiBase:
    """The tests; the subclasses pick the store."""

    def store_args(self):
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        cls.origin = lt.Origin().__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.origin.__exit__(None, None, None)

    def setUp(self):
        self.tmp = lt.make_temp_dir(self)
        self.server = LitchiServer(self.tmp / "data",
                                   extra_args=["-j", "4", "--retries", "0", *self.store_args()]).start()
        self.addCleanup(self.server.stop)
        self.admin = self.server.client(self.server.admin_link_token)
        self.addCleanup(self.admin.close)

    def cookie_client(self):
        """A browser-like client: the session cookie and the server's Origin."""
        client = self.server.client()
        response = client.post("/api/login", {"username": "admin", "password": self.server.admin_password})
        self.assertEqual(response.status, 200, response)
        client.cookie = f"litchi_session={response.json()['token']}"
        self.addCleanup(client.close)
        return client

    def img(self, label):
        return self.origin.url(f"/img/{label}.png")

    # -- account -----------------------------------------------------------

    def test_me_says_how_the_request_is_signed_in(self):
        me = self.admin.get("/api/me").json()
        self.assertEqual(me["name"], "admin")
        self.assertIs(me["session"], True)  # the link's exchange gave a session
        api = self.admin.post("/api/tokens", {"name": "script"}).json()
        me_api = self.server.client(api["token"]).get("/api/me").json()
        self.assertIs(me_api["session"], False)
        self.assertEqual(me_api["token_kind"], "api")
        self.assertEqual(me_api["token_id"], api["id"])

    def test_tokens_are_listed_created_once_and_revoked(self):
        created = self.admin.post("/api/tokens", {"name": "  backup job  "})
        self.assertEqual(created.status, 201, created)
        token = created.json()
        self.assertRegex(token["token"], r"^lt_[A-Za-z0-9_-]{40,}$")
        self.assertEqual(token["name"], "backup job")
        self.assertEqual(token["kind"], "api")
        unnamed = self.admin.post("/api/tokens")
        self.assertEqual(unnamed.status, 201, unnamed)
        self.assertNotIn("name", unnamed.json())

        listed = self.admin.get("/api/tokens")
        self.assertEqual(listed.status, 200, listed)
        tokens = listed.json()["tokens"]
        self.assertNotIn(token["token"], listed.body.decode())
        self.assertNotIn("token", {key for t in tokens for key in t})
        by_id = {t["id"]: t for t in tokens}
        self.assertEqual(by_id[token["id"]]["name"], "backup job")
        self.assertEqual([t["kind"] for t in tokens if t["current"]], ["session"])
        self.assertTrue(all(set(t) >= {"id", "kind", "created", "last_used", "current"} for t in tokens))

        # The new token works; its event stream ends when it is revoked.
        api = self.server.client(token["token"])
        self.addCleanup(api.close)
        self.assertEqual(api.get("/api/jobs").status, 200)
        sse = live.SseReader(self.server.port, token["token"])
        self.addCleanup(sse.close)
        self.assertEqual(sse.next_event()["data"]["type"], "hello")
        self.assertEqual(self.admin.delete(f"/api/tokens/{token['id']}").status, 204)
        while sse.next_event() is not None:
            pass
        self.assertTrue(sse.ended)
        assert_error(self, api.get("/api/jobs"), 401, "unauthorized")
        self.assertNotIn(token["id"], {t["id"] for t in self.admin.get("/api/tokens").json()["tokens"]})
        # Twice, or someone else's, or nonsense: 404.
        assert_error(self, self.admin.delete(f"/api/tokens/{token['id']}"), 404, "not_found")
        assert_error(self, self.admin.delete("/api/tokens/abc"), 404, "not_found")
        bad = self.admin.post("/api/tokens", {"name": "x" * 101})
        assert_error(self, bad, 400, "invalid_body")
        assert_error(self, self.admin.post("/api/tokens", {"name": 5}), 400, "invalid_body")

    def test_token_routes_are_csrf_protected_for_cookies(self):
        browser = self.cookie_client()
        assert_error(self, browser.post("/api/tokens", {}), 403, "forbidden_origin")
        created = browser.post("/api/tokens", {}, headers={"Origin": self.server.base})
        self.assertEqual(created.status, 201, created)
        assert_error(self, browser.delete(f"/api/tokens/{created.json()['id']}"), 403, "forbidden_origin")
        assert_error(self, browser.post("/api/me/password", {"current": "x", "new": "y" * 10}), 403,
                     "forbidden_origin")

    def test_change_password(self):
        old = self.server.admin_password
        wrong = self.admin.post("/api/me/password", {"current": "not-the-password", "new": "new-password-1"})
        assert_error(self, wrong, 403, "wrong_password")
        short = self.admin.post("/api/me/password", {"current": old, "new": "short"})
        assert_error(self, short, 400, "invalid_body")
        self.assertIn("8 to 1024 characters", short.json()["error"]["message"])
        assert_error(self, self.admin.post("/api/me/password", {"current": old}), 400, "invalid_body")
        assert_error(self, self.admin.post("/api/me/password", "nope", content_type="text/plain"), 415)
        changed = self.admin.post("/api/me/password", {"current": old, "new": "new-password-1"})
        self.assertEqual(changed.status, 204, changed)
        login = self.server.client()
        self.addCleanup(login.close)
        assert_error(self, login.post("/api/login", {"username": "admin", "password": old}), 401)
        self.assertEqual(login.post("/api/login", {"username": "admin", "password": "new-password-1"}).status, 200)
        self.assertNotIn("new-password-1", self.server.stderr_so_far())

    # -- jobs --------------------------------------------------------------

    def test_job_ids_are_never_reused(self):
        first = self.admin.create_job([self.img("ida")])
        newest = self.admin.create_job([self.img("idb")])
        self.assertEqual(self.admin.delete(f"/api/jobs/{newest['id']}").status, 204)
        after = self.admin.create_job([self.img("idc")])
        self.assertGreater(after["id"], newest["id"])
        assert_error(self, self.admin.get(f"/api/jobs/{newest['id']}"), 404, "not_found")
        assert_error(self, self.admin.delete(f"/api/jobs/{newest['id']}"), 404, "not_found")
        self.assertEqual(self.admin.job(after["id"])["id"], after["id"])
        self.assertEqual(self.admin.job(first["id"])["id"], first["id"])
        # Still after a restart (the counter is stored, not in memory).
        self.server.stop()
        self.server.start()
        client = self.server.client(self.admin.token)
        self.addCleanup(client.close)
        self.assertEqual(client.delete(f"/api/jobs/{after['id']}").status, 204)
        again = client.create_job([self.img("idd")])
        self.assertGreater(again["id"], after["id"])

    def test_rename_job(self):
        job = self.admin.create_job([self.img("rn")], name="before")
        sse = live.SseReader(self.server.port, self.admin.token)
        self.addCleanup(sse.close)
        self.assertEqual(sse.next_event()["data"]["type"], "hello")
        renamed = self.admin.request("PATCH", f"/api/jobs/{job['id']}", body={"name": "  after  "})
        self.assertEqual(renamed.status, 200, renamed)
        self.assertEqual(renamed.json()["name"], "after")
        self.assertEqual(self.admin.job(job["id"])["name"], "after")
        # Watchers see the new name in a progress message for the job.
        deadline = time.monotonic() + 30
        while True:
            self.assertLess(time.monotonic(), deadline, "no message carried the new name")
            data = sse.next_event()["data"]
            if data.get("job", {}).get("id") == job["id"] and data["job"].get("name") == "after":
                break
        for body, code in (({"name": "   "}, 400), ({"name": "x" * 201}, 400), ({"name": 3}, 400), ({}, 400)):
            with self.subTest(body=str(body)[:30]):
                assert_error(self, self.admin.request("PATCH", f"/api/jobs/{job['id']}", body=body), code,
                             "invalid_body")
        assert_error(self, self.admin.request("PATCH", "/api/jobs/999999", body={"name": "x"}), 404)
        bob_token = self.make_second_user()
        bob = self.server.client(bob_token)
        self.addCleanup(bob.close)
        assert_error(self, bob.request("PATCH", f"/api/jobs/{job['id']}", body={"name": "mine"}), 404)

    def make_second_user(self):
        args = ["--data", self.tmp / "data", *self.store_args()]
        added = lt.run_litchi(["user", "add", "bob", *args], stdin_text="bob-password-1\n", timeout=60)
        self.assertEqual(added.returncode, 0, added.describe())
        created = lt.run_litchi(["token", "create", "bob", *args], timeout=60)
        self.assertEqual(created.returncode, 0, created.describe())
        return created.stdout.strip()

    def test_retry_transient_by_default_and_by_reason(self):
        urls = [self.img("ok1"), self.origin.url("/status/404"), self.origin.url("/status/503"),
                "http://user:pw@127.0.0.1:9/a.png", self.origin.url("/status/500")]
        job = self.admin.create_job(urls)
        self.admin.wait_job(job["id"])
        failed = {i["url"]: i for i in self.admin.all_items(job["id"], state="failed")}
        self.assertEqual(failed["http://user:pw@127.0.0.1:9/a.png"]["reason"], "bad_url")
        self.assertEqual(len(failed), 4)

        # No body: only the transient ones (the 503 and the 500).
        retried = self.admin.post(f"/api/jobs/{job['id']}/retry")
        self.assertEqual(retried.status, 200, retried)
        self.assertEqual(retried.json()["requeued"], 2)
        self.assertEqual(retried.json()["id"], job["id"])
        done = self.admin.wait_job(job["id"])
        self.assertEqual(done["counts"]["failed"], 4)  # they failed again, the same way

        # By reason: "http" takes every HTTP failure, the 404 too; bad_url never.
        by_reason = self.admin.post(f"/api/jobs/{job['id']}/retry", {"reasons": ["http", "bad_url"]})
        self.assertEqual(by_reason.status, 200, by_reason)
        self.assertEqual(by_reason.json()["requeued"], 3)
        self.admin.wait_job(job["id"])
        nothing = self.admin.post(f"/api/jobs/{job['id']}/retry", {"reasons": ["timeout"]})
        self.assertEqual(nothing.json()["requeued"], 0)

        for body in ({"reasons": ["nonsense"]}, {"reasons": "http"}, {"reasons": []}, {"reasons": [404]}):
            with self.subTest(body=body):
                assert_error(self, self.admin.post(f"/api/jobs/{job['id']}/retry", body), 400, "invalid_body")
        assert_error(self, self.admin.post(f"/api/jobs/{job['id']}/retry", "{", content_type="application/json"),
                     400, "malformed_json")

    def test_url_list_rule_on_create(self):
        text = "\n".join(["# my list", self.img("u1"), "", "  " + self.img("u1") + "  ", self.img("u2"),
                          "http://user:pw@127.0.0.1:9/x.png", self.img("u2")])
        created = self.admin.post("/api/jobs", text, content_type="text/plain")
        self.assertEqual(created.status, 201, created)
        self.assertEqual(created.json()["duplicates"], 2)
        self.assertEqual(created.json()["counts"]["total"], 3)
        as_json = self.admin.post("/api/jobs", {"urls": [self.img("u1"), "#c", " ", self.img("u1")]})
        self.assertEqual(as_json.status, 201, as_json)
        self.assertEqual((as_json.json()["counts"]["total"], as_json.json()["duplicates"]), (1, 1))
        only_comments = self.admin.post("/api/jobs", "# nothing\n\n", content_type="text/plain")
        assert_error(self, only_comments, 400, "no_urls")

    def test_archive_holds_manifest_and_url_names(self):
        urls = [self.origin.url("/dir/c1/cat.png"), self.origin.url("/dir/c2/cat.png?size=big"),
                self.origin.url("/status/404"), self.origin.url("/same/a.png"), self.origin.url("/same/b.png"),
                self.origin.url("/dir/w1/we%20ird%3Cname%3E.png"), self.origin.url("/dir/n1/%3C%3E.png")]
        job = self.admin.create_job(urls)
        self.admin.wait_job(job["id"])
        plain = zipfile.ZipFile(io.BytesIO(self.admin.get(f"/api/jobs/{job['id']}/archive.zip").body))
        names = plain.namelist()
        self.assertEqual(names[-1], "manifest.jsonl")
        manifest = [json.loads(line) for line in plain.read("manifest.jsonl").decode().splitlines()]
        self.assertEqual([m["url"] for m in manifest], urls)
        for m in manifest:
            if m["status"] == "done":
                self.assertIn(m["file"], names)
                self.assertRegex(m["file"], r"^[0-9a-f]{64}\.png$")
        by_url = zipfile.ZipFile(io.BytesIO(self.admin.get(f"/api/jobs/{job['id']}/archive.zip?names=url").body))
        url_names = by_url.namelist()
        url_manifest = [json.loads(line) for line in by_url.read("manifest.jsonl").decode().splitlines()]
        files = {m["url"]: m.get("file") for m in url_manifest}
        self.assertEqual(files[urls[0]], "cat.png")
        self.assertEqual(files[urls[1]], "cat-2.png")  # other bytes, the same name: deduplicated
        self.assertIsNone(files[urls[2]])
        self.assertEqual(files[urls[3]], "a.png")
        self.assertEqual(files[urls[4]], "a.png")  # the same bytes: one entry, both point at it
        self.assertEqual(files[urls[5]], "we_ird_name.png")  # sanitised
        self.assertEqual(files[urls[6]], "image.png")  # nothing usable left
        self.assertEqual(sorted(url_names), sorted({f for f in files.values() if f} | {"manifest.jsonl"}))
        for m in url_manifest:
            if m["status"] == "done":
                self.assertEqual(len(by_url.read(m["file"])), m["bytes"])
        assert_error(self, self.admin.get(f"/api/jobs/{job['id']}/archive.zip?names=nope"), 400, "bad_query")


class AccountApiOnSqlite(AccountApiBase, unittest.TestCase):
    def store_args(self):
        return []


class AccountApiOnPostgres(AccountApiBase, unittest.TestCase):
    def store_args(self):
        if not hasattr(self, "_db"):
            self._db = shared_postgres().fresh_database()
        return ["--db", self._db]


if __name__ == "__main__":
    unittest.main()
