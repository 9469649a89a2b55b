#!/usr/bin/python3
"""The scale-out benchmark (docs/scale-out.md). Not a test: it measures and reports.

  (i)   throughput: one N-image job (default 3,000) against a latency-bound
        origin (tests/origin/origin.py --latency 200: every image takes 200 ms,
        bandwidth is no factor), through 1, 2 and 3 nodes on one PostgreSQL,
        each node at the same -j; and one SQLite node beside them. Time is
        POST /api/jobs sent -> GET /api/jobs/{id} says `done` (polled every
        50 ms). Ratio to one PostgreSQL node.
  (ii)  the queue alone: bench/cluster/queue_bench.cpp (litchi_queue_bench):
        a 200,000-item job, K threads claiming batches of 256 and applying an
        outcome for each (fenced by the lease), on PostgreSQL (one store per
        thread, as K nodes) and SQLite (one store). Items/s.
  (iii) cross-node latency, 3 PostgreSQL nodes: a WebSocket watcher on n3,
        subscribed to the job's items; the job is posted to n1. For every item
        downloaded by n1 or n2 (not n3), latency = the time the watcher got
        the item's `done` message - the time the origin finished sending that
        image. Also: POST -> the watcher's first `progress`, and the gaps
        between consecutive `progress` messages. The same on one SQLite node
        (the watcher on the downloading node) for reference.
  (iv)  accepting a 1,000,000-URL job (text/plain): wall time from the POST
        to the 201, and the server's peak RSS (its whole life: started fresh
        for this one request), SQLite and PostgreSQL.

Everything runs on 127.0.0.1. Results are printed and written into
docs/benchmarks.md between the `scale-out` markers (unless --no-docs) and to
bench/cluster/results.json.

Run:  bench/cluster/run.sh [--images 3000] [--jobs 16] [--latency 200]
                           [--queue-items 200000] [--queue-threads 4]
                           [--parts i,ii,iii,iv] [--no-docs]
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))
os.environ.setdefault("LITCHI_BIN", str(ROOT / "build" / "release" / "litchi"))
os.environ.setdefault("LITCHI_SOURCE_DIR", str(ROOT))

import cluster_testing as ct  # noqa: E402
import litchi_testing as lt  # noqa: E402
from pg_testing import TempPostgres  # noqa: E402
from test_server import LitchiServer  # noqa: E402

DOCS = ROOT / "docs" / "benchmarks.md"
RESULTS = HERE / "results.json"
QUEUE_BENCH = Path(os.environ.get("LITCHI_QUEUE_BENCH", ROOT / "build" / "release" / "bench" / "cluster" / "litchi_queue_bench"))
BIG_JOB = 1_000_000
POLL_S = 0.05
RUN_TIMEOUT_S = 900


def log(text):
    print(text, file=sys.stderr, flush=True)


def load_average():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def percentile(values, p):
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    low, high = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def wait_done(client, job_id, timeout=RUN_TIMEOUT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.job(job_id)
        if job["state"] in ("done", "cancelled"):
            return job
        time.sleep(POLL_S)
    raise RuntimeError(f"job {job_id} not done after {timeout}s")


def sqlite_node(root, jobs, extra=()):
    """One SQLite node (its first start makes admin; we use a CLI token)."""
    server = LitchiServer(root / "data", extra_args=["-j", str(jobs), "--retries", "0", *extra]).start()
    token = ct.litchi_cli(["token", "create", "admin", "--data", root / "data"])
    return server, token


# --- (i) throughput ------------------------------------------------------------

def merge_rows(old, new, key):
    """Rows of a previous run (results.json) for configurations not measured now, then the new ones."""
    fresh = {key(r) for r in new}
    return [r for r in old or [] if key(r) not in fresh] + new


def part_throughput(pg, origin, images, jobs, backends):
    rows = []
    configs = [c for c in [("sqlite", 1), ("postgresql", 1), ("postgresql", 2), ("postgresql", 3)]
               if c[0] in backends]
    for run, (backend, nodes) in enumerate(configs):
        urls = [origin.url(f"/img/t{run}-{i}.png") for i in range(images)]
        with lt.temp_dir("litchi-bench-cluster-") as root:
            if backend == "sqlite":
                server, token = sqlite_node(root, jobs)
                posting = server.client(token)
                stop = server.stop
            else:
                cluster = ct.Cluster(pg.fresh_database(), root, count=nodes, extra_args=["-j", str(jobs)]).start()
                token = cluster.add_user("bench")
                posting = cluster.nodes[0].client(token)
                stop = cluster.stop
            try:
                log(f"(i) {backend} x{nodes}: {images} images, -j {jobs} per node")
                start = time.monotonic()
                job = posting.create_job(urls)
                final = wait_done(posting, job["id"])
                elapsed = time.monotonic() - start
            finally:
                stop()
        if final["counts"]["done"] != images:
            raise RuntimeError(f"{backend} x{nodes}: {final['counts']}")
        rows.append({"backend": backend, "nodes": nodes, "jobs": jobs, "images": images, "seconds": elapsed,
                     "per_s": images / elapsed})
        log(f"    {elapsed:.2f} s, {images / elapsed:.1f} images/s")
    return rows


def add_ratios(rows):
    base = next((r["per_s"] for r in rows if r["backend"] == "postgresql" and r["nodes"] == 1), None)
    for row in rows:
        row["ratio"] = row["per_s"] / base if base else float("nan")
    return rows


# --- (ii) the queue alone --------------------------------------------------------

def part_queue(pg, items, threads_list, backends):
    if not os.access(QUEUE_BENCH, os.X_OK):
        raise RuntimeError(f"{QUEUE_BENCH} missing: cmake --build --preset release --target litchi_queue_bench")
    rows = []
    for threads in threads_list:
        for backend in [b for b in ("postgresql", "sqlite") if b in backends]:
            with lt.temp_dir("litchi-bench-queue-") as root:
                db = pg.fresh_database() if backend == "postgresql" else f"sqlite:{root / 'queue.db'}"
                log(f"(ii) queue: {backend}, {items} items, {threads} threads")
                done = subprocess.run([str(QUEUE_BENCH), "--db", db, "--items", str(items), "--threads",
                                       str(threads), "--batch", "256"], capture_output=True, text=True,
                                      timeout=RUN_TIMEOUT_S)
                if done.returncode != 0:
                    raise RuntimeError(f"litchi_queue_bench failed: {done.stderr}")
                row = json.loads(done.stdout.strip().splitlines()[-1])
                rows.append(row)
                log(f"    {row['items_per_s']:.0f} items/s (claim {row['claim_ms']:.1f} ms, apply "
                    f"{row['apply_ms']:.1f} ms per batch; create {row['create_s']:.1f} s)")
    return rows


# --- (iii) cross-node latency ------------------------------------------------------

def watch_items(port, token, post, until_done_of):
    """Opens a WebSocket, posts the job (post() -> job), subscribes to its items,
    records (arrival time, message) until the job is done."""
    ws = ct.open_ws(port, token, timeout=RUN_TIMEOUT_S)
    ws.recv_json()  # hello
    posted_at = time.time()
    job = post()
    records = []
    # Subscribe once this node has the job (its `job` created message): a
    # node other than the one that created it learns of it from the log, and
    # refuses a subscription to a job it does not know yet (not_found).
    while True:
        message = ws.recv_json()
        records.append((time.time(), message))
        if message.get("type") == "job" and message["job"]["id"] == job["id"]:
            break
    ws.send_json({"type": "subscribe", "job": job["id"], "items": True})
    while True:
        message = ws.recv_json()
        records.append((time.time(), message))
        if until_done_of(job["id"])(message):
            break
    ws.close()
    return job, posted_at, records


def latency_stats(origin, cluster_sql, job_id, posted_at, records, remote_nodes):
    served = {}
    item_arrivals = {}
    for at, message in records:
        if message.get("type") == "item" and message["item"]["state"] == "done":
            item_arrivals.setdefault(message["item"]["id"], (at, message["item"]["url"]))
    nodes = {}
    if cluster_sql is not None:
        nodes = {int(row[0]): row[1] for row in cluster_sql(f"SELECT id, coalesce(node, '') FROM items "
                                                           f"WHERE job_id = {int(job_id)}")}
    latencies = []
    for item_id, (at, url) in item_arrivals.items():
        if remote_nodes is not None and nodes.get(item_id) not in remote_nodes:
            continue
        path = "/" + url.split("//", 1)[1].split("/", 1)[1].split("?")[0]
        if path not in served:
            served[path] = origin.get_json(f"/served?path={path}")["times"]
        if served[path]:
            latencies.append((at - served[path][-1]) * 1000)
    progress = [at for at, m in records if m.get("type") == "progress"]
    gaps = [(b - a) * 1000 for a, b in zip(progress, progress[1:])]
    return {
        "items_measured": len(latencies),
        "item_p50_ms": percentile(latencies, 50), "item_p90_ms": percentile(latencies, 90),
        "item_p99_ms": percentile(latencies, 99), "item_max_ms": max(latencies) if latencies else float("nan"),
        "first_progress_ms": (progress[0] - posted_at) * 1000 if progress else float("nan"),
        "progress_messages": len(progress),
        "gap_p50_ms": percentile(gaps, 50), "gap_p99_ms": percentile(gaps, 99),
        "gap_max_ms": max(gaps) if gaps else float("nan"),
    }


def part_latency(pg, origin, images, jobs, backends):
    rows = []
    with lt.temp_dir("litchi-bench-latency-") as root:
        if "postgresql" not in backends:
            return part_latency_sqlite(origin, images, jobs)
        cluster = ct.Cluster(pg.fresh_database(), root, count=3, extra_args=["-j", str(jobs)]).start()
        try:
            token = cluster.add_user("bench")
            urls = [origin.url(f"/img/l-{i}.png") for i in range(images)]
            log(f"(iii) latency: 3 PostgreSQL nodes, job on n1, watcher on n3, {images} images")
            job, posted_at, records = watch_items(cluster.nodes[2].port, token,
                                                  lambda: cluster.nodes[0].client(token).create_job(urls),
                                                  lambda j: ct.job_state_is(j, ("done",)))
            row = latency_stats(origin, cluster.sql, job["id"], posted_at, records, {"n1", "n2"})
            row["setup"] = "PostgreSQL, 3 nodes; watcher on n3, items downloaded by n1/n2"
            rows.append(row)
        finally:
            cluster.stop()
    if "sqlite" in backends:
        rows += part_latency_sqlite(origin, images, jobs)
    return rows


def part_latency_sqlite(origin, images, jobs):
    rows = []
    with lt.temp_dir("litchi-bench-latency-") as root:
        server, token = sqlite_node(root, jobs)
        try:
            urls = [origin.url(f"/img/ls-{i}.png") for i in range(images)]
            log("(iii) latency: one SQLite node, watcher on it")
            job, posted_at, records = watch_items(server.port, token, lambda: server.client(token).create_job(urls),
                                                  lambda j: ct.job_state_is(j, ("done",)))
            row = latency_stats(origin, None, job["id"], posted_at, records, None)
            row["setup"] = "SQLite, 1 node; watcher on the same node"
            rows.append(row)
        finally:
            server.stop()
    for row in rows:
        log(f"    {row['setup']}: item p50 {row['item_p50_ms']:.0f} ms, p99 {row['item_p99_ms']:.0f} ms; "
            f"first progress {row['first_progress_ms']:.0f} ms; gaps p50 {row['gap_p50_ms']:.0f} p99 "
            f"{row['gap_p99_ms']:.0f} ms")
    return rows


# --- (iv) accepting a big job ----------------------------------------------------------

def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def part_accept(pg, backends, repeat=3):
    """POST -> 201 of a 1,000,000-URL text/plain job, on a fresh node and database each run;
    the median of `repeat` runs per backend. Before each run (untimed) `sync` writes back what
    the previous one left (a million-item job leaves a few hundred MB of WAL and tables in the
    page cache), so no run pays for another's."""
    body = "".join(f"http://127.0.0.1:9/img/{i}.png\n" for i in range(BIG_JOB)).encode()
    extra = ["--max-urls", str(BIG_JOB), "--max-body", str(len(body) + 1024), "--read-timeout", "600"]
    rows = []
    for backend in [b for b in ("sqlite", "postgresql") if b in backends]:
        runs = []
        for rep in range(repeat):
            with lt.temp_dir("litchi-bench-accept-") as root:
                if backend == "sqlite":
                    server, token = sqlite_node(root, 1, extra)
                    client = server.client(token)
                    stop, pid = server.stop, server.process.pid
                else:
                    cluster = ct.Cluster(pg.fresh_database(), root, count=1,
                                         extra_args=["-j", "1", *extra]).start()
                    token = cluster.add_user("bench")
                    client = cluster.nodes[0].client(token)
                    stop, pid = cluster.stop, cluster.nodes[0].pid
                try:
                    client.timeout = RUN_TIMEOUT_S
                    os.sync()
                    log(f"(iv) accepting {BIG_JOB:,} URLs on {backend} ({len(body) / 1e6:.0f} MB), "
                        f"run {rep + 1}/{repeat}")
                    start = time.monotonic()
                    response = client.post("/api/jobs", body, content_type="text/plain")
                    elapsed = time.monotonic() - start
                    if response.status != 201:
                        raise RuntimeError(f"{backend}: {response}")
                    rss = peak_rss_kib(pid)
                    client.post(f"/api/jobs/{response.json()['id']}/cancel")
                finally:
                    stop()
            runs.append((elapsed, rss))
            log(f"    {elapsed:.1f} s to 201, peak RSS {rss / 1024:.0f} MiB")
        seconds = statistics.median(r[0] for r in runs)
        rss = statistics.median(r[1] for r in runs)
        rows.append({"backend": backend, "urls": BIG_JOB, "seconds": seconds, "peak_rss_mib": rss / 1024,
                     "runs": [round(r[0], 2) for r in runs]})
    return rows


# --- report ------------------------------------------------------------------------------

def render(results, command, load_start, load_end):
    lines = ["## Scale-out", "",
             f"Measured {datetime.date.today().isoformat()} on this machine ({os.cpu_count()} cores, shared; "
             f"load average {load_start} before, {load_end} after), everything on 127.0.0.1: PostgreSQL 15 from "
             "`scripts/pg-temp.sh` (fsync off: the test settings), nodes from `build/release/litchi`. What the "
             "cases are and how they are timed: the top of `bench/cluster/bench.py`; the deployment: "
             "[scale-out.md](scale-out.md).", "",
             "```sh", command, "```", ""]
    if "throughput" in results:
        rows = results["throughput"]
        r0 = rows[0]
        lines += [f"### Throughput: {r0['images']:,} images, each taking {results['latency_ms']} ms at the origin, "
                  f"-j {r0['jobs']} per node", "",
                  "| store | nodes | POST → done | images/s | vs 1 PostgreSQL node |", "|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['backend']} | {r['nodes']} | {r['seconds']:.2f} s | {r['per_s']:.1f} | "
                         f"{r['ratio']:.2f}× |")
        ideal = 1000 / results["latency_ms"] * r0["jobs"]
        lines += ["", f"One node's ceiling is -j ÷ latency = {ideal:.0f} images/s; n nodes: n times that.", ""]
    if "queue" in results:
        lines += ["### The queue alone: claims + fenced completions", "",
                  "| store | items | threads (stores) | batch | items/s | claim per batch | apply per batch |",
                  "|---|---|---|---|---|---|---|"]
        for r in results["queue"]:
            lines.append(f"| {r['backend']} | {r['items']:,} | {r['threads']} ({r['stores']}) | {r['batch']} | "
                         f"{r['items_per_s']:,.0f} | {r['claim_ms']:.1f} ms | {r['apply_ms']:.1f} ms |")
        lines += ["", "Target: ≥ 20,000 items/s through PostgreSQL.", ""]
    if "latency" in results:
        lines += ["### Progress across nodes", "",
                  "item latency: origin finished sending an image → a watcher got that item's `done` message "
                  "(includes the probe, the blob commit, the database commit, NOTIFY, the other node's log read "
                  "and the WebSocket write). first progress: POST sent → the watcher's first `progress`. gaps: "
                  "between consecutive `progress` messages (`--progress-interval` is 100 ms).", "",
                  "| setup | items measured | item p50 | p90 | p99 | max | first progress | gap p50 | gap p99 |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in results["latency"]:
            lines.append(f"| {r['setup']} | {r['items_measured']} | {r['item_p50_ms']:.0f} ms | "
                         f"{r['item_p90_ms']:.0f} ms | {r['item_p99_ms']:.0f} ms | {r['item_max_ms']:.0f} ms | "
                         f"{r['first_progress_ms']:.0f} ms | {r['gap_p50_ms']:.0f} ms | {r['gap_p99_ms']:.0f} ms |")
        lines.append("")
    if "accept" in results:
        lines += [f"### Accepting a {BIG_JOB:,}-URL job (text/plain)", "",
                  "| store | POST → 201, median | runs | server peak RSS |", "|---|---|---|---|"]
        for r in results["accept"]:
            runs = " ".join(f"{x:.2f}" for x in r.get("runs", []))
            lines.append(f"| {r['backend']} | {r['seconds']:.2f} s | {runs} | {r['peak_rss_mib']:.0f} MiB |")
        lines.append("")
    notes = HERE / "findings.md"
    if notes.exists():
        lines += [notes.read_text().strip(), ""]
    return "\n".join(lines)


def write_docs(section):
    text = DOCS.read_text()
    begin, end = "<!-- scale-out:begin -->", "<!-- scale-out:end -->"
    block = f"{begin}\n{section}\n{end}"
    if begin in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    DOCS.write_text(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--latency", type=int, default=200, help="ms every image takes at the origin")
    parser.add_argument("--queue-items", type=int, default=200_000)
    parser.add_argument("--queue-threads", default="1,4")
    parser.add_argument("--latency-images", type=int, default=600)
    parser.add_argument("--parts", default="i,ii,iii,iv")
    parser.add_argument("--backends", default="sqlite,postgresql",
                        help="measure only these; rows of the others are kept from results.json")
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    command = "bench/cluster/run.sh " + " ".join(sys.argv[1:])
    load_start = load_average()
    results = {"latency_ms": args.latency}
    if RESULTS.exists():
        previous = json.loads(RESULTS.read_text())
        results.update({k: v for k, v in previous.items() if k != "latency_ms"})
    pg = TempPostgres()
    origin = lt.Origin(latency_ms=args.latency).__enter__()
    try:
        backends = set(args.backends.split(","))
        if "i" in parts:
            rows = part_throughput(pg, origin, args.images, args.jobs, backends)
            results["throughput"] = add_ratios(merge_rows(results.get("throughput"), rows,
                                                          lambda r: (r["backend"], r["nodes"])))
        if "ii" in parts:
            rows = part_queue(pg, args.queue_items, [int(t) for t in args.queue_threads.split(",")], backends)
            results["queue"] = merge_rows(results.get("queue"), rows, lambda r: (r["backend"], r["threads"]))
        if "iii" in parts:
            rows = part_latency(pg, origin, args.latency_images, args.jobs, backends)
            results["latency"] = merge_rows(results.get("latency"), rows, lambda r: r["setup"])
        if "iv" in parts:
            results["accept"] = merge_rows(results.get("accept"), part_accept(pg, backends),
                                           lambda r: r["backend"])
    finally:
        origin.stop()
        pg.stop()
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    section = render(results, command, load_start, load_average())
    print(section)
    if not args.no_docs:
        write_docs(section)


if __name__ == "__main__":
    main()
