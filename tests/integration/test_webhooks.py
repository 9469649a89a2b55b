"""Completion webhooks on the embedded store (SQLite), end to end: a real
`litchi serve`, the test origin for the job's images, and a receiver in this
process (webhook_testing.Receiver) that records every POST and checks its
signature with the secret the job was given.

What users rely on: one signed POST per job end with the event, the finished
job and its counts; the same delivery id and body on every retry (after a
500 here); a webhook URL the address guard refuses is refused (400 at
creation for an IP literal, a failed delivery with no request sent for a
name that resolves to loopback); and a delivery owed when the server is
killed (kill -9) is sent after the restart.
"""

import json
import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import litchi_testing as lt  # noqa: E402
from test_server import LitchiServer, assert_error  # noqa: E402
from webhook_testing import Receiver, signature_ok  # noqa: E402

SECRET = "whsec-9d2f6b1a7c3e5d8f"
FAST_RETRIES = ["--webhook-retry-base", "100", "--webhook-retry-cap", "400", "--webhook-poll", "50"]


def wait_delivery_state(testcase, client, job_id, states, timeout=60):
    """Polls the job until its last_delivery is in `states`; returns the job."""
    deadline = time.monotonic() + timeout
    job = None
    while time.monotonic() < deadline:
        job = client.job(job_id)
        last = job.get("webhook", {}).get("last_delivery")
        if last and last["state"] in states:
            return job
        time.sleep(0.05)
    testcase.fail(f"job {job_id}'s delivery not in {states} after {timeout}s: {job}")


def check_signed_delivery(testcase, delivery, secret, event, job_id):
    testcase.assertTrue(signature_ok(delivery, secret), delivery)
    testcase.assertEqual(delivery.headers.get("content-type"), "application/json")
    testcase.assertEqual(delivery.event, event)
    testcase.assertRegex(delivery.id or "", r"^[0-9a-f]{32}$")
    testcase.assertTrue(delivery.headers.get("user-agent", "").startswith("litchi/"), delivery.headers)
    body = delivery.json()
    testcase.assertEqual(body["event"], event)
    testcase.assertEqual(body["delivery"], delivery.id)
    testcase.assertEqual(body["job"]["id"], job_id)
    return body


class WebhookTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.origin = lt.Origin().__enter__()
        cls.tmp = Path(lt.tempfile.mkdtemp(prefix="litchi-webhooks-"))
        cls.server = LitchiServer(cls.tmp / "data", extra_args=["-j", "4", "--retries", "0", *FAST_RETRIES]).start()
        cls.client = cls.server.client(cls.server.admin_link_token)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.server.stop()
        cls.origin.__exit__(None, None, None)
        lt.shutil.rmtree(cls.tmp, ignore_errors=True)
        if SECRET in cls.server.stderr_so_far():
            raise AssertionError("the server's log holds a webhook secret")

    def create(self, body):
        response = self.client.post("/api/jobs", body)
        self.assertEqual(response.status, 201, response)
        return response.json()

    def test_done_job_gets_one_signed_delivery(self):
        with Receiver() as hook:
            job = self.create({"urls": [self.origin.url(f"/img/wh-done{i}.png") for i in range(2)],
                               "webhook": {"url": hook.url("/done"), "secret": SECRET}})
            self.assertEqual(job["webhook"], {"url": hook.url("/done"), "events": ["done", "failed", "cancelled"],
                                              "secret": True})
            [delivery] = hook.wait_for(1)
            self.assertEqual(delivery.path, "/done")
            body = check_signed_delivery(self, delivery, SECRET, "done", job["id"])
            self.assertEqual(body["job"]["state"], "done")
            self.assertEqual(body["job"]["counts"]["done"], 2)
            self.assertEqual(body["job"]["counts"]["total"], 2)
            shown = wait_delivery_state(self, self.client, job["id"], ("delivered",))
            last = shown["webhook"]["last_delivery"]
            self.assertEqual((last["id"], last["event"], last["attempts"], last["http_status"]),
                             (delivery.id, "done", 1, 200), last)
            self.assertNotIn(SECRET, self.client.get(f"/api/jobs/{job['id']}").body.decode())
            self.assertEqual(hook.count(), 1)

    def test_retry_after_500_keeps_the_delivery_id_and_body(self):
        with Receiver(script=[500]) as hook:
            job = self.create({"urls": [self.origin.url("/img/wh-r0.png"), self.origin.url("/status/404")],
                               "webhook": {"url": hook.url(), "secret": SECRET}})
            first, second = hook.wait_for(2)
            for delivery in (first, second):
                body = check_signed_delivery(self, delivery, SECRET, "failed", job["id"])
                self.assertEqual(body["job"]["counts"]["failed"], 1)
                self.assertEqual(body["job"]["counts"]["done"], 1)
            self.assertEqual(first.id, second.id)
            self.assertEqual(first.body, second.body)
            shown = wait_delivery_state(self, self.client, job["id"], ("delivered",))
            last = shown["webhook"]["last_delivery"]
            self.assertEqual((last["attempts"], last["http_status"]), (2, 200), last)

    def test_events_choose_which_ends_are_sent(self):
        with Receiver() as hook:
            quiet = self.create({"urls": [self.origin.url("/img/wh-quiet.png")],
                                 "webhook": {"url": hook.url("/quiet"), "events": ["cancelled"]}})
            done = self.client.wait_job(quiet["id"])
            # Owed deliveries are written with the end itself: none for an event not asked for.
            self.assertNotIn("last_delivery", done["webhook"])
            slow = self.create({"urls": [self.origin.url(f"/img/wh-slow{i}.png?delay=5000") for i in range(4)],
                                "webhook": {"url": hook.url("/cancel"), "events": ["cancelled"]}})
            self.assertEqual(self.client.post(f"/api/jobs/{slow['id']}/cancel").status, 200)
            [delivery] = hook.wait_for(1)
            self.assertEqual(delivery.path, "/cancel")
            body = check_signed_delivery(self, delivery, "", "cancelled", slow["id"])
            self.assertEqual(body["job"]["state"], "cancelled")
            wait_delivery_state(self, self.client, slow["id"], ("delivered",))
            self.assertEqual([d.path for d in hook.wait_for(1)], ["/cancel"])
            self.assertNotIn("last_delivery", self.client.job(quiet["id"])["webhook"])

    def test_bad_webhooks_are_refused(self):
        url = self.origin.url("/img/wh-bad.png")
        for webhook in ("http://127.0.0.1/x", {"secret": "s"}, {"url": 5}, {"url": "ftp://127.0.0.1/x"},
                        {"url": "http://user:pw@127.0.0.1/x"}, {"url": "not a url"},
                        {"url": "http://127.0.0.1/x", "events": ["finished"]},
                        {"url": "http://127.0.0.1/x", "events": []},
                        {"url": "http://127.0.0.1/x", "secret": "a\nb"}):
            with self.subTest(webhook=webhook):
                assert_error(self, self.client.post("/api/jobs", {"urls": [url], "webhook": webhook}), 400,
                             "bad_webhook")


class WebhookGuardTest(unittest.TestCase):
    """Without --allow-private, as a server on the internet runs."""

    def test_blocked_webhook_addresses(self):
        tmp = lt.make_temp_dir(self)
        with Receiver() as hook:
            server = LitchiServer(tmp / "data", allow_private=False, extra_args=FAST_RETRIES).start()
            self.addCleanup(server.stop)
            client = server.client(server.admin_link_token)
            self.addCleanup(client.close)
            # An IP literal the guard refuses: 400 at creation, naming the reason.
            response = client.post("/api/jobs", {"urls": ["http://127.0.0.1:1/a.png"],
                                                 "webhook": {"url": hook.url(), "secret": SECRET}})
            assert_error(self, response, 400, "bad_webhook")
            self.assertIn("blocked_address", response.json()["error"]["message"])
            # A name: judged at connect time. localhost is loopback: the delivery fails, unsent.
            response = client.post("/api/jobs", {"urls": ["http://127.0.0.1:1/a.png"],
                                                 "webhook": {"url": f"http://localhost:{hook.port}/hook"}})
            self.assertEqual(response.status, 201, response)
            job = response.json()
            shown = wait_delivery_state(self, client, job["id"], ("failed",))
            last = shown["webhook"]["last_delivery"]
            self.assertEqual(last["event"], "failed")  # every line was refused: a job with failed items
            self.assertIn("blocked_address", last["error"])
            self.assertEqual(last["attempts"], 1)
            self.assertEqual(hook.count(), 0)


class WebhookCrashTest(unittest.TestCase):
    def test_kill_9_between_job_end_and_delivery(self):
        tmp = lt.make_temp_dir(self)
        with lt.Origin() as origin, Receiver(hold_first=True) as hook:
            server = LitchiServer(tmp / "data", extra_args=FAST_RETRIES).start()
            self.addCleanup(lambda: server.process and server.stop())
            token = server.admin_link_token
            client = server.client(token)
            response = client.post("/api/jobs", {"urls": [origin.url("/img/wh-crash.png")],
                                                 "webhook": {"url": hook.url(), "secret": SECRET}})
            self.assertEqual(response.status, 201, response)
            job_id = response.json()["id"]
            # The job ended and its delivery is in flight (the receiver holds it).
            [first] = hook.wait_for(1)
            client.close()
            self.assertEqual(server.kill().returncode, -9)
            hook.release()
            server.start()
            client = server.client(token)
            self.addCleanup(client.close)
            first, second = hook.wait_for(2)
            self.assertEqual(first.id, second.id)
            self.assertEqual(first.body, second.body)
            check_signed_delivery(self, second, SECRET, "done", job_id)
            shown = wait_delivery_state(self, client, job_id, ("delivered",))
            self.assertEqual(shown["webhook"]["last_delivery"]["attempts"], 2)


if __name__ == "__main__":
    unittest.main()
