"""Exact resume of the progress stream:

- disconnect mid-job, reconnect and `resume` with `since`: every event missed
  is replayed, none twice, and the stream goes on live;
- `resume` from beyond the replay buffer (or with another epoch): one `snapshot`;
- after `kill -9` and a restart: a new hello (new epoch, higher seq) whose
  counts are exact (equal to the REST view and to the items' own tally).
"""

import json
import sys
import time
import unittest
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import live_testing as live  # noqa: E402

JOB_TIMEOUT = 120


def open_ws(port, token):
    ws = live.RawWebSocket(port, "/api/ws", headers={"Sec-WebSocket-Protocol": f"litchi.v1, bearer.{token}"})
    if ws.handshake() != 101:
        raise AssertionError(f"handshake {ws.status}")
    return ws


def read_until(ws, predicate, timeout=JOB_TIMEOUT):
    """Messages until one satisfies `predicate` (included)."""
    messages = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = ws.recv_json()
        messages.append(message)
        if predicate(message):
            return messages
    raise AssertionError(f"no matching message in {timeout}s: {messages[-3:]}")


def job_done(job_id):
    def check(message):
        jobs = [message["job"]] if message.get("type") in ("progress", "job") else message.get("jobs", [])
        return any(j["id"] == job_id and j["state"] == "done" for j in jobs)
    return check


class ResumeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.live = live.LiveServer(cls, extra_args=["-j", "2"])

    @classmethod
    def tearDownClass(cls):
        cls.live.close()

    def test_resume_mid_job_replays_every_missed_event_once(self):
        port, token = self.live.port, self.live.admin_token
        first = open_ws(port, token)
        self.addCleanup(first.close)
        hello = first.recv_json()
        job = self.live.admin.create_job(self.live.urls(150, delay_ms=20, prefix="resume"))
        before = [hello] + read_until(first, lambda m: m["type"] == "progress" and m["job"]["counts"]["done"] >= 10)
        live.check_stream(self, before)
        last_seq = before[-1]["seq"]
        first.close()  # mid-job: the job keeps running while nobody listens
        missed_from = before[-1]["job"]["counts"]["done"]
        deadline = time.monotonic() + 30
        while self.live.admin.job(job["id"])["counts"]["done"] < missed_from + 20:
            self.assertLess(time.monotonic(), deadline, "the job did not go on while nobody listened")
            time.sleep(0.02)

        second = open_ws(port, token)
        self.addCleanup(second.close)
        second.send_json({"type": "resume", "since": last_seq, "epoch": hello["epoch"]})
        after = read_until(second, job_done(job["id"]))
        self.assertEqual(after[0]["type"], "hello")
        self.assertEqual(after[0]["epoch"], hello["epoch"])
        self.assertGreater(after[0]["seq"], last_seq, "the job did not move while disconnected")
        events = [m for m in after[1:] if m["type"] in ("progress", "job", "snapshot")]
        self.assertNotIn("snapshot", [m["type"] for m in events])
        seqs = [m["seq"] for m in events]
        # Right after the hello: exactly the missed events, then live ones, contiguous, none twice.
        self.assertEqual(seqs, list(range(last_seq + 1, last_seq + 1 + len(seqs))))
        self.assertEqual(len(seqs), len(set(seqs)))
        self.assertGreaterEqual(seqs[-1], after[0]["seq"])
        whole = before + [m for m in events]
        previous = {}
        for message in whole:
            if message["type"] in ("progress", "job"):
                live.job_counts_never_decrease(self, previous, message["job"])
        self.assertEqual(live.comparable(events[-1]["job"]), live.comparable(self.live.admin.job(job["id"])))

    def test_resume_with_another_epoch_gets_a_snapshot(self):
        ws = open_ws(self.live.port, self.live.admin_token)
        self.addCleanup(ws.close)
        hello = ws.recv_json()
        ws.send_json({"type": "resume", "since": hello["seq"], "epoch": "not-this-stream"})
        message = ws.recv_json()
        self.assertEqual(message["type"], "snapshot")
        self.assertEqual(message["seq"], hello["seq"])
        # A seq the server never issued also gets a snapshot.
        ws.send_json({"type": "resume", "since": hello["seq"] + 10**6})
        self.assertEqual(ws.recv_json()["type"], "snapshot")

    def test_restart_after_kill_9_gives_exact_hello(self):
        port, token = self.live.port, self.live.admin_token
        ws = open_ws(port, token)
        old_hello = ws.recv_json()
        job = self.live.admin.create_job(self.live.urls(120, delay_ms=30, prefix="kill"))
        read_until(ws, lambda m: m["type"] == "progress" and m["job"]["counts"]["done"] >= 15)
        ws.close()
        self.live.server.kill()
        self.live.server.start()
        self.live.admin.port = self.live.bob.port = self.live.server.port
        self.live.admin.close()

        ws = open_ws(self.live.server.port, token)
        self.addCleanup(ws.close)
        # Pause first so nothing moves while we compare three views of the job.
        self.assertEqual(self.live.admin.post(f"/api/jobs/{job['id']}/pause").status, 200)
        deadline = time.monotonic() + 60
        while self.live.admin.job(job["id"])["counts"]["active"] and time.monotonic() < deadline:
            time.sleep(0.1)
        ws.close()
        ws = open_ws(self.live.server.port, token)
        self.addCleanup(ws.close)
        hello = ws.recv_json()
        self.assertEqual(hello["type"], "hello")
        self.assertNotEqual(hello["epoch"], old_hello["epoch"])
        self.assertGreater(hello["seq"], old_hello["seq"])
        pushed = next(j for j in hello["jobs"] if j["id"] == job["id"])
        rest = self.live.admin.job(job["id"])
        self.assertEqual(pushed["counts"], rest["counts"])
        tally = Counter(item["state"] for item in self.live.admin.all_items(job["id"]))
        for state in ("queued", "active", "done", "failed", "cancelled"):
            self.assertEqual(pushed["counts"][state], tally.get(state, 0), state)
        self.assertEqual(pushed["counts"]["total"], 120)
        # And it finishes exactly.
        self.assertEqual(self.live.admin.post(f"/api/jobs/{job['id']}/resume").status, 200)
        messages = [hello] + read_until(ws, job_done(job["id"]))
        jobs = live.check_stream(self, messages)
        self.assertEqual(live.comparable(jobs[job["id"]]), live.comparable(self.live.admin.job(job["id"])))


class QuietJobTest(unittest.TestCase):
    """Coalescing never loses the last value: a change of counts that waits for
    the interval (no change of state to carry it) arrives once it is due, and
    the polling fallback reads the same job without a seq."""

    @classmethod
    def setUpClass(cls):
        cls.live = live.LiveServer(cls, extra_args=["-j", "4", "--progress-interval", "400"])

    @classmethod
    def tearDownClass(cls):
        cls.live.close()

    def test_a_waiting_update_is_sent_when_due(self):
        port, token = self.live.port, self.live.admin_token
        ws = open_ws(port, token)
        self.addCleanup(ws.close)
        hello = ws.recv_json()
        job = self.live.admin.create_job(self.live.urls(40, delay_ms=300, prefix="quiet"))
        messages = [hello] + read_until(
            ws, lambda m: m["type"] == "progress" and m["job"]["counts"]["done"] >= 4, timeout=60)
        # Pausing is a change of state (sent at once); the transfers in flight
        # then finish or go back to the queue: changes of counts only, which
        # wait for the interval and must still arrive.
        self.assertEqual(self.live.admin.post(f"/api/jobs/{job['id']}/pause").status, 200)
        deadline = time.monotonic() + 60
        while self.live.admin.job(job["id"])["counts"]["active"] and time.monotonic() < deadline:
            time.sleep(0.05)
        rest = self.live.admin.job(job["id"])
        self.assertEqual(rest["counts"]["active"], 0)
        messages += read_until(
            ws, lambda m: m["type"] == "progress" and m["job"]["counts"] == rest["counts"], timeout=5)
        live.check_stream(self, messages)
        self.assertEqual(messages[-1]["job"]["state"], "paused")

        # GET /api/jobs/{id}/progress: {"type":"progress","job":job}, no seq (docs/protocol.md §9).
        polled = self.live.admin.get(f"/api/jobs/{job['id']}/progress")
        self.assertEqual(polled.status, 200)
        body = polled.json()
        self.assertEqual(body["type"], "progress")
        self.assertNotIn("seq", body)
        self.assertEqual(live.comparable(body["job"]), live.comparable(self.live.admin.job(job["id"])))
        self.assertEqual(self.live.bob.get(f"/api/jobs/{job['id']}/progress").status, 404)
        self.assertEqual(self.live.admin.post(f"/api/jobs/{job['id']}/cancel").status, 200)


class BeyondBufferTest(unittest.TestCase):
    """A tiny replay buffer, so a short job overflows it."""

    @classmethod
    def setUpClass(cls):
        cls.live = live.LiveServer(cls, extra_args=["-j", "2", "--replay-capacity", "4", "--progress-interval", "5"])

    @classmethod
    def tearDownClass(cls):
        cls.live.close()

    def test_resume_from_beyond_the_buffer_gets_one_snapshot(self):
        port, token = self.live.port, self.live.admin_token
        ws = open_ws(port, token)
        hello = ws.recv_json()
        ws.close()
        job = self.live.admin.create_job(self.live.urls(40, delay_ms=20, prefix="far"))
        self.live.admin.wait_job(job["id"])

        ws = open_ws(port, token)
        self.addCleanup(ws.close)
        ws.send_json({"type": "resume", "since": hello["seq"], "epoch": hello["epoch"]})
        ws.send_json({"type": "ping"})
        messages = read_until(ws, lambda m: m["type"] == "pong", timeout=30)
        kinds = [m["type"] for m in messages]
        self.assertEqual(kinds[0], "hello")
        self.assertEqual(kinds.count("snapshot"), 1, kinds)
        self.assertGreater(messages[0]["seq"] - hello["seq"], 4, "the job did not overflow the buffer")
        snapshot = next(m for m in messages if m["type"] == "snapshot")
        pushed = next(j for j in snapshot["jobs"] if j["id"] == job["id"])
        self.assertEqual(live.comparable(pushed), live.comparable(self.live.admin.job(job["id"])))


if __name__ == "__main__":
    unittest.main()
