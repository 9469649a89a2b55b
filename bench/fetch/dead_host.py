#!/usr/bin/python3
"""The dead-host benchmark (issue 9). Not a test: it measures and reports.

1,800 URLs of one dead host (a closed port on 127.0.0.1: every connection is
refused at once), with the default download flags (-j 32, --retries 3):
- `litchi fetch` until it exits,
- `litchi serve`: one POST /api/jobs, polled until the job is done,
- `curl --parallel --parallel-max 32` on the same URLs, for reference (curl
  does not retry a refused connection unless asked; litchi's default is 3
  retries, so without host health it pays up to four failure cycles per URL).
Target: every item failed in under 3 s, in `fetch` and in `serve`.

Each is run --repeat times; medians of wall time are reported, with ratios to
curl. `--before PATH` adds the same runs with another litchi binary (say the
main branch's build) as a before/after. Written into docs/benchmarks.md
between the `dead-host` markers, with the command. Only 127.0.0.1.

Run:  bench/fetch/dead_host.py  [--litchi PATH] [--before PATH] [--repeat 3] [--no-docs]
"""

import argparse
import importlib.util
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fetch_bench = load("fetch_bench", HERE / "bench.py")
serve_bench = load("serve_bench", ROOT / "bench" / "serve" / "bench.py")

URL_COUNT = 1800
CONCURRENCY = 32
TARGET_S = 3.0
RUN_TIMEOUT_S = 600
POLL_S = 0.02


def log(text):
    print(text, file=sys.stderr, flush=True)


def dead_urls(port):
    return [f"http://127.0.0.1:{port}/img/{i}.jpg" for i in range(URL_COUNT)]


def run_fetch(litchi, work, urls):
    out = work / "fetch-out"
    shutil.rmtree(out, ignore_errors=True)
    listing = work / "urls.txt"
    listing.write_text("\n".join(urls) + "\n")
    manifest = work / "manifest.jsonl"
    manifest.unlink(missing_ok=True)
    result = fetch_bench.measure([litchi, "fetch", "--allow-private", "-j", str(CONCURRENCY), "-o", str(out),
                                  "--manifest", str(manifest), "--progress", "none", "-i", str(listing)], work)
    lines = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    failed = sum(1 for e in lines if e.get("status") == "failed")
    attempts = sum(e.get("attempts", 0) for e in lines)
    result["ok"] = failed == len(urls)
    result["attempts"] = attempts
    return result


def run_serve(litchi, work, urls, label):
    server = serve_bench.Server(litchi, work, label, jobs=CONCURRENCY)
    try:
        body = json.dumps({"urls": urls, "name": "dead"}).encode()
        started = time.monotonic()
        status, data = server.request("POST", "/api/jobs", body, "application/json")
        if status != 201:
            raise SystemExit(f"POST /api/jobs answered {status}: {data[:300]!r}")
        job = json.loads(data)
        deadline = started + RUN_TIMEOUT_S
        while job["state"] not in ("done", "cancelled") and time.monotonic() < deadline:
            time.sleep(POLL_S)
            status, data = server.request("GET", f"/api/jobs/{job['id']}")
            job = json.loads(data)
        wall = time.monotonic() - started
        return {"wall": wall, "ok": job["counts"]["failed"] == len(urls), "counts": job["counts"]}
    finally:
        server.stop()


def run_curl(work, urls):
    config = work / "curl.cfg"
    config.write_text("".join(f'url = "{u}"\noutput = "/dev/null"\n' for u in urls))
    result = fetch_bench.measure(["curl", "--parallel", "--parallel-max", str(CONCURRENCY), "--noproxy", "*",
                                  "-s", "-K", str(config)], work)
    result["ok"] = True
    return result


def median(runs):
    return statistics.median(r["wall"] for r in runs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--litchi", default=os.environ.get("LITCHI_BENCH_BIN", str(ROOT / "build/release/litchi")))
    parser.add_argument("--before", default=None, help="another litchi binary to compare with")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    binaries = [("after", str(Path(args.litchi).resolve()))]
    if args.before:
        binaries.insert(0, ("before", str(Path(args.before).resolve())))
    load_start = "%.1f %.1f %.1f" % os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="litchi-bench-dead-"))
    try:
        port = fetch_bench.free_port()  # nothing listens: every connection is refused
        urls = dead_urls(port)
        rows = {}
        curl_runs = [run_curl(work, urls) for _ in range(args.repeat)]
        for label, litchi in binaries:
            log(f"{label}: litchi fetch")
            fetch_runs = [run_fetch(litchi, work, urls) for _ in range(args.repeat)]
            log(f"{label}: litchi serve")
            serve_runs = [run_serve(litchi, work, urls, f"{label}{i}") for i in range(args.repeat)]
            rows[label] = (fetch_runs, serve_runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_end = "%.1f %.1f %.1f" % os.getloadavg()
    curl_s = median(curl_runs)
    command = "bench/fetch/dead_host.py" + (f" --before {os.path.relpath(args.before, ROOT)}" if args.before else "")
    if args.repeat != 3:
        command += f" --repeat {args.repeat}"
    lines = [
        "## A dead host\n\n",
        f"{URL_COUNT:,} URLs of one dead host (a closed port on 127.0.0.1, every connection refused at once), "
        f"default flags (`-j {CONCURRENCY}`, `--retries 3`, `--host-failures 3`). `fetch`: until it exits; "
        "`serve`: one `POST /api/jobs`, polled every 20 ms until the job is done. Median of "
        f"{args.repeat} runs. curl (`--parallel --parallel-max {CONCURRENCY}`, no retries) for reference. "
        f"Target: under {TARGET_S:.0f} s in both.\n\n",
        f"Command: `{command}`  \nLoad average at start / end: {load_start} / {load_end} (2 cores, shared)\n\n",
        "| litchi | fetch wall | fetch attempts | serve wall | all failed | vs curl (fetch / serve) | target < 3 s |\n",
        "|---|---|---|---|---|---|---|\n",
    ]
    for label, (fetch_runs, serve_runs) in rows.items():
        f, s = median(fetch_runs), median(serve_runs)
        ok = all(r["ok"] for r in fetch_runs + serve_runs)
        attempts = statistics.median(r["attempts"] for r in fetch_runs)
        met = "yes" if f < TARGET_S and s < TARGET_S else "no"
        lines.append(f"| {label} | {f:.2f} s | {attempts:.0f} | {s:.2f} s | {'yes' if ok else 'NO'} | "
                     f"{f / curl_s:.1f}x / {s / curl_s:.1f}x | {met} |\n")
    lines.append(f"| curl | {curl_s:.2f} s | {URL_COUNT} | | | 1.0x | |\n\n")
    section = "".join(lines)
    print(section)
    if not args.no_docs:
        fetch_bench.write_docs(section, name="dead-host")
        log("wrote the dead-host section of docs/benchmarks.md")


if __name__ == "__main__":
    main()
