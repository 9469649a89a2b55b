"""The live-progress fan-out benchmark (issue 4), driven by bench/fanout/run.sh.

Three measurements, each against `litchi serve` (release build) and against a
plain Node `ws` broadcast server (bench/fanout/node_broadcast.js) with the same
fan-out, the clients being one Node process (bench/fanout/fanout_client.js):

 1. latency: WATCHERS WebSockets of one user while a long job runs (default
    coalescing, 100 ms) and a probe job is created every 250 ms: latency from
    an event's creation to its receipt on every socket (p50, p99), the
    fan-out spread of every message, and messages/s delivered;
 2. throughput: the same sockets with events as fast as the server makes them
    (Litchi: --progress-interval 0 and a job of tiny images; Node: a send loop),
    messages/s delivered and server CPU per delivered message;
 3. idle: IDLE open WebSockets that read nothing: server RSS per connection.

Everything runs on 127.0.0.1. Prints one JSON object (also written to
bench/out/fanout.json) and a Markdown summary.
   python3 bench/fanout/bench.py --litchi build/release/litchi [--watchers 1000]
          [--seconds 15] [--idle 10000] [--only latency,throughput,idle]
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
NODE = shutil.which("node") or "node"
CLK_TCK = os.sysconf("SC_CLK_TCK")
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def read_line(process, pattern, timeout=60):
    """First stdout line of `process` matching `pattern` (a regex); its match."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                raise RuntimeError(f"{process.args[:2]} exited with {process.returncode}")
            continue
        match = re.search(pattern, line)
        if match:
            return match
    raise RuntimeError(f"no line matching {pattern!r} from {process.args[:2]}")


def stop(process):
    if process and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Origin:
    def __init__(self):
        self.process = subprocess.Popen(["/usr/bin/python3", str(ROOT / "tests/origin/origin.py"), "--port", "0"],
                                        stdout=subprocess.PIPE, text=True)
        self.port = int(read_line(self.process, r"^PORT (\d+)", timeout=120).group(1))

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"


class Litchi:
    """`litchi serve` on a fresh data folder, with the first user's token."""

    def __init__(self, binary, extra_args=()):
        self.data = Path(tempfile.mkdtemp(prefix="litchi-fanout-"))
        self.process = subprocess.Popen(
            [binary, "serve", "--listen", "127.0.0.1:0", "--data", str(self.data), "--web",
             str(self.data / "no-web"), "--allow-private", "--retries", "0", *extra_args],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        # The first start prints the admin's login link, then the listening line.
        self.token = read_line(self.process, r"#token=(\S+)").group(1)
        self.port = int(read_line(self.process, r"listening on http://127\.0\.0\.1:(\d+)").group(1))

    def close(self):
        stop(self.process)
        shutil.rmtree(self.data, ignore_errors=True)

    def create_job(self, urls, name):
        body = json.dumps({"urls": urls, "name": name}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/api/jobs", data=body, method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "Authorization": f"Bearer {self.token}"})
        with NO_PROXY.open(request, timeout=60) as response:
            return json.loads(response.read())

    def ws_url(self):
        return f"ws://127.0.0.1:{self.port}/api/ws"

    def protocols(self):
        return f"litchi.v1,bearer.{self.token}"


def start_node_server(interval_ms, probe_ms):
    process = subprocess.Popen([NODE, str(HERE / "node_broadcast.js"), "0", str(interval_ms), str(probe_ms)],
                               stdout=subprocess.PIPE, text=True)
    port = int(read_line(process, r"^PORT (\d+)").group(1))
    return process, port


def with_litchi(binary, server_args, job_urls, job_name, work):
    """Runs `work(litchi)` against a fresh `litchi serve` running one job; stops it after."""
    litchi = Litchi(binary, server_args)
    try:
        litchi.create_job(job_urls, job_name)
        return work(litchi)
    finally:
        litchi.close()


def with_node(interval_ms, probe_ms, work):
    """Runs `work(process, ws_url)` against a fresh Node broadcast server; stops it after."""
    node, port = start_node_server(interval_ms, probe_ms)
    try:
        return work(node, f"ws://127.0.0.1:{port}/")
    finally:
        stop(node)


def run_client(options, timeout):
    result = subprocess.run([NODE, str(HERE / "fanout_client.js"), json.dumps(options)],
                            capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"fanout client failed: {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure(server_pid, options, timeout):
    """Runs a measuring client; adds the server's CPU per delivered message."""
    cpu_before = cpu_seconds(server_pid)
    result = run_client(options, timeout)
    cpu = cpu_seconds(server_pid) - cpu_before
    result["server_cpu_s"] = round(cpu, 2)
    result["server_cpu_us_per_message"] = round(cpu * 1e6 / max(result["delivered"], 1), 2)
    return result


def idle_rss(server_pid, url, protocols, count):
    """Server RSS growth per connection with `count` idle sockets open."""
    before = rss_kib(server_pid)
    client = subprocess.Popen([NODE, str(HERE / "fanout_client.js"),
                               json.dumps({"url": url, "protocols": protocols, "count": count, "mode": "idle"})],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        opened = json.loads(read_line(client, r"^\{.*\}$", timeout=600).group(0))
        time.sleep(3)  # let the server finish its hellos and settle
        after = rss_kib(server_pid)
    finally:
        client.stdin.close()
        try:
            client.wait(timeout=60)
        except subprocess.TimeoutExpired:
            client.kill()
    return {"sockets": opened["opened"], "failed": opened["failed"], "rss_before_kib": before,
            "rss_after_kib": after,
            "kib_per_connection": round((after - before) / max(opened["opened"], 1), 2)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--litchi", default=str(ROOT / "build/release/litchi"))
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--idle", type=int, default=10000)
    parser.add_argument("--only", default="latency,throughput,idle",
                        help="comma-separated phases to run (default: all three)")
    args = parser.parse_args()
    phases = set(args.only.split(","))
    if not phases <= {"latency", "throughput", "idle"}:
        sys.exit(f"--only takes latency, throughput and idle, not {args.only!r}")
    if not (ROOT / "tests/clients/node_modules/ws").is_dir():
        sys.exit("the ws package is missing: run `npm ci --prefix tests/clients`")

    results = {"watchers": args.watchers, "seconds": args.seconds, "idle": args.idle,
               "nproc": os.cpu_count(), "loadavg_at_start": os.getloadavg()}
    client_timeout = args.seconds + 300

    def record(key, value):
        results[key] = value
        print(f"{key.replace('_', ' ')}:", json.dumps(value), file=sys.stderr)

    def watch(url, protocols, **extra):
        """Options of a measuring client with the run's watchers and duration."""
        return {"url": url, "protocols": protocols, "count": args.watchers, "seconds": args.seconds,
                "mode": "measure", **extra}

    origin = Origin()
    try:
        # 1. latency, default coalescing.
        if "latency" in phases:
            long_job = [origin.url(f"/img/long{i}.png?w=8&h=8&delay=40") for i in range(40000)]

            def litchi_latency(litchi):
                probe = {"api": f"http://127.0.0.1:{litchi.port}", "token": litchi.token,
                         "image": origin.url("/img/probe.png?w=8&h=8"), "every_ms": 250}
                return measure(litchi.process.pid, watch(litchi.ws_url(), litchi.protocols(), probe=probe),
                               client_timeout)

            record("litchi_latency", with_litchi(args.litchi, ["-j", "16", "--per-host", "16"],
                                                 long_job, "long job", litchi_latency))
            record("node_latency", with_node(100, 250, lambda node, url: measure(node.pid, watch(url, ""),
                                                                                   client_timeout)))

        # 2. throughput: events as fast as each server makes them.
        if "throughput" in phases:
            fast_job = [origin.url(f"/img/fast{i}.png?w=4&h=4") for i in range(60000)]
            record("litchi_throughput", with_litchi(
                args.litchi, ["-j", "64", "--per-host", "64", "--progress-interval", "0"], fast_job, "fast job",
                lambda litchi: measure(litchi.process.pid, watch(litchi.ws_url(), litchi.protocols()),
                                       client_timeout)))
            record("node_throughput", with_node(0, 0, lambda node, url: measure(node.pid, watch(url, ""),
                                                                                client_timeout)))

        # 3. idle sockets.
        if "idle" in phases:
            small_job = [origin.url(f"/img/idle{i}.png?w=4&h=4") for i in range(3)]
            record("litchi_idle", with_litchi(
                args.litchi, [], small_job, "a job in every hello",
                lambda litchi: idle_rss(litchi.process.pid, litchi.ws_url(), litchi.protocols(), args.idle)))
            record("node_idle", with_node(3_600_000, 0, lambda node, url: idle_rss(node.pid, url, "", args.idle)))
    finally:
        stop(origin.process)

    results["loadavg_at_end"] = os.getloadavg()
    if "throughput" in phases:
        lt, nt = results["litchi_throughput"], results["node_throughput"]
        results["throughput_ratio"] = round(lt["messages_per_s"] / max(nt["messages_per_s"], 1), 2)
        results["cpu_per_message_ratio"] = round(nt["server_cpu_us_per_message"] /
                                                 max(lt["server_cpu_us_per_message"], 1e-9), 2)
    out = ROOT / "bench/out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "fanout.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
