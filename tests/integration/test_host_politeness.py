"""Host health and politeness (docs/architecture.md "Host health", docs/cli.md
"Hosts"), with `litchi fetch` and `litchi serve` against the test origin:

- a dead host costs one failure cycle: its items all fail with the same reason,
  and the connections the dead listener saw are the few made before it was
  declared down (counted by the origin, and equal to the attempts reported);
- a host that comes back is found by one probe after its cool-off;
- 429 + Retry-After pauses the whole host: only what was in flight when the
  first 429 went out may still arrive inside the window;
- --per-host-rate spaces the requests to each host, read from the origin's
  per-host request log, while another host runs beside it;
- items waiting out a host's pause do not hold the server's claim buffer: a
  job on another host is claimed and finishes meanwhile.

Run:  LITCHI_BIN=build/<dir>/litchi python3 -m unittest -v test_host_politeness   (in tests/integration)
"""

import sys
import unittest
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import litchi_testing as lt  # noqa: E402
from test_fetch import FetchTestCase  # noqa: E402
import test_fetch  # noqa: E402
from test_server import LitchiServer  # noqa: E402

ORIGIN = None


def setUpModule():
    global ORIGIN
    ORIGIN = lt.Origin()
    ORIGIN.start()
    test_fetch.ORIGIN = ORIGIN  # FetchTestCase reads it


def tearDownModule():
    if ORIGIN is not None:
        ORIGIN.stop()


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def extra_port(name, **params):
    """Creates or changes the origin's extra listener `name` (origin.py /ports)."""
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return ORIGIN.get_json(f"/ports/{name}" + (f"?{query}" if query else ""))


def host_times(port):
    return ORIGIN.get_json(f"/host-log?host=127.0.0.1:{port}")["times"]


class FetchHostTest(FetchTestCase):

    def test_dead_host_costs_one_failure_cycle(self):
        name = unique("dead")
        port = extra_port(name, mode="dead")["port"]
        urls = [f"http://127.0.0.1:{port}/img/d{i}.png" for i in range(200)]
        run = self.fetch(urls, ["-j", "8", "--retries", "3", "--host-failures", "3"])
        self.assertEqual(run.result.returncode, 1, run.result.describe())
        self.assertManifestUrls(run, urls)
        reasons = {e.get("reason") for e in run.entries}
        self.assertEqual(reasons, {"connect"}, run.entries[:5])
        accepts = extra_port(name)["accepts"]
        attempts = sum(e.get("attempts", 0) for e in run.entries)
        # Every attempt is one connection the dead host reset.
        self.assertEqual(attempts, accepts)
        # Before the host was down: the 8 first transfers, and one more start
        # for each of the first two failures (the third takes it down). No
        # retries after that; without host health this would be 200 x 4.
        self.assertLessEqual(accepts, 8 + 3 - 1, run.entries[:12])
        self.assertGreaterEqual(accepts, 3)
        never_tried = [e for e in run.entries if e.get("attempts") == 0]
        self.assertGreaterEqual(len(never_tried), 200 - accepts)
        self.assertCleanDir(run)

    def test_connection_refused_host_fails_every_item_with_the_same_reason(self):
        port = test_fetch.free_port()
        urls = [f"http://127.0.0.1:{port}/img/r{i}.png" for i in range(300)]
        run = self.fetch(urls, ["-j", "16"])
        self.assertManifestUrls(run, urls)
        self.assertEqual({e.get("reason") for e in run.entries}, {"connect"})
        attempts = sum(e.get("attempts", 0) for e in run.entries)
        self.assertLessEqual(attempts, 16 + 3 - 1)

    def test_retry_after_pauses_the_whole_host(self):
        key = unique("win")
        urls = [ORIGIN.url(f"/window429/{key}/1/w{i}.png") for i in range(60)]
        run = self.fetch(urls, ["-j", "4", "--retries", "3"])
        self.assertEqual(run.result.returncode, 0, run.result.describe())
        for i in range(len(urls)):
            self.assertDone(run, i)
        window = ORIGIN.get_json(f"/window/{key}")
        # Only what was already in flight when the first 429 went out (at most
        # -j transfers, the first included) arrived inside the window.
        self.assertGreaterEqual(window["refused"], 1)
        self.assertLessEqual(window["refused"], 4, window)
        # And after it, each image once more (the retries), no storm.
        self.assertEqual(ORIGIN.hits(key), 60 + window["refused"])

    def test_per_host_rate_spaces_requests_to_each_host(self):
        slow_port = extra_port(unique("rate"), mode="serve")["port"]
        tag = unique("r")
        urls = []
        for i in range(8):
            urls.append(ORIGIN.url(f"/img/{tag}a{i}.png?key={tag}"))
            urls.append(f"http://127.0.0.1:{slow_port}/img/{tag}b{i}.png")
        run = self.fetch(urls, ["-j", "8", "--per-host-rate", "10"])
        self.assertEqual(run.result.returncode, 0, run.result.describe())
        main_times = ORIGIN.hit_times(tag)
        other_times = host_times(slow_port)
        self.assertEqual(len(main_times), 8)
        self.assertEqual(len(other_times), 8)
        for times in (other_times, main_times):
            # 10 per second: starts 100 ms apart. The origin stamps arrivals,
            # and on a busy machine one arrival can be late by tens of ms,
            # which shortens the next gap without any burst; so judge every
            # span of two gaps (a burst makes it a few ms, not 150 ms). The
            # first request also opened the connection the next ones reuse,
            # so it arrived late by that much: it is left out.
            spans = [c - a for a, c in zip(times[1:], times[3:])]
            self.assertGreaterEqual(min(spans), 0.15, times)
            self.assertLessEqual((len(times) - 2) / (times[-1] - times[1]), 10.5, times)
        # Per host, not in all: the other host's requests ran meanwhile.
        self.assertLess(other_times[0], main_times[-1])
        self.assertLess(main_times[0], other_times[-1])


class ServerTestCase(unittest.TestCase):
    """One `litchi serve` per class, -j 2 (so the claim buffer is small)."""

    SERVER_ARGS = []

    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(lt.tempfile.mkdtemp(prefix="litchi-hosts-"))
        cls.server = LitchiServer(cls.tmp / "data", extra_args=[
            "-j", "2", "--retries", "3", "--host-failures", "3", *cls.SERVER_ARGS]).start()
        cls.admin = cls.server.client(cls.server.admin_link_token)

    @classmethod
    def tearDownClass(cls):
        cls.admin.close()
        cls.server.stop()
        lt.shutil.rmtree(cls.tmp, ignore_errors=True)

    def metric(self, name):
        body = self.admin.get("/metrics", token=None).body.decode()
        for line in body.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        self.fail(f"{name} not in /metrics")

    def wait_for(self, ready, rounds=600):
        """Polls `ready` (an event the test cannot be told about) a bounded number of times."""
        for _ in range(rounds):
            if ready():
                return
            lt.time.sleep(0.05)
        self.fail("condition not reached")


class ServeHostTest(ServerTestCase):
    # A cool-off longer than any test: no probe comes in the middle of one.
    SERVER_ARGS = ["--host-cooloff", "60"]

    def test_dead_host_costs_one_failure_cycle_in_serve(self):
        name = unique("dead")
        port = extra_port(name, mode="dead")["port"]
        urls = [f"http://127.0.0.1:{port}/img/{name}-{i}.png" for i in range(120)]
        job = self.admin.create_job(urls)
        finished = self.admin.wait_job(job["id"])
        self.assertEqual(finished["counts"]["failed"], 120, finished)
        items = self.admin.all_items(job["id"])
        self.assertEqual({i.get("reason") for i in items}, {"connect"})
        accepts = extra_port(name)["accepts"]
        self.assertEqual(sum(i.get("attempts", 0) for i in items), accepts)
        # The 2 first transfers and one more start for each of the first two
        # failures; without host health, 120 x 4.
        self.assertLessEqual(accepts, 2 + 3 - 1, items[:8])
        self.assertGreaterEqual(accepts, 3)

    def test_items_paused_on_one_host_do_not_hold_the_claim_buffer(self):
        key = unique("pause")
        # A long Retry-After: the paused job's items wait in the engine.
        paused = self.admin.create_job([ORIGIN.url(f"/window429/{key}/30/p{i}.png") for i in range(30)])
        self.wait_for(lambda: ORIGIN.get_json(f"/window/{key}")["refused"] >= 1)
        other_port = extra_port(unique("other"), mode="serve")["port"]
        tag = unique("o")
        other = self.admin.create_job([f"http://127.0.0.1:{other_port}/img/{tag}{i}.png" for i in range(20)])
        done = self.admin.wait_job(other["id"])
        self.assertEqual(done["counts"]["done"], 20, done)
        still = self.admin.job(paused["id"])
        self.assertEqual(still["state"], "running", still)
        self.assertEqual(still["counts"]["done"], 0, still)
        # The paused job's items are parked in the engine (claimed, holding no slot).
        self.assertGreaterEqual(self.metric("litchi_parked_items"), 1)
        self.assertEqual(self.metric("litchi_active_transfers"), 0)
        # Nothing more went to the paused host while it asked us to wait:
        # only the (at most 2) requests in flight when the first 429 went out.
        self.assertLessEqual(ORIGIN.get_json(f"/window/{key}")["refused"], 2)
        self.assertEqual(self.admin.post(f"/api/jobs/{paused['id']}/cancel").status, 200)
        cancelled = self.admin.wait_job(paused["id"], states=("cancelled",))
        self.assertEqual(cancelled["counts"]["done"], 0, cancelled)


class ServeRecoveryTest(ServerTestCase):
    # A short cool-off that does not grow: the probe comes soon after.
    SERVER_ARGS = ["--host-cooloff", "0.2", "--host-cooloff-cap", "0.2"]

    def test_a_host_that_comes_back_is_found_by_one_probe(self):
        name = unique("back")
        port = extra_port(name, mode="dead")["port"]
        urls = [f"http://127.0.0.1:{port}/img/{name}-{i}.png" for i in range(20)]
        job = self.admin.create_job(urls)
        first = self.admin.wait_job(job["id"])
        self.assertEqual(first["counts"]["failed"], 20, first)

        # The host comes back. Retried while its cool-off runs, items fail at
        # once without a connection; the first after it is the one probe
        # (the only connection while the host is down), and its answer lets
        # every other item through.
        extra_port(name, mode="serve")
        again = first
        for _ in range(400):
            before = extra_port(name)["accepts"]
            response = self.admin.post(f"/api/jobs/{job['id']}/retry")
            self.assertEqual(response.status, 200, response)
            done_before = again["counts"]["done"]
            again = self.admin.wait_job(job["id"])
            if again["counts"]["done"] == 20:
                break
            if again["counts"]["done"] == done_before:
                # Still down for the whole round: not one connection (the
                # host was back, so a probe would have succeeded).
                self.assertEqual(extra_port(name)["accepts"], before)
        self.assertEqual(again["counts"]["done"], 20, again)
        self.assertEqual(len(host_times(port)), 20)  # each image once, once the host was back


if __name__ == "__main__":
    unittest.main()
