"""Helpers for the live-progress tests (WebSocket, SSE, `litchi watch`):

- `LiveServer`: test_server.LitchiServer plus an origin, an admin token and a
  second user, for one test class.
- `RawWebSocket`: our own RFC 6455 client on a plain socket, so the tests can
  send frames no library would (unmasked, reserved bits, bad UTF-8, ...), and
  can stop reading on purpose (slow consumer).
- `SseReader`: GET /api/events on a raw socket, parsed into events.
- `check_stream`: the protocol promises every client test asserts.

Everything talks to 127.0.0.1 only.
"""

import base64
import hashlib
import json
import os
import resource
import socket
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import litchi_testing as lt  # noqa: E402
from test_server import LitchiServer, ApiClient, add_user, create_token  # noqa: E402,F401

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def rss_kib(pid):
    """Resident set of a process, in KiB (VmRSS)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class LiveServer:
    """A server with an origin, the admin's token and user bob's token."""

    def __init__(self, testcase_cls, extra_args=()):
        self.origin = lt.Origin().__enter__()
        self.tmp = Path(lt.tempfile.mkdtemp(prefix="litchi-live-"))
        self.server = LitchiServer(self.tmp / "data", extra_args=["--retries", "0", "--login-rate", "1000",
                                                                  *extra_args]).start()
        self.admin_token = self.server.admin_link_token
        self.admin = self.server.client(self.admin_token)
        result = add_user(self.server.data_dir, "bob", "bob-password-1")
        if result.returncode != 0:
            raise AssertionError(result.describe())
        self.bob_token = create_token(self.server.data_dir, "bob")
        self.bob = self.server.client(self.bob_token)

    @property
    def port(self):
        return self.server.port

    def urls(self, count, delay_ms=0, ext="png", prefix="a"):
        query = f"?delay={delay_ms}" if delay_ms else ""
        return [self.origin.url(f"/img/{prefix}{i}.{ext}{query}") for i in range(count)]

    def close(self):
        self.admin.close()
        self.bob.close()
        if self.server.process is not None:
            self.server.stop()
        self.origin.stop()
        lt.shutil.rmtree(self.tmp, True)


class ProtocolError(AssertionError):
    pass


class RawWebSocket:
    """A minimal RFC 6455 client: handshake, send any frame, read frames."""

    def __init__(self, port, path="/api/ws", headers=None, rcvbuf=None, timeout=30):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.buffer = b""
        self.port = port
        self.path = path
        self.headers = dict(headers or {})
        self.status = None
        self.response_headers = {}
        self.response_body = b""

    def handshake(self, key=None):
        key = key or base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {self.path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        lines += [f"{k}: {v}" for k, v in self.headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ProtocolError(f"connection closed during handshake: {self.buffer!r}")
            self.buffer += chunk
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        head_lines = head.decode("latin-1").split("\r\n")
        self.status = int(head_lines[0].split()[1])
        for line in head_lines[1:]:
            name, _, value = line.partition(":")
            self.response_headers[name.strip().lower()] = value.strip()
        if self.status != 101:
            length = int(self.response_headers.get("content-length", "0"))
            while len(self.buffer) < length:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.buffer += chunk
            self.response_body = self.buffer[:length]
        return self.status

    @staticmethod
    def expected_accept(key):
        return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()

    def send_frame(self, opcode, payload=b"", fin=True, mask=True, rsv=0, length_override=None):
        self.sock.sendall(self.frame_bytes(opcode, payload, fin, mask, rsv, length_override))

    @staticmethod
    def frame_bytes(opcode, payload=b"", fin=True, mask=True, rsv=0, length_override=None):
        """One client frame, masked unless asked otherwise."""
        if isinstance(payload, str):
            payload = payload.encode()
        first = (0x80 if fin else 0) | (rsv << 4) | opcode
        length = len(payload) if length_override is None else length_override
        mask_bit = 0x80 if mask else 0
        if length < 126:
            header = struct.pack("!BB", first, mask_bit | length)
        elif length < 65536:
            header = struct.pack("!BBH", first, mask_bit | 126, length)
        else:
            header = struct.pack("!BBQ", first, mask_bit | 127, length)
        if mask:
            key = os.urandom(4)
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
            header += key
        return header + payload

    def send_text(self, text):
        self.send_frame(0x1, text)

    def send_json(self, value):
        self.send_text(json.dumps(value))

    def _read_exact(self, n):
        while len(self.buffer) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buffer)))
            if not chunk:
                raise EOFError("connection closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def recv_frame(self):
        """(fin, opcode, payload) of the next frame from the server."""
        b0, b1 = self._read_exact(2)
        if b1 & 0x80:
            raise ProtocolError("the server masked a frame")
        length = b1 & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._read_exact(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._read_exact(8))
        return bool(b0 & 0x80), b0 & 0x0F, self._read_exact(length)

    def recv_message(self):
        """The next data message as (opcode, bytes); control frames are handled:
        ping is answered, close raises Closed."""
        parts, first_opcode = [], None
        while True:
            fin, opcode, payload = self.recv_frame()
            if opcode == 0x9:
                self.send_frame(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            if opcode == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                raise Closed(code, payload[2:])
            if first_opcode is None:
                first_opcode = opcode
            parts.append(payload)
            if fin:
                return first_opcode, b"".join(parts)

    def recv_json(self):
        opcode, data = self.recv_message()
        if opcode != 0x1:
            raise ProtocolError(f"expected a text frame, got opcode {opcode}")
        return json.loads(data.decode("utf-8"))

    def wait_close(self, timeout=15):
        """Reads until the server's close frame; returns its code (None: no code;
        'eof': the connection ended without a close frame)."""
        deadline = time.monotonic() + timeout
        self.sock.settimeout(timeout)
        try:
            while time.monotonic() < deadline:
                try:
                    self.recv_message()
                except Closed as closed:
                    return closed.code
        except (EOFError, ConnectionResetError):
            return "eof"
        raise ProtocolError("no close frame in time")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Closed(Exception):
    def __init__(self, code, reason):
        super().__init__(f"closed {code} {reason!r}")
        self.code = code
        self.reason = reason


class SseReader:
    """GET /api/events on a raw socket (chunked), parsed into (id, data) events."""

    def __init__(self, port, token=None, query="", headers=None, timeout=30):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        lines = [f"GET /api/events{query} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Accept: text/event-stream"]
        if token:
            lines.append(f"Authorization: Bearer {token}")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.raw = b""
        while b"\r\n\r\n" not in self.raw:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.raw += chunk
        head, _, self.raw = self.raw.partition(b"\r\n\r\n")
        head_lines = head.decode("latin-1").split("\r\n")
        self.status = int(head_lines[0].split()[1])
        self.headers = {}
        for line in head_lines[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.text = ""
        self.ended = False

    def _pull_chunk(self):
        # Chunked transfer: "<hex>\r\n<data>\r\n"; the last chunk is 0.
        while b"\r\n" not in self.raw:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("stream closed")
            self.raw += data
        size_line, _, rest = self.raw.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        while len(rest) < size + 2:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("stream closed")
            rest += data
        self.raw = rest[size + 2:]
        if size == 0:
            self.ended = True
        self.text += rest[:size].decode("utf-8")

    def next_event(self):
        """The next event as dict {id, data (parsed JSON), comment}; None at the end."""
        while True:
            while "\n\n" not in self.text:
                if self.ended:
                    return None
                self._pull_chunk()
            block, _, self.text = self.text.partition("\n\n")
            event = {"id": None, "data": None, "comments": [], "retry": None}
            for line in block.split("\n"):
                if line.startswith(":"):
                    event["comments"].append(line[1:].strip())
                elif line.startswith("id: "):
                    event["id"] = int(line[4:])
                elif line.startswith("data: "):
                    event["data"] = json.loads(line[6:])
                elif line.startswith("retry: "):
                    event["retry"] = int(line[7:])
            if event["data"] is not None or event["comments"]:
                return event

    def close(self):
        self.sock.close()


def job_counts_never_decrease(testcase, previous, job):
    """Counts of a job may only move forward (done/failed/cancelled grow, total fixed)."""
    old = previous.get(job["id"])
    if old is not None:
        for key in ("done", "failed", "cancelled"):
            testcase.assertGreaterEqual(job["counts"][key], old["counts"][key],
                                        f"{key} went backwards: {old['counts']} -> {job['counts']}")
        testcase.assertEqual(job["counts"]["total"], old["counts"]["total"])
    previous[job["id"]] = job


def check_stream(testcase, messages):
    """The promises of protocol v1 for one connection's job-level messages:
    hello first, every progress/job seq = previous + 1, counts never go back.
    Returns {job id: last job object}."""
    testcase.assertTrue(messages, "no messages")
    testcase.assertEqual(messages[0]["type"], "hello", messages[0])
    testcase.assertEqual(messages[0]["protocol"], 1)
    position = messages[0]["seq"]
    jobs = {job["id"]: job for job in messages[0]["jobs"]}
    seen = dict(jobs)
    for message in messages[1:]:
        kind = message["type"]
        if kind in ("progress", "job"):
            testcase.assertEqual(message["seq"], position + 1, f"seq jump after {position}: {message}")
            position = message["seq"]
            job = message["job"]
            if kind == "job" and message["event"] == "deleted":
                jobs.pop(job["id"], None)
                continue
            job_counts_never_decrease(testcase, seen, job)
            jobs[job["id"]] = job
        elif kind == "snapshot":
            position = message["seq"]
            jobs = {job["id"]: job for job in message["jobs"]}
    return jobs


def comparable(job):
    """A job without the fields that legitimately differ between a push and a
    later GET (rate and eta are time-based estimates)."""
    return {k: v for k, v in job.items() if k not in ("rate", "eta")}


def raise_nofile(limit):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(max(soft, limit), hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
