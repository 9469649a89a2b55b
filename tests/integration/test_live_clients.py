"""Live progress through clients that are not ours: Python's `websockets`
(Debian python3-websockets) and the `ws` npm package (tests/clients, installed
by `npm ci --prefix tests/clients`), on both WebSocket URL forms, and SSE.

Every client asserts the protocol's promises: hello first, seq strictly +1,
counts never decrease, and the final `done` state equals the REST view.
"""

import asyncio
import json
import shutil
import subprocess
import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import live_testing as live  # noqa: E402

try:
    import websockets  # noqa: E402  (python3-websockets)
except ImportError:
    # ctest may run another Python (e.g. a pyenv one) than Debian's, which has the package.
    sys.path.append("/usr/lib/python3/dist-packages")
    import websockets  # noqa: E402

CLIENTS = Path(__file__).resolve().parents[1] / "clients"
JOB_TIMEOUT = 120


async def collect_until_done(uri, job_id, subprotocols=None, started=None, timeout=JOB_TIMEOUT):
    """Messages of one connection until job `job_id` is reported done."""
    messages = []
    async with websockets.connect(uri, subprotocols=subprotocols, max_size=1 << 22, open_timeout=30) as ws:
        if started is not None:
            started.set()
        protocol = ws.subprotocol
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = json.loads(await asyncio.wait_for(ws.recv(), timeout=deadline - time.monotonic()))
            messages.append(message)
            jobs = [message["job"]] if message.get("type") in ("progress", "job") else message.get("jobs", [])
            if any(job["id"] == job_id and job["state"] == "done" for job in jobs):
                return protocol, messages
    raise AssertionError(f"job {job_id} not done over {uri.split('/api/')[0]}: {messages[-3:]}")


class LiveClientsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.live = live.LiveServer(cls, extra_args=["-j", "4"])

    @classmethod
    def tearDownClass(cls):
        cls.live.close()

    def assert_final_equals_rest(self, jobs, job_id):
        rest = self.live.admin.job(job_id)
        self.assertEqual(rest["state"], "done")
        self.assertIn(job_id, jobs)
        self.assertEqual(live.comparable(jobs[job_id]), live.comparable(rest))

    def test_python_websockets_both_url_forms(self):
        port, token = self.live.port, self.live.admin_token
        seed_uri = f"ws://127.0.0.1:{port}/api/litchi/{token}"
        ws_uri = f"ws://127.0.0.1:{port}/api/ws"

        async def scenario():
            # Both connect first, then the job starts: both see it from the start.
            job_holder = {}
            ready = [asyncio.Event(), asyncio.Event()]

            async def client(uri, subprotocols, started):
                await job_created.wait()
                return await collect_until_done(uri, job_holder["id"], subprotocols, started)

            job_created = asyncio.Event()
            tasks = [asyncio.create_task(client(seed_uri, None, ready[0])),
                     asyncio.create_task(client(ws_uri, ["litchi.v1", f"bearer.{token}"], ready[1]))]
            job = await asyncio.to_thread(self.live.admin.create_job, self.live.urls(120, delay_ms=15, prefix="py"))
            job_holder["id"] = job["id"]
            job_created.set()
            return job["id"], await asyncio.gather(*tasks)

        job_id, results = asyncio.run(scenario())
        (seed_protocol, seed_messages), (sub_protocol, sub_messages) = results
        self.assertIsNone(seed_protocol)
        self.assertEqual(sub_protocol, "litchi.v1")
        for messages in (seed_messages, sub_messages):
            jobs = live.check_stream(self, messages)
            self.assert_final_equals_rest(jobs, job_id)
        # One counter per user: both connections saw the same seqs for the same events.
        seqs = [{m["seq"]: m["job"]["counts"]["done"] for m in ms if m["type"] in ("progress", "job")}
                for ms in (seed_messages, sub_messages)]
        common = set(seqs[0]) & set(seqs[1])
        self.assertTrue(common)
        self.assertTrue(all(seqs[0][s] == seqs[1][s] for s in common))

    def test_node_ws_both_url_forms(self):
        node = shutil.which("node")
        self.assertIsNotNone(node, "node is required")
        self.assertTrue((CLIENTS / "node_modules" / "ws").is_dir(),
                        "the ws package is missing: run `npm ci --prefix tests/clients` (make test does)")
        port, token = self.live.port, self.live.admin_token
        job = self.live.admin.create_job(self.live.urls(120, delay_ms=15, prefix="node"))
        forms = [(f"ws://127.0.0.1:{port}/api/litchi/{token}", ""),
                 (f"ws://127.0.0.1:{port}/api/ws", f"litchi.v1,bearer.{token}")]
        processes = [subprocess.Popen([node, str(CLIENTS / "ws_client.js"), url, protocols, str(job["id"]), "90000"],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                     for url, protocols in forms]
        outputs = []
        for process in processes:
            out, err = process.communicate(timeout=120)
            self.assertEqual(process.returncode, 0, err)
            outputs.append(json.loads(out.strip().splitlines()[-1]))
        self.assertEqual(outputs[0]["protocol"], "")
        self.assertEqual(outputs[1]["protocol"], "litchi.v1")
        for output in outputs:
            self.assertEqual(output["code"], 1000, output.get("messages", [])[-2:])
            jobs = live.check_stream(self, output["messages"])
            self.assert_final_equals_rest(jobs, job["id"])

    def test_sse_stream_and_last_event_id(self):
        reader = live.SseReader(self.live.port, self.live.admin_token)
        self.addCleanup(reader.close)
        self.assertEqual(reader.status, 200)
        self.assertTrue(reader.headers["content-type"].startswith("text/event-stream"))
        self.assertEqual(reader.headers.get("cache-control"), "no-cache")
        self.assertEqual(reader.headers.get("x-accel-buffering"), "no")
        job = self.live.admin.create_job(self.live.urls(80, delay_ms=15, prefix="sse"))
        messages, ids = [], []
        deadline = time.monotonic() + JOB_TIMEOUT
        first_half = None
        while time.monotonic() < deadline:
            event = reader.next_event()
            self.assertIsNotNone(event, "stream ended")
            if event["data"] is None:
                continue
            message = event["data"]
            messages.append(message)
            if message["type"] in ("hello", "snapshot", "progress", "job"):
                self.assertEqual(event["id"], message["seq"])
                ids.append(event["id"])
            if first_half is None and len(ids) >= 3:
                first_half = ids[-1]
            jobs = [message["job"]] if message["type"] in ("progress", "job") else message.get("jobs", [])
            if any(j["id"] == job["id"] and j["state"] == "done" for j in jobs):
                break
        jobs = live.check_stream(self, messages)
        self.assert_final_equals_rest(jobs, job["id"])

        # Reconnect the way EventSource does: Last-Event-ID continues right
        # after it, with no hello, every later event once.
        again = live.SseReader(self.live.port, self.live.admin_token, headers={"Last-Event-ID": str(first_half)})
        self.addCleanup(again.close)
        replay = []
        while len(replay) < len([i for i in ids if i > first_half]):
            event = again.next_event()
            if event["data"] is not None:
                replay.append(event)
        self.assertEqual([e["id"] for e in replay], [i for i in ids if i > first_half])
        self.assertNotIn("hello", [e["data"]["type"] for e in replay])

        # ?since= does the same for a client that opens a new EventSource itself.
        query = live.SseReader(self.live.port, self.live.admin_token, query=f"?since={first_half}")
        self.addCleanup(query.close)
        event = query.next_event()
        while event["data"] is None:
            event = query.next_event()
        self.assertEqual(event["id"], first_half + 1)


if __name__ == "__main__":
    unittest.main()
