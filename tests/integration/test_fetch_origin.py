"""Self-test of the test origin (tests/origin/origin.py) that test_fetch relies on.

If a fixture were wrong (an "image" vips cannot read, two labels with the same
bytes, a bomb that does not declare its size, a reset that is really a clean
close), the fetch tests would be checking the wrong thing; this catches that
first. Needs only the origin and the vips CLI, not litchi.
"""

import concurrent.futures
import http.client
import json
import socket
import struct
import subprocess
import tempfile
import time
import unittest
import zlib

from litchi_testing import Origin

ORIGIN = None


def setUpModule():
    global ORIGIN
    ORIGIN = Origin()
    ORIGIN.start()


def tearDownModule():
    if ORIGIN is not None:
        ORIGIN.stop()


def vips_header(body, suffix):
    """(width, height) as the vips CLI reads them from these bytes."""
    with tempfile.NamedTemporaryFile(suffix=suffix) as f:
        f.write(body)
        f.flush()
        out = subprocess.run(["vipsheader", "-f", "width", f.name], capture_output=True, text=True, timeout=60)
        width = out.stdout.strip()
        out2 = subprocess.run(["vipsheader", "-f", "height", f.name], capture_output=True, text=True, timeout=60)
        if out.returncode or out2.returncode:
            raise AssertionError(f"vipsheader failed: {out.stderr}{out2.stderr}")
        return int(width), int(out2.stdout.strip())


def raw_request(path, read_limit=1 << 20, timeout=10):
    """Sends one GET over a plain socket; returns (bytes received, how the stream ended)."""
    sock = socket.create_connection(("127.0.0.1", ORIGIN.port), timeout=timeout)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    data = b""
    ending = "eof"
    try:
        while len(data) < read_limit:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        else:
            ending = "limit"
    except ConnectionResetError:
        ending = "reset"
    except socket.timeout:
        ending = "timeout"
    finally:
        sock.close()
    return data, ending


class TestOriginFixtures(unittest.TestCase):
    def test_formats_are_valid_and_distinct_per_label(self):
        formats = ORIGIN.formats()
        self.assertGreaterEqual(set(formats), {"jpg", "png", "gif", "webp", "tiff"})
        for ext in formats:
            with self.subTest(format=ext):
                status, headers, one = ORIGIN.get(f"/img/1.{ext}")
                _, _, two = ORIGIN.get(f"/img/2.{ext}")
                _, _, one_again = ORIGIN.get(f"/img/1.{ext}")
                self.assertEqual(status, 200)
                self.assertTrue(headers["Content-Type"].startswith("image/"))
                self.assertNotEqual(one, two, "two labels served the same bytes")
                self.assertEqual(one, one_again, "one label is not stable")
                self.assertEqual(vips_header(one, "." + ext), (64, 48))
                self.assertEqual(vips_header(two, "." + ext), (64, 48))

    def test_size_parameter(self):
        _, _, body = ORIGIN.get("/img/s.png?w=300&h=20")
        self.assertEqual(vips_header(body, ".png"), (300, 20))

    def test_same_is_identical(self):
        self.assertEqual(ORIGIN.get("/same/1.png")[2], ORIGIN.get("/same/99.png")[2])

    def test_bombs_declare_huge_sizes_in_tiny_bodies(self):
        expected = {"png": (100000, 100000), "gif": (65535, 65535), "jpeg": (65500, 65500)}
        for kind, size in expected.items():
            with self.subTest(kind=kind):
                status, _, body = ORIGIN.get(f"/bomb/{kind}")
                self.assertEqual(status, 200)
                self.assertLess(len(body), 1024)
                self.assertEqual(vips_header(body, "." + kind), size)

    def test_png_bomb_ihdr_crc_is_correct(self):
        body = ORIGIN.get("/bomb/png")[2]
        length, kind = struct.unpack(">I4s", body[8:16])
        self.assertEqual((length, kind), (13, b"IHDR"))
        crc = struct.unpack(">I", body[29:33])[0]
        self.assertEqual(crc, zlib.crc32(body[12:29]) & 0xFFFFFFFF)

    def test_not_images(self):
        for path, kind in (("/html-as-png.png", "image/png"), ("/image.svg", "image/svg+xml"), ("/empty.png", "image/png")):
            with self.subTest(path=path):
                status, headers, body = ORIGIN.get(path)
                self.assertEqual((status, headers["Content-Type"]), (200, kind))
        self.assertEqual(ORIGIN.get("/empty.png")[2], b"")

    def test_gzip_bomb(self):
        conn = http.client.HTTPConnection("127.0.0.1", ORIGIN.port, timeout=30)
        conn.request("GET", "/gzip-bomb.png")
        response = conn.getresponse()
        body = response.read()
        conn.close()
        self.assertEqual(response.getheader("Content-Encoding"), "gzip")
        self.assertLess(len(body), 1 << 20)
        self.assertEqual(len(zlib.decompress(body, 31)), 100 * 1024 * 1024)


class TestOriginFaults(unittest.TestCase):
    def test_status_codes(self):
        for code in (404, 500, 503):
            self.assertEqual(ORIGIN.get(f"/status/{code}")[0], code)

    def test_flaky_and_hits(self):
        key = f"flaky{time.monotonic_ns()}"
        codes = [ORIGIN.get(f"/flaky/{key}/2/x.png")[0] for _ in range(4)]
        self.assertEqual(codes, [503, 503, 200, 200])
        self.assertEqual(ORIGIN.hits(key), 4)

    def test_ratelimit_sends_retry_after(self):
        key = f"rl{time.monotonic_ns()}"
        status, headers, _ = ORIGIN.get(f"/ratelimit/{key}/1/7/x.png")
        self.assertEqual((status, headers.get("Retry-After")), (429, "7"))
        self.assertEqual(ORIGIN.get(f"/ratelimit/{key}/1/7/x.png")[0], 200)

    def test_key_query_counts(self):
        key = f"k{time.monotonic_ns()}"
        ORIGIN.get(f"/img/1.png?key={key}")
        ORIGIN.get(f"/status/404?key={key}")
        self.assertEqual(ORIGIN.hits(key), 2)
        times = ORIGIN.hit_times(key)
        self.assertEqual(len(times), 2)
        self.assertLessEqual(times[0], times[1])

    def test_delay(self):
        started = time.monotonic()
        ORIGIN.get("/img/1.png?delay=400")
        self.assertGreaterEqual(time.monotonic() - started, 0.4)

    def test_reset_sends_rst(self):
        data, ending = raw_request("/reset/1.png")
        self.assertEqual(ending, "reset")
        self.assertIn(b"200 OK", data)

    def test_truncated_closes_short(self):
        data, ending = raw_request("/truncated/1.png")
        self.assertEqual(ending, "eof")
        head, body = data.split(b"\r\n\r\n", 1)
        length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
        self.assertEqual(length, len(body) + 1000)

    def test_endless_keeps_going(self):
        data, ending = raw_request("/endless.png", read_limit=8 << 20)
        self.assertEqual(ending, "limit")

    def test_huge_length_stalls(self):
        data, ending = raw_request("/huge-length.png", timeout=2)
        self.assertEqual(ending, "timeout")
        self.assertIn(b"Content-Length: 10737418240", data)

    def test_redirects(self):
        conn = http.client.HTTPConnection("127.0.0.1", ORIGIN.port, timeout=10)
        conn.request("GET", "/redirect/2/r.png?key=x")
        response = conn.getresponse()
        response.read()
        self.assertEqual((response.status, response.getheader("Location")), (302, "/redirect/1/r.png?key=x"))
        conn.request("GET", "/redirect-loop")
        response = conn.getresponse()
        response.read()
        self.assertEqual(response.getheader("Location"), "/redirect-loop")
        conn.request("GET", "/redirect-to?url=ftp%3A%2F%2F127.0.0.1%2Fa")
        response = conn.getresponse()
        response.read()
        self.assertEqual(response.getheader("Location"), "ftp://127.0.0.1/a")
        conn.close()

    def test_slow_clients_do_not_block_others(self):
        # 120 drips at once, then an ordinary request must still be answered at once.
        socks = []
        try:
            for i in range(120):
                s = socket.create_connection(("127.0.0.1", ORIGIN.port), timeout=10)
                s.sendall(f"GET /drip/{i}.png HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                socks.append(s)
            time.sleep(0.5)
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                started = time.monotonic()
                statuses = list(pool.map(lambda i: ORIGIN.get(f"/img/c{i}.png")[0], range(16)))
            self.assertEqual(statuses, [200] * 16)
            self.assertLess(time.monotonic() - started, 5)
        finally:
            for s in socks:
                s.close()

    def test_formats_endpoint_is_json(self):
        self.assertIsInstance(json.loads(ORIGIN.get("/formats")[2]), list)


if __name__ == "__main__":
    unittest.main()
