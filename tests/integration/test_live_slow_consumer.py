"""A watcher that never reads while a 5,000-item job runs.

The client subscribes to the job's item events (5,000 of them, far more than
the socket buffers hold) and to its progress, then stops reading, with a 4 KiB
receive buffer. The server must not buffer for it: the hub keeps a cursor into
its replay ring, the item queue drops its oldest entries, the session holds one
frame. Bounds stated and checked, on the peak RSS growth during the job:

  - under RSS_GROWTH_BOUND_KIB (64 MiB) over the level before the job;
  - at most WATCHER_COST_BOUND_KIB (24 MiB) above the same job run on a fresh
    server with no watcher at all, i.e. the slow watcher itself costs the
    server next to nothing.

ASan keeps freed memory in a quarantine (256 MiB by default) that would drown
these figures, so the servers here run with ASAN_OPTIONS quarantine_size_mb=8
(ignored by builds without ASan). Once it reads again, the watcher must have
been resynced (a `snapshot`, or an `iseq` gap in its item events) or closed
with 1013 (or dropped by the write-stall guard).

A client that floods protocol pings without reading the pongs is closed with
1013 too, not buffered for.
"""

import os
import sys
import threading
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import live_testing as live  # noqa: E402

ITEMS = 5000
RSS_GROWTH_BOUND_KIB = 64 * 1024
WATCHER_COST_BOUND_KIB = 24 * 1024
SERVER_ARGS = ["-j", "16", "--per-host", "16", "--replay-capacity", "32", "--progress-interval", "5",
               "--item-queue", "64", "--ws-stall-timeout", "600"]


def quiet_asan_quarantine():
    options = [o for o in os.environ.get("ASAN_OPTIONS", "").split(":") if o and not o.startswith("quarantine_size_mb=")]
    os.environ["ASAN_OPTIONS"] = ":".join(options + ["quarantine_size_mb=8"])


class PeakRss:
    """Samples a process's RSS every 0.1 s inside the `with` block; then
    `growth` is the peak minus the level at entry, in KiB."""

    def __init__(self, pid):
        self.pid = pid
        self.growth = None

    def __enter__(self):
        self.baseline = self.peak = live.rss_kib(self.pid)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, live.rss_kib(self.pid))
            except (OSError, RuntimeError):
                return
            time.sleep(0.1)

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)
        self.growth = self.peak - self.baseline
        return False


def job_urls(live_server):
    return [live_server.origin.url(f"/img/slow{i}.png?w=8&h=8") for i in range(ITEMS)]


class SlowConsumerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        quiet_asan_quarantine()
        cls.live = live.LiveServer(cls, extra_args=SERVER_ARGS)

    @classmethod
    def tearDownClass(cls):
        cls.live.close()

    def control_growth(self):
        """The same job on a fresh server that nobody watches."""
        control = live.LiveServer(type(self), extra_args=SERVER_ARGS)
        try:
            with PeakRss(control.server.process.pid) as rss:
                job = control.admin.create_job(job_urls(control), name="control")
                final = control.admin.wait_job(job["id"], timeout=300)
            self.assertEqual(final["counts"]["done"], ITEMS, final)
            return rss.growth
        finally:
            control.close()

    def test_never_reading_watcher_costs_bounded_memory(self):
        port, token = self.live.port, self.live.admin_token
        ws = live.RawWebSocket(port, "/api/ws", headers={"Sec-WebSocket-Protocol": f"litchi.v1, bearer.{token}"},
                               rcvbuf=4096, timeout=120)
        self.addCleanup(ws.close)
        self.assertEqual(ws.handshake(), 101)
        self.assertEqual(ws.recv_json()["type"], "hello")

        with PeakRss(self.live.server.process.pid) as rss:
            job = self.live.admin.create_job(job_urls(self.live), name="slow consumer")
            ws.send_json({"type": "subscribe", "job": job["id"], "items": True})
            # From here on the client reads nothing.
            final = self.live.admin.wait_job(job["id"], timeout=300)
        growth = rss.growth
        self.assertEqual(final["counts"]["done"], ITEMS, final)

        # Now read: what arrives shows the server resynced or closed the watcher.
        resynced = closed = False
        last_iseq = 0
        iseq_gap = False
        ws.sock.settimeout(20)
        deadline = time.monotonic() + 60
        try:
            while time.monotonic() < deadline:
                message = ws.recv_json()
                if message["type"] == "snapshot":
                    resynced = True
                elif message["type"] == "item":
                    if message["iseq"] != last_iseq + 1:
                        iseq_gap = True
                    last_iseq = message["iseq"]
                elif message["type"] == "progress" and message["job"]["state"] == "done":
                    break
        except live.Closed as closed_frame:
            self.assertEqual(closed_frame.code, 1013)
            closed = True
        except (EOFError, ConnectionResetError):
            closed = True
        self.assertTrue(resynced or closed or iseq_gap,
                        "the watcher got everything: the test did not make it slow")
        self.assertLess(last_iseq, ITEMS + 1)
        control = self.control_growth()
        print(f"\nslow consumer: peak RSS growth {growth} KiB with a never-reading watcher, "
              f"{control} KiB for the same job unwatched", file=sys.stderr)
        self.assertLess(growth, RSS_GROWTH_BOUND_KIB)
        self.assertLess(growth - control, WATCHER_COST_BOUND_KIB)

        metrics = self.live.admin.get("/metrics").body.decode()
        self.assertIn("litchi_event_item_events_dropped_total", metrics)
        dropped = int(next(line.split()[1] for line in metrics.splitlines()
                           if line.startswith("litchi_event_item_events_dropped_total ")))
        self.assertGreater(dropped, 0)

    def test_ping_flood_without_reading_is_closed_not_buffered(self):
        # 400,000 protocol pings of 125 bytes, never reading the pongs: answering
        # them all would hold 50 MB. The server answers what the socket buffers
        # take, then closes with 1013. (The bound leaves room for ASan's 8 MiB
        # quarantine of the freed ping payloads.)
        port, token = self.live.port, self.live.admin_token
        ws = live.RawWebSocket(port, "/api/ws", headers={"Sec-WebSocket-Protocol": f"litchi.v1, bearer.{token}"},
                               rcvbuf=4096, timeout=120)
        self.addCleanup(ws.close)
        self.assertEqual(ws.handshake(), 101)
        self.assertEqual(ws.recv_json()["type"], "hello")
        ping = ws.frame_bytes(0x9, b"p" * 125)
        with PeakRss(self.live.server.process.pid) as rss:
            try:
                for _ in range(400):
                    ws.sock.sendall(ping * 1000)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server may drop us before the flood ends: that is fine too
            time.sleep(0.5)
        self.assertLess(rss.growth, 24 * 1024, "the server buffered pongs for a client that reads nothing")
        pongs = 0
        try:
            while True:
                fin, opcode, payload = ws.recv_frame()
                if opcode == 0xA:
                    pongs += 1
                elif opcode == 0x8:
                    self.assertEqual(int.from_bytes(payload[:2], "big"), 1013)
                    break
        except (EOFError, ConnectionResetError):
            pass  # dropped: the close frame could not get through either
        self.assertLess(pongs, 10_000)


if __name__ == "__main__":
    unittest.main()
