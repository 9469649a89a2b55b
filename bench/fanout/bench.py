#!/usr/bin/python3
"""The live-progress fan-out benchmark (issue 4), driven by bench/fanout/run.sh.
Not a test: it measures and reports.

What it measures, for `litchi serve` (release build) and for a plain Node `ws`
broadcast server (bench/fanout/node_broadcast.js), side by side in one run:

 1. sweep: SOCKETS WebSockets of one user, spread over CLIENTS client
    processes (bench/fanout/fanout_client.js, SOCKETS / CLIENTS each), while
    bench/fanout/publisher.js offers events at increasing rates (a geometric
    series, STEP_SECONDS each). Every event is a `POST /api/jobs` whose job
    created message carries the publisher's CLOCK_MONOTONIC send time in its
    name; each client takes receipt minus that. Per step: offered events/s
    (and messages/s: times the sockets), delivered messages/s over the
    publishing window (every socket), latency p50/p99 over every message the
    step should have delivered (one never delivered counts as infinitely
    late), and the CPU of the server, of each client process, of the publisher
    and of the whole machine. A step is marked client-bound when a client
    process used CLIENT_BOUND of a core or more. Each server's sweep goes on
    until it is saturated (a step lost messages, delivered under 90 % of the
    offer, or had a p99 over SATURATED_P99_MS), for MAX_STEPS at most, or until
    the time budget is spent; a step missing p99 < P99_LIMIT_MS does not end
    it (on a shared machine one miss can be another process's doing). Then
    REFINE_STEPS more steps bisect between the highest rate that passed and
    the next one tried. The result: the highest delivered rate of a step with
    p99 under P99_LIMIT_MS, for each server, and their ratio; and beside it the
    highest delivered rate of any step, whatever its latency.
 2. idle: IDLE open WebSockets that read nothing (after their hello, which
    carries one finished job): server RSS growth per socket, both servers.

Why this shape: one client process measuring at full speed measured itself
(a single Node client at 259 MB and Litchi's p99 at 5.2 s: the client had
saturated, not the server). An offered-load sweep with the sockets spread
over several processes and their CPU recorded shows where the server stops
keeping up, and whether a step was limited by the clients instead.

How Litchi is made to publish: the real `litchi serve` process, `-j 1
--per-host 1`, its one transfer slot held by a stalled download from a local
socket that never answers (BlackHole), so each POST makes one job that stays
queued: one `job created` event per request, through the store and the hub
like any other (plus a few `progress` messages every 10 s, when the stalled
download times out and the next job starts). The Node server broadcasts on
the same request.

Everything runs on 127.0.0.1; every child and every wait is bounded. Prints the
Markdown section, writes it into docs/benchmarks.md between the `fanout`
markers (unless --no-docs) and the raw results to bench/out/fanout.json.
   bench/fanout/run.sh [--litchi PATH] [--sockets 1000] [--clients 4]
        [--step-seconds 4] [--start-rate 10] [--max-steps 14] [--budget 420]
        [--idle 10000] [--only sweep,idle] [--no-docs]
"""

import argparse
import contextlib
import datetime
import importlib.util
import json
import math
import os
import platform
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
# bench/serve/bench.py: `litchi serve` as a process (and through it bench/fetch's
# write_docs and rerun_command), loaded under its own name (all are bench.py).
_spec = importlib.util.spec_from_file_location("serve_bench", ROOT / "bench" / "serve" / "bench.py")
serve_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(serve_bench)
fetch_bench = serve_bench.fetch_bench
log = serve_bench.log
cpu_seconds = serve_bench.cpu_seconds

NODE = shutil.which("node") or "node"
P99_LIMIT_MS = 50
SATURATED_P99_MS = 500      # a step this late is past the server's limit: the sweep ends
RATE_FACTOR = math.sqrt(2)  # between two steps of the sweep
CLIENT_BOUND = 0.9          # of one core, for one client process
BINS_PER_DOUBLING = 64      # the clients' latency histogram (fanout_client.js)
REFINE_STEPS = 2            # steps between the highest passing rate and the next, after the sweep
WARM_UP_S = 2              # an unreported first step at the start rate
DRAIN_MAX_S = 10            # after a step, wait at most this long for its backlog
START_TIMEOUT_S = 120
TARGET_RATIO = 2            # issue 4: litchi delivers at least twice Node's messages/s ...
TARGET_IDLE_KIB = 16        # ... and holds an idle socket in under 16 KiB
DEFAULTS = {"sockets": 1000, "clients": 4, "step_seconds": 4.0, "start_rate": 10.0, "max_steps": 14,
            "budget": 420.0, "idle": 10000, "only": "sweep,idle"}


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def machine_cpu():
    """(busy, total) jiffies of all cores since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


def stop(process, timeout=15):
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Lines:
    """The stdout lines of a child process, read by a thread, so that waiting for
    one can time out (a blocking readline could not)."""

    def __init__(self, process):
        self.process = process
        self.queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.queue.put(line)
        self.queue.put(None)

    def next(self, timeout, pattern=r"^\{"):
        """The next line matching `pattern` (default: a JSON object); its match."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.queue.get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                raise RuntimeError(f"no answer from {self.process.args[:2]} in {timeout} s") from None
            if line is None:
                raise RuntimeError(f"{self.process.args[:2]} exited with {self.process.wait()}")
            match = re.search(pattern, line)
            if match:
                return match

    def json(self, timeout):
        return json.loads(self.next(timeout).string)


class BlackHole:
    """A listening socket on 127.0.0.1 that never accepts: a download from it
    connects (the kernel completes the handshake) and then waits for an answer
    that never comes, until Litchi's stall timeout (10 s) fails it."""

    def __init__(self):
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(1024)
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}/never.png"

    def close(self):
        self.socket.close()


class NodeProcesses:
    """Node processes running one script of this folder, one per options object: each
    takes its options as its JSON argument, answers every JSON command line on its
    stdin with one JSON line, and exits when its stdin closes."""

    def __init__(self, script, options_list):
        self.processes = []
        try:
            for options in options_list:
                self.processes.append(subprocess.Popen([NODE, str(HERE / script), json.dumps(options)],
                                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        except BaseException:
            self.close()
            raise
        self.lines = [Lines(process) for process in self.processes]

    def read(self, timeout):
        """The next JSON line of every process, in order."""
        return [lines.json(timeout) for lines in self.lines]

    def ask(self, command, timeout=60):
        for process in self.processes:
            process.stdin.write(json.dumps(command) + "\n")
            process.stdin.flush()
        return self.read(timeout)

    def pids(self):
        return [p.pid for p in self.processes]

    def close(self):
        for process in self.processes:
            if process.poll() is None:
                process.stdin.close()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class Clients(NodeProcesses):
    """`count` WebSockets to `url` spread evenly over `processes` fanout_client.js processes."""

    def __init__(self, url, protocols, count, processes, mode):
        shares = [count // processes + (1 if i < count % processes else 0) for i in range(processes)]
        super().__init__("fanout_client.js", [{"url": url, "protocols": protocols, "count": share, "mode": mode}
                                              for share in shares])
        try:
            opened = self.read(START_TIMEOUT_S)
        except BaseException:
            self.close()
            raise
        self.opened = sum(o["opened"] for o in opened)
        self.failed = sum(o["failed"] for o in opened)


@contextlib.contextmanager
def litchi_server(binary, work, label, job_url):
    """A fresh `litchi serve` (bench/serve's Server) that has made one job of `job_url`;
    yields (server, ws_url, protocols). `-j 1 --per-host 1`: one transfer at a time."""
    server = serve_bench.Server(binary, work, label, jobs=1, extra_args=["--per-host", "1", "--retries", "0"])
    try:
        status, data = server.request("POST", "/api/jobs", json.dumps({"urls": [job_url], "name": label}).encode(),
                                      "application/json")
        if status != 201:
            raise RuntimeError(f"POST /api/jobs answered {status}: {data[:300]!r}")
        yield server, f"ws://127.0.0.1:{server.port}/api/ws", f"litchi.v1,bearer.{server.token}"
    finally:
        server.stop()


@contextlib.contextmanager
def node_server():
    """A fresh Node broadcast server; yields (process, port)."""
    process = subprocess.Popen([NODE, str(HERE / "node_broadcast.js"), "0"], stdout=subprocess.PIPE, text=True)
    try:
        port = int(Lines(process).next(START_TIMEOUT_S, r"^PORT (\d+)").group(1))
        yield process, port
    finally:
        stop(process)


# ---------------------------------------------------------------------------
# The sweep
# ---------------------------------------------------------------------------

class Target:
    """One server under the sweep: its process, its publisher and clients, its steps so far."""

    def __init__(self, name, pid, publisher, clients):
        self.name, self.pid, self.publisher, self.clients = name, pid, publisher, clients
        self.rows = []
        self.stopped = None  # why its sweep ended

    def why_stop(self):
        """Why the sweep of this server should end after its last step, or None."""
        last = self.rows[-1]
        if last["saturated"]:
            return (f"saturated at {last['rate']:g} events/s (messages lost, delivered under 90 % of the offer, "
                    f"or p99 over {SATURATED_P99_MS} ms)")
        return None


def percentiles(hist, expected, ps):
    """Latency (ms) at each quantile in `ps` of `expected` messages, from the merged
    histogram {bin: count}; messages never received count as infinitely late (None)."""
    ordered = sorted(hist.items())
    out = []
    for p in ps:
        rank = min(expected - 1, math.floor(expected * p))
        seen = 0
        value = None
        for bin_, count in ordered:
            seen += count
            if seen > rank:
                value = 2 ** ((bin_ + 0.5) / BINS_PER_DOUBLING) / 1000  # bin middle, µs -> ms
                break
        out.append(value)
    return out


def wait_for_drain(clients):
    """Polls the clients' receipt counts until they stop growing (or DRAIN_MAX_S)."""
    deadline = time.monotonic() + DRAIN_MAX_S
    last = -1
    while time.monotonic() < deadline:
        total = sum(a["received"] for a in clients.ask({"cmd": "count"}))
        if total == last:
            return
        last = total
        time.sleep(0.2)


def run_step(target, step, rate, seconds):
    pids = [target.pid, target.publisher.pids()[0], *target.clients.pids()]
    cpu_before = [cpu_seconds(pid) for pid in pids]
    machine_before = machine_cpu()
    started = time.monotonic()
    [published] = target.publisher.ask({"step": step, "rate": rate, "seconds": seconds}, timeout=seconds + 60)
    wall = time.monotonic() - started
    cores = [(cpu_seconds(pid) - before) / wall for pid, before in zip(pids, cpu_before)]
    machine_after = machine_cpu()
    machine_busy = (machine_after[0] - machine_before[0]) / max(machine_after[1] - machine_before[1], 1)
    wait_for_drain(target.clients)
    # The window of the step's offer: N events at `rate` span N / rate seconds.
    reports = target.clients.ask({"cmd": "report", "step": step, "from_us": published["start_us"],
                                  "to_us": published["end_us"] + 1e6 / rate})
    hist = {}
    for report in reports:
        for bin_, count in report["hist"]:
            hist[bin_] = hist.get(bin_, 0) + count
    sockets = sum(r["open"] for r in reports)
    expected = published["created"] * sockets
    received = sum(r["events_received"] for r in reports)
    p50, p99 = percentiles(hist, max(expected, 1), (0.5, 0.99))
    client_cores = cores[2:]
    closes = {}
    for report in reports:
        for code, count in report["closes"].items():
            closes[code] = closes.get(code, 0) + count
    row = {
        "step": step, "rate": rate, "sockets": sockets,
        "offered_events_per_s": rate, "offered_messages_per_s": round(rate * sockets),
        "delivered_messages_per_s": round(sum(r["window_messages"] / max(r["window_s"], 1e-9) for r in reports)),
        "expected": expected, "received": received, "lost": max(expected - received, 0),
        "latency_p50_ms": p50, "latency_p99_ms": p99,
        "server_cores": round(cores[0], 3), "client_cores": [round(c, 3) for c in client_cores],
        "publisher_cores": round(cores[1], 3),
        "machine_busy": round(machine_busy, 3), "loadavg": os.getloadavg()[0],
        "client_bound": max(client_cores) >= CLIENT_BOUND,
        "publisher": published,
        "closes": closes,
    }
    # Server CPU per message delivered, both as rates over the step.
    row["server_us_per_message"] = round(cores[0] * 1e6 / max(row["delivered_messages_per_s"], 1), 2)
    row["passed"] = p99 is not None and p99 < P99_LIMIT_MS and published["created"] == published["sent"]
    row["saturated"] = (p99 is None or p99 > SATURATED_P99_MS or row["lost"] > 0
                        or row["delivered_messages_per_s"] < 0.9 * row["offered_messages_per_s"])
    return row


def describe(row):
    p99 = "lost" if row["latency_p99_ms"] is None else f"{row['latency_p99_ms']:.1f} ms"
    return (f"{row['offered_events_per_s']:7.1f} ev/s -> {row['delivered_messages_per_s']:8,} msg/s, p99 {p99}, "
            f"lost {row['lost']}, server {row['server_cores']:.2f}, clients max {max(row['client_cores']):.2f} "
            f"sum {sum(row['client_cores']):.2f}, publisher {row['publisher_cores']:.2f}, "
            f"machine {row['machine_busy'] * 100:.0f} %, "
            f"load {row['loadavg']:.1f}{'  CLIENT-BOUND' if row['client_bound'] else ''}")


def sweep(targets, args):
    deadline = time.monotonic() + args.budget
    # Step 0, not reported, warms up both sides (Node's JIT, first allocations):
    # without it the first step often misses for either server.
    for target in targets:
        run_step(target, 0, args.start_rate, WARM_UP_S)
    for step in range(1, args.max_steps + 1):
        rate = round(args.start_rate * RATE_FACTOR ** (step - 1), 1)
        # Alternate which server goes first, so neither always follows the other's backlog.
        for target in (targets if step % 2 == 0 else targets[::-1]):
            if target.stopped:
                continue
            if time.monotonic() + args.step_seconds + DRAIN_MAX_S > deadline:
                target.stopped = f"time budget ({args.budget:.0f} s) spent"
                continue
            row = run_step(target, step, rate, args.step_seconds)
            target.rows.append(row)
            log(f"  {target.name:6s} step {step:2d}: {describe(row)}")
            target.stopped = target.why_stop()
        if all(t.stopped for t in targets):
            break
    for target in targets:
        target.stopped = target.stopped or f"{args.max_steps} steps run"
    # Refinement: halve the gap (geometrically) between the highest passing rate
    # and the next rate tried above it, REFINE_STEPS times, so that the result is
    # not just the √2 grid.
    step = args.max_steps
    for _ in range(REFINE_STEPS):
        for target in targets:
            passed = [r["rate"] for r in target.rows if r["passed"]]
            if not passed or time.monotonic() + args.step_seconds + DRAIN_MAX_S > deadline:
                continue
            above = [r["rate"] for r in target.rows if r["rate"] > max(passed)]
            if not above:
                continue
            step += 1
            rate = round(math.sqrt(max(passed) * min(above)), 1)
            row = run_step(target, step, rate, args.step_seconds)
            row["refinement"] = True
            target.rows.append(row)
            log(f"  {target.name:6s} refine  : {describe(row)}")


def run_sweep(args, work):
    hole = BlackHole()
    with contextlib.ExitStack() as stack:
        stack.callback(hole.close)
        litchi, litchi_ws, protocols = stack.enter_context(
            litchi_server(args.litchi, work, "sweep", hole.url))
        node, node_port = stack.enter_context(node_server())
        targets = []
        for name, pid, api, token, ws_url, protos in (
                ("litchi", litchi.process.pid, f"http://127.0.0.1:{litchi.port}", litchi.token, litchi_ws, protocols),
                ("node", node.pid, f"http://127.0.0.1:{node_port}", "", f"ws://127.0.0.1:{node_port}/", "")):
            publisher = NodeProcesses("publisher.js", [{"api": api, "token": token, "url": hole.url}])
            stack.callback(publisher.close)
            clients = Clients(ws_url, protos, args.sockets, args.clients, "sweep")
            stack.callback(clients.close)
            log(f"  {name}: {clients.opened} sockets open in {args.clients} client processes"
                f"{f', {clients.failed} FAILED' if clients.failed else ''}")
            targets.append(Target(name, pid, publisher, clients))
        time.sleep(1)  # let the hellos pass
        sweep(targets, args)
    return {t.name: {"rows": t.rows, "stopped": t.stopped,
                     "best": highest([r for r in t.rows if r["passed"]]),
                     "peak": highest(t.rows)} for t in targets}


def highest(rows):
    """The row of `rows` with the highest delivered rate, or None."""
    return max(rows, key=lambda r: r["delivered_messages_per_s"]) if rows else None


# ---------------------------------------------------------------------------
# Idle sockets
# ---------------------------------------------------------------------------

def idle_rss(pid, url, protocols, count, processes):
    """Server RSS growth per socket with `count` idle sockets open."""
    before = rss_kib(pid)
    clients = Clients(url, protocols, count, processes, "idle")
    try:
        time.sleep(3)  # let the server finish its hellos and settle
        after = rss_kib(pid)
    finally:
        clients.close()
    return {"sockets": clients.opened, "failed": clients.failed, "rss_before_kib": before, "rss_after_kib": after,
            "kib_per_socket": round((after - before) / max(clients.opened, 1), 2)}


def run_idle(args, work):
    # A job whose one URL is refused at once: it is finished before the sockets open.
    gone = f"http://127.0.0.1:{fetch_bench.free_port()}/gone.png"
    with litchi_server(args.litchi, work, "idle", gone) as (litchi, ws_url, protocols):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, data = litchi.request("GET", "/api/jobs")
            if all(job["state"] not in ("queued", "running") for job in json.loads(data)["jobs"]):
                break
            time.sleep(0.1)
        result = {"litchi": idle_rss(litchi.process.pid, ws_url, protocols, args.idle, args.clients)}
    log(f"  litchi: {json.dumps(result['litchi'])}")
    with node_server() as (node, port):
        result["node"] = idle_rss(node.pid, f"ws://127.0.0.1:{port}/", "", args.idle, args.clients)
    log(f"  node: {json.dumps(result['node'])}")
    return result


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

NAMES = {"litchi": "litchi serve", "node": "Node `ws` broadcast"}


def ms(value):
    return "lost" if value is None else f"{value:.1f}"


def percent(cores):
    return f"{cores * 100:.0f} %"


def ratio(a, b):
    return f"{a / b:.2f}×" if a and b else "–"


def sweep_table(rows, clients):
    lines = ["| offered events/s | offered msg/s | delivered msg/s | p50 ms | p99 ms | not delivered | server CPU "
             f"| server µs/msg | client CPU, busiest of {clients} / all | publisher CPU | machine busy | load | |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:-:|"]
    for r in sorted(rows, key=lambda r: r["rate"]):
        mark = "p99 < 50 ms" if r["passed"] else "**missed**"
        if r["client_bound"]:
            mark += ", client-bound"
        if r.get("refinement"):
            mark += " (refinement)"
        lines.append(
            f"| {r['offered_events_per_s']:g} | {r['offered_messages_per_s']:,} | {r['delivered_messages_per_s']:,} "
            f"| {ms(r['latency_p50_ms'])} | {ms(r['latency_p99_ms'])} | {r['lost']:,} | {percent(r['server_cores'])} "
            f"| {r['server_us_per_message']:.1f} | {percent(max(r['client_cores']))} / "
            f"{percent(sum(r['client_cores']))} | {percent(r['publisher_cores'])} | {percent(r['machine_busy'])} "
            f"| {r['loadavg']:.1f} | {mark} |")
    return lines


def summary_table(results):
    """Both servers' headline numbers side by side, and litchi / Node."""
    sweep, idle = results.get("sweep"), results.get("idle")
    lines = ["| | highest delivered msg/s with p99 < 50 ms | at offered events/s | p50 ms | p99 ms | server CPU "
             "there | server µs/msg there | busiest client process there | peak delivered msg/s, any step "
             "(its p99 ms) | KiB per idle socket |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    best = {name: sweep[name]["best"] if sweep else None for name in NAMES}
    peak = {name: sweep[name]["peak"] if sweep else None for name in NAMES}
    for name in NAMES:
        b, k = best[name], peak[name]
        cells = ["none", "", "", "", "", "", ""]
        if b:
            cells = [f"**{b['delivered_messages_per_s']:,}**", f"{b['offered_events_per_s']:g}",
                     ms(b["latency_p50_ms"]), ms(b["latency_p99_ms"]), percent(b["server_cores"]),
                     f"{b['server_us_per_message']:.1f}", percent(max(b["client_cores"]))]
        cells.append(f"{k['delivered_messages_per_s']:,} ({ms(k['latency_p99_ms'])})" if k else "none")
        cells.append(f"{idle[name]['kib_per_socket']:.1f}" if idle else "–")
        lines.append(f"| {NAMES[name]} | " + " | ".join(cells) + " |")

    def both(rows, key):
        return ratio(rows["litchi"] and rows["litchi"][key], rows["node"] and rows["node"][key])

    idle_ratio = ratio(idle["litchi"]["kib_per_socket"], idle["node"]["kib_per_socket"]) if idle else "–"
    lines.append(f"| litchi / Node | **{both(best, 'delivered_messages_per_s')}** | | | | | "
                 f"{both(best, 'server_us_per_message')} | | {both(peak, 'delivered_messages_per_s')} | "
                 f"**{idle_ratio}** |")
    return lines


def targets(results):
    """Issue 4's targets, where this run measured them."""
    verdict = lambda ok: "met" if ok else "**not met**"  # noqa: E731
    parts = []
    sweep, idle = results.get("sweep"), results.get("idle")
    if sweep and sweep["litchi"]["best"] and sweep["node"]["best"]:
        times = sweep["litchi"]["best"]["delivered_messages_per_s"] / sweep["node"]["best"]["delivered_messages_per_s"]
        parts.append(f"at least {TARGET_RATIO:g}× Node's messages/s: {verdict(times >= TARGET_RATIO)} ({times:.2f}×)")
    if idle:
        kib = idle["litchi"]["kib_per_socket"]
        parts.append(f"under {TARGET_IDLE_KIB} KiB per idle socket: {verdict(kib < TARGET_IDLE_KIB)} ({kib:.1f} KiB)")
    return "Targets (issue 4): " + "; ".join(parts) + "."


def client_note(sweep):
    """Whether any step was limited by a client process, with the figures."""
    rows = [r for name in NAMES for r in sweep[name]["rows"]]
    bound = [r for r in rows if r["client_bound"]]
    busiest = max(max(r["client_cores"]) for r in rows)
    together = max(sum(r["client_cores"]) for r in rows)
    if bound:
        return (f"**{len(bound)} step(s) were client-bound** (a client process at {CLIENT_BOUND * 100:.0f} % of a "
                "core or more; marked in the tables): their numbers say as much about the clients as the server.")
    return (f"No step was client-bound: the busiest client process used at most {percent(busiest)} of a core "
            f"(all {len(sweep['litchi']['rows'][0]['client_cores'])} of a server's client processes together at "
            f"most {percent(together)}), so none of them limited what a server delivered.")


def machine_note(sweep):
    """How much of the machine there was, and how close to the limit p99 already is at
    the lowest rate: on a shared, busy machine both decide how steady the result is."""
    rows = [r for name in NAMES for r in sweep[name]["rows"]]
    busy = [r["machine_busy"] for r in rows]
    top = {name: max(r["server_cores"] for r in sweep[name]["rows"]) for name in NAMES}
    spread = percent(min(busy))
    if percent(max(busy)) != spread:
        spread += f" to {percent(max(busy))}"
    text = (f"The machine's {os.cpu_count()} cores were {spread} busy during the steps; the servers used at most "
            f"{percent(top['litchi'])} (litchi) and {percent(top['node'])} (Node) of a core, each fanning out on one "
            "thread.")
    saturated = any(sweep[name]["stopped"].startswith("saturated") for name in NAMES)
    if saturated and min(busy) >= 0.9 and max(top.values()) < 0.9:
        text += (" Neither got a full core, so where a sweep ends is where that server ran out of the CPU time it "
                 "could get on this busy machine, not its limit on an idle one; server CPU per message (µs/msg) "
                 "depends less on that share.")
    lowest = {name: min(sweep[name]["rows"], key=lambda r: r["rate"]) for name in NAMES}
    if any((r["latency_p99_ms"] or math.inf) >= P99_LIMIT_MS / 2 for r in lowest.values()):
        text += (f" At the lowest rate p99 was already {ms(lowest['litchi']['latency_p99_ms'])} ms (litchi) and "
                 f"{ms(lowest['node']['latency_p99_ms'])} ms (Node): one event is "
                 f"{lowest['litchi']['sockets']:,} writes, and a server that gets part of a core takes tens of "
                 f"milliseconds for them. So the rate at which p99 crosses {P99_LIMIT_MS} ms, and the ratio of "
                 "the two, depend on the other load as much as on the servers: compare several runs before "
                 "trusting them.")
    return text


def render(results, args, command, litchi_path, started_at, load_start, load_end):
    lines = [
        "## Live progress (fan-out)",
        "",
        f"Measured {started_at:%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}, loopback only, with `litchi` = `{os.path.relpath(litchi_path, ROOT)}` (release "
        "preset, RelWithDebInfo). **Both servers ran side by side in this one run**, their sweep steps interleaved. "
        f"**The machine is shared**: load average {load_start} at the start and {load_end} at the end (other "
        "people's builds), and the servers, clients and publisher share its cores, so absolute numbers are noisy; "
        "each step's load and CPU figures are in the tables below. Command:",
        "",
        "```",
        command,
        "```",
        "",
        f"(Defaults: `--sockets {DEFAULTS['sockets']} --clients {DEFAULTS['clients']} --step-seconds "
        f"{DEFAULTS['step_seconds']:g} --start-rate {DEFAULTS['start_rate']:g} --max-steps {DEFAULTS['max_steps']} "
        f"--budget {DEFAULTS['budget']:g} --idle {DEFAULTS['idle']}`; `--only sweep,idle` picks phases. Raw "
        "results: `bench/out/fanout.json`. Method: `bench/fanout/bench.py`.)",
        "",
    ]
    lines += summary_table(results)
    if "sweep" in results:
        lines += ["", client_note(results["sweep"]), "", machine_note(results["sweep"])]
    lines += ["", targets(results)]
    if "sweep" in results:
        sweep = results["sweep"]
        lines += [
            "",
            "### Offered-load sweep",
            "",
            f"{args.sockets:,} WebSockets of one user per server, held by {args.clients} client processes "
            f"(`bench/fanout/fanout_client.js`, Node `ws` 8.18, {args.sockets // args.clients} sockets each). "
            f"A publisher (`bench/fanout/publisher.js`) offers events at a fixed rate for {args.step_seconds:g} s a "
            f"step, the rate ×{RATE_FACTOR:.2f} each step from {args.start_rate:g} events/s, after an unreported "
            "warm-up step. Each event is a `POST /api/jobs` and the server's `job created` message for it, sent to "
            "every socket. Litchi: the real `litchi serve` with `-j 1 --per-host 1`, its one transfer held by a "
            "download that never answers, so each job stays queued and each POST is one event, through the store "
            "(SQLite commit, data on tmpfs) and the hub. Node: `bench/fanout/node_broadcast.js` broadcasts on the "
            "same request, with messages of Litchi's shape, and keeps no state.",
            "",
            "- **Latency**: receipt minus the publisher's clock just before it sent the POST (CLOCK_MONOTONIC in "
            "every process), over every message the step should deliver (events × sockets). A message never "
            "delivered (a reader too far behind: Litchi resyncs it with a snapshot, the Node server skips it) "
            "counts as infinitely late, so a step that loses over 1 % shows `lost`.",
            "- **Delivered msg/s**: messages received on all sockets during the step's publishing window.",
            "- **CPU**: a share of one core over the step, for the server process (and per delivered message), "
            f"each client process (the busiest, and all together), the publisher, and the whole machine (all "
            f"{os.cpu_count()} cores, other people's work included). A step whose busiest client process used "
            f"{CLIENT_BOUND * 100:.0f} % of a core or more is marked client-bound.",
            f"- A server's sweep goes on until it is saturated (messages lost, delivered under 90 % of the offer, "
            f"or p99 over {SATURATED_P99_MS} ms); a step missing p99 < {P99_LIMIT_MS} ms does not end it. "
            f"Then {REFINE_STEPS} refinement steps bisect (geometrically) between its highest passing rate and the "
            "next rate tried. Rows are sorted by rate.",
        ]
        for name in NAMES:
            lines += ["", f"**{NAMES[name]}** (sweep ended: {sweep[name]['stopped']})", ""]
            lines += sweep_table(sweep[name]["rows"], args.clients)
    if "idle" in results:
        idle = results["idle"]
        lines += [
            "",
            "### Idle sockets",
            "",
            f"{args.idle:,} open WebSockets per server ({args.clients} client processes), each got its `hello` "
            "(one finished job) and then reads nothing; the server's RSS after minus before, per socket. Kernel "
            "socket buffers are not in RSS.",
            "",
            "| server | sockets | RSS before | RSS after | KiB per idle socket |",
            "|---|---:|---:|---:|---:|",
        ]
        for name in NAMES:
            r = idle[name]
            failed = f" ({r['failed']:,} failed)" if r["failed"] else ""
            lines.append(f"| {NAMES[name]} | {r['sockets']:,}{failed} | {r['rss_before_kib']:,} KiB | "
                         f"{r['rss_after_kib']:,} KiB | **{r['kib_per_socket']:.1f}** |")
    findings = HERE / "findings.md"
    if findings.is_file():
        lines += ["", findings.read_text().strip()]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--litchi", default=os.environ.get("LITCHI_BENCH_BIN", str(ROOT / "build/release/litchi")))
    parser.add_argument("--sockets", type=int, default=DEFAULTS["sockets"], help="watchers per server in the sweep")
    parser.add_argument("--clients", type=int, default=DEFAULTS["clients"], help="client processes per server")
    parser.add_argument("--step-seconds", type=float, default=DEFAULTS["step_seconds"])
    parser.add_argument("--start-rate", type=float, default=DEFAULTS["start_rate"], help="events/s of the first step")
    parser.add_argument("--max-steps", type=int, default=DEFAULTS["max_steps"])
    parser.add_argument("--budget", type=float, default=DEFAULTS["budget"], help="seconds the whole sweep may take")
    parser.add_argument("--idle", type=int, default=DEFAULTS["idle"], help="idle sockets per server")
    parser.add_argument("--only", default=DEFAULTS["only"], help="comma-separated phases: sweep, idle")
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: stop servers and clients
    phases = args.only.split(",")
    if not set(phases) <= {"sweep", "idle"}:
        sys.exit(f"--only takes sweep and idle, not {args.only!r}")
    litchi = str(Path(args.litchi).resolve())
    if not os.access(litchi, os.X_OK):
        sys.exit(f"no litchi binary at {litchi}: build it with `cmake --preset release && "
                 "cmake --build --preset release`, or pass --litchi")
    if not (ROOT / "tests/clients/node_modules/ws").is_dir():
        sys.exit("the ws package is missing: run `npm ci --prefix tests/clients`")

    started_at = datetime.datetime.now(datetime.timezone.utc)
    load_start = serve_bench.load_average()
    results = {"nproc": os.cpu_count(), "started": started_at.isoformat(), "loadavg_at_start": load_start,
               "args": {k: getattr(args, k) for k in DEFAULTS}}
    # Data on tmpfs: the disk is shared with other people's builds, and its fsyncs
    # would be what a POST waits for, not the fan-out.
    with tempfile.TemporaryDirectory(prefix="litchi-fanout-", dir="/dev/shm") as work:
        if "sweep" in phases:
            log(f"sweep: {args.sockets} sockets per server over {args.clients} client processes")
            results["sweep"] = run_sweep(args, Path(work))
        if "idle" in phases:
            log(f"idle: {args.idle} sockets per server")
            results["idle"] = run_idle(args, Path(work))
    load_end = serve_bench.load_average()
    results["loadavg_at_end"] = load_end

    out = ROOT / "bench/out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "fanout.json").write_text(json.dumps(results, indent=2) + "\n")
    command = fetch_bench.rerun_command("bench/fanout/run.sh", args, litchi, DEFAULTS)
    section = render(results, args, command, litchi, started_at, load_start, load_end)
    print(section)
    if not args.no_docs:
        fetch_bench.write_docs(section, "fanout")
        log("wrote the fanout section of docs/benchmarks.md")


if __name__ == "__main__":
    main()
