"""`litchi fetch` says what failed: at the end, a summary by failure reason
(count, and the first few URLs with their HTTP status) on stderr, and the same
in the last object of --progress json. The input goes through the one URL list
rule (blank lines, comments and duplicates dropped; the duplicates reported).
"""

import json
import unittest

import litchi_testing as lt


def shown(url):
    """A URL as the summary shows it: its query cut to "?..."."""
    head, sep, _ = url.partition("?")
    return head + ("?..." if sep else "")


class FetchSummary(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.origin = lt.Origin().__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.origin.__exit__(None, None, None)

    def fetch(self, lines, *flags):
        tmp = lt.make_temp_dir(self)
        listing = tmp / "urls.txt"
        listing.write_text("\n".join(lines) + "\n")
        manifest = tmp / "manifest.jsonl"
        result = lt.run_litchi(["fetch", "-i", listing, "-o", tmp / "out", "--allow-private", "--retries", "0",
                                "--manifest", manifest, *flags], timeout=120)
        return result, lt.read_manifest(manifest)

    def urls(self):
        o = self.origin
        return [o.url("/img/s1.png"), o.url("/status/404"), o.url("/status/404?x=2"), o.url("/status/404?x=3"),
                o.url("/status/404?x=4"), o.url("/status/503"), o.url("/html-as-png.png"),
                "http://user:pw@127.0.0.1:9/a.png"]

    def test_summary_by_reason_on_stderr(self):
        urls = self.urls()
        result, manifest = self.fetch(urls, "--progress", "none")
        self.assertEqual(result.returncode, 1, result.describe())
        lines = result.stderr.splitlines()
        start = lines.index("litchi fetch: failures by reason:")
        rows = {line.split()[0]: line for line in lines[start + 1:] if line.startswith("  ")}
        self.assertEqual(set(rows), {"http", "not_image", "bad_url"})
        http = rows["http"].split()
        self.assertEqual(http[1], "5")
        # The first three, in input order, with their status; then "...".
        # Queries (which may carry a signature or a token) are cut to "?...".
        self.assertIn(f"{urls[1]} (404), {shown(urls[2])} (404), {shown(urls[3])} (404), ...", rows["http"])
        self.assertNotIn("x=2", rows["http"])
        self.assertIn("http://***@127.0.0.1:9/a.png", rows["bad_url"])
        self.assertEqual(rows["not_image"].split()[1], "1")
        self.assertIn(urls[6], rows["not_image"])
        self.assertNotIn("pw@", result.stderr, "a URL's password reached the output")
        self.assertEqual(len(manifest), len(urls))

    def test_summary_in_the_last_json_object(self):
        urls = self.urls()
        result, _ = self.fetch(urls, "--progress", "json")
        self.assertEqual(result.returncode, 1, result.describe())
        objects = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
        final = objects[-1]
        self.assertEqual(final["type"], "summary")
        self.assertNotIn("pw@", result.stderr, "a URL's password reached the output")
        self.assertEqual((final["total"], final["done"], final["failed"]), (8, 1, 7))
        self.assertEqual(final["failures"]["http"]["count"], 5)
        self.assertEqual(final["failures"]["http"]["examples"],
                         [{"url": shown(urls[i]), "http_status": 404} for i in (1, 2, 3)])
        self.assertEqual(final["failures"]["bad_url"]["count"], 1)
        self.assertNotIn("summary", [o.get("type") for o in objects[:-1]])

    def test_no_failures_no_summary(self):
        result, _ = self.fetch([self.origin.url("/img/s2.png")], "--progress", "none")
        self.assertEqual(result.returncode, 0, result.describe())
        self.assertNotIn("failures by reason", result.stderr)

    def test_duplicates_and_comments_are_dropped_and_reported(self):
        a, b = self.origin.url("/img/d1.png"), self.origin.url("/img/d2.png")
        result, manifest = self.fetch(["# list", a, "", f"  {a}  ", b, a, "#" + b], "--progress", "none")
        self.assertEqual(result.returncode, 0, result.describe())
        self.assertEqual([m["url"] for m in manifest], [a, b])
        self.assertIn("skipped 2 duplicate URLs", result.stderr)


if __name__ == "__main__":
    unittest.main()
