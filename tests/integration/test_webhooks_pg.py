"""Completion webhooks on PostgreSQL: the outbox, its trigger and the
claims (FOR UPDATE SKIP LOCKED + lease) on a real PostgreSQL 15 (the
harness's throwaway server, pg_testing.py), with real `litchi serve` nodes.

What users rely on: the same signed delivery as on SQLite, a retry after a
500 with the same id, a delivery owed when a node is killed (kill -9) sent
after its restart, and with several nodes on one database every delivery
sent once (no two nodes send the same one).
"""

import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cluster_testing as ct  # noqa: E402
import litchi_testing as lt  # noqa: E402
import pg_testing  # noqa: E402
from test_server import LitchiServer  # noqa: E402
from test_webhooks import FAST_RETRIES, SECRET, check_signed_delivery, wait_delivery_state  # noqa: E402
from webhook_testing import Receiver  # noqa: E402


class PgWebhookTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = pg_testing.shared_postgres()

    def test_signed_delivery_and_retry_after_500(self):
        tmp = lt.make_temp_dir(self)
        with lt.Origin() as origin, Receiver(script=[500]) as hook:
            server = LitchiServer(tmp / "data", extra_args=["--db", self.pg.fresh_database(), "--retries", "0",
                                                            *FAST_RETRIES]).start()
            self.addCleanup(server.stop)
            client = server.client(server.admin_link_token)
            self.addCleanup(client.close)
            response = client.post("/api/jobs", {"urls": [origin.url("/img/pgwh0.png"), origin.url("/status/404")],
                                                 "headers": {"X-Api-Key": "k-123"}, "retries": 0,
                                                 "webhook": {"url": hook.url(), "secret": SECRET}})
            self.assertEqual(response.status, 201, response)
            job = response.json()
            self.assertEqual(job["headers"], {"X-Api-Key": "<redacted>"})
            first, second = hook.wait_for(2)
            self.assertEqual(first.id, second.id)
            self.assertEqual(first.body, second.body)
            body = check_signed_delivery(self, second, SECRET, "failed", job["id"])
            self.assertEqual((body["job"]["counts"]["done"], body["job"]["counts"]["failed"]), (1, 1))
            shown = wait_delivery_state(self, client, job["id"], ("delivered",))
            last = shown["webhook"]["last_delivery"]
            self.assertEqual((last["attempts"], last["http_status"]), (2, 200), last)
            self.assertEqual(shown["retries"], 0)

    def test_kill_9_between_job_end_and_delivery(self):
        tmp = lt.make_temp_dir(self)
        with lt.Origin() as origin, Receiver(hold_first=True) as hook:
            # --lease 2: the killed node's claim on the delivery runs out soon after the restart.
            server = LitchiServer(tmp / "data", extra_args=["--db", self.pg.fresh_database(), "--lease", "2",
                                                            *FAST_RETRIES]).start()
            self.addCleanup(lambda: server.process and server.stop())
            token = server.admin_link_token
            client = server.client(token)
            response = client.post("/api/jobs", {"urls": [origin.url("/img/pgwh-crash.png")],
                                                 "webhook": {"url": hook.url(), "secret": SECRET}})
            self.assertEqual(response.status, 201, response)
            job_id = response.json()["id"]
            hook.wait_for(1)
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
            wait_delivery_state(self, client, job_id, ("delivered",))

    def test_two_nodes_send_each_delivery_once(self):
        tmp = lt.make_temp_dir(self)
        with lt.Origin() as origin, Receiver() as hook:
            cluster = ct.Cluster(self.pg.fresh_database(), tmp, count=2, extra_args=FAST_RETRIES).start()
            self.addCleanup(cluster.stop)
            token = cluster.add_user("carol")
            clients = [node.client(token) for node in cluster.nodes]
            jobs = []
            for i in range(8):
                client = clients[i % 2]
                response = client.post("/api/jobs", {"urls": [origin.url(f"/img/pg2n{i}.png")],
                                                     "webhook": {"url": hook.url(f"/j{i}"), "secret": SECRET}})
                self.assertEqual(response.status, 201, response)
                jobs.append(response.json()["id"])
            deliveries = hook.wait_for(8)
            for job_id in jobs:
                wait_delivery_state(self, clients[0], job_id, ("delivered",))
            # Every job delivered; all answered 200 at once, so nothing was sent twice.
            self.assertEqual(hook.count(), 8, hook.deliveries)
            self.assertEqual(sorted(d.json()["job"]["id"] for d in deliveries), sorted(jobs))
            self.assertEqual(len({d.id for d in deliveries}), 8)


if __name__ == "__main__":
    unittest.main()
