"""Fair shares of transfer slots (issue 9, #1) through a real `litchi serve`.

The rule (docs/architecture.md, "Fair shares of transfer slots"): slots are
shared max-min across users, then across one user's jobs; a job alone takes
every idle slot, and gives back what is above its share as soon as another
user's job waits (a transfer that has had no answer yet goes back to the
queue: no attempt spent); --per-host still holds inside that.

The slow host is the test origin's gate (/gate/<key>/...): it holds every
request, sending nothing, until the test opens it, so "slow" is as slow as the
test wants and nothing depends on timing. What a job got is read from the
origin (requests held at the gate, the most held at once, those given up) and
from the server's /metrics. Every address is 127.0.0.1.
"""

import re
import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import litchi_testing as lt  # noqa: E402
from test_server import LitchiServer, add_user, create_token  # noqa: E402

SLOTS = 4
WAIT_S = 60  # an upper bound for a state the test waits for, never a measurement


def metric(client, name):
    response = client.get("/metrics")
    assert response.status == 200, response
    match = re.search(rf"^{name} (\d+)$", response.body.decode(), re.M)
    assert match, f"{name} not in /metrics"
    return int(match.group(1))


class FairSharesTest(unittest.TestCase):
    NETWORK_THREADS = 1  # the server's default

    def server_args(self, *more):
        return ["-j", str(SLOTS), "--network-threads", str(self.NETWORK_THREADS), *more,
                "--retries", "0", "--min-speed", "0", "--timeout", "3600"]

    def setUp(self):
        self.origin = lt.Origin()
        self.origin.start()
        self.addCleanup(self.origin.stop)
        self.data = lt.make_temp_dir(self)
        # A held request sends nothing for as long as the test wants: no
        # low-speed or total timeout may end it meanwhile.
        self.server = LitchiServer(self.data, extra_args=self.server_args()).start()
        self.addCleanup(self.stop_server)
        self.alice = self.server.client(create_token(self.data, "admin"))
        self.addCleanup(self.alice.close)
        result = add_user(self.data, "bob", "bob-password-1")
        self.assertEqual(result.returncode, 0, result.describe())
        self.bob = self.server.client(create_token(self.data, "bob"))
        self.addCleanup(self.bob.close)

    def stop_server(self):
        if self.server.process is not None:
            self.server.stop()

    def gate(self, key):
        return self.origin.get_json(f"/gates/{key}")

    def wait_for(self, read, ready, what):
        deadline = time.monotonic() + WAIT_S
        value = read()
        while not ready(value) and time.monotonic() < deadline:
            time.sleep(0.02)
            value = read()
        self.assertTrue(ready(value), f"{what}: {value}")
        return value

    def gated(self, key, count):
        return [self.origin.url(f"/gate/{key}/{key}{i}.png") for i in range(count)]

    def test_a_slow_hosts_job_gives_a_newcomer_its_share_and_takes_idle_slots_back(self):
        slow = self.alice.create_job(self.gated("slow", 12), name="slow host")
        # Alone, alice's job takes every idle slot.
        self.wait_for(lambda: self.gate("slow"), lambda g: g["waiting"] == SLOTS,
                      "alice holds every slot")
        self.assertEqual(metric(self.alice, "litchi_preempted_transfers_total"), 0)

        # Bob's job on a fast host. Alice's requests never end while the gate
        # is shut: before fair shares, bob waited for as long as they did.
        fast_urls = [self.origin.url(f"/img/fast{i}.png?key=fair-fast") for i in range(10)]
        fast = self.bob.create_job(fast_urls, name="fast host")
        fast = self.bob.wait_job(fast["id"], timeout=WAIT_S)
        self.assertEqual(fast["counts"]["done"], 10, fast)
        self.assertEqual(self.origin.hits("fair-fast"), 10, "each image fetched once")

        # ...while alice's job moved not at all and gave up the slots above
        # her share (half of -j), each a request with no answer yet. At least
        # those two; more when a slot bob left for a moment (his next items
        # not claimed yet) was lent to her and taken back once they came.
        slow_now = self.alice.job(slow["id"])
        self.assertEqual(slow_now["counts"]["done"], 0, slow_now)
        self.assertEqual(slow_now["counts"]["failed"], 0, slow_now)
        preempted = metric(self.alice, "litchi_preempted_transfers_total")
        self.assertGreaterEqual(preempted, SLOTS // 2)
        gate = self.wait_for(lambda: self.gate("slow"), lambda g: g["abandoned"] == preempted,
                             "every preempted request is one the origin saw given up")
        self.assertFalse(gate["open"])

        # Bob is done: alice takes the idle slots back.
        self.wait_for(lambda: self.gate("slow"), lambda g: g["waiting"] == SLOTS,
                      "alice takes back the slots bob left")

        # The host answers: alice's job finishes, and a request given up for
        # bob was not an attempt.
        self.origin.get_json("/gate-open/slow")
        slow_done = self.alice.wait_job(slow["id"], timeout=WAIT_S)
        self.assertEqual(slow_done["counts"]["done"], 12, slow_done)
        items = self.alice.all_items(slow["id"])
        self.assertEqual({item["attempts"] for item in items}, {1}, items)
        self.assertEqual(self.gate("slow")["arrived"], 12 + preempted)

    def test_one_users_jobs_share_her_slots(self):
        # Alice's first job fills every slot; her second gets half of them
        # (max-min within a user too), the first keeping the other half.
        first = self.alice.create_job(self.gated("first", 10), name="first")
        self.wait_for(lambda: self.gate("first"), lambda g: g["waiting"] == SLOTS, "first holds all")
        second = self.alice.create_job(self.gated("second", 10), name="second")
        self.wait_for(lambda: self.gate("second"), lambda g: g["waiting"] == SLOTS // 2,
                      "the second job gets its half")
        self.wait_for(lambda: self.gate("first"),
                      lambda g: g["abandoned"] == SLOTS // 2 and g["waiting"] == SLOTS // 2,
                      "the first job gave up the other half")
        self.assertEqual(metric(self.alice, "litchi_preempted_transfers_total"), SLOTS // 2)
        self.assertEqual(self.gate("second")["max_waiting"], SLOTS // 2)
        self.origin.get_json("/gate-open/first")
        self.origin.get_json("/gate-open/second")
        for job in (first, second):
            done = self.alice.wait_job(job["id"], timeout=WAIT_S)
            self.assertEqual(done["counts"]["done"], 10, done)

    def test_per_host_limit_holds_inside_the_shares(self):
        # --per-host 1: alice's job on one host holds one slot however many
        # are idle, and bob's job on the same host never runs beside it
        # (a host at its limit is no reason to take a slot from anyone).
        self.stop_server()
        self.server = LitchiServer(self.data, extra_args=self.server_args("--per-host", "1")).start()
        alice = self.server.client(create_token(self.data, "admin"))
        self.addCleanup(alice.close)
        bob = self.server.client(create_token(self.data, "bob"))
        self.addCleanup(bob.close)
        slow = alice.create_job(self.gated("host", 6), name="one host")
        self.wait_for(lambda: self.gate("host"), lambda g: g["waiting"] == 1, "one slot for the host")
        mine = bob.create_job(self.gated("host", 3), name="same host")
        # Bob's job is claimed (active) but cannot start: the host is full.
        self.wait_for(lambda: bob.job(mine["id"])["counts"]["active"], lambda n: n == 3,
                      "bob's items in the engine")
        self.assertEqual(self.gate("host")["waiting"], 1)
        self.assertEqual(self.gate("host")["abandoned"], 0)
        self.assertEqual(metric(alice, "litchi_preempted_transfers_total"), 0)
        self.origin.get_json("/gate-open/host")
        for client, job, count in ((alice, slow, 6), (bob, mine, 3)):
            done = client.wait_job(job["id"], timeout=WAIT_S)
            self.assertEqual(done["counts"]["done"], count, done)
        self.assertEqual(self.gate("host")["max_waiting"], 1, "--per-host 1 held throughout")


    def test_cancel_ends_every_held_transfer(self):
        # A cancelled job's transfers end at once, whichever network thread
        # runs them (a cancel reaches one thread, which hands the others'
        # transfers to them).
        job = self.alice.create_job(self.gated("cancel", 10), name="cancelled")
        self.wait_for(lambda: self.gate("cancel"), lambda g: g["waiting"] == SLOTS, "every slot held")
        response = self.alice.post(f"/api/jobs/{job['id']}/cancel")
        self.assertEqual(response.status, 200, response)
        gate = self.wait_for(lambda: self.gate("cancel"), lambda g: g["abandoned"] == SLOTS,
                             "every held request given up")
        self.assertEqual((gate["arrived"], gate["waiting"]), (SLOTS, 0), gate)
        final = self.alice.wait_job(job["id"], states=("cancelled",), timeout=WAIT_S)
        self.assertEqual(final["counts"]["cancelled"], 10, final)
        self.assertEqual(final["counts"]["queued"] + final["counts"]["active"], 0, final)


class FairSharesOnTwoNetworkThreadsTest(FairSharesTest):
    """The same rules when the engine's slots are split over two network
    threads (--network-threads 2: two slots each)."""

    NETWORK_THREADS = 2


if __name__ == "__main__":
    unittest.main()
