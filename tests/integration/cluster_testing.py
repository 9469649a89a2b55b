"""Helpers for tests and benchmarks of a Litchi cluster (Python stdlib only):
several `litchi serve` nodes on 127.0.0.1 sharing one PostgreSQL database and
one blob folder, each with its own --data folder (docs/scale-out.md).

  - `Cluster`: the nodes (test_server.LitchiServer each, --db/--blobs/--node/
    --lease added), users made with `litchi user add --db`, API clients per
    node, kill -9 / SIGSTOP / restart of one node, SQL on the shared database.
  - `Watcher`: one WebSocket or SSE stream in a thread of its own, recording
    every message with its arrival time; a WebSocket watcher can fail over to
    other nodes and `resume` from the last seq it applied.
  - `wait_for`: polls a condition until a deadline (never a fixed sleep).

Everything talks to 127.0.0.1 only.
"""

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import litchi_testing as lt  # noqa: E402
import live_testing as live  # noqa: E402
from pg_testing import psql  # noqa: E402
from test_server import LitchiServer  # noqa: E402


def wait_for(condition, timeout, what, interval=0.05):
    """Calls `condition()` until it returns something truthy (returned), or
    raises AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = condition()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def litchi_cli(args, stdin_text=None, timeout=60):
    result = lt.run_litchi(args, stdin_text=stdin_text, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(result.describe())
    return result.stdout.strip()


class Node:
    """One node: its server process and an API client per user."""

    def __init__(self, name, server):
        self.name = name
        self.server = server
        self.clients = {}

    @property
    def port(self):
        return self.server.port

    @property
    def pid(self):
        return self.server.process.pid

    def running(self):
        return self.server.process is not None and self.server.process.running()

    def client(self, token):
        if token not in self.clients:
            self.clients[token] = self.server.client(token)
        client = self.clients[token]
        client.port = self.server.port  # a restarted node listens on a new port
        return client

    def close_clients(self):
        for client in self.clients.values():
            client.close()
        self.clients.clear()


class Cluster:
    """`count` nodes named n1..nN on one database `db_url` and one blob folder
    under `root`. Nothing starts until start()."""

    def __init__(self, db_url, root, count=3, lease=30, extra_args=(), node_args=None):
        self.db_url = db_url
        self.root = Path(root)
        self.blobs = self.root / "blobs"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.lease = lease
        self.nodes = []
        for i in range(1, count + 1):
            name = f"n{i}"
            args = ["--db", db_url, "--blobs", self.blobs, "--node", name, "--lease", str(lease),
                    "--retries", "0", "--login-rate", "100000", *extra_args,
                    *((node_args or {}).get(name, ()))]
            self.nodes.append(Node(name, LitchiServer(self.root / name, extra_args=args)))

    def start(self):
        # One after the other: the first migrates the schema (the others would
        # wait on its advisory lock anyway).
        for node in self.nodes:
            node.server.start()
        return self

    def stop(self, sig=signal.SIGTERM):
        """Stops every node still running (continuing a frozen one first);
        returns {name: LitchiResult}."""
        results = {}
        for node in self.nodes:
            node.close_clients()
            if node.server.process is not None:
                node.server.process.send_signal(signal.SIGCONT)
                results[node.name] = node.server.stop(sig, timeout=60)
        return results

    def node(self, name):
        return next(n for n in self.nodes if n.name == name)

    def live_nodes(self):
        return [n for n in self.nodes if n.running()]

    # --- users ------------------------------------------------------------

    def add_user(self, name, password=None):
        """Creates the user with the CLI on the shared database; returns an API token."""
        litchi_cli(["user", "add", name, "--db", self.db_url], stdin_text=(password or f"{name}-password-1") + "\n")
        return litchi_cli(["token", "create", name, "--db", self.db_url])

    # --- the shared database ------------------------------------------------

    def sql(self, query):
        """Rows of `query` (psql -At output split into lines and '|'-separated fields)."""
        out = psql(self.db_url, query)
        return [line.split("|") for line in out.splitlines() if line]

    def sql_value(self, query):
        rows = self.sql(query)
        return rows[0][0] if rows else None

    # --- health and metrics ---------------------------------------------------

    @staticmethod
    def healthz(node):
        response = node.client(None).get("/healthz", token=None)
        try:
            body = response.json()
        except ValueError:
            body = response.body
        return response.status, body

    @staticmethod
    def metrics(node):
        """{metric line name (with labels): float} from /metrics."""
        text = node.client(None).get("/metrics", token=None).body.decode()
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                try:
                    values[name] = float(value)
                except ValueError:
                    pass
        return values


def open_ws(port, token, timeout=30):
    ws = live.RawWebSocket(port, "/api/ws", headers={"Sec-WebSocket-Protocol": f"litchi.v1, bearer.{token}"},
                           timeout=timeout)
    if ws.handshake() != 101:
        raise AssertionError(f"WebSocket handshake on port {port}: HTTP {ws.status} {ws.response_body!r}")
    return ws


JOB_LEVEL = ("progress", "job")


class Watcher:
    """One live stream in a thread: `kind` "ws" or "sse", on `ports[0]` first.

    Every message is recorded as (arrival time.time(), message dict) in
    `records`; `raw` keeps each message's exact text. The thread ends when
    `until(message)` is true, on stop(), or on an error (kept in `error`).

    failover=True (WebSocket only): when the connection is lost, connect to
    the next port in `ports` and send `resume` with the last seq applied and
    the stream's epoch; each (re)connection is logged in `connections`.
    """

    def __init__(self, kind, ports, token, until=None, failover=False, items=None, timeout=180):
        self.kind = kind
        self.ports = list(ports)
        self.token = token
        self.until = until or (lambda message: False)
        self.failover = failover
        self.items = items
        self.timeout = timeout
        self.records = []
        self.raw = []
        self.connections = []  # (port, time.time()) per connection
        self.error = None
        self.finished = False
        self.position = None
        self.epoch = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._conn = None
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()
        # The first message (hello) means the stream is live: changes from now on reach it.
        if not self._ready.wait(30):
            raise AssertionError(f"{self.kind} watcher on {self.ports[0]}: no hello in 30s ({self.error})")
        if self.error:
            raise AssertionError(f"{self.kind} watcher: {self.error}")
        return self

    def stop(self):
        self._stop.set()
        conn = self._conn
        if conn is not None:
            try:
                conn.sock.shutdown(2)
            except OSError:
                pass
        self.thread.join(30)

    def join(self, timeout):
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise AssertionError(f"{self.kind} watcher did not finish in {timeout}s; last: {self.messages()[-3:]}")
        if self.error:
            raise AssertionError(f"{self.kind} watcher failed: {self.error}")

    def messages(self):
        with self._lock:
            return [m for _, m in self.records]

    def job_level(self):
        return [m for m in self.messages() if m.get("type") in JOB_LEVEL]

    # --- the thread -----------------------------------------------------------

    def _connect(self, port, resume):
        if self.kind == "ws":
            conn = open_ws(port, self.token)
            if resume:
                conn.send_json({"type": "resume", "since": self.position, "epoch": self.epoch})
            if self.items:
                for job in self.items:
                    conn.send_json({"type": "subscribe", "job": job, "items": True})
        else:
            query = f"?items={','.join(map(str, self.items))}" if self.items else ""
            conn = live.SseReader(port, self.token, query=query)
            if conn.status != 200:
                raise AssertionError(f"SSE on {port}: HTTP {conn.status}")
        self._conn = conn
        self.connections.append((port, time.time()))
        return conn

    def _next(self, conn):
        if self.kind == "ws":
            opcode, data = conn.recv_message()
            text = data.decode()
            return text, json.loads(text)
        while True:
            event = conn.next_event()
            if event is None:
                raise EOFError("SSE stream ended")
            if event["data"] is not None:
                return json.dumps(event["data"]), event["data"]

    def _run(self):
        deadline = time.monotonic() + self.timeout
        port_index = 0
        resume = False
        try:
            while not self._stop.is_set():
                conn = self._connect(self.ports[port_index], resume)
                try:
                    # One timeout for the whole stream: a read cut by a timeout
                    # would lose a half-read frame. stop() shuts the socket down.
                    conn.sock.settimeout(max(1.0, deadline - time.monotonic()))
                    while not self._stop.is_set():
                        try:
                            text, message = self._next(conn)
                        except TimeoutError:
                            raise AssertionError(f"no end of stream in {self.timeout}s") from None
                        now = time.time()
                        with self._lock:
                            self.records.append((now, message))
                            self.raw.append(text)
                        kind = message.get("type")
                        if kind in ("hello", "snapshot"):
                            self.position, self.epoch = message["seq"], message.get("epoch")
                            self._ready.set()
                        elif kind in JOB_LEVEL and self.position is not None and message["seq"] == self.position + 1:
                            self.position = message["seq"]
                        if self.until(message):
                            self.finished = True
                            return
                except (EOFError, ConnectionError, live.Closed, OSError) as err:
                    if self._stop.is_set():
                        return
                    if not self.failover:
                        raise
                    self.connections.append((f"lost: {err!r}", time.time()))
                finally:
                    conn.close()
                    self._conn = None
                # Fail over: the next port that accepts, resuming where we were.
                port_index = (port_index + 1) % len(self.ports)
                resume = self.position is not None
        except BaseException as err:  # noqa: BLE001 (reported through join)
            self.error = err
        finally:
            self._ready.set()


def job_state_is(job_id, states):
    """A Watcher `until`: a job-level message (or hello/snapshot) shows job
    `job_id` (None: any job) in one of `states`."""
    def check(message):
        kind = message.get("type")
        if kind in JOB_LEVEL:
            jobs = [message["job"]]
        elif kind in ("hello", "snapshot"):
            jobs = message["jobs"]
        else:
            return False
        return any(job_id in (None, job["id"]) and job["state"] in states for job in jobs)
    return check


def seq_runs(messages):
    """The job-level seqs of a recorded stream, in arrival order."""
    return [m["seq"] for m in messages if m.get("type") in JOB_LEVEL]


def blob_parts_by_owner(blobs):
    """{(node tag, pid): [part paths]} for the .part files under `blobs`
    (names are <node>-<pid>-<nonce>-<counter>.part, blobs/blob_store.hpp)."""
    owners = {}
    for path in lt.part_files(blobs):
        fields = path.name.split("-")
        key = (fields[0], int(fields[1])) if len(fields) >= 4 and fields[1].isdigit() else (path.name, 0)
        owners.setdefault(key, []).append(path)
    return owners


def process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
