"""A Litchi cluster on one machine: a throwaway PostgreSQL, three `litchi serve`
nodes (n1, n2, n3) sharing it and one blob folder, and the test origin whose
images take a delay, all on 127.0.0.1. What users of a cluster rely on:

  a. a job posted to one node is seen on every node, over WebSocket and SSE,
     as the same stream (seq S is the same message everywhere), with exact
     final counts, and each image is downloaded once;
  b. kill -9 of a node mid-job: its watcher fails over to another node and
     resumes with no gap and no duplicate; its claimed items are finished by
     the others once their lease ran out; its .part files are swept;
  c. a node frozen (SIGSTOP) past its lease: its late results are refused by
     the fence (nothing counted twice), and it works normally afterwards;
  d. PostgreSQL stopped and restarted mid-job: the nodes stay up, /healthz
     says 503 degraded while it is down, and the job finishes exactly;
  e. one user never sees another's job, on any node, by any route;
  f. the log is durable: after every node restarted, a client holding seq S
     gets a replay (not a snapshot) from any node;
  g. a job created on one node can be followed item by item on another at
     once (the 201 is all a client waits for);
  h. a pause or a cancel on one node stops every node's transfers of the job
     at once (not when their leases come round), with exact counts.

Each case gets a fresh database and fresh nodes; (d) its own PostgreSQL.
Waits are on conditions with deadlines (cluster_testing.wait_for).
"""

import json
import signal
import sys
import time
import unittest
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cluster_testing as ct  # noqa: E402
import litchi_testing as lt  # noqa: E402
import live_testing as live  # noqa: E402
from pg_testing import TempPostgres  # noqa: E402

JOB_TIMEOUT = 180
FINAL_STATES = ("done", "cancelled")


class ClusterCase(unittest.TestCase):
    """A PostgreSQL server and an origin per class; a fresh database and a
    fresh cluster per test (make_cluster)."""

    @classmethod
    def setUpClass(cls):
        cls.pg = TempPostgres()
        cls.origin = lt.Origin().__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.origin.stop()
        cls.pg.stop()

    def make_cluster(self, lease=30, jobs=4, extra_args=()):
        root = lt.make_temp_dir(self, prefix="litchi-cluster-")
        cluster = ct.Cluster(self.pg.fresh_database(), root, count=3, lease=lease,
                             extra_args=["-j", str(jobs), *extra_args])
        self.addCleanup(self.stop_cluster, cluster)
        cluster.start()
        self.alice = cluster.add_user("alice")
        self.bob = cluster.add_user("bob")
        return cluster

    def stop_cluster(self, cluster):
        for watcher in getattr(self, "_watchers", []):
            watcher.stop()
        results = cluster.stop()
        for name, result in results.items():
            # A node stopped by SIGTERM exits 0; one we killed is already gone.
            if result is not None and result.returncode not in (0, -signal.SIGKILL):
                print(f"{name}: {result.describe()}", file=sys.stderr)

    def watch(self, kind, ports, token, **kw):
        watcher = ct.Watcher(kind, ports, token, **kw)
        self._watchers = getattr(self, "_watchers", []) + [watcher]
        return watcher.start()

    def urls(self, count, prefix, delay_ms):
        return [self.origin.url(f"/img/{prefix}{i}.png?delay={delay_ms}") for i in range(count)]

    def origin_counts(self, prefix):
        return {path: n for path, n in self.origin.request_counts().items() if path.startswith(f"/img/{prefix}")}

    def assert_contiguous(self, watcher):
        """hello first; every job-level seq = previous + 1 across the whole
        recording (reconnects included: a resume's replay continues the run);
        no snapshot; counts never go back. Returns the job-level messages."""
        messages = watcher.messages()
        self.assertEqual(messages[0]["type"], "hello", messages[:2])
        self.assertNotIn("snapshot", [m["type"] for m in messages])
        position = messages[0]["seq"]
        epoch = messages[0]["epoch"]
        seen = {}
        job_level = []
        for message in messages[1:]:
            if message["type"] == "hello":
                # A reconnection: the hello carries the stream's current seq
                # without consuming one, and the replay continues from ours.
                self.assertEqual(message["epoch"], epoch, "the stream changed epoch on another node")
                self.assertGreaterEqual(message["seq"], position)
                continue
            if message["type"] in ct.JOB_LEVEL:
                self.assertEqual(message["seq"], position + 1, f"gap or duplicate after seq {position}: {message}")
                position = message["seq"]
                live.job_counts_never_decrease(self, seen, message["job"])
                job_level.append(message)
        return job_level

    def assert_job_exact(self, cluster, token, job_id, total):
        """The job is done with every item done exactly once, on every live node's API."""
        views = []
        for node in cluster.live_nodes():
            job = node.client(token).job(job_id)
            views.append(job)
            self.assertEqual(job["state"], "done", (node.name, job))
            self.assertEqual(job["counts"], {"total": total, "queued": 0, "active": 0, "done": total, "failed": 0,
                                             "cancelled": 0}, node.name)
        self.assertTrue(all(v == views[0] for v in views), views)
        items = cluster.live_nodes()[0].client(token).all_items(job_id, limit=500)
        self.assertEqual(len(items), total)
        self.assertEqual(len({item["id"] for item in items}), total)
        self.assertEqual(Counter(item["state"] for item in items), Counter({"done": total}))
        # Counted twice would show in the bytes too.
        self.assertEqual(views[0]["bytes"], sum(item["bytes"] for item in items))
        # And in the database itself.
        rows = cluster.sql(f"SELECT state, count(*) FROM items WHERE job_id = {int(job_id)} GROUP BY state")
        self.assertEqual(rows, [["done", str(total)]])
        return views[0], items


class ClusterTest(ClusterCase):
    def test_a_one_job_seen_identically_on_every_node(self):
        cluster = self.make_cluster()
        n1, n2, n3 = cluster.nodes
        total = 200
        done = ct.job_state_is(None, ("done",))
        watchers = [self.watch("ws", [n2.port], self.alice, until=done),
                    self.watch("ws", [n3.port], self.alice, until=done),
                    self.watch("sse", [n2.port], self.alice, until=done),
                    self.watch("sse", [n3.port], self.alice, until=done)]
        job = n1.client(self.alice).create_job(self.urls(total, "a", 150), name="cats")
        for watcher in watchers:
            watcher.join(JOB_TIMEOUT)

        streams = [self.assert_contiguous(w) for w in watchers]
        # Seq S is the same message on every node and transport.
        by_seq = [{m["seq"]: m for m in stream} for stream in streams]
        self.assertTrue(all(set(s) == set(by_seq[0]) for s in by_seq), [sorted(s) for s in by_seq])
        for seq, message in by_seq[0].items():
            for other in by_seq[1:]:
                self.assertEqual(other[seq], message, f"seq {seq} differs between nodes")
        # The two WebSockets (n2, n3) got the very same text for every message.
        ws2 = [t for t in watchers[0].raw if json.loads(t).get("type") in ct.JOB_LEVEL]
        ws3 = [t for t in watchers[1].raw if json.loads(t).get("type") in ct.JOB_LEVEL]
        self.assertEqual(ws2, ws3)
        first = streams[0][0]
        self.assertEqual((first["type"], first["event"], first["job"]["id"]), ("job", "created", job["id"]))
        self.assertGreater(len([m for m in streams[0] if m["type"] == "progress"]), 1)

        final, _ = self.assert_job_exact(cluster, self.alice, job["id"], total)
        self.assertEqual(streams[0][-1]["job"], final)
        # Each image was downloaded once, by whichever node claimed it.
        counts = self.origin_counts("a")
        self.assertEqual(len(counts), total)
        self.assertEqual(set(counts.values()), {1}, {p: n for p, n in counts.items() if n != 1})
        blobs = lt.blob_files(cluster.blobs)
        self.assertEqual(len(blobs), total)
        for path in blobs:
            self.assertEqual(path.name.split(".")[0], lt.sha256_file(path))
        # All three nodes took part.
        nodes = {row[0] for row in cluster.sql(f"SELECT DISTINCT node FROM items WHERE job_id = {job['id']}")}
        print(f"\n[a] {len(streams[0])} job-level messages; items claimed by {sorted(nodes)}", file=sys.stderr)

    def test_b_kill_9_mid_job_watcher_fails_over_and_items_are_finished(self):
        lease = 2
        cluster = self.make_cluster(lease=lease)
        n1, n2, n3 = cluster.nodes
        total = 300
        watcher = self.watch("ws", [n2.port, n3.port], self.alice, failover=True,
                             until=ct.job_state_is(None, ("done",)))
        job = n1.client(self.alice).create_job(self.urls(total, "b", 200))

        ct.wait_for(lambda: any(m["job"]["counts"]["done"] >= 30 for m in watcher.job_level()), JOB_TIMEOUT,
                    "30 items done")
        ct.wait_for(lambda: int(cluster.sql_value("SELECT count(*) FROM items WHERE state = 'active' AND node = 'n2'")),
                    30, "n2 holding claims")
        old_pid = n2.pid
        n2.server.kill()
        killed_at = time.time()
        claimed = cluster.sql("SELECT id, url FROM items WHERE state = 'active' AND node = 'n2'")
        self.assertTrue(claimed, "n2 held no claim when it was killed")

        watcher.join(JOB_TIMEOUT)
        stream = self.assert_contiguous(watcher)
        ports = [c[0] for c in watcher.connections]
        self.assertEqual(ports[0], n2.port)
        self.assertIn(n3.port, ports[1:], watcher.connections)
        hellos = [m for m in watcher.messages() if m["type"] == "hello"]
        self.assertEqual(len(hellos), 2, "expected exactly one reconnection")
        self.assertEqual(stream[-1]["job"]["state"], "done")

        final, _ = self.assert_job_exact(cluster, self.alice, job["id"], total)
        self.assertEqual(stream[-1]["job"], final)
        # n2's claims were finished by the others, and not before its lease ran
        # out: every request for those URLs that reached the origin after the
        # kill came at least 2/3 of a lease later (a lease is renewed every
        # third of it, so it may have had only 2/3 left).
        ids = ",".join(row[0] for row in claimed)
        rows = cluster.sql(f"SELECT state, coalesce(node, '') FROM items WHERE id IN ({ids})")
        self.assertTrue(all(state == "done" and node != "n2" for state, node in rows), rows)
        for _, url in claimed:
            path = url.split("127.0.0.1:", 1)[1].split("/", 1)[1].split("?")[0]
            arrived = self.origin.get_json(f"/served?path=/{path}")["arrived"]
            # (A request n2 had already written may be parsed by the origin a
            # moment after the kill: arrivals within 0.25 s are n2's own.)
            later = [t for t in arrived if t > killed_at + 0.25]
            self.assertTrue(later, f"{path} was not downloaded again after the kill")
            self.assertGreaterEqual(min(later) - killed_at, lease * 2 / 3 - 0.05, path)
        duplicates = sum(n - 1 for n in self.origin_counts("b").values())
        self.assertLessEqual(duplicates, len(claimed))

        # .part files: the killed process's are orphans, and every node sweeps
        # parts at least a lease old every half lease (its own live parts are
        # never touched). Asserted: the dead process's parts disappear; every
        # part left belongs to a running process; a clean stop leaves none.
        ct.wait_for(lambda: ("n2", old_pid) not in ct.blob_parts_by_owner(cluster.blobs), lease * 5 + 30,
                    "the killed node's .part files swept")
        for (tag, pid), parts in ct.blob_parts_by_owner(cluster.blobs).items():
            self.assertTrue(ct.process_alive(pid), f"parts of a dead process: {parts[:3]}")
        cluster.stop()
        self.assertEqual(lt.part_files(cluster.blobs), [])

    def test_c_frozen_node_is_fenced_and_works_afterwards(self):
        lease = 2
        cluster = self.make_cluster(lease=lease)
        n1, n2, n3 = cluster.nodes
        total = 200
        job = n1.client(self.alice).create_job(self.urls(total, "c", 300))
        fenced_before = self.fenced(n2)  # read now: a frozen node answers nothing

        def freeze_holding_claims():
            # Frozen at a moment it holds claims (it may finish them all just before).
            n2.server.process.send_signal(signal.SIGSTOP)
            rows = cluster.sql("SELECT id, lease_id FROM items WHERE state = 'active' AND node = 'n2'")
            if not rows:
                n2.server.process.send_signal(signal.SIGCONT)
            return rows

        frozen = ct.wait_for(freeze_holding_claims, 60, "n2 frozen while holding claims")
        ids = ",".join(row[0] for row in frozen)
        # Past its lease: the others expire n2's claims and take the items.
        ct.wait_for(lambda: not int(cluster.sql_value(
            "SELECT count(*) FROM items WHERE state = 'active' AND node = 'n2'")), lease * 10, "n2's claims expired")
        ct.wait_for(lambda: int(cluster.sql_value(
            f"SELECT count(*) FROM items WHERE id IN ({ids}) AND state = 'done'")), JOB_TIMEOUT,
            "one of n2's items finished by another node")
        n2.server.process.send_signal(signal.SIGCONT)

        n1.client(self.alice).wait_job(job["id"], timeout=JOB_TIMEOUT)
        self.assert_job_exact(cluster, self.alice, job["id"], total)
        # Every item n2 held when it froze was finished under a later claim
        # (another node's, or n2's own new one): the result n2 brought back for
        # the old claim was not the one applied.
        rows = cluster.sql(f"SELECT id, lease_id, coalesce(node, '') FROM items WHERE id IN ({ids})")
        old_leases = {item: lease_id for item, lease_id in frozen}
        for item, lease_id, node in rows:
            self.assertNotEqual((node, lease_id), ("n2", old_leases[item]), f"item {item} done under the old claim")
        ct.wait_for(lambda: self.fenced(n2) > fenced_before, 30, "n2 counting fenced outcomes")
        self.assertEqual(ct.Cluster.healthz(n2)[0], 200)

        # It keeps working: alone now, it takes and finishes a new job.
        for node in (n1, n3):
            node.close_clients()
            node.server.stop()
        second = n2.client(self.alice).create_job(self.urls(20, "c2-", 20))
        n2.client(self.alice).wait_job(second["id"], timeout=JOB_TIMEOUT)
        self.assert_job_exact(cluster, self.alice, second["id"], 20)
        nodes = cluster.sql(f"SELECT DISTINCT coalesce(node, '') FROM items WHERE job_id = {second['id']}")
        self.assertIn(nodes, ([["n2"]], [[""]]))

    @staticmethod
    def fenced(node):
        """Outcomes this node had refused by the fence, per its /metrics."""
        return ct.Cluster.metrics(node)["litchi_fenced_results_total"]

    def test_e_users_never_see_each_others_jobs_on_any_node(self):
        cluster = self.make_cluster()
        n1, n2, n3 = cluster.nodes
        bob_done = ct.job_state_is(None, ("done",))
        bob_watchers = [self.watch("ws", [node.port], self.bob, until=bob_done) for node in cluster.nodes]
        bob_watchers.append(self.watch("sse", [n2.port], self.bob, until=bob_done))
        alice_watcher = self.watch("ws", [n3.port], self.alice, until=ct.job_state_is(None, ("done",)))
        job = n1.client(self.alice).create_job(self.urls(60, "e", 50))
        alice_watcher.join(JOB_TIMEOUT)
        # Only once alice's job is over does bob start his: his streams were
        # open through all of hers, and end with his own.
        bobs = n3.client(self.bob).create_job(self.urls(5, "e-bob", 10))
        for watcher in bob_watchers:
            watcher.join(JOB_TIMEOUT)
            messages = watcher.messages()
            self.assertEqual(messages[0]["jobs"], [])
            for message in messages:
                jobs = [message["job"]] if isinstance(message.get("job"), dict) else message.get("jobs", [])
                self.assertNotIn(job["id"], [j["id"] for j in jobs], message)
                self.assertNotEqual(message.get("job"), job["id"], message)
            self.assertEqual({m["job"]["id"] for m in watcher.job_level()}, {bobs["id"]})
            self.assert_contiguous(watcher)
        self.assertIn(job["id"], {m["job"]["id"] for m in alice_watcher.job_level()})
        self.assertNotIn(bobs["id"], {m["job"]["id"] for m in alice_watcher.job_level()})

        for node in cluster.nodes:
            bob = node.client(self.bob)
            self.assertEqual([j["id"] for j in bob.get("/api/jobs").json()["jobs"]], [bobs["id"]], node.name)
            for method, path in (("GET", ""), ("GET", "/items"), ("GET", "/progress"), ("GET", "/manifest.jsonl"),
                                 ("GET", "/archive.zip"), ("POST", "/pause"), ("POST", "/resume"),
                                 ("POST", "/cancel"), ("POST", "/retry"), ("DELETE", "")):
                response = bob.request(method, f"/api/jobs/{job['id']}{path}")
                self.assertEqual(response.status, 404, (node.name, method, path, response))
            # Nor by subscribing to its items.
            ws = ct.open_ws(node.port, self.bob)
            try:
                ws.recv_json()  # hello
                ws.send_json({"type": "subscribe", "job": job["id"], "items": True})
                answer = ws.recv_json()
                self.assertEqual((answer["type"], answer.get("code")), ("error", "not_found"), answer)
            finally:
                ws.close()
        self.assert_job_exact(cluster, self.alice, job["id"], 60)

    def test_f_resume_on_a_fresh_node_after_every_node_restarted(self):
        cluster = self.make_cluster()
        n1, n2, n3 = cluster.nodes
        watcher = self.watch("ws", [n1.port], self.alice, until=ct.job_state_is(None, ("done",)))
        n2.client(self.alice).create_job(self.urls(80, "f", 60))
        watcher.join(JOB_TIMEOUT)
        before = self.assert_contiguous(watcher)
        self.assertGreaterEqual(len(before), 4)
        epoch = watcher.messages()[0]["epoch"]
        since = before[len(before) // 3]["seq"]
        expected = [m for m in before if m["seq"] > since]

        cluster.stop()
        cluster.start()  # every node: new processes, new ports

        # WebSocket, on a node that never served this client.
        ws = ct.open_ws(n3.port, self.alice)
        self.addCleanup(ws.close)
        ws.send_json({"type": "resume", "since": since, "epoch": epoch})
        got = [ws.recv_json()]
        self.assertEqual(got[0]["type"], "hello")
        self.assertEqual(got[0]["epoch"], epoch)
        self.assertEqual(got[0]["seq"], before[-1]["seq"], "the stream moved while nothing ran")
        deadline = time.monotonic() + 30
        while len([m for m in got if m["type"] in ct.JOB_LEVEL]) < len(expected) and time.monotonic() < deadline:
            got.append(ws.recv_json())
        self.assertNotIn("snapshot", [m["type"] for m in got])
        self.assertEqual([m for m in got if m["type"] in ct.JOB_LEVEL], expected)

        # SSE, on another node, with ?since=&epoch=: the replay, without a hello.
        sse = live.SseReader(n2.port, self.alice, query=f"?since={since}&epoch={epoch}")
        self.addCleanup(sse.close)
        self.assertEqual(sse.status, 200)
        events = []
        while len(events) < len(expected):
            event = sse.next_event()
            self.assertIsNotNone(event, "the SSE stream ended")
            if event["data"] is not None:
                events.append(event)
        self.assertEqual([e["data"] for e in events], expected)
        self.assertEqual([e["id"] for e in events], [m["seq"] for m in expected])


class SubscribeElsewhereTest(ClusterCase):
    def test_g_subscribe_on_another_node_right_after_create(self):
        cluster = self.make_cluster()
        n1, n2, n3 = cluster.nodes
        ws = ct.open_ws(n3.port, self.alice)
        self.addCleanup(ws.close)
        self.assertEqual(ws.recv_json()["type"], "hello")
        job = n1.client(self.alice).create_job(self.urls(30, "g", 200))
        # Right after the 201 from n1: n3 may not have read the job from the
        # log yet, but it is the user's job and the subscription must hold.
        ws.send_json({"type": "subscribe", "job": job["id"], "items": True})
        messages = []
        deadline = time.monotonic() + JOB_TIMEOUT
        while time.monotonic() < deadline:
            messages.append(ws.recv_json())
            if messages[-1]["type"] in ("subscribed", "error"):
                break
        self.assertEqual(messages[-1]["type"], "subscribed", messages[-1])
        done_items = set()
        while len(done_items) < 30 and time.monotonic() < deadline:
            message = ws.recv_json()
            if message["type"] == "item" and message["item"]["state"] == "done":
                done_items.add(message["item"]["id"])
        self.assertEqual(len(done_items), 30)


class StopEverywhereTest(ClusterCase):
    def test_h_pause_and_cancel_on_one_node_stop_every_nodes_transfers(self):
        # A lease whose upkeep (every third of it) never comes round during
        # the test: only the stop notification can end the other nodes'
        # transfers.
        cluster = self.make_cluster(lease=600)
        n1, n2, n3 = cluster.nodes
        total = 24
        key = f"h{time.monotonic_ns()}"
        job = n1.client(self.alice).create_job(
            [self.origin.url(f"/gate/{key}/{key}{i}.png") for i in range(total)])

        def gate():
            return self.origin.get_json(f"/gates/{key}")

        def counts():
            return [node.client(self.alice).job(job["id"])["counts"] for node in cluster.nodes]

        def every_node_downloading():
            # -j 4 on each of three nodes: 12 requests held at the gate.
            ct.wait_for(lambda: gate()["waiting"] == 12, 60, "12 transfers held at the gate")
            holders = cluster.sql(
                f"SELECT DISTINCT node FROM items WHERE job_id = {int(job['id'])} AND state = 'active' ORDER BY node")
            self.assertEqual(holders, [["n1"], ["n2"], ["n3"]])

        every_node_downloading()
        self.assertEqual(n3.client(self.alice).post(f"/api/jobs/{job['id']}/pause").status, 200)
        ct.wait_for(lambda: gate()["abandoned"] == 12, 60, "every node hung up on its transfers")
        self.assertEqual(gate()["waiting"], 0)
        ct.wait_for(lambda: all(c["active"] == 0 for c in counts()), 60, "no item active on any node")
        for view in counts():
            self.assertEqual(view, {"total": total, "queued": total, "active": 0, "done": 0, "failed": 0,
                                    "cancelled": 0})
        self.assertEqual(n2.client(self.alice).job(job["id"])["state"], "paused")

        self.assertEqual(n2.client(self.alice).post(f"/api/jobs/{job['id']}/resume").status, 200)
        every_node_downloading()
        self.assertEqual(n1.client(self.alice).post(f"/api/jobs/{job['id']}/cancel").status, 200)
        ct.wait_for(lambda: gate()["abandoned"] == 24, 60, "every node hung up again")
        self.assertEqual(gate()["waiting"], 0)
        for node in cluster.nodes:
            view = node.client(self.alice).job(job["id"])
            self.assertEqual(view["state"], "cancelled", node.name)
            self.assertEqual(view["counts"], {"total": total, "queued": 0, "active": 0, "done": 0, "failed": 0,
                                              "cancelled": total}, node.name)
        rows = cluster.sql(f"SELECT state, count(*) FROM items WHERE job_id = {int(job['id'])} GROUP BY state")
        self.assertEqual(rows, [["cancelled", str(total)]])


class PostgresOutageTest(ClusterCase):
    """(d) in a class of its own: it stops its PostgreSQL."""

    def test_d_postgres_restart_and_outage_mid_job(self):
        cluster = self.make_cluster()
        n1, n2, n3 = cluster.nodes
        total = 300
        watcher = self.watch("ws", [n2.port, n3.port, n1.port], self.alice, failover=True,
                             until=ct.job_state_is(None, ("done",)), timeout=300)
        job = n1.client(self.alice).create_job(self.urls(total, "d", 100))
        admin = n1.client(self.alice)

        def done_count():
            return admin.job(job["id"])["counts"]["done"]

        ct.wait_for(lambda: done_count() >= 20, JOB_TIMEOUT, "20 items done")
        self.pg.restart()
        self.assertTrue(all(node.running() for node in cluster.nodes))
        after_restart = done_count()
        ct.wait_for(lambda: done_count() > after_restart, 60, "progress after PostgreSQL restarted")

        # Down: every node stays up and says so on /healthz.
        self.pg.halt()
        for node in cluster.nodes:
            status, body = ct.wait_for(lambda: (lambda h: h if h[0] == 503 else None)(ct.Cluster.healthz(node)),
                                       30, f"{node.name} /healthz 503")
            self.assertEqual(body.get("status"), "degraded", body)
            self.assertIn("store", body)
        response = admin.get(f"/api/jobs/{job['id']}")
        self.assertEqual(response.status, 503, response)
        self.assertTrue(all(node.running() for node in cluster.nodes))

        self.pg.restart()
        for node in cluster.nodes:
            ct.wait_for(lambda: ct.Cluster.healthz(node)[0] == 200, 60, f"{node.name} /healthz 200")
        admin.wait_job(job["id"], timeout=JOB_TIMEOUT)
        self.assertTrue(all(node.running() for node in cluster.nodes))
        final, _ = self.assert_job_exact(cluster, self.alice, job["id"], total)
        watcher.join(JOB_TIMEOUT)
        # The watcher's view: in order, counts never back, and exact at the end
        # (a node that lost the database may resync it with a snapshot).
        messages = watcher.messages()
        jobs = live.check_stream(self, [m for m in messages if m["type"] != "hello" or m is messages[0]])
        self.assertEqual(jobs[job["id"]], final)


if __name__ == "__main__":
    unittest.main()
