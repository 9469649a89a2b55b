"""A full disk (issue 10, #1 and #2): the data folder on a small tmpfs.

What a full disk does (docs/architecture.md, "A full disk"):
  * a download that would leave less than --min-free on the image folder's
    disk fails with reason `io`, so the database keeps room to record it;
  * results the database refuses all the same (the disk filled by someone
    else) are kept and committed again once it takes writes, never dropped;
  * reads (GET /api/jobs/{id}/items) keep answering 200: authenticating is
    no write (last_used at most once a minute, and its failure is ignored);
  * once there is room, `retry` finishes the job.

Needs root (mount). Every address is 127.0.0.1."""

import os
import subprocess
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import litchi_testing as lt  # noqa: E402
from test_server import LitchiServer, create_token  # noqa: E402

DISK = "8m"
IMAGE = "?w=400&h=400"  # ~230 KB of noise PNG each


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill(path, leave):
    """Grows the filler file at `path` until at most `leave` bytes are free."""
    with open(path, "ab") as f:
        while free_bytes(path.parent) > leave:
            try:
                f.write(b"\0" * min(1 << 20, max(free_bytes(path.parent) - leave, 4096)))
                f.flush()
            except OSError:
                break


@unittest.skipUnless(os.geteuid() == 0, "mounting a tmpfs needs root")
class FullDiskTest(unittest.TestCase):
    def setUp(self):
        self.origin = lt.Origin()
        self.origin.start()
        self.addCleanup(self.origin.stop)
        self.tmp = lt.make_temp_dir(self)
        self.data = self.tmp / "data"
        self.data.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(self.data)], check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", str(self.data)], check=False)
        self.server = LitchiServer(self.data, extra_args=["--retries", "0", "--min-free", str(512 << 10)]).start()
        self.addCleanup(self.stop_server)
        self.client = self.server.client(self.server.admin_link_token)
        self.addCleanup(self.client.close)
        # A second token, never used yet: its first use happens on a full disk
        # (last_used is written then, and that write fails).
        self.fresh_token = create_token(self.data, "admin")
        self.filler = self.data / "filler"

    def stop_server(self):
        if self.server.process is not None:
            self.server.stop()

    def urls(self, count, prefix):
        return [self.origin.url(f"/img/{prefix}{i}.png{IMAGE}") for i in range(count)]

    def assert_reads_work(self, job_id):
        reader = self.server.client(self.fresh_token)
        try:
            response = reader.get(f"/api/jobs/{job_id}/items?limit=50")
            self.assertEqual(response.status, 200, response)
            self.assertEqual(reader.get("/api/jobs").status, 200)
            self.assertEqual(reader.get(f"/api/jobs/{job_id}").status, 200)
        finally:
            reader.close()

    def finish_after_freeing(self, job_id, count):
        self.filler.unlink()
        response = self.client.post(f"/api/jobs/{job_id}/retry")
        self.assertIn(response.status, (200, 409), response)
        job = self.client.wait_job(job_id)
        self.assertEqual(job["counts"]["done"], count, job)
        self.assertEqual(job["counts"]["failed"], 0, job)
        items = self.client.all_items(job_id)
        self.assertEqual(len(items), count)
        self.assertTrue(all(item["state"] == "done" for item in items), items)
        # Every stored image is whole (the running engine keeps a few empty
        # .part files open ahead of use: not leftovers).
        problems = [p for p in lt.blob_dir_problems(self.data / "blobs") if "leftover part" not in p]
        self.assertEqual(problems, [])

    def test_a_job_bigger_than_the_free_space_fails_items_with_io_then_retry_finishes_it(self):
        # ~2 MB free, a job of ~4.6 MB: it cannot fit until the filler goes.
        fill(self.filler, 2 << 20)
        count = 20
        job = self.client.create_job(self.urls(count, "a"))
        job = self.client.wait_job(job["id"], states=("done",))
        counts = job["counts"]
        self.assertEqual(counts["active"], 0, job)
        self.assertEqual(counts["queued"], 0, job)
        self.assertGreater(counts["failed"], 0, job)
        self.assertEqual(counts["done"] + counts["failed"], count, job)
        failed = self.client.all_items(job["id"], state="failed")
        self.assertEqual({item["reason"] for item in failed}, {"io"}, failed)

        # Now really full (not a byte left): reads still answer.
        fill(self.filler, 0)
        self.assert_reads_work(job["id"])

        self.finish_after_freeing(job["id"], count)

    def test_results_the_database_refuses_are_kept_and_stored_once_there_is_room(self):
        # The disk fills up (someone else) while downloads are on the way:
        # the database cannot record anything, not even a failure.
        count = 12
        fill(self.filler, 3 << 20)
        job = self.client.create_job([u + "&delay=1500" for u in self.urls(count, "b")])
        # The downloads have started once the origin saw them all.
        deadline = lt.time.monotonic() + 60
        while sum(self.origin.request_counts().values()) < count and lt.time.monotonic() < deadline:
            lt.time.sleep(0.05)
        fill(self.filler, 0)
        # The server says why nothing moves, and reads keep working.
        deadline = lt.time.monotonic() + 60
        health = None
        while lt.time.monotonic() < deadline:
            health = self.client.get("/healthz")
            if health.status == 503:
                break
            lt.time.sleep(0.1)
        self.assertEqual(health.status, 503, health)
        self.assertIn("wait to be stored", health.json()["store"])
        self.assert_reads_work(job["id"])

        # Room again: the kept results are stored without anyone's help (no
        # item stays active), and retry finishes what failed.
        self.filler.unlink()
        deadline = lt.time.monotonic() + 60
        while lt.time.monotonic() < deadline:
            job = self.client.job(job["id"])
            if job["counts"]["active"] == 0 and job["counts"]["queued"] == 0:
                break
            lt.time.sleep(0.1)
        self.assertEqual(job["counts"]["active"], 0, job)
        self.assertEqual(self.client.get("/healthz").status, 200)
        fill(self.filler, 8 << 20)  # recreated (a no-op) so that finish can remove it
        self.finish_after_freeing(job["id"], count)


if __name__ == "__main__":
    unittest.main()
