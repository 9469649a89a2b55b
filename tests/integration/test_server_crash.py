"""Crash loop: `litchi serve` is killed with SIGKILL at random moments while
jobs download (at least 10 times), restarted each time on the same data
folder, and at the end every accepted job must be complete with exact counts:
every item done exactly once, the SQLite file passes `PRAGMA integrity_check`,
every blob's sha256 equals its name, and no .part file is left.

The seed is printed; LITCHI_CRASH_SEED=<n> replays a run.
"""

import os
import random
import signal
import sqlite3
import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import litchi_testing as lt  # noqa: E402
from test_server import LitchiServer  # noqa: E402

MIN_KILLS_MID_JOB = 10
MAX_KILLS = 20
FIRST_JOB = 240
SECOND_JOB = 60


class ServerCrashLoopTest(unittest.TestCase):
    def test_kill_9_loop_keeps_every_job_exact(self):
        seed = int(os.environ.get("LITCHI_CRASH_SEED", time.time_ns() % 1_000_000))
        print(f"\ncrash loop seed {seed}", file=sys.stderr)
        rng = random.Random(seed)
        tmp = lt.make_temp_dir(self)
        data = tmp / "data"
        with lt.Origin() as origin:
            def urls(prefix, count):
                return [origin.url(f"/img/{prefix}{i}.png?delay={rng.randint(50, 250)}") for i in range(count)]

            server = LitchiServer(data, extra_args=["-j", "3", "--retries", "3"]).start()
            self.addCleanup(lambda: server.process and server.kill())
            token = server.admin_link_token
            client = server.client(token)
            jobs = {client.create_job(urls("ck", FIRST_JOB))["id"]: FIRST_JOB}
            client.close()

            kills = 0           # all SIGKILLs
            kills_mid_job = 0   # those that hit while items were still waiting or in flight
            done_seen = []
            second_submitted = False
            while kills_mid_job < MIN_KILLS_MID_JOB and kills < MAX_KILLS:
                if kills == 3 and not second_submitted:
                    # A job accepted between crashes must survive the ones after it.
                    client = server.client(token)
                    jobs[client.create_job(urls("ck2-", SECOND_JOB))["id"]] = SECOND_JOB
                    client.close()
                    second_submitted = True
                time.sleep(rng.uniform(0.05, 1.2))
                result = server.kill()
                self.assertEqual(result.returncode, -signal.SIGKILL, result.describe())
                kills += 1
                # The server is down: a plain read of the file is safe (WAL).
                db = sqlite3.connect(data / "litchi.db")
                try:
                    unfinished, done = db.execute(
                        "SELECT sum(state IN ('queued', 'active')), sum(state = 'done') FROM items").fetchone()
                finally:
                    db.close()
                if unfinished:
                    kills_mid_job += 1
                done_seen.append(done)
                server.start()
            print(f"{kills} kills, {kills_mid_job} mid-job; done after each: {done_seen}", file=sys.stderr)
            self.assertGreaterEqual(kills_mid_job, MIN_KILLS_MID_JOB)
            self.assertGreater(done_seen[-1], done_seen[0], "no progress between kills")

            client = server.client(token)
            finals = {job_id: client.wait_job(job_id, timeout=300) for job_id in jobs}
            items = {job_id: client.all_items(job_id, limit=1000) for job_id in jobs}
            client.close()
            result = server.stop(signal.SIGTERM)
            self.assertEqual(result.returncode, 0, result.describe())

        shas = set()
        for job_id, total in jobs.items():
            counts = finals[job_id]["counts"]
            self.assertEqual(counts, {"total": total, "queued": 0, "active": 0, "done": total, "failed": 0,
                                      "cancelled": 0}, finals[job_id])
            self.assertEqual(len(items[job_id]), total)
            self.assertEqual(len({i["id"] for i in items[job_id]}), total)
            for item in items[job_id]:
                self.assertEqual(item["state"], "done", item)
                self.assertRegex(item["sha256"], "^[0-9a-f]{64}$")
                shas.add(item["sha256"])
        self.assertEqual(len(shas), FIRST_JOB + SECOND_JOB, "every label is a different image")

        db = sqlite3.connect(data / "litchi.db")
        try:
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchall(), [("ok",)])
            for job_id, total in jobs.items():
                done = db.execute("SELECT count(*) FROM items WHERE job_id = ? AND state = 'done'",
                                  (job_id,)).fetchone()[0]
                self.assertEqual(done, total)
                stored = db.execute("SELECT total, queued, active, done, failed, cancelled FROM jobs WHERE id = ?",
                                    (job_id,)).fetchone()
                self.assertEqual(stored, (total, 0, 0, total, 0, 0))
        finally:
            db.close()

        self.assertEqual(lt.blob_dir_problems(data / "blobs"), [])
        self.assertEqual(lt.part_files(data), [])
        blob_names = {p.name.split(".")[0] for p in lt.blob_files(data / "blobs")}
        self.assertEqual(blob_names, shas)


if __name__ == "__main__":
    unittest.main()
