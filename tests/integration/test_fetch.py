"""Integration tests for `litchi fetch` against the test origin (tests/origin).

Checks the contract of docs/cli.md ("litchi fetch") with real processes on
127.0.0.1: the exact failure reason for every fault the origin injects, the
files on disk (hash = name, no .part left), the manifest (one line per input
URL, in input order), retries and Retry-After, exit status, input forms,
dedup, re-runs that skip finished work, Ctrl-C, JSON progress, the SSRF guard
and bounded memory.

Run:  LITCHI_BIN=build/<dir>/litchi python3 -m unittest -v test_fetch   (in tests/integration)
"""

import json
import os
import signal
import socket
import subprocess
import time
import unittest
import uuid
from pathlib import Path
from urllib.parse import quote

from litchi_testing import (LitchiProcess, Origin, blob_dir_problems, blob_files, make_temp_dir, part_files,
                            read_manifest, run_litchi, sha256_file)

ORIGIN = None
# The manifest's "format" names; the file extension differs only for JPEG.
FORMAT_NAME = {"jpg": "jpeg"}
MiB = 1024 * 1024


def setUpModule():
    global ORIGIN
    ORIGIN = Origin()
    ORIGIN.start()


def tearDownModule():
    if ORIGIN is not None:
        ORIGIN.stop()


def unique(prefix):
    """A hit-counter key no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def free_port():
    """A loopback port with nothing listening on it (for connect failures)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FetchRun:
    """One finished `litchi fetch`: the process result, the manifest and the output folder."""

    def __init__(self, result, out, manifest_path):
        self.result = result
        self.out = out
        self.manifest_path = manifest_path
        self.entries = read_manifest(manifest_path) if manifest_path.exists() else None

    def entry(self, index):
        return self.entries[index]


class FetchTestCase(unittest.TestCase):
    """Runs `litchi fetch` with a fresh output folder and manifest per call."""

    maxDiff = None

    def fetch(self, urls=(), flags=(), allow_private=True, stdin_text=None, timeout=120, out=None, manifest=None,
              env=None):
        work = make_temp_dir(self)
        out = out or work / "images"
        manifest = manifest or work / "manifest.jsonl"
        args = ["fetch", "-o", out, "--manifest", manifest]
        if allow_private:
            args.append("--allow-private")
        args += list(flags) + list(urls)
        result = run_litchi(args, timeout=timeout, stdin_text=stdin_text, env=env)
        self.assertFalse(result.timed_out, result.describe())
        self.assertGreaterEqual(result.returncode, 0, "litchi died from a signal\n" + result.describe())
        return FetchRun(result, Path(out), Path(manifest))

    def assertManifestUrls(self, run, urls):
        self.assertIsNotNone(run.entries, "no manifest written\n" + run.result.describe())
        self.assertEqual([e.get("url") for e in run.entries], list(urls), run.result.describe())

    def assertDone(self, run, index, fmt=None, width=None, height=None):
        entry = run.entry(index)
        self.assertEqual(entry.get("status"), "done", f"{entry}\n{run.result.describe()}")
        sha = entry["sha256"]
        self.assertRegex(sha, r"^[0-9a-f]{64}$")
        path = run.out / entry["file"]
        self.assertTrue(path.is_file(), f"{entry['file']} missing under -o")
        self.assertEqual(sha256_file(path), sha)
        self.assertEqual(entry.get("bytes"), path.stat().st_size)
        self.assertNotIn("reason", entry)
        if fmt is not None:
            self.assertEqual(entry.get("format"), FORMAT_NAME.get(fmt, fmt), entry)
            self.assertEqual(entry["file"], f"{sha}.{fmt}")
        if width is not None:
            self.assertEqual((entry.get("width"), entry.get("height")), (width, height), entry)
        return entry

    def assertFailed(self, run, index, reason, http_status=None, attempts=None):
        entry = run.entry(index)
        self.assertEqual((entry.get("status"), entry.get("reason")), ("failed", reason),
                         f"{entry}\n{run.result.describe()}")
        self.assertNotIn("file", entry)
        if http_status is not None:
            self.assertEqual(entry.get("http_status"), http_status, entry)
        if attempts is not None:
            self.assertEqual(entry.get("attempts"), attempts, entry)
        return entry

    def assertCleanDir(self, run):
        if run.out.exists():
            self.assertEqual(blob_dir_problems(run.out), [])

    def fetch_one_failure(self, url, reason, flags=("--retries", "0")):
        run = self.fetch([url], flags)
        self.assertManifestUrls(run, [url])
        entry = self.assertFailed(run, 0, reason)
        self.assertEqual(run.result.returncode, 1, run.result.describe())
        self.assertCleanDir(run)
        self.assertEqual(blob_files(run.out) if run.out.exists() else [], [])
        return run, entry


class TestDownloads(FetchTestCase):
    def test_every_format_is_stored_under_its_hash(self):
        formats = ORIGIN.formats()
        self.assertGreaterEqual(set(formats), {"jpg", "png", "gif", "webp", "tiff"})
        urls = [ORIGIN.url(f"/img/a.{ext}") for ext in formats]
        urls.append(ORIGIN.url("/img/sized.png?w=300&h=200"))
        run = self.fetch(urls)
        self.assertManifestUrls(run, urls)
        for i, ext in enumerate(formats):
            with self.subTest(format=ext):
                entry = self.assertDone(run, i, fmt=ext, width=64, height=48)
                self.assertEqual(entry.get("attempts"), 1)
                _, _, body = ORIGIN.get(f"/img/a.{ext}")
                self.assertEqual(entry["bytes"], len(body))
        self.assertDone(run, len(formats), fmt="png", width=300, height=200)
        self.assertEqual(run.result.returncode, 0, run.result.describe())
        self.assertEqual(len(blob_files(run.out)), len(urls))
        self.assertCleanDir(run)

    def test_same_bytes_are_stored_once(self):
        urls = [ORIGIN.url("/same/1.png"), ORIGIN.url("/same/2.png"), ORIGIN.url("/img/other.png")]
        run = self.fetch(urls)
        self.assertEqual(run.result.returncode, 0, run.result.describe())
        first, second, other = (self.assertDone(run, i, fmt="png") for i in range(3))
        self.assertEqual(first["sha256"], second["sha256"])
        self.assertEqual(first["file"], second["file"])
        self.assertNotEqual(first["sha256"], other["sha256"])
        self.assertEqual(len(blob_files(run.out)), 2)
        self.assertCleanDir(run)

    def test_redirect_chain_within_limit_is_followed(self):
        url = ORIGIN.url("/redirect/3/chain.png")
        run = self.fetch([url])
        self.assertEqual(run.result.returncode, 0, run.result.describe())
        entry = self.assertDone(run, 0, fmt="png")
        _, _, body = ORIGIN.get("/img/chain.png")
        self.assertEqual(entry["bytes"], len(body))
        self.assertEqual(entry.get("attempts"), 1, "redirect hops are not attempts")

    def test_many_urls_keep_input_order_in_the_manifest(self):
        # Later URLs answer sooner, so completion order is the reverse of input order.
        urls = [ORIGIN.url(f"/img/order{i}.jpg?delay={(40 - i) * 25}") for i in range(40)]
        run = self.fetch(urls, ["-j", "16"])
        self.assertEqual(run.result.returncode, 0, run.result.describe())
        self.assertManifestUrls(run, urls)
        for i in range(len(urls)):
            self.assertDone(run, i, fmt="jpg")
        self.assertEqual(len(blob_files(run.out)), 40)
        self.assertCleanDir(run)

    def test_two_hundred_images_at_concurrency_32(self):
        urls = [ORIGIN.url(f"/img/bulk{i}.{('png', 'jpg', 'gif', 'webp')[i % 4]}") for i in range(200)]
        run = self.fetch(urls, ["-j", "32"], timeout=300)
        self.assertEqual(run.result.returncode, 0, run.result.describe())
        self.assertManifestUrls(run, urls)
        self.assertEqual({e["status"] for e in run.entries}, {"done"})
        self.assertEqual(len(blob_files(run.out)), 200)
        self.assertCleanDir(run)

    def test_network_threads_together_never_run_more_than_j_or_per_host(self):
        # The origin holds every request at a gate and counts how many it
        # holds at once. Each network thread has its own share of -j; together
        # they must fill -j (or --per-host) exactly, never more, and start the
        # rest as slots free up.
        cases = [("-j 5 on 2 threads", ["-j", "5", "--network-threads", "2"], 5),
                 ("-j 6, --per-host 3 on 3 threads", ["-j", "6", "--per-host", "3", "--network-threads", "3"], 3),
                 ("-j 2 on 2 threads", ["-j", "2", "--network-threads", "2"], 2)]
        for what, flags, limit in cases:
            with self.subTest(what):
                key = unique("slots")
                urls = [ORIGIN.url(f"/gate/{key}/{key}{i}.png") for i in range(limit * 3)]
                work = make_temp_dir(self)
                args = ["fetch", "--allow-private", "--progress", "none", "-o", work / "images",
                        "--manifest", work / "m.jsonl", *flags, *urls]
                with LitchiProcess(args) as proc:
                    deadline = time.monotonic() + 30
                    gate = ORIGIN.get_json(f"/gates/{key}")
                    while gate["waiting"] < limit and time.monotonic() < deadline and proc.running():
                        time.sleep(0.02)
                        gate = ORIGIN.get_json(f"/gates/{key}")
                    self.assertEqual(gate["waiting"], limit, f"{gate}\n{proc.stderr_so_far()}")
                    opened = ORIGIN.get_json(f"/gate-open/{key}")
                    result = proc.wait(timeout=60)
                self.assertEqual(result.returncode, 0, result.describe())
                self.assertEqual(opened["max_waiting"], limit, opened)
                gate = ORIGIN.get_json(f"/gates/{key}")
                self.assertEqual((gate["arrived"], gate["max_waiting"], gate["abandoned"]),
                                 (len(urls), limit, 0), gate)
                self.assertEqual([e["status"] for e in read_manifest(work / "m.jsonl")], ["done"] * len(urls))

    def test_slow_first_response_does_not_serialize_a_host(self):
        # Four transfers to one host, all answering after 4 s. In parallel they take
        # ~4 s; queued behind the first response (e.g. waiting to learn whether the
        # connection multiplexes, which plain http:// only says in its response)
        # they take 8 s or more.
        urls = [ORIGIN.url(f"/img/par{i}.png?delay=4000") for i in range(4)]
        run = self.fetch(urls, ["--retries", "0"])
        self.assertEqual(run.result.returncode, 0, run.result.describe())
        self.assertLess(run.result.elapsed, 7.0, "transfers to one host were serialized\n" + run.result.describe())

    def test_output_folder_is_created_and_file_is_relative_to_it(self):
        work = make_temp_dir(self)
        out = work / "deep" / "er"
        run = self.fetch([ORIGIN.url("/img/rel.png")], out=out)
        self.assertEqual(run.result.returncode, 0, run.result.describe())
        entry = self.assertDone(run, 0, fmt="png")
        self.assertFalse(os.path.isabs(entry["file"]))
        self.assertTrue((out / entry["file"]).is_file())


class TestFailureReasons(FetchTestCase):
    def test_http_404_is_final(self):
        key = unique("s404")
        run, entry = self.fetch_one_failure(ORIGIN.url(f"/status/404?key={key}"), "http",
                                            flags=("--retries", "3"))
        self.assertEqual(entry.get("http_status"), 404)
        self.assertEqual(entry.get("attempts"), 1, "a 404 is not transient")
        self.assertEqual(ORIGIN.hits(key), 1)

    def test_http_500_is_retried_then_reported(self):
        key = unique("s500")
        run, entry = self.fetch_one_failure(ORIGIN.url(f"/status/500?key={key}"), "http",
                                            flags=("--retries", "2"))
        self.assertEqual(entry.get("http_status"), 500)
        self.assertEqual(entry.get("attempts"), 3)
        self.assertEqual(ORIGIN.hits(key), 3)

    def test_huge_content_length_is_too_large(self):
        run, entry = self.fetch_one_failure(ORIGIN.url("/huge-length.png"), "too_large")
        self.assertLess(run.result.elapsed, 30, "a 10 GiB Content-Length must be refused from the header")

    def test_endless_body_is_too_large(self):
        self.fetch_one_failure(ORIGIN.url("/endless.png"), "too_large", flags=("--retries", "0", "--max-bytes", str(MiB)))

    def test_gzip_bomb_is_not_decompressed(self):
        # No transparent decompression: the stored bytes would be the ~100 KB gzip
        # stream, which is not an image. Decompressing would have hit the 50 MiB cap.
        self.fetch_one_failure(ORIGIN.url("/gzip-bomb.png"), "not_image")

    def test_gzip_bomb_over_max_bytes_is_too_large(self):
        self.fetch_one_failure(ORIGIN.url("/gzip-bomb.png"), "too_large",
                               flags=("--retries", "0", "--max-bytes", "50000"))

    def test_truncated_body_is_truncated(self):
        self.fetch_one_failure(ORIGIN.url("/truncated/t.png"), "truncated")

    def test_truncated_body_is_transient(self):
        key = unique("trunc")
        run, entry = self.fetch_one_failure(ORIGIN.url(f"/truncated/t.png?key={key}"), "truncated",
                                            flags=("--retries", "1"))
        self.assertEqual(entry.get("attempts"), 2)
        self.assertEqual(ORIGIN.hits(key), 2)

    def test_reset_mid_body_is_truncated(self):
        self.fetch_one_failure(ORIGIN.url("/reset/r.png"), "truncated")

    def test_drip_hits_the_total_timeout(self):
        run, _ = self.fetch_one_failure(ORIGIN.url("/drip/d1.png"), "timeout",
                                        flags=("--retries", "0", "--timeout", "3"))
        self.assertLess(run.result.elapsed, 15, run.result.describe())

    def test_drip_is_cut_by_the_low_speed_limit(self):
        # No --timeout: only the low-speed limit (1 KiB/s for 10 s by default) can stop it.
        run, _ = self.fetch_one_failure(ORIGIN.url("/drip/d2.png"), "timeout")
        self.assertLess(run.result.elapsed, 40, run.result.describe())

    def test_redirect_loop_is_too_many_redirects(self):
        self.fetch_one_failure(ORIGIN.url("/redirect-loop"), "too_many_redirects")

    def test_long_redirect_chain_is_too_many_redirects(self):
        self.fetch_one_failure(ORIGIN.url("/redirect/12/long.png"), "too_many_redirects")

    def test_not_images(self):
        for path in ("/html-as-png.png", "/image.svg", "/empty.png"):
            with self.subTest(path=path):
                self.fetch_one_failure(ORIGIN.url(path), "not_image")

    def test_pixel_bombs_are_too_many_pixels(self):
        urls = [ORIGIN.url(f"/bomb/{kind}") for kind in ("png", "gif", "jpeg")]
        run = self.fetch(urls, ["--retries", "0"])
        self.assertManifestUrls(run, urls)
        for i, url in enumerate(urls):
            with self.subTest(url=url):
                self.assertFailed(run, i, "too_many_pixels")
        self.assertEqual(run.result.returncode, 1)
        self.assertEqual(blob_files(run.out) if run.out.exists() else [], [])
        self.assertCleanDir(run)

    def test_verify_decode_refuses_what_the_header_check_takes(self):
        # Cut inside the pixels: the structure (`--verify header`, the default) is
        # whole, a full decode (`--verify decode`) finds the missing pixels.
        urls = [ORIGIN.url("/img/whole-v.jpg"), ORIGIN.url("/cut/cut-v.jpg"), ORIGIN.url("/cut/cut-v.png")]
        run = self.fetch(urls, ["--retries", "0"])
        self.assertManifestUrls(run, urls)
        for i in range(3):
            self.assertDone(run, i)
        self.assertEqual(run.result.returncode, 0, run.result.describe())
        run = self.fetch(urls, ["--retries", "0", "--verify", "decode"])
        self.assertManifestUrls(run, urls)
        self.assertDone(run, 0, "jpg")
        for i in (1, 2):
            self.assertFailed(run, i, "not_image")
        self.assertEqual(run.result.returncode, 1, run.result.describe())
        self.assertEqual(len(blob_files(run.out)), 1)
        self.assertCleanDir(run)

    def test_without_libvips_headers_are_still_checked_and_decode_refuses_to_start(self):
        # libvips is opened on first use, not at start: a libvips.so.42 that
        # is no libvips (an empty shared object, found first through
        # LD_LIBRARY_PATH) stops nothing that does not need it. JPEG and PNG
        # are checked without it; --verify decode, which needs it for every
        # image, says so before it downloads anything.
        fake = make_temp_dir(self)
        subprocess.run(["cc", "-shared", "-o", str(fake / "libvips.so.42"), "-x", "c", "-"],
                       input=b"int litchi_not_vips;\n", check=True)
        env = {"LD_LIBRARY_PATH": str(fake)}
        urls = [ORIGIN.url("/img/novips.jpg"), ORIGIN.url("/img/novips.png")]
        run = self.fetch(urls, ["--retries", "0"], env=env)
        self.assertManifestUrls(run, urls)
        self.assertDone(run, 0, "jpg")
        self.assertDone(run, 1, "png")
        self.assertEqual(run.result.returncode, 0, run.result.describe())
        hits = ORIGIN.hits("novips-decode")
        run = self.fetch([ORIGIN.url("/img/d.jpg?key=novips-decode")], ["--verify", "decode"], env=env)
        self.assertEqual(run.result.returncode, 2, run.result.describe())
        self.assertIn("--verify decode: libvips has no vips_version", run.result.stderr)
        self.assertEqual(ORIGIN.hits("novips-decode"), hits, "nothing was downloaded")

    def test_max_pixels_flag_applies(self):
        run, _ = self.fetch_one_failure(ORIGIN.url("/img/mp.png"), "too_many_pixels",
                                        flags=("--retries", "0", "--max-pixels", "1000"))

    def test_connection_refused_is_connect(self):
        self.fetch_one_failure(f"http://127.0.0.1:{free_port()}/img/x.png", "connect")

    def test_bad_urls(self):
        port = ORIGIN.port
        lines = [
            f"ftp://127.0.0.1:{port}/img/1.png",
            "not a url at all",
            "http://",
            "javascript:alert(1)",
            f"http://user:s3cretpw@127.0.0.1:{port}/img/1.png",
            f"//127.0.0.1:{port}/img/1.png",
            f"file:///etc/passwd",
        ]
        run = self.fetch(lines, ["--retries", "0"])
        self.assertManifestUrls(run, lines)
        for i, line in enumerate(lines):
            with self.subTest(line=line):
                entry = self.assertFailed(run, i, "bad_url")
                self.assertEqual(entry.get("attempts"), 0, "a bad URL is never fetched")
        self.assertEqual(run.result.returncode, 1)
        self.assertNotIn("s3cretpw", run.result.stderr + run.result.stdout, "a password reached the log")

    def test_redirect_to_bad_urls(self):
        port = ORIGIN.port
        targets = [f"ftp://127.0.0.1:{port}/img/1.png", f"http://user:s3cretpw@127.0.0.1:{port}/img/1.png"]
        urls = [ORIGIN.url("/redirect-to?url=" + quote(t, safe="")) for t in targets]
        run = self.fetch(urls, ["--retries", "0"])
        self.assertManifestUrls(run, urls)
        for i in range(len(urls)):
            with self.subTest(target=targets[i]):
                self.assertFailed(run, i, "bad_url")
        self.assertNotIn("s3cretpw", run.result.stderr + run.result.stdout, "a password reached the log")

    def test_mixed_run_exits_1_and_keeps_the_good_files(self):
        urls = [ORIGIN.url("/img/good1.png"), ORIGIN.url("/status/404"), ORIGIN.url("/img/good2.gif")]
        run = self.fetch(urls, ["--retries", "0"])
        self.assertEqual(run.result.returncode, 1, run.result.describe())
        self.assertDone(run, 0, fmt="png")
        self.assertFailed(run, 1, "http", http_status=404)
        self.assertDone(run, 2, fmt="gif")
        self.assertEqual(len(blob_files(run.out)), 2)
        self.assertCleanDir(run)


class TestRetries(FetchTestCase):
    def test_flaky_recovers_after_k_failures(self):
        key = unique("flaky")
        run = self.fetch([ORIGIN.url(f"/flaky/{key}/2/f.png")], ["--retries", "3"])
        self.assertEqual(run.result.returncode, 0, run.result.describe())
        entry = self.assertDone(run, 0, fmt="png")
        self.assertEqual(entry.get("attempts"), 3)
        self.assertEqual(ORIGIN.hits(key), 3)

    def test_flaky_beyond_retries_fails_with_503(self):
        key = unique("flaky")
        run = self.fetch([ORIGIN.url(f"/flaky/{key}/5/f.png")], ["--retries", "2"])
        self.assertEqual(run.result.returncode, 1, run.result.describe())
        self.assertFailed(run, 0, "http", http_status=503, attempts=3)
        self.assertEqual(ORIGIN.hits(key), 3)

    def test_429_honours_retry_after(self):
        key = unique("rl")
        run = self.fetch([ORIGIN.url(f"/ratelimit/{key}/1/2/r.png")], ["--retries", "2"])
        self.assertEqual(run.result.returncode, 0, run.result.describe())
        entry = self.assertDone(run, 0, fmt="png")
        self.assertEqual(entry.get("attempts"), 2)
        times = ORIGIN.hit_times(key)
        self.assertEqual(len(times), 2)
        self.assertGreaterEqual(times[1] - times[0], 1.95, "retried before Retry-After: 2 elapsed")
        self.assertGreaterEqual(run.result.elapsed, 2.0)

    def test_retries_zero_means_one_attempt(self):
        key = unique("flaky")
        run = self.fetch([ORIGIN.url(f"/flaky/{key}/1/f.png")], ["--retries", "0"])
        self.assertFailed(run, 0, "http", http_status=503, attempts=1)
        self.assertEqual(ORIGIN.hits(key), 1)


class TestSsrfGuard(FetchTestCase):
    def blocked_without_connecting(self, urls, flags=()):
        keys = [unique("ssrf") for _ in urls]
        urls = [f"{u}{'&' if '?' in u else '?'}key={k}" for u, k in zip(urls, keys)]
        run = self.fetch(urls, ["--retries", "0", *flags], allow_private=False)
        self.assertManifestUrls(run, urls)
        for i, url in enumerate(urls):
            with self.subTest(url=url):
                self.assertFailed(run, i, "blocked_address")
                self.assertEqual(ORIGIN.hits(keys[i]), 0, "the origin was contacted")
        self.assertEqual(run.result.returncode, 1)
        return run

    def test_loopback_literals_are_blocked(self):
        port = ORIGIN.port
        self.blocked_without_connecting([
            f"http://127.0.0.1:{port}/img/1.png",
            f"http://127.0.0.2:{port}/img/1.png",
            f"http://[::1]:{port}/img/1.png",
            f"http://[::ffff:127.0.0.1]:{port}/img/1.png",
            f"http://2130706433:{port}/img/1.png",   # 127.0.0.1 as one decimal number
            f"http://0x7f.0.0.1:{port}/img/1.png",   # hex first part
            f"http://0177.0.0.1:{port}/img/1.png",   # octal first part
        ])

    def test_name_resolving_to_loopback_is_blocked_at_connect(self):
        self.blocked_without_connecting([f"http://localhost:{ORIGIN.port}/img/1.png"])

    def test_allow_cidr_lets_only_that_range_through(self):
        key = unique("cidr")
        url = ORIGIN.url(f"/img/cidr.png?key={key}")
        run = self.fetch([url], ["--retries", "0", "--allow-cidr", "127.0.0.1/32"], allow_private=False)
        self.assertEqual(run.result.returncode, 0, run.result.describe())
        self.assertDone(run, 0, fmt="png")
        self.assertEqual(ORIGIN.hits(key), 1)

    def test_redirect_to_blocked_address_is_blocked(self):
        port = ORIGIN.port
        targets = [f"http://127.0.0.2:{port}/img/1.png", f"http://[::1]:{port}/img/1.png",
                   f"http://[::ffff:127.0.0.2]:{port}/img/1.png"]
        urls = [ORIGIN.url("/redirect-to?url=" + quote(t, safe="")) for t in targets]
        # URLs on stdin keep this test about the guard, not about option parsing
        # (test_allow_cidr_lets_only_that_range_through covers "--allow-cidr X URL").
        run = self.fetch(flags=["--retries", "0", "--allow-cidr", "127.0.0.1/32", "-i", "-"],
                         stdin_text="\n".join(urls) + "\n", allow_private=False)
        self.assertManifestUrls(run, urls)
        for i in range(len(urls)):
            with self.subTest(target=targets[i]):
                self.assertFailed(run, i, "blocked_address")
        self.assertEqual(run.result.returncode, 1)

    def test_allow_private_lifts_the_guard(self):
        run = self.fetch([f"http://localhost:{ORIGIN.port}/img/lh.png"], allow_private=True)
        self.assertEqual(run.result.returncode, 0, run.result.describe())
        self.assertDone(run, 0, fmt="png")


class TestCommandLine(FetchTestCase):
    def usage_error(self, args, stdin_text=None):
        result = run_litchi(args, timeout=60, stdin_text=stdin_text)
        self.assertEqual(result.returncode, 2, result.describe())
        return result

    def test_missing_output_folder_is_usage_error(self):
        self.usage_error(["fetch", "--allow-private", ORIGIN.url("/img/1.png")])

    def test_unknown_verify_mode_is_usage_error(self):
        out = make_temp_dir(self)
        result = self.usage_error(["fetch", "-o", out, "--verify", "pixels", ORIGIN.url("/img/1.png")])
        self.assertIn("--verify", result.stderr)

    def test_unknown_flag_is_usage_error(self):
        out = make_temp_dir(self)
        self.usage_error(["fetch", "-o", out, "--no-such-flag", ORIGIN.url("/img/1.png")])

    def test_unreadable_input_file_is_usage_error(self):
        work = make_temp_dir(self)
        result = self.usage_error(["fetch", "-o", work / "o", "-i", work / "does-not-exist.txt"])
        self.assertTrue(result.stderr.strip(), "no error message")

    def test_input_file_skips_blank_lines_and_comments(self):
        work = make_temp_dir(self)
        wanted = [ORIGIN.url("/img/in1.png"), "garbage line", ORIGIN.url("/img/in2.jpg")]
        text = f"# a comment\n\n{wanted[0]}\n   \n{wanted[1]}\n# {ORIGIN.url('/img/skipped.png')}\n{wanted[2]}\n\n"
        (work / "urls.txt").write_text(text)
        run = self.fetch(flags=["-i", work / "urls.txt"])
        self.assertManifestUrls(run, wanted)
        self.assertDone(run, 0, fmt="png")
        self.assertFailed(run, 1, "bad_url")
        self.assertDone(run, 2, fmt="jpg")
        self.assertEqual(run.result.returncode, 1)

    def test_input_from_stdin(self):
        wanted = [ORIGIN.url("/img/st1.png"), ORIGIN.url("/img/st2.webp")]
        run = self.fetch(flags=["-i", "-"], stdin_text="# urls\n" + "\n\n".join(wanted) + "\n")
        self.assertEqual(run.result.returncode, 0, run.result.describe())
        self.assertManifestUrls(run, wanted)
        self.assertDone(run, 0, fmt="png")
        self.assertDone(run, 1, fmt="webp")

    def test_windows_line_endings_are_accepted(self):
        wanted = [ORIGIN.url("/img/crlf1.png"), ORIGIN.url("/img/crlf2.png")]
        run = self.fetch(flags=["-i", "-"], stdin_text="\r\n".join(wanted) + "\r\n")
        self.assertEqual(run.result.returncode, 0, run.result.describe())
        self.assertManifestUrls(run, wanted)

    def test_progress_json_lines_parse(self):
        urls = [ORIGIN.url(f"/img/pj{i}.png?delay=150") for i in range(12)] + [ORIGIN.url("/status/404")]
        run = self.fetch(urls, ["--progress", "json", "-j", "4", "--retries", "0"])
        self.assertEqual(run.result.returncode, 1, run.result.describe())
        objects = []
        for line in run.result.stderr.splitlines():
            if line.startswith("{"):
                objects.append(json.loads(line))  # every JSON-looking line must parse
        self.assertTrue(objects, "no JSON progress lines on stderr\n" + run.result.describe())
        for obj in objects:
            self.assertIsInstance(obj, dict)
        final = objects[-1]
        numbers = {k: v for k, v in final.items() if isinstance(v, int)}
        self.assertEqual(numbers.get("total"), 13, final)
        self.assertEqual(numbers.get("done"), 12, final)
        self.assertEqual(numbers.get("failed"), 1, final)

    def test_progress_none_writes_no_progress(self):
        run = self.fetch([ORIGIN.url("/img/pn.png")], ["--progress", "none"])
        self.assertEqual(run.result.returncode, 0, run.result.describe())
        self.assertFalse([l for l in run.result.stderr.splitlines() if l.startswith("{")])


class TestResumeAndInterrupt(FetchTestCase):
    @staticmethod
    def progress_done(stderr):
        """`done` of the last complete JSON progress line (0 before the first)."""
        done = 0
        for line in stderr.splitlines(keepends=True):
            if line.startswith("{") and line.endswith("\n"):
                done = json.loads(line).get("done", done)
        return done

    def test_rerun_with_same_manifest_skips_done_items(self):
        work = make_temp_dir(self)
        keys = [unique("rerun") for _ in range(3)]
        fail_key = unique("rerun404")
        urls = [ORIGIN.url(f"/img/rr{i}.png?key={k}") for i, k in enumerate(keys)]
        urls.insert(1, ORIGIN.url(f"/status/404?key={fail_key}"))
        first = self.fetch(urls, ["--retries", "0"], out=work / "o", manifest=work / "m.jsonl")
        self.assertEqual(first.result.returncode, 1, first.result.describe())
        self.assertEqual([ORIGIN.hits(k) for k in keys], [1, 1, 1])

        second = self.fetch(urls, ["--retries", "0"], out=work / "o", manifest=work / "m.jsonl")
        self.assertEqual([ORIGIN.hits(k) for k in keys], [1, 1, 1], "done items were fetched again")
        self.assertManifestUrls(second, urls)
        for i in (0, 2, 3):
            self.assertDone(second, i, fmt="png")
            self.assertEqual(second.entry(i)["sha256"], first.entry(i)["sha256"])
        self.assertFailed(second, 1, "http", http_status=404)
        self.assertEqual(second.result.returncode, 1)
        self.assertCleanDir(second)

    def test_ctrl_c_stops_cleanly_and_rerun_finishes(self):
        work = make_temp_dir(self)
        out, manifest = work / "o", work / "m.jsonl"
        fast_keys = [unique("fast") for _ in range(3)]
        slow_keys = [unique("slow") for _ in range(4)]
        fast = [ORIGIN.url(f"/img/cf{i}.png?key={k}") for i, k in enumerate(fast_keys)]
        # 6 s: long enough to interrupt them, short of the 10 s low-speed cut-off.
        slow = [ORIGIN.url(f"/img/cs{i}.png?key={k}&delay=6000") for i, k in enumerate(slow_keys)]
        urls = fast + slow
        args = ["fetch", "-o", out, "--manifest", manifest, "--allow-private", "--retries", "0",
                "--progress", "json", *urls]
        with LitchiProcess(args) as proc:
            # Interrupt once the fast items are reported done (they are durable by then)
            # while the slow ones are still waiting for their response.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and proc.running():
                if self.progress_done(proc.stderr_so_far()) >= len(fast) and all(map(ORIGIN.hits, slow_keys)):
                    break
                time.sleep(0.05)
            self.assertGreaterEqual(self.progress_done(proc.stderr_so_far()), len(fast), proc.stderr_so_far())
            self.assertTrue(proc.running(), "litchi exited before Ctrl-C\n" + proc.stderr_so_far())
            parts_during = part_files(out)
            sent = time.monotonic()
            proc.send_signal(signal.SIGINT)
            result = proc.wait(timeout=60)
        self.assertFalse(result.timed_out, result.describe())
        self.assertLess(time.monotonic() - sent, 5, "Ctrl-C did not stop litchi promptly")
        self.assertIn(result.returncode, (1, 130), result.describe())
        self.assertEqual(part_files(out), [], f"part files left (during the run: {parts_during})")
        self.assertEqual(blob_dir_problems(out), [])
        entries = read_manifest(manifest)
        by_url = {e["url"]: e for e in entries}
        for url in fast:
            self.assertEqual(by_url.get(url, {}).get("status"), "done", f"{url}: {by_url.get(url)}")
        for url in slow:  # unfinished items are left out (or marked cancelled), never "done"
            if url in by_url:
                self.assertEqual(by_url[url].get("reason"), "cancelled", by_url[url])
        self.assertEqual([e["url"] for e in entries], [u for u in urls if u in by_url], "manifest out of order")

        rerun = self.fetch(urls, ["--retries", "0"], out=out, manifest=manifest, timeout=120)
        self.assertEqual(rerun.result.returncode, 0, rerun.result.describe())
        self.assertManifestUrls(rerun, urls)
        for i in range(len(urls)):
            self.assertDone(rerun, i, fmt="png")
        self.assertEqual([ORIGIN.hits(k) for k in fast_keys], [1, 1, 1], "finished items were fetched again")
        self.assertEqual([ORIGIN.hits(k) for k in slow_keys], [2, 2, 2, 2])
        self.assertCleanDir(rerun)


    def test_ctrl_c_removes_partial_files(self):
        # Drips are mid-body when interrupted, so their .part files really exist.
        work = make_temp_dir(self)
        out = work / "o"
        urls = [ORIGIN.url(f"/drip/int{i}.png") for i in range(3)]
        args = ["fetch", "-o", out, "--manifest", work / "m.jsonl", "--allow-private", "--retries", "0", *urls]
        with LitchiProcess(args) as proc:
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline and proc.running() and not part_files(out):
                time.sleep(0.05)
            self.assertTrue(part_files(out), "no .part file appeared while dripping\n" + proc.stderr_so_far())
            sent = time.monotonic()
            proc.send_signal(signal.SIGINT)
            result = proc.wait(timeout=60)
        self.assertLess(time.monotonic() - sent, 5, "Ctrl-C did not stop litchi promptly\n" + result.describe())
        self.assertIn(result.returncode, (1, 130), result.describe())
        self.assertEqual(part_files(out), [])
        self.assertEqual(blob_files(out), [])
        for entry in read_manifest(work / "m.jsonl"):
            self.assertNotEqual(entry.get("status"), "done", entry)


class TestBoundedMemory(FetchTestCase):
    """Peak RSS of hostile inputs compared with a tiny baseline run of the same
    binary (it is ASan-built under make test, so absolute numbers mean little)."""

    LIMIT_KIB = 40 * 1024

    @classmethod
    def setUpClass(cls):
        cls.baseline = None

    def baseline_kib(self):
        if TestBoundedMemory.baseline is None:
            runs = []
            for i in range(2):
                run = self.fetch([ORIGIN.url(f"/img/base{i}.png")])
                self.assertEqual(run.result.returncode, 0, run.result.describe())
                runs.append(run.result.max_rss_kib)
            TestBoundedMemory.baseline = max(runs)
        return TestBoundedMemory.baseline

    def assertBounded(self, run, what):
        grown = run.result.max_rss_kib - self.baseline_kib()
        self.assertLess(grown, self.LIMIT_KIB,
                        f"{what}: peak RSS {run.result.max_rss_kib} KiB is {grown} KiB over the baseline")

    def test_endless_body_at_default_cap(self):
        # 50 MiB (the default cap) streams through; none of it may stay in memory.
        run = self.fetch([ORIGIN.url("/endless.png")], ["--retries", "0"], timeout=300)
        self.assertFailed(run, 0, "too_large")
        self.assertBounded(run, "endless body")
        self.assertCleanDir(run)

    def test_pixel_bombs(self):
        urls = [ORIGIN.url(f"/bomb/{kind}") for kind in ("png", "gif", "jpeg")]
        run = self.fetch(urls, ["--retries", "0"])
        for i in range(3):
            self.assertFailed(run, i, "too_many_pixels")
        self.assertBounded(run, "pixel bombs")

    def test_pixel_bombs_with_a_huge_pixel_cap(self):
        # Even when the cap lets the header through, nothing may allocate the pixels:
        # the probe reads headers only. The result is whatever the decoder says about
        # the tiny body, but memory stays bounded and nothing crashes.
        urls = [ORIGIN.url(f"/bomb/{kind}") for kind in ("png", "gif", "jpeg")]
        run = self.fetch(urls, ["--retries", "0", "--max-pixels", str(10 ** 12)])
        self.assertIn(run.result.returncode, (0, 1), run.result.describe())
        self.assertBounded(run, "pixel bombs under a huge cap")
        self.assertCleanDir(run)

    def test_gzip_bomb(self):
        run = self.fetch([ORIGIN.url("/gzip-bomb.png")], ["--retries", "0"])
        self.assertFailed(run, 0, "not_image")
        self.assertBounded(run, "gzip bomb")


if __name__ == "__main__":
    unittest.main()
