#!/usr/bin/python3
"""The `litchi fetch` benchmark (issue 2). Not a test: it measures and reports.

Case 1 -- 5,000 distinct ~19 KB JPEGs served by nginx on 127.0.0.1 (2 workers,
keep-alive), fetched at concurrency 32 by `litchi fetch`, `curl --parallel`,
`wget2` and `aria2c`, each run 3 times (order rotated), medians reported: wall
time, user+sys CPU and peak RSS of the client process (os.wait4), as ratios
to litchi.
Case 2 -- 2,000 of those images with 50 ms of latency on every response
(bench/fetch/delay_server.cpp, built here into bench/out), litchi at -j 64
against the ideal N / j x latency (curl at the same concurrency shown for
reference); how late the server's answers were is reported beside it.

Images are generated once with the vips CLI into bench/out/fetch-images
(gitignored). Results are printed and written into docs/benchmarks.md between
the `fetch` markers, with the exact command. Everything talks to 127.0.0.1 only;
every child runs under a timeout.

Both cases run twice: writing to this machine's disk, then to tmpfs (see WHERE).

Case 3 -- CPU per image without the noise of a shared machine: CALLGRIND_COUNT
of the images fetched to tmpfs under `valgrind --tool=callgrind`, instructions
executed (all threads) per image, for litchi (`--verify header`, the default, and
`--verify decode`) and curl --parallel. Off with --callgrind 0.

Run:  bench/fetch/run.sh  [--litchi PATH] [--repeat 3] [--where disk,tmpfs] [--callgrind 1000] [--no-docs]
"""

import argparse
import datetime
import hashlib
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
OUT = ROOT / "bench" / "out"
IMAGES = OUT / "fetch-images"
DOCS = ROOT / "docs" / "benchmarks.md"

IMAGE_COUNT = 5000
TILE = 192          # 192x192 RGB noise at Q85 is about 19 KB
QUALITY = 85
BATCHES = 10        # each batch is one vips dzsave of a 10 x 50 tile noise image
CONCURRENCY = 32
LATENCY_COUNT = 2000
LATENCY_MS = 50
LATENCY_CONCURRENCY = 64
CALLGRIND_COUNT = 1000
RUN_TIMEOUT_S = 600
# Where the clients write: this machine's disk, and tmpfs (which takes the
# filesystem out of the picture: creating a file costs ~1 ms on the disk here,
# ~30 us on tmpfs, so on disk every client is partly measuring the filesystem).
WHERE = {"disk": OUT, "tmpfs": Path("/dev/shm")}


def log(text):
    print(text, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Fixture images
# ---------------------------------------------------------------------------

def vips(*args):
    subprocess.run(["vips", *map(str, args)], check=True, timeout=300)


def ensure_images():
    stamp = IMAGES / ".complete"
    recipe = f"{IMAGE_COUNT} {TILE} {QUALITY}\n"
    if stamp.exists() and stamp.read_text() == recipe:
        return
    log(f"generating {IMAGE_COUNT} JPEGs into {IMAGES} (once)...")
    shutil.rmtree(IMAGES, ignore_errors=True)
    IMAGES.mkdir(parents=True)
    cols, rows = 10, IMAGE_COUNT // BATCHES // 10
    index = 0
    with tempfile.TemporaryDirectory(prefix="litchi-bench-gen-") as tmp:
        tmp = Path(tmp)
        for batch in range(BATCHES):
            # Independent noise per band, so chroma is not flat and sizes are realistic.
            bands = []
            for band in range(3):
                vips("gaussnoise", tmp / f"n{band}.v", cols * TILE, rows * TILE, "--mean", 128, "--sigma", 30)
                vips("cast", tmp / f"n{band}.v", tmp / f"b{band}.v", "uchar")
                bands.append(str(tmp / f"b{band}.v"))
            vips("bandjoin", " ".join(bands), tmp / "rgb.v")
            tiles = tmp / f"tiles{batch}"
            vips("dzsave", tmp / "rgb.v", tiles, "--tile-size", TILE, "--overlap", 0, "--depth", "one",
                 "--suffix", f".jpg[Q={QUALITY}]", "--layout", "google")
            for tile in sorted((tiles / "0").rglob("*.jpg")):
                tile.rename(IMAGES / f"{index:05d}.jpg")
                index += 1
            shutil.rmtree(tiles)
    if index != IMAGE_COUNT:
        raise SystemExit(f"expected {IMAGE_COUNT} tiles, vips made {index}")
    digests = {hashlib.sha256(p.read_bytes()).hexdigest() for p in IMAGES.glob("*.jpg")}
    if len(digests) != IMAGE_COUNT:
        raise SystemExit("generated images are not all distinct")
    stamp.write_text(recipe)


def image_names(count):
    return [f"{i:05d}.jpg" for i in range(count)]


def average_size(names):
    return sum((IMAGES / n).stat().st_size for n in names) / len(names)


# ---------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    """nginx with its own config and prefix in a temp folder, run in the foreground."""

    def __init__(self, root):
        self.root = root
        self.dir = Path(tempfile.mkdtemp(prefix="litchi-bench-nginx-"))
        self.port = free_port()
        temp_paths = "\n".join(f"  {kind}_temp_path {self.dir}/{kind};"
                               for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        (self.dir / "nginx.conf").write_text(f"""
user root;
worker_processes 2;
daemon off;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 65;
  keepalive_requests 1000000;
  types {{ image/jpeg jpg; }}
{temp_paths}
  server {{
    listen 127.0.0.1:{self.port};
    root {root};
  }}
}}
""")
        self.process = subprocess.Popen(["nginx", "-p", str(self.dir), "-c", str(self.dir / "nginx.conf")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit("nginx failed: " + self.process.stderr.read().decode(errors="replace"))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise SystemExit("nginx did not start listening")

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: workers finish, then exit
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def build_delay_server():
    """bench/fetch/delay_server.cpp, compiled into bench/out when missing or older than its source."""
    source, binary = HERE / "delay_server.cpp", OUT / "delay_server"
    if not binary.exists() or binary.stat().st_mtime < source.stat().st_mtime:
        log("building bench/out/delay_server...")
        subprocess.run(["c++", "-std=c++20", "-O2", "-o", str(binary), str(source)], check=True, timeout=300)
    return binary


class DelayServer:
    """bench/fetch/delay_server.cpp on 127.0.0.1: every answer `delay_ms` after its request.
    sample() asks it, after a client's run, how late its answers were and how soon that
    client sent its next request on a connection after an answer (both in microseconds)."""

    SAMPLE = re.compile(r"late by mean (\d+) us.*next request mean (\d+) us, p50 (\d+) us")

    def __init__(self, folder, delay_ms):
        self.process = subprocess.Popen([str(build_delay_server()), str(folder), str(delay_ms)],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.process.stdout.readline().decode().split()
        if len(line) != 2 or line[0] != "PORT":
            self.stop()
            raise SystemExit("delay server did not start")
        self.port = int(line[1])

    def sample(self):
        self.process.send_signal(signal.SIGUSR1)
        line = self.process.stderr.readline().decode(errors="replace")
        m = self.SAMPLE.search(line)
        if not m:
            return None
        return {"late_us": int(m[1]), "turnaround_us": int(m[2]), "turnaround_p50_us": int(m[3])}

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stderr.close()


# ---------------------------------------------------------------------------
# Measuring one client run
# ---------------------------------------------------------------------------

def measure(argv, cwd):
    """Runs argv; returns wall seconds, user+sys CPU seconds and peak RSS (KiB) of the client.
    The peak RSS is what /usr/bin/time reports for it: started from `time`'s small process,
    not forked from this one. A child forked from Python starts with Python's pages, and its
    ru_maxrss counts them even after the exec (`true` showed 17 MiB that way, 1 MiB through
    time; every client here showed at least ~25 MiB until 2026-12-03)."""
    with tempfile.NamedTemporaryFile(prefix="litchi-bench-rss-", dir="/dev/shm") as rss_file:
        started = time.monotonic()
        proc = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", rss_file.name] + list(argv), cwd=cwd,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
        deadline = started + RUN_TIMEOUT_S
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)  # time and the client
                _, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.002)
        wall = time.monotonic() - started
        # "Command exited with non-zero status N" comes first when it failed; %M is last.
        lines = Path(rss_file.name).read_text().split()
        rss_kib = int(lines[-1]) if lines and lines[-1].isdigit() else 0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    # CPU: `time` waited for the client, so its rusage includes the client's (and its own, ~1 ms).
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_kib": rss_kib,
            "rc": proc.returncode, "stderr": err[-2000:]}


def count_images(folder):
    return sum(1 for p in Path(folder).rglob("*.jpg") if p.is_file() and p.stat().st_size > 0)


class Clients:
    """The command line of each client for one URL list, into a fresh folder per run."""

    def __init__(self, litchi, work, urls, concurrency):
        self.litchi = litchi
        self.work = work
        self.urls = urls
        self.concurrency = concurrency
        self.url_list = work / "urls.txt"
        self.url_list.write_text("".join(u + "\n" for u in urls))

    def argv(self, tool, out):
        j = str(self.concurrency)
        if tool in ("litchi", "litchi-decode"):
            return [self.litchi, "fetch", "-j", j, "--allow-private", "--progress", "none",
                    "-i", str(self.url_list), "-o", str(out), "--manifest", str(out) + ".jsonl"] + \
                (["--verify", "decode"] if tool == "litchi-decode" else [])
        if tool == "curl":
            config = self.work / f"{out.name}.curl.cfg"
            config.write_text("".join(f'url = "{u}"\noutput = "{out}/{i:05d}.jpg"\n' for i, u in enumerate(self.urls)))
            return ["curl", "--parallel", "--parallel-max", j, "--silent", "--show-error", "--fail",
                    "--create-dirs", "--config", str(config)]
        if tool == "wget2":
            return ["wget2", f"--max-threads={j}", "--quiet", "--no-robots", "-i", str(self.url_list), "-P", str(out)]
        if tool == "aria2c":
            return ["aria2c", "-j", j, "-x", "1", "-i", str(self.url_list), "-d", str(out), "--quiet=true",
                    "--allow-overwrite=true", "--auto-file-renaming=false"]
        raise ValueError(tool)

    def run(self, tool, label):
        out = self.work / f"{tool}-{label}"
        argv = self.argv(tool, out)
        result = measure(argv, self.work)
        got = count_images(out)
        result["ok"] = result["rc"] == 0 and got == len(self.urls)
        if not result["ok"]:
            log(f"  {tool}: exit {result['rc']}, {got}/{len(self.urls)} images; {result['stderr'][-500:]}")
        shutil.rmtree(out, ignore_errors=True)
        for leftover in self.work.glob(f"{out.name}.*"):  # manifest, curl config
            leftover.unlink()
        # Untimed: write back what this run left (its files' and their deletion's
        # metadata), so that the next client does not pay for it. Without it a
        # client that syncs (litchi's group commit calls syncfs) would also flush
        # the journal of whichever client ran before it.
        os.sync()
        return result


def median_of(runs, key):
    return statistics.median(r[key] for r in runs)


# ---------------------------------------------------------------------------
# The two cases
# ---------------------------------------------------------------------------

def case_throughput(litchi, repeat, where):
    tools = ["litchi", "curl", "wget2", "aria2c"]
    names = image_names(IMAGE_COUNT)
    nginx = Nginx(IMAGES)
    try:
        with tempfile.TemporaryDirectory(prefix="litchi-bench-", dir=WHERE[where]) as work:
            clients = Clients(litchi, Path(work), [f"http://127.0.0.1:{nginx.port}/{n}" for n in names], CONCURRENCY)
            log("warm-up (curl, untimed)...")
            clients.run("curl", "warmup")
            runs = {t: [] for t in tools}
            for rep in range(repeat):
                order = tools[rep % len(tools):] + tools[:rep % len(tools)]
                for tool in order:
                    result = clients.run(tool, f"r{rep}")
                    log(f"  rep {rep + 1}/{repeat} {tool:7s} {result['wall']:7.2f} s wall, {result['cpu']:6.2f} s CPU, "
                        f"{result['rss_kib'] / 1024:6.1f} MiB{'' if result['ok'] else '  (FAILED)'}")
                    runs[tool].append(result)
    finally:
        nginx.stop()
    rows = []
    base = {k: median_of(runs["litchi"], k) for k in ("wall", "cpu", "rss_kib")}
    for tool in tools:
        m = {k: median_of(runs[tool], k) for k in ("wall", "cpu", "rss_kib")}
        rows.append({"tool": tool, **m, "ok": all(r["ok"] for r in runs[tool]),
                     "wall_ratio": m["wall"] / base["wall"], "cpu_ratio": m["cpu"] / base["cpu"],
                     "rss_ratio": m["rss_kib"] / base["rss_kib"]})
    return rows, average_size(names)


def case_latency(litchi, repeat, where):
    names = image_names(LATENCY_COUNT)
    server = DelayServer(IMAGES, LATENCY_MS)
    ideal = LATENCY_COUNT / LATENCY_CONCURRENCY * LATENCY_MS / 1000
    try:
        with tempfile.TemporaryDirectory(prefix="litchi-bench-", dir=WHERE[where]) as work:
            clients = Clients(litchi, Path(work), [f"http://127.0.0.1:{server.port}/{n}" for n in names],
                              LATENCY_CONCURRENCY)
            runs = {"litchi": [], "curl": []}
            for rep in range(repeat):
                for tool in runs:
                    result = clients.run(tool, f"l{rep}")
                    result["server"] = server.sample()
                    turn = result["server"] or {}
                    log(f"  latency rep {rep + 1}/{repeat} {tool:6s} {result['wall']:6.2f} s (ideal {ideal:.2f} s); "
                        f"server late by {turn.get('late_us', '?')} us, next request "
                        f"{turn.get('turnaround_us', '?')} us after an answer (means)"
                        f"{'' if result['ok'] else '  (FAILED)'}")
                    runs[tool].append(result)
    finally:
        server.stop()
    rows = []
    for tool, tool_runs in runs.items():
        wall = median_of(tool_runs, "wall")
        samples = [r["server"] for r in tool_runs if r["server"]]
        server_side = {k: statistics.median(x[k] for x in samples) for k in samples[0]} if samples else {}
        rows.append({"tool": tool, "wall": wall, "cpu": median_of(tool_runs, "cpu"),
                     "rss_kib": median_of(tool_runs, "rss_kib"), "ok": all(r["ok"] for r in tool_runs),
                     "over_ideal": wall / ideal - 1, **server_side})
    return rows, ideal


def callgrind_instructions(out_file):
    """Total instructions (Ir) of a callgrind profile: its `summary:` line (all threads)."""
    for line in Path(out_file).read_text().splitlines():
        if line.startswith("summary:") or line.startswith("totals:"):
            return int(line.split()[1])
    raise SystemExit(f"no summary in {out_file}")


def callgrind_inclusive(out_file, function):
    """Instructions spent in `function` and what it called (callgrind_annotate --inclusive), 0 if never."""
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(out_file)],
                          capture_output=True, text=True, timeout=300, check=True).stdout
    # "525,225,894 (74.31%)  ???:SHA256_Update [libcrypto.so.3]" or " 5,046,282 ( 7.25%)  ..."
    line = re.compile(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+\S*:" + re.escape(function) + r"(\s|$)")
    for text_line in text.splitlines():
        m = line.match(text_line)
        if m:
            return int(m[1].replace(",", ""))
    return 0


def sha256_speed(masked):
    """OpenSSL's SHA-256 on 16 KiB blocks, MB/s, natively or with the CPU's SHA extensions masked
    (OPENSSL_ia32cap), as valgrind runs it."""
    env = dict(os.environ, OPENSSL_ia32cap=":~0x20000000") if masked else None
    out = subprocess.run(["openssl", "speed", "-seconds", "1", "-bytes", "16384", "-evp", "sha256"],
                         capture_output=True, text=True, timeout=60, env=env).stdout.strip().splitlines()
    try:
        return float(out[-1].split()[-1].rstrip("k")) / 1000
    except (IndexError, ValueError):
        return 0.0


def case_callgrind(litchi, count):
    """Instructions per image under callgrind, files on tmpfs: deterministic where wall and
    CPU seconds on a shared 2-core machine are not."""
    names = image_names(count)
    nginx = Nginx(IMAGES)
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="litchi-bench-", dir=WHERE["tmpfs"]) as work:
            work = Path(work)
            clients = Clients(litchi, work, [f"http://127.0.0.1:{nginx.port}/{n}" for n in names], CONCURRENCY)
            for tool in ("litchi", "litchi-decode", "curl"):
                out = work / f"cg-{tool}"
                profile = work / f"{tool}.callgrind"
                # VIPSHOME elsewhere: libvips loads no modules (HEIF, JPEG XL, ...; a JPEG
                # needs none), as one of them runs an instruction valgrind does not know.
                argv = ["env", "VIPSHOME=/nonexistent", "valgrind", "--tool=callgrind", "--quiet",
                        f"--callgrind-out-file={profile}"] + clients.argv(tool, out)
                result = measure(argv, work)
                got = count_images(out)
                ok = result["rc"] == 0 and got == count
                if not ok:
                    log(f"  callgrind {tool}: exit {result['rc']}, {got}/{count} images; {result['stderr'][-500:]}")
                instructions = callgrind_instructions(profile)
                # Bodies are hashed in OpenSSL's SHA256_Update: under valgrind its software
                # path, as valgrind does not run the CPU's SHA extensions that litchi uses natively.
                sha = callgrind_inclusive(profile, "SHA256_Update")
                rows.append({"tool": tool, "ir": instructions, "per_image": instructions / count,
                             "sha_per_image": sha / count, "ok": ok})
                log(f"  callgrind {tool:13s} {instructions / count / 1e6:8.2f} M instructions per image")
                shutil.rmtree(out, ignore_errors=True)
    finally:
        nginx.stop()
    curl = next(r for r in rows if r["tool"] == "curl")
    for r in rows:
        r["ratio"] = r["ir"] / curl["ir"]
        r["ratio_without_sha"] = (r["per_image"] - r["sha_per_image"]) / curl["per_image"]
    return rows


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

def tool_version(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


def throughput_table(rows):
    lines = ["| client | wall s | × litchi | CPU s | × litchi | peak RSS MiB | × litchi | all fetched |",
             "|---|---:|---:|---:|---:|---:|---:|:-:|"]
    for r in rows:
        lines.append(f"| {r['tool']} | {r['wall']:.2f} | {r['wall_ratio']:.2f} | {r['cpu']:.2f} | {r['cpu_ratio']:.2f} | "
                     f"{r['rss_kib'] / 1024:.1f} | {r['rss_ratio']:.2f} | {'yes' if r['ok'] else 'NO'} |")
    return lines


def latency_table(rows):
    lines = ["| client | wall s | over ideal | next request after an answer, mean / p50 µs | server late, mean µs "
             "| CPU s | peak RSS MiB | all fetched |",
             "|---|---:|---:|---:|---:|---:|---:|:-:|"]
    for r in rows:
        turn = (f"{r['turnaround_us']:.0f} / {r['turnaround_p50_us']:.0f}" if "turnaround_us" in r else "?")
        late = f"{r['late_us']:.0f}" if "late_us" in r else "?"
        lines.append(f"| {r['tool']} | {r['wall']:.2f} | {r['over_ideal'] * 100:+.1f} % | {turn} | {late} | "
                     f"{r['cpu']:.2f} | {r['rss_kib'] / 1024:.1f} | {'yes' if r['ok'] else 'NO'} |")
    return lines


def targets(where, throughput, latency):
    """Issue 9's targets (the engine as lean per image as curl)."""
    verdict = lambda ok: "met" if ok else "**not met**"  # noqa: E731
    litchi = throughput[0]
    curl = next(r for r in throughput if r["tool"] == "curl")
    wget2 = next(r for r in throughput if r["tool"] == "wget2")
    lat = latency[0]
    rss = max(litchi["rss_kib"], lat["rss_kib"])
    lines = []
    if where == "tmpfs":
        fastest = min((curl, wget2), key=lambda r: r["wall"])
        lines += [
            f"- wall ≤ 1.0× the fastest of curl and wget2: {verdict(litchi['wall'] <= fastest['wall'])} "
            f"(litchi {litchi['wall']:.2f} s, {fastest['tool']} {fastest['wall']:.2f} s: "
            f"{litchi['wall'] / fastest['wall']:.2f}×)",
            f"- CPU ≤ 1.5× curl's: {verdict(litchi['cpu'] <= 1.5 * curl['cpu'])} "
            f"(litchi {litchi['cpu']:.2f} s, curl {curl['cpu']:.2f} s: {litchi['cpu'] / curl['cpu']:.2f}×)",
        ]
    else:
        lines.append(f"- wall ≤ 1.0× curl's: {verdict(litchi['wall'] <= curl['wall'])} "
                     f"(litchi {litchi['wall']:.2f} s, curl {curl['wall']:.2f} s: {litchi['wall'] / curl['wall']:.2f}×)")
    lines += [
        f"- within 10 % of ideal with 50 ms latency: {verdict(lat['over_ideal'] <= 0.10)} "
        f"({lat['over_ideal'] * 100:+.1f} %; curl {latency[1]['over_ideal'] * 100:+.1f} %)",
        f"- peak RSS under 64 MiB (issue 2): {verdict(rss < 64 * 1024)} ({rss / 1024:.1f} MiB)",
    ]
    return lines


def callgrind_table(rows, count):
    native, masked = sha256_speed(False), sha256_speed(True)
    lines = [f"Case 3 ({count:,} images to tmpfs under `valgrind --tool=callgrind`, j = {CONCURRENCY}; "
             "instructions of every thread, divided by the images). Valgrind runs OpenSSL's software "
             "SHA-256, not the CPU's SHA extensions that litchi's hash uses natively (`openssl speed` here: "
             f"{native:,.0f} MB/s natively, {masked:,.0f} MB/s with them masked as under valgrind), so the hash "
             "is shown apart and the last column leaves it out:", "",
             "| client | instructions per image | × curl | of which SHA-256 | without it, × curl | all fetched |",
             "|---|---:|---:|---:|---:|:-:|"]
    names = {"litchi": "litchi (`--verify header`)", "litchi-decode": "litchi `--verify decode`",
             "curl": "curl --parallel"}
    for r in rows:
        lines.append(f"| {names[r['tool']]} | {r['per_image'] / 1e3:,.0f} k | {r['ratio']:.2f} | "
                     f"{r['sha_per_image'] / 1e3:,.0f} k | {r['ratio_without_sha']:.2f} | "
                     f"{'yes' if r['ok'] else 'NO'} |")
    return lines


WHERE_TEXT = {
    "disk": f"written to this machine's disk ({{fs}}; creating a file costs about 1 ms here)",
    "tmpfs": "written to tmpfs (`/dev/shm`): the filesystem out of the picture, so this compares the engines",
}


def render(results, avg_size, ideal, litchi, repeat, command, callgrind=None, callgrind_count=0):
    lines = [
        "## fetch",
        "",
        f"Measured {datetime.date.today().isoformat()} on {os.cpu_count()} cores, "
        f"{platform.system()} {platform.release()}, loopback only; load average {LOAD_AT_START} when it started "
        "(other work on the machine inflates the numbers). Command:",
        "",
        "```",
        command,
        "```",
        "",
        f"`litchi` is `{os.path.relpath(litchi, ROOT)}` (RelWithDebInfo). Peers: {tool_version(['curl', '--version'])}; "
        f"{tool_version(['wget2', '--version'])}; {tool_version(['aria2c', '--version'])}; "
        f"{tool_version(['nginx', '-v'])}.",
        "",
        f"Case 1: {IMAGE_COUNT:,} distinct {TILE}x{TILE} JPEGs (average {avg_size / 1024:.1f} KiB) from nginx on "
        f"127.0.0.1 (2 workers, keep-alive), concurrency {CONCURRENCY}. Median of {repeat} runs each, order "
        "rotated; CPU is user+sys of the client, RSS its peak (`ru_maxrss`). litchi also hashes every body, "
        "checks its structure (`--verify header`) and makes it durable (group commit) before counting it done; "
        "the others only write files, and the kernel writes their data back after the clock stops. After every "
        "run (untimed) the output is deleted and `sync` writes back what that run left, so no client pays for "
        "another's.",
        "",
        f"Case 2: {LATENCY_COUNT:,} of those images, every response {LATENCY_MS} ms after its request "
        f"(`bench/fetch/delay_server.cpp`: one epoll thread, a timerfd set to each answer's due time, requests "
        f"timed from the kernel's receive stamp), concurrency {LATENCY_CONCURRENCY}; ideal = N / j × latency = "
        f"{LATENCY_COUNT} / {LATENCY_CONCURRENCY} × {LATENCY_MS} ms = {ideal:.3f} s. curl at the same "
        "concurrency for reference. The server also tells, per run, how late its answers were and how soon the "
        "client sent its next request on a connection after an answer was written (the client's turnaround: "
        "reading the answer and what it does before asking again); the table gives the medians of those per-run "
        "means and medians.",
    ]
    for where, (throughput, latency) in results.items():
        fs = subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "--target", str(WHERE[where])],
                            capture_output=True, text=True, timeout=10).stdout.strip() or "unknown filesystem"
        lines += ["", f"### Files {WHERE_TEXT[where].format(fs=fs)}", "",
                  f"Case 1 ({IMAGE_COUNT:,} images, j = {CONCURRENCY}):", ""]
        lines += throughput_table(throughput)
        lines += ["", f"Case 2 ({LATENCY_COUNT:,} images, {LATENCY_MS} ms latency, j = {LATENCY_CONCURRENCY}):", ""]
        lines += latency_table(latency)
        lines += ["", "Targets (issue 9):", ""] + targets(where, throughput, latency)
    if callgrind:
        lines += ["", "### CPU per image (callgrind)", ""] + callgrind_table(callgrind, callgrind_count)
    findings = HERE / "findings.md"  # what the numbers mean, kept by hand
    if findings.is_file():
        lines += ["", findings.read_text().strip()]
    return "\n".join(lines) + "\n"


def write_docs(section, name="fetch"):
    """Puts `section` between the `<!-- NAME:begin/end -->` markers of docs/benchmarks.md
    (bench/serve uses this too). Reads right before writing: the other sections
    belong to other scripts and people, and only the text between our markers changes."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    intro = ("# Benchmarks\n\n"
             "Numbers measured on the development machine with the scripts under `bench/`. Each section says\n"
             "what was measured and the exact command, so anyone can re-run it; sections are rewritten in\n"
             "place by their scripts (between the `<!-- name:begin/end -->` markers).\n\n")
    text = DOCS.read_text() if DOCS.exists() else intro
    block = f"{begin}\n{section}{end}\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        text = head + block + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(text)


def rerun_command(script, args, litchi, defaults=None):
    """The command line that reproduces this run, for the docs: `--litchi` and every
    option named in `defaults` ({attribute: default value}) whose value is not its default.
    bench/serve and bench/fanout use this too."""
    if defaults is None:
        defaults = {"repeat": 3, "where": "disk,tmpfs"}
    command = script + ("" if args.litchi == str(ROOT / "build/release/litchi")
                        else f" --litchi {os.path.relpath(litchi, ROOT)}")
    for name, default in defaults.items():
        value = getattr(args, name)
        if value != default:
            command += f" --{name.replace('_', '-')} {value}"
    return command


LOAD_AT_START = "%.1f %.1f %.1f" % os.getloadavg()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--litchi", default=os.environ.get("LITCHI_BENCH_BIN", str(ROOT / "build/release/litchi")))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--where", default="disk,tmpfs", help="where clients write: disk, tmpfs or both")
    parser.add_argument("--callgrind", type=int, default=CALLGRIND_COUNT,
                        help="images for the callgrind case (0: skip it)")
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so nginx and the delay server are stopped and temp folders removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    litchi = str(Path(args.litchi).resolve())
    if not os.access(litchi, os.X_OK):
        raise SystemExit(f"no litchi binary at {litchi}: build it with `cmake --preset release && "
                         "cmake --build --preset release`, or pass --litchi")
    for tool in ("nginx", "curl", "wget2", "aria2c", "vips", "c++", "/usr/bin/time") + (("valgrind",) if args.callgrind else ()):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing: run scripts/install-deps.sh bench")
    OUT.mkdir(parents=True, exist_ok=True)
    ensure_images()
    results = {}
    ideal = avg_size = 0
    for where in [w for w in args.where.split(",") if w]:
        log(f"[{where}] case 1: {IMAGE_COUNT} images from nginx, concurrency {CONCURRENCY}")
        throughput, avg_size = case_throughput(litchi, args.repeat, where)
        log(f"[{where}] case 2: {LATENCY_COUNT} images, {LATENCY_MS} ms latency, j {LATENCY_CONCURRENCY}")
        latency, ideal = case_latency(litchi, args.repeat, where)
        results[where] = (throughput, latency)
    callgrind = None
    if args.callgrind:
        log(f"[tmpfs] case 3: {args.callgrind} images under callgrind")
        callgrind = case_callgrind(litchi, args.callgrind)
    command = rerun_command("bench/fetch/run.sh", args, litchi,
                            {"repeat": 3, "where": "disk,tmpfs", "callgrind": CALLGRIND_COUNT})
    section = render(results, avg_size, ideal, litchi, args.repeat, command, callgrind, args.callgrind)
    print(section)
    if not args.no_docs:
        write_docs(section)
        log(f"wrote the fetch section of {os.path.relpath(DOCS, ROOT)}")


if __name__ == "__main__":
    main()
