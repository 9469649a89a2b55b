#!/usr/bin/python3
"""Fair shares (issue 9, #1): a fast job beside a slow-host job. Not a test:
it measures and reports.

Two test origins (tests/origin/origin.py), two hosts on 127.0.0.1:
  fast  /img/<label>.png (64x48 PNGs, distinct bytes each), in two cases:
        "at once" (FAST_COUNT images, answered as fast as the origin can) and
        "latency" (LATENCY_COUNT images, each answered after LATENCY_MS, a
        distant but healthy host);
  slow  answers every image after SLOW_MS (?delay=SLOW_MS), "2 s per image"
        as in the issue.
`litchi serve -j 32 --allow-private` on a fresh data folder per run, two
users (`admin` and `bob`, tokens from `litchi token create`). The fast job
is posted by bob; the time is POST sent -> `done` seen (GET /api/jobs/{id}
every POLL_S).
  alone   the fast job on an idle server;
  beside  alice's job of SLOW_COUNT slow URLs first, posted and left until
          every slot is busy with it and a little more (the slow job in its
          stride), then bob's fast job; the slow job is cancelled after.
Repeated (default 3), order alternated; medians. Target: beside <= 1.5x
alone. `--baseline PATH` runs the same with another binary (the code before
fair shares) for comparison. Writes the "fair" section of docs/benchmarks.md
with the exact command and the load average (the machine is shared).
Everything talks to 127.0.0.1 only; every child and every wait is bounded.

Run:  bench/serve/fair.sh [--litchi PATH] [--baseline PATH] [--repeat 3] [--no-docs]
"""

import argparse
import datetime
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests" / "integration"))
import bench as serve_bench  # noqa: E402  bench/serve/bench.py: Server, the docs writer
import litchi_testing as lt  # noqa: E402  the test origin

CONCURRENCY = 32
FAST_COUNT = 2000     # "at once": ~0.5 s alone, long enough for the 20 ms polls
LATENCY_COUNT = 400   # "latency": 400 / 32 slots x 40 ms ~ 0.5 s alone
LATENCY_MS = 40
CASES = (("at once", 0, FAST_COUNT), ("latency", LATENCY_MS, LATENCY_COUNT))
SLOW_COUNT = 2000
SLOW_MS = 2000
SETTLE_S = 1.0      # after every slot is busy with the slow job: it is in its stride
POLL_S = 0.02
RUN_TIMEOUT_S = 300
TARGET_RATIO = 1.5


def log(text):
    print(text, file=sys.stderr, flush=True)


def metric(server, name):
    status, data = server.request("GET", "/metrics")
    match = re.search(rf"^{name} (\d+)$", data.decode(), re.M)
    return int(match.group(1)) if status == 200 and match else 0


def bob_token(litchi, server):
    subprocess.run([litchi, "user", "add", "bob", "--data", str(server.data)], input="bob-password-1\n",
                   capture_output=True, text=True, timeout=60, check=True)
    return subprocess.run([litchi, "token", "create", "bob", "--data", str(server.data)],
                          capture_output=True, text=True, timeout=60, check=True).stdout.strip()


def post_job(server, token, urls, name):
    saved, server.token = server.token, token
    try:
        status, data = server.request("POST", "/api/jobs", json.dumps({"urls": urls, "name": name}).encode(),
                                      "application/json")
    finally:
        server.token = saved
    if status != 201:
        raise SystemExit(f"POST /api/jobs answered {status}: {data[:300]!r}")
    return json.loads(data)


def job(server, token, job_id):
    saved, server.token = server.token, token
    try:
        status, data = server.request("GET", f"/api/jobs/{job_id}")
    finally:
        server.token = saved
    if status != 200:
        raise SystemExit(f"GET /api/jobs/{job_id} answered {status}")
    return json.loads(data)


def run(litchi, work, fast, slow, label, beside, latency_ms=0, count=FAST_COUNT):
    """Seconds from bob's POST to his job `done`, and what the slow job did meanwhile."""
    server = serve_bench.Server(litchi, work, label, jobs=CONCURRENCY)
    try:
        bob = bob_token(litchi, server)
        slow_job = None
        if beside:
            slow_urls = [slow.url(f"/img/s{label}_{i}.png?delay={SLOW_MS}") for i in range(SLOW_COUNT)]
            slow_job = post_job(server, server.token, slow_urls, "slow host")
            deadline = time.monotonic() + 60
            while metric(server, "litchi_active_transfers") < CONCURRENCY and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(SETTLE_S)
        preempted_before = metric(server, "litchi_preempted_transfers_total")
        query = f"?delay={latency_ms}" if latency_ms else ""
        fast_urls = [fast.url(f"/img/f{label}_{i}.png{query}") for i in range(count)]
        started = time.monotonic()
        current = post_job(server, bob, fast_urls, "fast host")
        while current["state"] not in ("done", "cancelled") and time.monotonic() - started < RUN_TIMEOUT_S:
            time.sleep(POLL_S)
            current = job(server, bob, current["id"])
        wall = time.monotonic() - started
        ok = current["state"] == "done" and current["counts"]["done"] == count
        result = {"wall": wall, "ok": ok,
                  "preempted": metric(server, "litchi_preempted_transfers_total") - preempted_before}
        if slow_job:
            result["slow_done"] = job(server, server.token, slow_job["id"])["counts"]["done"]
            server.request("POST", f"/api/jobs/{slow_job['id']}/cancel")
        return result
    finally:
        server.stop()


def measure(litchi, work, fast, slow, repeat, name, latency_ms, count):
    runs = {"alone": [], "beside": []}
    loads = []
    for rep in range(repeat):
        order = ["alone", "beside"] if rep % 2 == 0 else ["beside", "alone"]
        for case in order:
            loads.append(os.getloadavg()[0])
            result = run(litchi, work, fast, slow, f"{name}{latency_ms}_{rep}{case[0]}", case == "beside",
                         latency_ms, count)
            extra = (f", {result['preempted']} preempted, slow job {result['slow_done']} done meanwhile"
                     if case == "beside" else "")
            log(f"  {name} rep {rep + 1}/{repeat} {case:6s} {result['wall']:6.2f} s{extra}"
                f"{'' if result['ok'] else '  (FAILED)'}  [load {loads[-1]:.1f}]")
            runs[case].append(result)
    alone = statistics.median(r["wall"] for r in runs["alone"])
    beside = statistics.median(r["wall"] for r in runs["beside"])
    return {"alone": alone, "beside": beside, "ratio": beside / alone, "runs": runs, "loads": loads,
            "ok": all(r["ok"] for rs in runs.values() for r in rs)}


def render(results, repeat, command, load_start, load_end):
    lines = [
        "## Fair shares",
        "",
        f"Measured {datetime.date.today().isoformat()} on {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}, loopback only; load average {load_start} at the start, {load_end} at the "
        f"end. Command:",
        "",
        "```",
        command,
        "```",
        "",
        f"A fast job beside a slow-host job (issue 9). Two test origins (`tests/origin/origin.py`) on "
        f"127.0.0.1, two hosts: the slow one answers after {SLOW_MS} ms an image; the fast one in two "
        f"cases: **at once** (bob's job: {FAST_COUNT:,} distinct PNGs) and **{LATENCY_MS} ms latency** (every "
        f"image answered {LATENCY_MS} ms after its request, as from a distant healthy host; {LATENCY_COUNT} "
        f"PNGs). `litchi serve -j {CONCURRENCY} --allow-private`, fresh data folder per run. Bob's time is "
        f"POST sent → `done` seen (polled every {POLL_S * 1000:.0f} ms). **alone**: on an idle server. "
        f"**beside**: alice's job of {SLOW_COUNT} slow-host URLs first, until every slot is busy with it and "
        f"{SETTLE_S:.0f} s more, then bob's. Median of {repeat} runs each, alternated.",
        "",
        "| binary | fast host | alone s (median) | beside s (median) | beside / alone | runs alone | "
        "runs beside | transfers preempted (beside) | all fetched |",
        "|---|---|---:|---:|---:|---|---|---|:-:|",
    ]
    for (label, case), r in results.items():
        walls = {c: " ".join(f"{x['wall']:.2f}" for x in r["runs"][c]) for c in r["runs"]}
        preempted = " ".join(str(x["preempted"]) for x in r["runs"]["beside"])
        lines.append(f"| {label} | {case} | {r['alone']:.2f} | {r['beside']:.2f} | {r['ratio']:.2f} | "
                     f"{walls['alone']} | {walls['beside']} | {preempted} | {'yes' if r['ok'] else 'NO'} |")
    main = next(iter(results.values()))
    verdict = "met" if main["ratio"] <= TARGET_RATIO else "**not met**"
    lines += ["", f"Target (issue 9), the fast job beside a slow-host job within {TARGET_RATIO}× of its time "
              f"alone: {verdict} ({main['ratio']:.2f}× with the fast host answering at once)."]
    findings = HERE / "fair-findings.md"
    if findings.is_file():
        lines += ["", findings.read_text().strip()]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--litchi", default=os.environ.get("LITCHI_BENCH_BIN", str(ROOT / "build/release/litchi")))
    parser.add_argument("--baseline", default="", help="another litchi binary to measure the same way")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: stop origins and servers
    binaries = {"this build": str(Path(args.litchi).resolve())}
    if args.baseline:
        binaries["baseline"] = str(Path(args.baseline).resolve())
    for path in binaries.values():
        if not os.access(path, os.X_OK):
            raise SystemExit(f"no litchi binary at {path}")
    load_start = serve_bench.load_average()
    results = {}
    with lt.Origin() as fast, lt.Origin() as slow, \
            tempfile.TemporaryDirectory(prefix="litchi-bench-fair-", dir="/dev/shm") as work:
        for label, path in binaries.items():
            name = "b" if label == "baseline" else "t"
            shown = os.path.relpath(path, ROOT) if path.startswith(str(ROOT)) else path
            for case, latency_ms, count in CASES:
                shown_case = f"{latency_ms} ms latency" if latency_ms else case
                log(f"[{label}, fast host {shown_case}] {count} fast URLs alone and beside {SLOW_COUNT} slow "
                    f"ones, j {CONCURRENCY}")
                results[(f"{label} (`{shown}`)", shown_case)] = measure(
                    path, Path(work), fast, slow, args.repeat, name, latency_ms, count)
    load_end = serve_bench.load_average()
    command = "bench/serve/fair.sh"
    if args.litchi != str(ROOT / "build/release/litchi"):
        command += f" --litchi {args.litchi}"
    if args.baseline:
        command += f" --baseline {args.baseline}"
    if args.repeat != 3:
        command += f" --repeat {args.repeat}"
    section = render(results, args.repeat, command, load_start, load_end)
    print(section)
    if not args.no_docs:
        serve_bench.fetch_bench.write_docs(section, "fair")
        log("wrote the fair section of docs/benchmarks.md")


if __name__ == "__main__":
    main()
