#!/usr/bin/python3
"""The `litchi serve` benchmark (issue 3). Not a test: it measures and reports.

Case 1 -- one 5,000-URL job: the same 5,000 distinct ~19 KB JPEGs and the same
nginx on 127.0.0.1 as bench/fetch (its fixture and server code are imported,
not copied). Side by side, order rotated each repetition:
  server  `litchi serve -j 32 --allow-private` on a fresh data folder, an API
          token from `litchi token create admin`, POST /api/jobs with the 5,000
          URLs as JSON, then GET /api/jobs/{id} every POLL_S until the job is
          `done`; the time is POST sent -> `done` seen. CPU is the server's
          user+sys over that span (/proc/PID/stat), RSS its peak over that
          span (VmHWM, reset through /proc/PID/clear_refs before the POST).
  litchi  `litchi fetch -j 32` on the same URL list (bench/fetch's command).
  curl    `curl --parallel --parallel-max 32` (bench/fetch's command).
Case 2 -- accepting a 100,000-URL job: POST /api/jobs -> 201, as JSON and as
text/plain, on a fresh server each time (the job is cancelled right after).

Each is repeated (default 3) and the medians reported, with the ratio
server / litchi fetch against the issue's target (1.3x). Results are printed
and written into docs/benchmarks.md between the `serve` markers, with the
exact command and the load average (the machine is shared). Everything talks
to 127.0.0.1 only; every child and every wait is bounded by a timeout.

bench/serve/findings.md (what the numbers mean, written by people) is appended.

Run:  bench/serve/run.sh  [--litchi PATH] [--repeat 3] [--where disk,tmpfs] [--no-docs]
"""

import argparse
import datetime
import http.client
import importlib.util
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
# bench/fetch/bench.py: the image fixture, nginx and the clients' commands,
# loaded under its own name (both scripts are called bench.py).
_spec = importlib.util.spec_from_file_location("fetch_bench", ROOT / "bench" / "fetch" / "bench.py")
fetch_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fetch_bench)

DOCS = ROOT / "docs" / "benchmarks.md"
IMAGE_COUNT = fetch_bench.IMAGE_COUNT
CONCURRENCY = fetch_bench.CONCURRENCY
BIG_JOB = 100_000
POLL_S = 0.02           # GET /api/jobs/{id} interval: adds at most 20 ms to a 1-5 s job
RUN_TIMEOUT_S = 600
START_TIMEOUT_S = 30
TARGET_RATIO = 1.3
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(text):
    print(text, file=sys.stderr, flush=True)


def load_average():
    return "%.1f %.1f %.1f" % os.getloadavg()


def cpu_seconds(pid):
    """User+sys CPU seconds of a running process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)


# ---------------------------------------------------------------------------
# One litchi serve process
# ---------------------------------------------------------------------------

class Server:
    """`litchi serve` on a free port with a fresh data folder inside `work`
    (bench/fanout uses it too, with its own -j and options)."""

    def __init__(self, litchi, work, label, jobs=CONCURRENCY, extra_args=()):
        self.litchi = litchi
        self.data = work / f"data-{label}"
        shutil.rmtree(self.data, ignore_errors=True)
        self.stdout_path = work / f"serve-{label}.out"
        self.stderr_path = work / f"serve-{label}.err"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                [litchi, "serve", "--listen", "127.0.0.1:0", "--data", str(self.data), "--allow-private",
                 "-j", str(jobs), "--web", str(work / "no-web-app"), *extra_args],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        try:
            self.port = self._wait_listening()
            # After the first start created `admin`; a second process on the
            # data folder, which is what the store's recover_on_open guards.
            self.token = subprocess.run([litchi, "token", "create", "admin", "--data", str(self.data)],
                                        capture_output=True, text=True, timeout=60, check=True).stdout.strip()
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        except BaseException:
            self.stop()
            raise

    def _wait_listening(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"litchi serve exited {self.process.returncode}: "
                                 + self.stderr_path.read_text(errors="replace")[-2000:])
            for line in self.stdout_path.read_text(errors="replace").splitlines():
                if line.startswith("Litchi is listening on "):
                    return int(line.rstrip("/").rsplit(":", 1)[1])
            time.sleep(0.05)
        raise SystemExit("litchi serve did not start listening")

    def request(self, method, path, body=None, content_type=None):
        headers = {"Authorization": f"Bearer {self.token}"}
        if content_type:
            headers["Content-Type"] = content_type
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        data = response.read()
        return response.status, data

    def cpu_seconds(self):
        return cpu_seconds(self.process.pid)

    def reset_peak_rss(self):
        # Start-up peaks at ~100 MiB: hashing the first user's password with
        # argon2id takes 64 MiB. Writing 5 to clear_refs resets VmHWM to the
        # current RSS, so the peak read later is the job's own.
        try:
            Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    def peak_rss_kib(self):
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return 0

    def blob_count(self):
        return sum(1 for p in (self.data / "blobs").rglob("*") if p.is_file() and not p.name.endswith(".part"))

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # graceful: in-flight items back to the queue
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        try:
            self.connection.close()
        except AttributeError:
            pass
        shutil.rmtree(self.data, ignore_errors=True)


def run_server_job(litchi, work, urls, label):
    """POST one job, poll until done. Returns the same keys as fetch_bench.measure plus ok."""
    server = Server(litchi, work, label)
    try:
        body = json.dumps({"urls": urls, "name": "bench"}).encode()
        if not server.reset_peak_rss():
            log("  cannot reset the server's peak RSS (needs /proc/PID/clear_refs): RSS includes start-up")
        cpu_before = server.cpu_seconds()
        started = time.monotonic()
        status, data = server.request("POST", "/api/jobs", body, "application/json")
        accepted = time.monotonic()
        if status != 201:
            raise SystemExit(f"POST /api/jobs answered {status}: {data[:500]!r}")
        job = json.loads(data)
        deadline = started + RUN_TIMEOUT_S
        polls = 0
        while job["state"] not in ("done", "cancelled") and time.monotonic() < deadline:
            time.sleep(POLL_S)
            status, data = server.request("GET", f"/api/jobs/{job['id']}")
            polls += 1
            if status != 200:
                raise SystemExit(f"GET /api/jobs/{job['id']} answered {status}: {data[:500]!r}")
            job = json.loads(data)
        wall = time.monotonic() - started
        cpu = server.cpu_seconds() - cpu_before
        rss = server.peak_rss_kib()
        blobs = server.blob_count()
        counts = job["counts"]
        ok = job["state"] == "done" and counts["done"] == len(urls) and blobs == len(urls)
        if not ok:
            log(f"  server: state {job['state']}, counts {counts}, {blobs} blobs; "
                + server.stderr_path.read_text(errors="replace")[-500:])
        return {"wall": wall, "cpu": cpu, "rss_kib": rss, "ok": ok, "accept_ms": (accepted - started) * 1000,
                "polls": polls}
    finally:
        server.stop()


def run_big_accept(litchi, work, port, kind, label):
    """Milliseconds from sending POST /api/jobs with BIG_JOB URLs to reading its 201."""
    # URLs that exist nowhere on the origin (404 if ever fetched); the job is
    # cancelled as soon as it is accepted, so almost none are.
    urls = [f"http://127.0.0.1:{port}/accept/{i:06d}.jpg" for i in range(BIG_JOB)]
    if kind == "json":
        body, content_type = json.dumps({"urls": urls}).encode(), "application/json"
    else:
        body, content_type = "".join(u + "\n" for u in urls).encode(), "text/plain"
    server = Server(litchi, work, label)
    try:
        started = time.monotonic()
        status, data = server.request("POST", "/api/jobs", body, content_type)
        elapsed_ms = (time.monotonic() - started) * 1000
        if status != 201:
            raise SystemExit(f"POST /api/jobs ({BIG_JOB} URLs, {kind}) answered {status}: {data[:500]!r}")
        job = json.loads(data)
        ok = job["counts"]["total"] == BIG_JOB
        server.request("POST", f"/api/jobs/{job['id']}/cancel")
        return {"ms": elapsed_ms, "ok": ok, "body_mib": len(body) / 2**20}
    finally:
        server.stop()


# ---------------------------------------------------------------------------
# The cases
# ---------------------------------------------------------------------------

def case_job(litchi, repeat, where):
    tools = ["server", "litchi", "curl"]
    names = fetch_bench.image_names(IMAGE_COUNT)
    nginx = fetch_bench.Nginx(fetch_bench.IMAGES)
    runs = {t: [] for t in tools}
    loads = []
    try:
        with tempfile.TemporaryDirectory(prefix="litchi-bench-serve-", dir=fetch_bench.WHERE[where]) as work:
            work = Path(work)
            urls = [f"http://127.0.0.1:{nginx.port}/{n}" for n in names]
            clients = fetch_bench.Clients(litchi, work, urls, CONCURRENCY)
            log("warm-up (curl, untimed)...")
            clients.run("curl", "warmup")
            for rep in range(repeat):
                order = tools[rep % len(tools):] + tools[:rep % len(tools)]
                for tool in order:
                    loads.append(os.getloadavg()[0])
                    if tool == "server":
                        result = run_server_job(litchi, work, urls, f"r{rep}")
                    else:
                        result = clients.run(tool, f"r{rep}")
                    log(f"  rep {rep + 1}/{repeat} {tool:6s} {result['wall']:7.2f} s wall, {result['cpu']:6.2f} s CPU, "
                        f"{result['rss_kib'] / 1024:6.1f} MiB{'' if result['ok'] else '  (FAILED)'}"
                        f"  [load {loads[-1]:.1f}]")
                    runs[tool].append(result)
    finally:
        nginx.stop()
    base = {k: statistics.median(r[k] for r in runs["litchi"]) for k in ("wall", "cpu", "rss_kib")}
    rows = []
    for tool in tools:
        m = {k: statistics.median(r[k] for r in runs[tool]) for k in ("wall", "cpu", "rss_kib")}
        rows.append({"tool": tool, **m, "ok": all(r["ok"] for r in runs[tool]),
                     "walls": [r["wall"] for r in runs[tool]],
                     "wall_ratio": m["wall"] / base["wall"], "cpu_ratio": m["cpu"] / base["cpu"],
                     "rss_ratio": m["rss_kib"] / base["rss_kib"]})
    server_accept = statistics.median(r["accept_ms"] for r in runs["server"])
    return rows, server_accept, loads


def case_accept(litchi, repeat):
    nginx = fetch_bench.Nginx(fetch_bench.IMAGES)
    results = {"json": [], "text": []}
    try:
        with tempfile.TemporaryDirectory(prefix="litchi-bench-accept-", dir=fetch_bench.OUT) as work:
            for rep in range(repeat):
                for kind in results:
                    result = run_big_accept(litchi, Path(work), nginx.port, kind, f"a{rep}{kind}")
                    log(f"  accept rep {rep + 1}/{repeat} {kind:4s} {result['ms']:7.1f} ms "
                        f"({result['body_mib']:.1f} MiB body){'' if result['ok'] else '  (FAILED)'}")
                    results[kind].append(result)
    finally:
        nginx.stop()
    return {kind: {"ms": statistics.median(r["ms"] for r in rs), "all_ms": [r["ms"] for r in rs],
                   "ok": all(r["ok"] for r in rs), "body_mib": rs[0]["body_mib"]}
            for kind, rs in results.items()}


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

WHERE_TEXT = {
    "disk": "Data on this machine's disk ({fs}), as a real server keeps it",
    "tmpfs": "Data on tmpfs (`/dev/shm`): the filesystem out of the picture",
}


def job_table(rows):
    lines = ["| client | wall s (median) | runs s | × litchi fetch | CPU s | × | peak RSS MiB | × | all fetched |",
             "|---|---:|---|---:|---:|---:|---:|---:|:-:|"]
    label = {"server": "litchi serve (POST → done)", "litchi": "litchi fetch", "curl": "curl --parallel"}
    for r in rows:
        lines.append(f"| {label[r['tool']]} | {r['wall']:.2f} | {' '.join(f'{w:.2f}' for w in r['walls'])} | "
                     f"{r['wall_ratio']:.2f} | {r['cpu']:.2f} | {r['cpu_ratio']:.2f} | {r['rss_kib'] / 1024:.1f} | "
                     f"{r['rss_ratio']:.2f} | {'yes' if r['ok'] else 'NO'} |")
    return lines


def render(results, accept, litchi, repeat, command, load_start, load_end, analysis):
    lines = [
        "## Server",
        "",
        f"Measured {datetime.date.today().isoformat()} on {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}, loopback only. **The machine is shared**: other engineers' builds and tests "
        f"ran at the same time (load average {load_start} at the start, {load_end} at the end; the 1-minute "
        "load before each run is given under each table), so absolute times are inflated and noisy; the "
        "clients were run interleaved, order rotated, so they share the noise. Command:",
        "",
        "```",
        command,
        "```",
        "",
        f"`litchi` is `{os.path.relpath(litchi, ROOT)}` (RelWithDebInfo). Origin: bench/fetch's nginx "
        f"(2 workers, keep-alive) serving its {IMAGE_COUNT:,} distinct 192x192 JPEGs (~18 KiB) on 127.0.0.1; "
        f"concurrency {CONCURRENCY} everywhere. Median of {repeat} runs.",
        "",
        f"- **litchi serve**: fresh data folder per run, `litchi serve --listen 127.0.0.1:0 --allow-private "
        f"-j {CONCURRENCY}`, a token from `litchi token create admin`, one `POST /api/jobs` "
        f"(JSON, {IMAGE_COUNT:,} URLs), then `GET /api/jobs/{{id}}` every {POLL_S * 1000:.0f} ms until "
        "`state` is `done`; time from sending the POST to seeing `done`. CPU is the server process's "
        "user+sys over that span, RSS its peak over that span (`VmHWM`, reset through "
        "`/proc/PID/clear_refs` just before the POST: start-up peaks at ~100 MiB because argon2id "
        "hashing of the first user's password takes 64 MiB). Checked: counts.done = "
        f"{IMAGE_COUNT:,} and {IMAGE_COUNT:,} blob files.",
        "- **litchi fetch**: `litchi fetch -j 32 --allow-private -i urls.txt -o DIR --manifest M` "
        "(bench/fetch's command). Both litchi modes hash, probe with libvips and make every file durable "
        "before counting it done; the server also commits each batch of results to SQLite (WAL, "
        "synchronous) and publishes progress.",
        "- **curl**: `curl --parallel --parallel-max 32 --config` (one `url`/`output` pair per image).",
    ]
    for where, (rows, post_ms, loads) in results.items():
        fs = subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "--target", str(fetch_bench.WHERE[where])],
                            capture_output=True, text=True, timeout=10).stdout.strip() or "unknown filesystem"
        server = rows[0]
        verdict = "met" if server["wall_ratio"] <= TARGET_RATIO else "**not met**"
        lines += ["", f"### {WHERE_TEXT[where].format(fs=fs)}", ""]
        lines += job_table(rows)
        lines += ["", f"Target (issue 3), server within {TARGET_RATIO}× of `litchi fetch`: {verdict} "
                  f"({server['wall_ratio']:.2f}×). The 5,000-URL POST itself took {post_ms:.0f} ms (median). "
                  f"1-minute load average before these runs: {min(loads):.1f} to {max(loads):.1f}."]
    lines += ["", f"### Accepting a {BIG_JOB:,}-URL job", "",
              f"`POST /api/jobs` → `201` on a fresh server (URLs on the origin, {BIG_JOB:,} distinct; the job is "
              "cancelled right after). Data on disk; the store fsyncs the job before answering.", "",
              "| body | size MiB | median ms | runs ms | under 1 s |", "|---|---:|---:|---|:-:|"]
    for kind, r in accept.items():
        label = "JSON `{\"urls\": [...]}`" if kind == "json" else "text/plain, one URL a line"
        lines.append(f"| {label} | {r['body_mib']:.1f} | {r['ms']:.0f} | {' '.join(f'{m:.0f}' for m in r['all_ms'])} | "
                     f"{'yes' if r['ms'] < 1000 and r['ok'] else 'NO'} |")
    if analysis:
        lines += ["", analysis.strip()]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--litchi", default=os.environ.get("LITCHI_BENCH_BIN", str(ROOT / "build/release/litchi")))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--where", default="disk,tmpfs", help="where the data goes: disk, tmpfs or both")
    parser.add_argument("--analysis", default=str(HERE / "findings.md"),
                        help="Markdown appended to the section: what the numbers mean (kept across re-runs)")
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: stop nginx and servers
    litchi = str(Path(args.litchi).resolve())
    if not os.access(litchi, os.X_OK):
        raise SystemExit(f"no litchi binary at {litchi}: build it with `cmake --preset release && "
                         "cmake --build --preset release`, or pass --litchi")
    for tool in ("nginx", "curl", "vips"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing: run scripts/install-deps.sh bench")
    fetch_bench.OUT.mkdir(parents=True, exist_ok=True)
    fetch_bench.ensure_images()
    load_start = load_average()
    results = {}
    for where in args.where.split(","):
        log(f"[{where}] one {IMAGE_COUNT}-URL job: litchi serve vs litchi fetch vs curl, j {CONCURRENCY}")
        results[where] = case_job(litchi, args.repeat, where)
    log(f"accepting a {BIG_JOB}-URL job")
    accept = case_accept(litchi, args.repeat)
    load_end = load_average()
    command = fetch_bench.rerun_command("bench/serve/run.sh", args, litchi)
    analysis = Path(args.analysis).read_text() if Path(args.analysis).is_file() else ""
    section = render(results, accept, litchi, args.repeat, command, load_start, load_end, analysis)
    print(section)
    if not args.no_docs:
        fetch_bench.write_docs(section, "serve")
        log(f"wrote the serve section of {os.path.relpath(DOCS, ROOT)}")


if __name__ == "__main__":
    main()
