#!/usr/bin/python3
"""Accepting a large job through `litchi serve` (embedded SQLite store). Not a
test: it measures and reports.

For each size (default 100,000 and 1,000,000 URLs), repeated (default 3):
  * a fresh `litchi serve` on 127.0.0.1:0 with a fresh data folder (on disk
    under the system temp folder; --tmpfs puts it in /dev/shm), started with
    --allow-private (the URLs are on 127.0.0.1, so without it every line would
    be refused as blocked_address: a different, cheaper path than the real one),
    --max-urls and --max-body raised to fit the job (defaults: 100,000 URLs,
    16 MiB; the 1,000,000-URL body is ~33 MB), and -j 1;
  * an API token from `litchi token create admin --data DIR` (the first start
    creates `admin`);
  * the body: one distinct URL a line, http://127.0.0.1:PORT/N.png, where PORT
    is a socket this script holds bound but not listening, so every download
    the scheduler starts after the accept is refused at once by the kernel and
    -j 1 keeps that to one at a time: the scheduler stays out of the way of
    what is measured (and nothing outside this machine is contacted);
  * the peak RSS is reset (write 5 to /proc/PID/clear_refs: start-up peaks at
    ~100 MiB hashing the admin password with argon2id), then the clock starts,
    the POST is sent (body built beforehand), and the clock stops when the 201
    has been read; VmHWM is read right then. Both "peak during the accept" and
    "peak since start" (what was there before the reset is lost, so that column
    is max(start-up peak read before the reset, accept peak)) are shown, and
    the server's CPU time (user+sys, /proc/PID/stat) over the same span: on a
    shared machine the wall time depends on what else runs, the CPU much less.

--litchi may be given more than once (e.g. a build before and after a change):
the binaries then take turns within each repetition, so they share the noise.
Prints a table: each run and the median per binary and size.

Run:  bench/accept/run.sh [--litchi build/release/litchi]... [--repeat 3] [--sizes 100000,1000000] [--tmpfs]
"""

import argparse
import http.client
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
START_TIMEOUT_S = 30
REQUEST_TIMEOUT_S = 600


def log(text):
    print(text, file=sys.stderr, flush=True)


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """User+sys CPU seconds of a running process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)


def vm_hwm_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


class Server:
    def __init__(self, litchi, work, urls):
        self.data = work / "data"
        self.out = work / "serve.out"
        self.err = work / "serve.err"
        args = [litchi, "serve", "--listen", "127.0.0.1:0", "--data", str(self.data), "--allow-private",
                "-j", "1", "--web", str(work / "no-web-app"),
                "--max-urls", str(max(urls, 100_000)), "--max-body", str(max(urls * 64, 16 << 20))]
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        try:
            self.port = self._wait_listening()
            self.token = subprocess.run([litchi, "token", "create", "admin", "--data", str(self.data)],
                                        capture_output=True, text=True, timeout=60, check=True).stdout.strip()
        except BaseException:
            self.stop()
            raise

    def _wait_listening(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"litchi serve exited {self.process.returncode}: "
                                 + self.err.read_text(errors="replace")[-2000:])
            for line in self.out.read_text(errors="replace").splitlines():
                if line.startswith("Litchi is listening on "):
                    return int(line.rstrip("/").rsplit(":", 1)[1])
            time.sleep(0.05)
        raise SystemExit("litchi serve did not start listening")

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def one_run(litchi, body, urls, root):
    work = Path(tempfile.mkdtemp(prefix="litchi-accept-", dir=root))
    server = None
    try:
        server = Server(litchi, work, urls)
        pid = server.process.pid
        startup_peak = vm_hwm_kib(pid)
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=REQUEST_TIMEOUT_S)
        connection.connect()
        headers = {"Authorization": f"Bearer {server.token}", "Content-Type": "text/plain"}
        cpu_before = cpu_seconds(pid)
        started = time.monotonic()
        connection.request("POST", "/api/jobs?name=bench", body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        wall = time.monotonic() - started
        cpu = cpu_seconds(pid) - cpu_before
        peak = vm_hwm_kib(pid)
        connection.close()
        if response.status != 201:
            raise SystemExit(f"POST /api/jobs answered {response.status}: {data[:500]!r}")
        if f'"total":{urls}'.encode() not in data or f'"queued":{urls}'.encode() not in data:
            raise SystemExit(f"unexpected job: {data[:500]!r}")
        return wall, cpu, peak, max(peak, startup_peak)
    finally:
        if server:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--litchi", action="append", help="binary to measure (repeatable); "
                        "default build/release/litchi")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--tmpfs", action="store_true", help="data folder in /dev/shm instead of on disk")
    args = parser.parse_args()
    binaries = args.litchi or [str(ROOT / "build" / "release" / "litchi")]
    for binary in binaries:
        if not os.access(binary, os.X_OK):
            raise SystemExit(f"{binary} is not an executable (this script builds nothing)")
    sizes = [int(s) for s in args.sizes.split(",")]
    root = "/dev/shm" if args.tmpfs else None

    # Bound, never listening: connecting to it is refused at once.
    closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]

    log(f"data on {'tmpfs' if args.tmpfs else 'disk'}; load average {'%.1f %.1f %.1f' % os.getloadavg()}")
    rows = []
    for urls in sizes:
        body = "".join(f"http://127.0.0.1:{closed_port}/{n}.png\n" for n in range(urls)).encode()
        for run in range(args.repeat):
            # Rotated, so no binary always goes first.
            order = binaries[run % len(binaries):] + binaries[:run % len(binaries)]
            for binary in order:
                load = os.getloadavg()[0]
                wall, cpu, peak, since_start = one_run(binary, body, urls, root)
                rows.append((binary, urls, run + 1, wall, cpu, peak, since_start, load))
                log(f"  {binary}: {urls:>9,} URLs run {run + 1}: {wall:.3f} s, CPU {cpu:.2f} s, "
                    f"peak RSS {peak / 1024:.1f} MiB (since start {since_start / 1024:.1f} MiB), "
                    f"load before {load:.1f}")
    closed.close()

    print(f"load average at the end: {'%.1f %.1f %.1f' % os.getloadavg()}")
    print()
    print("| litchi | URLs | body MB | run | POST -> 201 s | server CPU s | peak RSS during accept MiB "
          "| peak RSS since start MiB | 1-min load before |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for urls in sizes:
        size_mb = len("".join(f"http://127.0.0.1:{closed_port}/{n}.png\n" for n in range(urls))) / 1e6
        for binary in binaries:
            mine = [r for r in rows if r[0] == binary and r[1] == urls]
            for _, _, run, wall, cpu, peak, since, load in mine:
                print(f"| {binary} | {urls:,} | {size_mb:.1f} | {run} | {wall:.2f} | {cpu:.2f} | "
                      f"{peak / 1024:.1f} | {since / 1024:.1f} | {load:.1f} |")
            med = lambda i: statistics.median(r[i] for r in mine)
            print(f"| {binary} | {urls:,} | {size_mb:.1f} | **median** | **{med(3):.2f}** | **{med(4):.2f}** | "
                  f"**{med(5) / 1024:.1f}** | **{med(6) / 1024:.1f}** | |")


if __name__ == "__main__":
    main()
