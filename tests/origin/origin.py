#!/usr/bin/python3
"""Litchi's test origin: an HTTP/1.1 server that serves generated images and
injects faults by path, so integration tests and benchmarks can drive
`litchi fetch` / `litchi serve` through every failure the engine must survive.

Run:  python3 origin.py [--port 0] [--host 127.0.0.1] [--latency MS] [--verbose]
It binds, then prints exactly one line `PORT <n>` on stdout and flushes.
Python 3.11 standard library only; fixtures are made at start-up with the
`vips` CLI (libvips-tools). One thread per connection (all daemonic), keep-alive,
so slow and stalled responses never block other clients. SIGTERM/SIGINT stop it.

Paths (every path also accepts the query parameters listed at the end):

  /formats                   JSON list of the image extensions served, e.g.
                             ["jpg","png","gif","webp","bmp","tiff","avif","heic"]
                             (a format whose saver is missing is left out).
  /img/<n>.<ext>             a valid image of that format (default 64x48 pixels);
                             the bytes differ for every label <n> (a comment or
                             an ignorable chunk carries the label), so dedup
                             never merges two labels. ?w=W&h=H picks another size
                             (1..4000). Correct Content-Type.
  /same/<n>.png              identical bytes for every <n> (dedup tests).
  /status/<code>             that status (200..599) with a short text body.
  /flaky/<key>/<k>/<n>.png   503 for the first k requests of <key>, then /img/<n>.png.
  /ratelimit/<key>/<k>/<sec>/<n>.png
                             429 with `Retry-After: <sec>` for the first k
                             requests of <key>, then /img/<n>.png.
  /hits/<key>                JSON {"key","count","times"}: requests seen for <key>
                             (flaky/ratelimit keys, and any request with ?key=<key>);
                             "times" are time.time() stamps, in arrival order.
  /requests                  JSON {"total": n, "paths": {path: count}}: every request
                             seen so far except those to /requests, /hits and
                             /formats, by path without the query string (how many
                             times each image was fetched, for "downloaded once" checks).
  /headers/<key>/<n>.png     records the request's headers under <key>, then
                             serves /img/<n>.png.
  /seen-headers/<key>        JSON {"key","requests":[[[name, value], ...], ...]}: the
                             headers of every /headers/<key>/ request, in arrival
                             order, each as the list of (name, value) pairs received.
  /served?path=P             JSON {"path","arrived","times"}: time.time() stamps at
                             which each request for path P arrived, and at which its
                             response finished sending (after any delay).
  /gate/<key>/<n>.png        a slow host the test controls: holds the request, sending
                             nothing, until /gate-open/<key>, then /img/<n>.png. A
                             client that gives up meanwhile is counted as abandoned.
  /gate-open/<key>           opens gate <key> (held requests go on, later ones pass).
  /gates/<key>               JSON {"key","waiting","max_waiting","arrived","abandoned",
                             "open"}: requests held at gate <key> now, the most held at
                             once, all that arrived, those whose client gave up waiting.
  /reset/<n>.png             headers + half of the body, then a TCP RST (SO_LINGER 0).
  /truncated/<n>.png         Content-Length larger than the body, then close.
  /drip/<n>.png              1 byte per second, Content-Length set.
  /endless.png               chunked, never ends: random bytes as fast as possible
                             (starts with the PNG signature).
  /huge-length.png           Content-Length: 10737418240, a few KB, then stalls
                             until the client goes away.
  /gzip-bomb.png             Content-Encoding: gzip, Content-Type image/png: the gzip
                             of 100 MiB of zeros (~100 KB on the wire), made once.
  /html-as-png.png           an HTML page sent as image/png.
  /image.svg                 an SVG image (image/svg+xml).
  /empty.png                 200 with an empty body.
  /bomb/png                  PNG declaring 100000x100000 (valid IHDR CRC), tiny body.
  /bomb/gif /bomb/jpeg       GIF declaring 65535x65535, JPEG 65500x65500, tiny
                             bodies (both formats store sizes in 16 bits, so 100000
                             cannot be written, and libjpeg stops at 65500; 4.3 G
                             pixels is still a bomb).
  /redirect/<k>/<n>.png      a chain of k 302s ending at /img/<n>.png.
  /redirect-loop             302 to itself.
  /redirect-to?url=<url>     302 to any URL (blocked addresses, ftp://, userinfo...).
  /window429/<key>/<sec>/<n>.png
                             a host-wide 429 window: the first request of <key> opens
                             a window of <sec> seconds in which every request of <key>
                             gets 429 with `Retry-After: <sec>`; after it, /img/<n>.png.
                             /hits/<key> has every request's arrival time;
                             /window/<key> reports {"key","opened","closes","refused"}
                             (refused: requests answered 429 inside the window).

Other hosts (each its own loopback port, so the engine sees another origin):
  /ports/<name>?mode=M&latency=MS
                             creates (or changes) the listener <name> on 127.0.0.1
                             and reports {"name","port","mode","latency","accepts"}.
                             mode=serve: the same routes as here, every response
                             delayed by `latency` ms unless ?delay= (a slow host).
                             mode=dead: every connection is accepted, counted and
                             reset at once (TCP RST) without reading a byte (a dead
                             host whose connection attempts can be counted).
                             mode=closed: the port stops listening (connection refused).
                             Without parameters it only reports. `accepts` counts
                             connections in every mode.
  /host-log?host=H:P         JSON {"host","count","times"}: arrival times of every
                             request whose Host header was H:P (a per-host request
                             log: rates and pauses are read from it).

Query parameters accepted on every path:
  ?delay=MS                  wait MS milliseconds before sending the response headers
                             (overrides --latency for this request).
  ?key=K                     count this request under /hits/K.
Redirects keep the query string, so a delay or key applies to every hop.

--latency MS: every request without ?delay= waits MS milliseconds before its
response headers (a latency-bound origin for benchmarks: many slow responses
at once, each on its own thread, none limited by bandwidth).
"""

import argparse
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

CONTENT_TYPES = {
    "jpg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "webp": "image/webp",
    "bmp": "image/bmp",
    "tiff": "image/tiff",
    "avif": "image/avif",
    "heic": "image/heic",
}
# The order /formats lists them in; the vips save suffix for each.
VIPS_SUFFIX = {
    "jpg": ".jpg[Q=80]",
    "png": ".png",
    "gif": ".gif",
    "webp": ".webp[Q=80]",
    "bmp": ".bmp",
    "tiff": ".tif",
    "avif": ".avif[compression=av1,Q=60]",
    "heic": ".heic[compression=hevc,Q=60]",
}
DEFAULT_WIDTH, DEFAULT_HEIGHT = 64, 48
MAX_SIDE = 4000
MAX_DELAY_MS = 600_000  # a test asking for more is a bug; never sleep past 10 minutes
HUGE_LENGTH = 10 * 1024 * 1024 * 1024
GZIP_BOMB_ZEROS = 100 * 1024 * 1024
STALL_LIMIT_S = 600  # stalled responses give up on their own after this


# ---------------------------------------------------------------------------
# Fixture images
# ---------------------------------------------------------------------------

def run_vips(*args):
    subprocess.run(["vips", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bmp_bytes(width, height, seed):
    """A 24-bit BMP written by hand: the fallback when vips has no BMP saver."""
    rng = random.Random(seed)
    row = (width * 3 + 3) & ~3
    pixels = bytearray()
    for _ in range(height):
        line = bytes(rng.randrange(256) for _ in range(width * 3))
        pixels += line + b"\0" * (row - width * 3)
    header = struct.pack("<2sIHHI", b"BM", 54 + len(pixels), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    return header + info + bytes(pixels)


class Fixtures:
    """Base images per (format, width, height), made with vips once and cached,
    plus per-label variants made by inserting the label where each format
    allows ignorable data (so the image stays valid and decodes the same)."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.lock = threading.Lock()
        self.base = {}  # (ext, w, h) -> bytes
        self.noise = {}  # (w, h) -> path of an RGB noise image in vips format
        self.vips_bmp = True
        self.gzip_bomb = None
        # Encode the start-up formats in parallel: each is one vips process.
        results = {}

        def make(ext):
            try:
                results[ext] = self._make(ext, DEFAULT_WIDTH, DEFAULT_HEIGHT)
            except (subprocess.SubprocessError, OSError, ValueError) as err:
                print(f"origin: skipping {ext}: {err}", file=sys.stderr)

        self._noise(DEFAULT_WIDTH, DEFAULT_HEIGHT)
        workers = [threading.Thread(target=make, args=(ext,)) for ext in CONTENT_TYPES]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        self.formats = [ext for ext in CONTENT_TYPES if ext in results]
        for ext in self.formats:
            self.base[(ext, DEFAULT_WIDTH, DEFAULT_HEIGHT)] = results[ext]

    def base_image(self, ext, width, height):
        key = (ext, width, height)
        with self.lock:
            if key not in self.base:
                self.base[key] = self._make(ext, width, height)
            return self.base[key]

    def _noise(self, width, height):
        """An RGB noise image (so codecs have something real to encode), made once per size."""
        key = (width, height)
        if key not in self.noise:
            stem = os.path.join(self.workdir, f"noise-{width}x{height}")
            run_vips("gaussnoise", stem + "-n.v", str(width), str(height), "--mean", "128", "--sigma", "50")
            run_vips("cast", stem + "-n.v", stem + "-c.v", "uchar")
            run_vips("bandjoin", f"{stem}-c.v {stem}-c.v {stem}-c.v", stem + ".v")
            os.unlink(stem + "-n.v")
            os.unlink(stem + "-c.v")
            self.noise[key] = stem + ".v"
        return self.noise[key]

    def _make(self, ext, width, height):
        if ext == "bmp" and not self.vips_bmp:
            return bmp_bytes(width, height, width * 7919 + height)
        out = os.path.join(self.workdir, f"{ext}-{width}x{height}{VIPS_SUFFIX[ext].split('[')[0]}")
        option = VIPS_SUFFIX[ext][len(VIPS_SUFFIX[ext].split('[')[0]):]
        try:
            run_vips("copy", self._noise(width, height), out + option)
        except subprocess.CalledProcessError:
            if ext != "bmp":
                raise
            self.vips_bmp = False
            return bmp_bytes(width, height, width * 7919 + height)
        with open(out, "rb") as f:
            data = f.read()
        os.unlink(out)
        if not data:
            raise ValueError("vips wrote an empty file")
        return data

    def image(self, ext, label, width=DEFAULT_WIDTH, height=DEFAULT_HEIGHT):
        return with_label(ext, self.base_image(ext, width, height), label.encode())

    def gzip_bomb_bytes(self):
        with self.lock:
            if self.gzip_bomb is None:
                comp = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: gzip wrapper
                zeros = b"\0" * (1 << 20)
                parts = [comp.compress(zeros) for _ in range(GZIP_BOMB_ZEROS >> 20)]
                parts.append(comp.flush())
                self.gzip_bomb = b"".join(parts)
            return self.gzip_bomb


def with_label(ext, data, label):
    """Returns `data` with `label` stored in a place each format ignores."""
    tag = b"litchi-origin:" + label
    if ext == "png":  # tEXt chunk right after IHDR (8 signature + 25 IHDR bytes)
        return data[:33] + png_chunk(b"tEXt", b"Comment\0" + tag) + data[33:]
    if ext == "jpg":  # COM segment right after SOI
        return data[:2] + b"\xff\xfe" + struct.pack(">H", len(tag) + 2) + tag + data[2:]
    if ext == "gif":  # comment extension after the header, screen descriptor and global colour table
        packed = data[10]
        end = 13 + (3 * (2 << (packed & 7)) if packed & 0x80 else 0)
        blocks = b"".join(bytes([len(tag[i:i + 255])]) + tag[i:i + 255] for i in range(0, len(tag), 255))
        return data[:end] + b"\x21\xfe" + blocks + b"\0" + data[end:]
    if ext == "webp":
        return webp_with_label(data, tag)
    if ext == "bmp":  # the pixels-per-metre fields are advisory; put a label hash there
        h = zlib.crc32(tag)
        return data[:38] + struct.pack("<II", h, h ^ 0x5A5A5A5A) + data[46:]
    if ext in ("tiff", "avif", "heic"):
        if ext == "tiff":  # TIFF finds everything through offsets; trailing bytes are unreferenced
            return data + tag
        # ISO-BMFF: a top-level `free` box may appear anywhere and is skipped.
        return data + struct.pack(">I", 8 + len(tag)) + b"free" + tag
    raise ValueError(ext)


def webp_with_label(data, tag):
    """Adds an unknown chunk, which only the extended (VP8X) layout allows;
    a simple-layout file is rewrapped in VP8X first."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ValueError("not a webp")
    chunks = data[12:]
    if chunks[:4] != b"VP8X":
        kind = chunks[:4]
        body = chunks[8:]
        if kind == b"VP8 ":  # frame tag (3) + start code (3) + 14-bit width, height
            w, h = struct.unpack("<HH", body[6:10])
            w, h = w & 0x3FFF, h & 0x3FFF
            flags = 0
        elif kind == b"VP8L":
            bits = struct.unpack("<I", body[1:5])[0]
            w, h = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            flags = 0x10 if bits >> 28 & 1 else 0
        else:
            raise ValueError("unexpected webp chunk")
        vp8x = b"VP8X" + struct.pack("<I", 10) + bytes([flags, 0, 0, 0])
        vp8x += (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little")
        chunks = vp8x + chunks
    if len(tag) % 2:
        tag += b"\0"  # RIFF chunks are padded to even sizes
    chunks += b"LTCH" + struct.pack("<I", len(tag)) + tag
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WEBP" + chunks


def png_bomb():
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def gif_bomb():
    side = 65535
    screen = b"GIF89a" + struct.pack("<HHBBB", side, side, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    image = b"\x2c" + struct.pack("<HHHHB", 0, 0, side, side, 0)
    # LZW minimum code size 2, one tiny sub-block (clear code, a pixel, end code), terminator.
    data = b"\x02\x02\x44\x01\x00"
    return screen + image + data + b"\x3b"


def jpeg_bomb():
    side = 65500  # libjpeg refuses anything larger before a size is even reported
    out = bytearray(b"\xff\xd8")
    out += b"\xff\xdb" + struct.pack(">H", 67) + b"\x00" + bytes([1] * 64)  # DQT, all ones
    out += b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, side, side, 1) + b"\x01\x11\x00"  # SOF0, grey
    # DHT: the standard luminance DC table (class 0, id 0) and AC table (class 1, id 0).
    dc_counts = bytes([0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
    dc_values = bytes(range(12))
    ac_counts = bytes([0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D])
    ac_values = bytes.fromhex(
        "01020300041105122131410613516107227114328191a1082342b1c11552d1f02433627282090a161718191a25262728292a3435"
        "363738393a434445464748494a535455565758595a636465666768696a737475767778797a838485868788898a92939495969798"
        "999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4"
        "f5f6f7f8f9fa")
    dht = b"\x00" + dc_counts + dc_values + b"\x10" + ac_counts + ac_values
    out += b"\xff\xc4" + struct.pack(">H", 2 + len(dht)) + dht
    out += b"\xff\xda" + struct.pack(">HB", 8, 1) + b"\x01\x00" + b"\x00\x3f\x00"  # SOS
    out += b"\x00" * 16 + b"\xff\xd9"
    return bytes(out)


HTML_PAGE = b"<!DOCTYPE html>\n<html><head><title>Not an image</title></head><body><p>hello</p></body></html>\n"
SVG_IMAGE = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
             b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="48" viewBox="0 0 64 48">'
             b'<rect width="64" height="48" fill="#c33"/></svg>\n')


# ---------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------

class HitCounter:
    def __init__(self):
        self.lock = threading.Lock()
        self.times = {}

    def record(self, key):
        """Counts one request for `key`; returns how many were seen before it."""
        with self.lock:
            stamps = self.times.setdefault(key, [])
            stamps.append(time.time())
            return len(stamps) - 1

    def report(self, key):
        with self.lock:
            stamps = list(self.times.get(key, []))
        return {"key": key, "count": len(stamps), "times": stamps}


class HeaderLog:
    """Request headers per key, for /headers/<key>/ and /seen-headers/<key>."""

    def __init__(self):
        self.lock = threading.Lock()
        self.seen = {}

    def record(self, key, pairs):
        with self.lock:
            self.seen.setdefault(key, []).append(pairs)

    def report(self, key):
        with self.lock:
            return {"key": key, "requests": list(self.seen.get(key, []))}


class PathCounter:
    """Requests per path (no query string), for /requests."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.total = 0

    def record(self, path):
        with self.lock:
            self.counts[path] = self.counts.get(path, 0) + 1
            self.total += 1

    def report(self):
        with self.lock:
            return {"total": self.total, "paths": dict(self.counts)}


class Gates:
    """Requests held until the test opens their gate (/gate/...)."""

    def __init__(self):
        self.cond = threading.Condition()
        self.opened = set()
        self.stats = {}

    def _stats(self, key):
        return self.stats.setdefault(key, {"waiting": 0, "max_waiting": 0, "arrived": 0, "abandoned": 0})

    def wait(self, key, connection):
        """Holds until gate `key` opens (True) or the client hangs up (False)."""
        with self.cond:
            stats = self._stats(key)
            stats["arrived"] += 1
            stats["waiting"] += 1
            stats["max_waiting"] = max(stats["max_waiting"], stats["waiting"])
            try:
                while key not in self.opened:
                    self.cond.wait(0.05)
                    readable, _, _ = select.select([connection], [], [], 0)
                    if readable:
                        try:
                            gone = not connection.recv(1, socket.MSG_PEEK)
                        except OSError:
                            gone = True
                        if gone:
                            stats["abandoned"] += 1
                            return False
                return True
            finally:
                stats["waiting"] -= 1

    def open(self, key):
        with self.cond:
            self.opened.add(key)
            self.cond.notify_all()

    def report(self, key):
        with self.cond:
            return {"key": key, "open": key in self.opened, **self._stats(key)}


# Paths that report on the origin itself: never counted, never delayed by --latency.
STAT_PATHS = ("/requests", "/served", "/formats", "/host-log")


class Windows:
    """Host-wide 429 windows by key (/window429)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.windows = {}

    def inside(self, key, seconds):
        """True (and counted) if this request falls in <key>'s window; the first opens it."""
        now = time.time()
        with self.lock:
            w = self.windows.get(key)
            if w is None:
                w = self.windows[key] = {"opened": now, "closes": now + seconds, "refused": 0}
            if now < w["closes"]:
                w["refused"] += 1
                return True
            return False

    def report(self, key):
        with self.lock:
            w = dict(self.windows.get(key, {"opened": None, "closes": None, "refused": 0}))
        w["key"] = key
        return w


class ExtraPort:
    """Another loopback listener: another host as far as a client's per-host logic goes."""

    def __init__(self, server, name):
        self.server = server
        self.name = name
        self.lock = threading.Lock()
        self.mode = "closed"
        self.latency_ms = 0
        self.accepts = 0
        self.sock = None
        self.port = None

    def set(self, mode, latency_ms):
        with self.lock:
            if latency_ms is not None:
                self.latency_ms = latency_ms
            if mode is None or mode == self.mode:
                return
            self.mode = mode
            if mode == "closed":
                if self.sock is not None:
                    try:
                        self.sock.shutdown(socket.SHUT_RDWR)  # stops listening, wakes accept()
                    except OSError:
                        pass
                    self.sock.close()
                    self.sock = None
                return
            if self.sock is None:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(("127.0.0.1", self.port or 0))  # a reopened port keeps its number
                sock.listen(1024)
                self.sock = sock
                self.port = sock.getsockname()[1]
                threading.Thread(target=self.accept_loop, args=(sock,), daemon=True).start()

    def accept_loop(self, sock):
        while True:
            try:
                conn, addr = sock.accept()
            except OSError:
                return  # closed
            with self.lock:
                self.accepts += 1
                mode = self.mode
            if mode == "serve":
                self.server.process_request(conn, addr)  # a handler thread, as for the main port
            else:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()

    def report(self):
        with self.lock:
            return {"name": self.name, "port": self.port, "mode": self.mode,
                    "latency": self.latency_ms, "accepts": self.accepts}

LABEL = r"([A-Za-z0-9_-]{1,64})"
ROUTES = []


def route(pattern):
    def register(fn):
        ROUTES.append((re.compile("^" + pattern + "$"), fn))
        return fn
    return register


class OriginHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "litchi-test-origin/1"
    timeout = 120  # an idle keep-alive connection, or a client that stops reading, ends its thread
    # Headers and body go out in separate writes; with Nagle on, the body of
    # every request after the first on a kept-alive connection waited for the
    # client's delayed ACK (~40 ms), so a "fast" host answered in 40 ms.
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("origin: %s - %s\n" % (self.address_string(), fmt % args))

    def do_GET(self):
        parts = urlsplit(self.path)
        self.query = parse_qs(parts.query)
        self.query_string = parts.query
        key = self.query.get("key", [None])[0]
        if key:
            self.server.hits.record(key)
        about_origin = (parts.path in STAT_PATHS
                        or parts.path.startswith(("/hits/", "/seen-headers/", "/gates/", "/gate-open/"))
                        or parts.path.startswith("/ports/") or parts.path.startswith("/window/"))
        if not about_origin:
            self.server.requests.record(parts.path)
            self.server.arrived.record(parts.path)
            self.server.by_host.record(self.headers.get("Host", ""))
        latency = self.server.latency_ms
        extra = self.server.extra_port(self.connection.getsockname()[1])
        if extra is not None:
            latency = extra.latency_ms
        delay = self.query.get("delay", ["0" if about_origin else str(latency)])[0]
        try:
            delay_ms = min(max(int(delay), 0), MAX_DELAY_MS)
        except ValueError:
            return self.send_bytes(400, b"bad delay\n", "text/plain")
        if delay_ms:
            time.sleep(delay_ms / 1000)
        for pattern, handler in ROUTES:
            match = pattern.match(parts.path)
            if match:
                try:
                    handler(self, *match.groups())
                except (BrokenPipeError, ConnectionResetError, socket.timeout):
                    self.close_connection = True
                    return
                if not about_origin:
                    self.server.served.record(parts.path)
                return
        self.send_bytes(404, b"no such fixture\n", "text/plain")

    # -- response helpers ----------------------------------------------------

    def send_bytes(self, status, body, content_type, extra_headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra_headers:
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(body)

    def send_json(self, value):
        self.send_bytes(200, json.dumps(value).encode() + b"\n", "application/json")

    def send_image(self, ext, label):
        fixtures = self.server.fixtures
        if ext not in fixtures.formats:
            return self.send_bytes(404, b"format not served\n", "text/plain")
        try:
            width = int(self.query.get("w", [DEFAULT_WIDTH])[0])
            height = int(self.query.get("h", [DEFAULT_HEIGHT])[0])
        except ValueError:
            return self.send_bytes(400, b"bad size\n", "text/plain")
        if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
            return self.send_bytes(400, b"size out of range\n", "text/plain")
        self.send_bytes(200, fixtures.image(ext, label, width, height), CONTENT_TYPES[ext])

    def redirect(self, location):
        if self.query_string and "?" not in location:
            location += "?" + self.query_string
        self.send_bytes(302, b"", "text/plain", [("Location", location)])

    def wait_for_client_close(self, limit_s):
        """Stalls without sending anything until the peer closes (or the limit)."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            readable, _, _ = select.select([self.connection], [], [], 1.0)
            if readable:
                try:
                    if not self.connection.recv(4096):
                        break
                except OSError:
                    break
        self.close_connection = True

    def reset_connection(self):
        """Closes with a TCP RST instead of a FIN: SO_LINGER on, timeout 0."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # rfile holds a reference to the socket; the fd only closes when both are closed.
        self.rfile.close()
        self.connection.close()
        self.close_connection = True


# -- routes ------------------------------------------------------------------

@route(r"/headers/" + LABEL + r"/" + LABEL + r"\.png")
def r_headers(h, key, label):
    h.server.header_log.record(key, [[name, value] for name, value in h.headers.items()])
    h.send_image("png", label)


@route(r"/seen-headers/" + LABEL)
def r_seen_headers(h, key):
    h.send_json(h.server.header_log.report(key))


@route(r"/formats")
def r_formats(h):
    h.send_json(h.server.fixtures.formats)


@route(r"/img/" + LABEL + r"\.([a-z]+)")
def r_img(h, label, ext):
    h.send_image(ext, label)


# A PNG labelled by the folder, under any file name (the zip's ?names=url).
@route(r"/dir/" + LABEL + r"/[^?]+")
def r_dir(h, label):
    h.send_image("png", label)


@route(r"/same/" + LABEL + r"\.png")
def r_same(h, _label):
    h.send_image("png", "same")


@route(r"/status/(\d{3})")
def r_status(h, code):
    code = int(code)
    if not 200 <= code <= 599:
        return h.send_bytes(400, b"status out of range\n", "text/plain")
    body = b"" if code in (204, 304) else f"status {code}\n".encode()
    h.send_bytes(code, body, "text/plain")


@route(r"/flaky/" + LABEL + r"/(\d+)/" + LABEL + r"\.png")
def r_flaky(h, key, k, label):
    seen = h.server.hits.record(key)
    if seen < int(k):
        return h.send_bytes(503, b"try again\n", "text/plain")
    h.send_image("png", label)


@route(r"/ratelimit/" + LABEL + r"/(\d+)/(\d+)/" + LABEL + r"\.png")
def r_ratelimit(h, key, k, seconds, label):
    seen = h.server.hits.record(key)
    if seen < int(k):
        return h.send_bytes(429, b"slow down\n", "text/plain", [("Retry-After", seconds)])
    h.send_image("png", label)


@route(r"/window429/" + LABEL + r"/(\d+)/" + LABEL + r"\.png")
def r_window429(h, key, seconds, label):
    h.server.hits.record(key)
    if h.server.windows.inside(key, int(seconds)):
        return h.send_bytes(429, b"slow down\n", "text/plain", [("Retry-After", seconds)])
    h.send_image("png", label)


@route(r"/window/" + LABEL)
def r_window(h, key):
    h.send_json(h.server.windows.report(key))


@route(r"/ports/" + LABEL)
def r_ports(h, name):
    mode = h.query.get("mode", [None])[0]
    latency = h.query.get("latency", [None])[0]
    if mode not in (None, "serve", "dead", "closed"):
        return h.send_bytes(400, b"mode is serve, dead or closed\n", "text/plain")
    try:
        latency_ms = None if latency is None else min(max(int(latency), 0), MAX_DELAY_MS)
    except ValueError:
        return h.send_bytes(400, b"bad latency\n", "text/plain")
    port = h.server.port_named(name, mode, latency_ms)
    if port is None:
        return h.send_bytes(404, b"no such port (give ?mode=)\n", "text/plain")
    h.send_json(port.report())


@route(r"/host-log")
def r_host_log(h):
    host = h.query.get("host", [""])[0]
    report = h.server.by_host.report(host)
    h.send_json({"host": host, "count": report["count"], "times": report["times"]})


@route(r"/hits/" + LABEL)
def r_hits(h, key):
    h.send_json(h.server.hits.report(key))


@route(r"/requests")
def r_requests(h):
    h.send_json(h.server.requests.report())


@route(r"/served")
def r_served(h):
    path = h.query.get("path", [""])[0]
    h.send_json({"path": path, "arrived": h.server.arrived.report(path)["times"],
                 "times": h.server.served.report(path)["times"]})


@route(r"/gate/" + LABEL + "/" + LABEL + r"\.png")
def r_gate(h, key, label):
    if h.server.gates.wait(key, h.connection):
        h.send_image("png", label)
    else:
        h.close_connection = True


@route(r"/gate-open/" + LABEL)
def r_gate_open(h, key):
    h.server.gates.open(key)
    h.send_json(h.server.gates.report(key))


@route(r"/gates/" + LABEL)
def r_gates(h, key):
    h.send_json(h.server.gates.report(key))


@route(r"/reset/" + LABEL + r"\.png")
def r_reset(h, label):
    body = h.server.fixtures.image("png", label)
    h.send_response(200)
    h.send_header("Content-Type", "image/png")
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body[: len(body) // 2])
    time.sleep(0.05)  # let the half body reach the client before the RST
    h.reset_connection()


@route(r"/truncated/" + LABEL + r"\.png")
def r_truncated(h, label):
    body = h.server.fixtures.image("png", label)
    h.send_response(200)
    h.send_header("Content-Type", "image/png")
    h.send_header("Content-Length", str(len(body) + 1000))
    h.end_headers()
    h.wfile.write(body)
    h.close_connection = True


@route(r"/cut/" + LABEL + r"\.(jpg|png)")
def r_cut(h, label, ext):
    # A whole HTTP response whose image is cut short inside its pixel data: the
    # header is complete, the last quarter of the file is missing.
    body = h.server.fixtures.image(ext, label)
    h.send_bytes(200, body[: len(body) * 3 // 4], "image/jpeg" if ext == "jpg" else "image/png")


@route(r"/drip/" + LABEL + r"\.png")
def r_drip(h, label):
    body = h.server.fixtures.image("png", label)
    h.send_response(200)
    h.send_header("Content-Type", "image/png")
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    for i in range(len(body)):  # ends when the client gives up (write fails)
        h.wfile.write(body[i:i + 1])
        time.sleep(1)


@route(r"/endless\.png")
def r_endless(h):
    h.send_response(200)
    h.send_header("Content-Type", "image/png")
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    block = b"\x89PNG\r\n\x1a\n" + os.urandom(65536 - 8)
    chunk = b"%x\r\n" % len(block) + block + b"\r\n"
    h.wfile.write(chunk)
    noise = os.urandom(65536)
    chunk = b"%x\r\n" % len(noise) + noise + b"\r\n"
    while True:  # ends when the client disconnects or stops reading (timeout)
        h.wfile.write(chunk)


@route(r"/huge-length\.png")
def r_huge_length(h):
    h.send_response(200)
    h.send_header("Content-Type", "image/png")
    h.send_header("Content-Length", str(HUGE_LENGTH))
    h.end_headers()
    h.wfile.write(b"\x89PNG\r\n\x1a\n" + os.urandom(4096))
    h.wait_for_client_close(STALL_LIMIT_S)


@route(r"/gzip-bomb\.png")
def r_gzip_bomb(h):
    h.send_bytes(200, h.server.fixtures.gzip_bomb_bytes(), "image/png", [("Content-Encoding", "gzip")])


@route(r"/html-as-png\.png")
def r_html(h):
    h.send_bytes(200, HTML_PAGE, "image/png")


@route(r"/image\.svg")
def r_svg(h):
    h.send_bytes(200, SVG_IMAGE, "image/svg+xml")


@route(r"/empty\.png")
def r_empty(h):
    h.send_bytes(200, b"", "image/png")


BOMBS = {"png": (png_bomb(), "image/png"), "gif": (gif_bomb(), "image/gif"), "jpeg": (jpeg_bomb(), "image/jpeg")}


@route(r"/bomb/(png|gif|jpeg)")
def r_bomb(h, kind):
    body, content_type = BOMBS[kind]
    h.send_bytes(200, body, content_type)


@route(r"/redirect/(\d+)/" + LABEL + r"\.png")
def r_redirect(h, k, label):
    k = int(k)
    h.redirect(f"/redirect/{k - 1}/{label}.png" if k > 1 else f"/img/{label}.png")


@route(r"/redirect-loop")
def r_redirect_loop(h):
    h.redirect("/redirect-loop")


@route(r"/redirect-to")
def r_redirect_to(h):
    url = h.query.get("url", [""])[0]
    if not url:
        return h.send_bytes(400, b"missing url\n", "text/plain")
    h.send_bytes(302, b"", "text/plain", [("Location", url)])


class OriginServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, address, fixtures, verbose, latency_ms=0):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.fixtures = fixtures
        self.hits = HitCounter()
        self.header_log = HeaderLog()
        self.requests = PathCounter()
        self.served = HitCounter()
        self.arrived = HitCounter()
        self.by_host = HitCounter()
        self.windows = Windows()
        self.ports_lock = threading.Lock()
        self.ports = {}  # name -> ExtraPort
        self.gates = Gates()
        self.latency_ms = latency_ms
        self.verbose = verbose
        super().__init__(address, OriginHandler)

    def port_named(self, name, mode, latency_ms):
        with self.ports_lock:
            port = self.ports.get(name)
            if port is None:
                if mode is None:
                    return None
                port = self.ports[name] = ExtraPort(self, name)
        port.set(mode, latency_ms)
        return port

    def extra_port(self, number):
        with self.ports_lock:
            for port in self.ports.values():
                if port.port == number:
                    return port
        return None

    def handle_error(self, request, client_address):
        # A client hanging up mid-response is what the faults are for; not noise to print.
        if self.verbose:
            super().handle_error(request, client_address)


def main():
    parser = argparse.ArgumentParser(description="Litchi test origin (see the module docstring).")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--latency", type=int, default=0, metavar="MS",
                        help="delay every response without ?delay= by MS milliseconds")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args()
    if not 0 <= args.latency <= MAX_DELAY_MS:
        parser.error(f"--latency must be 0..{MAX_DELAY_MS}")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    workdir = tempfile.mkdtemp(prefix="litchi-origin-")
    try:
        fixtures = Fixtures(workdir)
        server = OriginServer((args.host, args.port), fixtures, args.verbose, args.latency)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
        print(f"PORT {server.server_address[1]}", flush=True)
        while not stop.wait(0.5):
            pass
        server.shutdown()
        server.server_close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    # Handler threads are daemonic and may be mid-sleep; leave without joining them.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
