"""`litchi watch`: follows a job over the progress WebSocket, exits 0 when it is
done, prints the final job (equal to the REST view) on stdout, never prints the
token, survives a server kill -9 + restart on the same port (reconnect with
backoff, then resume), and exits 2 on usage errors and refused tokens."""

import json
import re
import socket
import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import live_testing as live  # noqa: E402
import litchi_testing as lt  # noqa: E402
from test_server import LISTEN_RE, START_TIMEOUT  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FixedPortServer(live.LitchiServer):
    """LitchiServer on a port chosen up front, so a restart keeps the URL."""

    def __init__(self, data_dir, port, extra_args=()):
        super().__init__(data_dir, extra_args=extra_args)
        self.fixed_port = port

    def start(self):
        args = ["serve", "--listen", f"127.0.0.1:{self.fixed_port}", "--data", self.data_dir, "--web", self.web_dir,
                "--allow-private", *self.extra_args]
        self.process = lt.LitchiProcess(args)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            out = self.process.stdout_so_far()
            match = LISTEN_RE.search(out)
            if match:
                self.base, self.port = match.group(1), int(match.group(2))
                link = re.search(r"/login#token=(\S+)", out)
                if link:
                    self.admin_link = link.group(1)
                    self.admin_link_token = self.exchange_link(self.admin_link)
                return self
            if not self.process.running():
                raise RuntimeError("litchi serve exited at start:\n" + self.process.wait(timeout=5).describe())
            time.sleep(0.05)
        raise RuntimeError("litchi serve did not start")


class WatchTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.origin = lt.Origin().__enter__()
        cls.tmp = Path(lt.tempfile.mkdtemp(prefix="litchi-watch-"))
        cls.server = FixedPortServer(cls.tmp / "data", free_port(), extra_args=["-j", "2", "--retries", "0"]).start()
        cls.token = cls.server.admin_link_token
        cls.client = cls.server.client(cls.token)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        if cls.server.process is not None:
            cls.server.stop()
        cls.origin.stop()
        lt.shutil.rmtree(cls.tmp, True)

    def urls(self, count, delay_ms, prefix):
        return [self.origin.url(f"/img/{prefix}{i}.png?delay={delay_ms}") for i in range(count)]

    def watch(self, *args, env=None):
        return lt.LitchiProcess(["watch", *map(str, args), "--server", self.server.base, "--progress", "json"],
                                env=env)

    def test_watch_job_until_done_with_token_from_env(self):
        job = self.client.create_job(self.urls(60, 20, "w"))
        result = self.watch(job["id"], env={"LITCHI_TOKEN": self.token}).wait(timeout=120)
        self.assertEqual(result.returncode, 0, result.describe())
        final = json.loads(result.stdout.strip().splitlines()[-1])
        self.assertEqual(live.comparable(final), live.comparable(self.client.job(job["id"])))
        lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
        self.assertTrue(lines, result.stderr)
        dones = [line["done"] for line in lines if "done" in line]
        self.assertEqual(dones, sorted(dones))
        self.assertNotIn(self.token, result.stdout + result.stderr)

    def test_watch_all_jobs(self):
        job = self.client.create_job(self.urls(10, 10, "all"))
        result = self.watch("--token", self.token).wait(timeout=120)
        self.assertEqual(result.returncode, 0, result.describe())
        summary = json.loads(result.stderr.strip().splitlines()[-1])
        self.assertEqual(summary["type"], "summary")
        jobs = self.client.get("/api/jobs").json()["jobs"]
        self.assertEqual(summary["jobs"], len(jobs))
        self.assertEqual(summary["done"], sum(j["counts"]["done"] for j in jobs))
        self.assertIn(job["id"], {j["id"] for j in jobs})
        self.assertEqual(result.stdout, "", "no JSON dump of every job")

    def test_watch_all_counts_cancelled_items_as_finished(self):
        # A cancelled job's items are not "left": the watcher ends with a
        # clean summary and exit 0 once every job ended.
        cancelled = self.client.create_job(self.urls(40, 2000, "cx"))
        self.assertEqual(self.client.post(f"/api/jobs/{cancelled['id']}/cancel").status, 200)
        result = lt.LitchiProcess(["watch", "--server", self.server.base, "--progress", "none",
                                   "--token", self.token]).wait(timeout=120)
        self.assertEqual(result.returncode, 0, result.describe())
        last = result.stderr.strip().splitlines()[-1]
        self.assertRegex(last, r"^litchi watch: all \d+ jobs? ended: \d+ done, \d+ failed, \d+ cancelled")
        self.assertNotIn("{", result.stdout + result.stderr)

    def test_unreachable_server_is_one_status_line_and_gives_up(self):
        port = free_port()
        result = lt.LitchiProcess(["watch", "--server", f"http://127.0.0.1:{port}", "--token", self.token,
                                   "--progress", "none", "--retry-for", "3", "--retry-base", "50",
                                   "--retry-cap", "200"]).wait(timeout=60)
        self.assertEqual(result.returncode, 1, result.describe())
        lines = result.stderr.strip().splitlines()
        # Many attempts in 3 s, but the same news is said once, then the end.
        self.assertLessEqual(len(lines), 3, result.describe())
        self.assertIn("giving up", lines[-1])
        self.assertNotIn(self.token, result.stderr)

    def test_usage_errors_and_refused_token(self):
        cases = [["watch", "1"],  # no --server
                 ["watch", "1", "--server", self.server.base],  # no token
                 ["watch", "1", "--server", "ftp://127.0.0.1:1", "--token", "x"],
                 ["watch", "1", "--server", "not a url", "--token", "x"],
                 ["watch", "1", "--server", self.server.base, "--token", "lt_wrongwrongwrong"]]
        for args in cases:
            with self.subTest(args=args[:4]):
                result = lt.run_litchi(args, timeout=60, env={"LITCHI_TOKEN": ""})
                self.assertEqual(result.returncode, 2, result.describe())
                self.assertNotIn("lt_wrongwrongwrong", result.stdout + result.stderr)

    def test_unknown_job_exits_1(self):
        result = self.watch(987654, "--token", self.token).wait(timeout=60)
        self.assertEqual(result.returncode, 1, result.describe())

    def test_reconnects_after_kill_9_and_finishes(self):
        # The server is killed mid-job and started again on its port; other
        # tests of the class may run before or after this one.
        job = self.client.create_job(self.urls(80, 40, "k"))
        watcher = self.watch(job["id"], "--token", self.token)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and '"done"' not in watcher.stderr_so_far():
            time.sleep(0.1)
        self.assertIn('"done"', watcher.stderr_so_far(), "the watcher never showed progress")
        self.server.kill()
        self.server.start()
        self.client.close()
        result = watcher.wait(timeout=180)
        self.assertEqual(result.returncode, 0, result.describe())
        final = json.loads(result.stdout.strip().splitlines()[-1])
        self.assertEqual(final["state"], "done")
        self.assertEqual(final["counts"], self.client.job(job["id"])["counts"])
        self.assertNotIn(self.token, result.stdout + result.stderr)


if __name__ == "__main__":
    unittest.main()
