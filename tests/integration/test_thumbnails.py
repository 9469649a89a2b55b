"""Thumbnails (issue 10, #7): a few sizes only (snapped up to 64/128/256/512),
cached, rendered on their own threads so a burst of them never holds up the
rest of the API."""

import http.client
import os
import sys
import threading
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import litchi_testing as lt  # noqa: E402
from test_server import LitchiServer  # noqa: E402


class ThumbnailTest(unittest.TestCase):
    def setUp(self):
        self.origin = lt.Origin()
        self.origin.start()
        self.addCleanup(self.origin.stop)
        tmp = lt.make_temp_dir(self)
        self.server = LitchiServer(tmp / "data", extra_args=["--workers", "4", "--thumb-workers", "2"]).start()
        self.addCleanup(self.server.stop)
        self.client = self.server.client(self.server.admin_link_token)
        self.addCleanup(self.client.close)
        job = self.client.create_job([self.origin.url("/img/big.png?w=3000&h=3000")])
        job = self.client.wait_job(job["id"])
        self.assertEqual(job["counts"]["done"], 1, job)
        self.sha = self.client.all_items(job["id"])[0]["sha256"]

    def thumb_files(self):
        root = self.server.data_dir / "thumbs"
        return sorted(p.name for p in root.rglob("*.webp"))

    def test_sizes_are_snapped_and_cached(self):
        for asked, made in ((16, 64), (64, 64), (65, 128), (100, 128), (256, 256), (300, 512), (1024, 512)):
            response = self.client.get(f"/api/images/{self.sha}?thumb={asked}")
            self.assertEqual(response.status, 200, response)
            self.assertEqual(response.header("etag"), f'"{self.sha}-t{made}"', asked)
            self.assertEqual(response.header("content-type"), "image/webp")
        self.assertEqual(self.thumb_files(), [f"{self.sha}-{n}.webp" for n in (128, 256, 512, 64)])
        self.assertEqual(self.client.get(f"/api/images/{self.sha}?thumb=2000").status, 400)

    def test_a_burst_of_thumbnails_does_not_hold_up_the_api(self):
        sizes = list(range(16, 1025, 64))  # 16 requests; each would be a full decode before
        pending = len(sizes)
        lock = threading.Lock()
        results = []

        def fetch(size):
            nonlocal pending
            conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=120)
            conn.request("GET", f"/api/images/{self.sha}?thumb={size}",
                         headers={"Authorization": f"Bearer {self.server.admin_link_token}"})
            status = conn.getresponse().status
            conn.close()
            with lock:
                results.append(status)
                pending -= 1

        threads = [threading.Thread(target=fetch, args=(s,)) for s in sizes]
        for t in threads:
            t.start()
        # The rest of the API answers while the thumbnails are still queued
        # on their own pool (with one shared pool it waited behind all of them).
        answered_while_pending = 0
        for _ in range(5):
            self.assertEqual(self.client.get("/api/jobs").status, 200)
            with lock:
                answered_while_pending += pending > 0
        for t in threads:
            t.join()
        self.assertEqual(results, [200] * len(sizes))
        self.assertGreaterEqual(answered_while_pending, 4)
        self.assertLessEqual(len(self.thumb_files()), 4, self.thumb_files())


if __name__ == "__main__":
    unittest.main()
