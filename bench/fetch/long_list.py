#!/usr/bin/python3
"""Memory for a long URL list (issue 9). Not a test: it measures and reports.

`litchi fetch` of N URLs (default 1,000,000) of one host that refuses every
connection (a closed port on 127.0.0.1): peak RSS (as /usr/bin/time reports
it, see bench.py's measure) and wall time, with the default flags (-j 32).
The host is down after three refusals and every other item fails at once
with the same reason, so the run measures what the list itself costs:
reading it, queueing it, the results and the manifest. curl --parallel (a
config file of the same URLs) and wget2 -i run beside it for reference, each
as it is: curl tries every URL, wget2 gives up on a host that refused.

`--before PATH` adds the same run with another litchi binary (say the main
branch's build) as a before/after. Written into docs/benchmarks.md between
the `long-list` markers, with the command. Only 127.0.0.1.

Run:  bench/fetch/long_list.py  [--litchi PATH] [--before PATH] [--urls N] [--repeat 1] [--no-peers] [--no-docs]
"""

import argparse
import importlib.util
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("fetch_bench", HERE / "bench.py")
fetch_bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fetch_bench)
ROOT = fetch_bench.ROOT


def closed_port():
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--litchi", default=os.environ.get("LITCHI_BENCH_BIN", str(ROOT / "build/release/litchi")))
    parser.add_argument("--before", help="another litchi binary, run the same way")
    parser.add_argument("--before-label", default="another build", help="what --before is, for the docs")
    parser.add_argument("--urls", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-peers", action="store_true", help="litchi only")
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()
    port = closed_port()
    clients = {"litchi": os.path.abspath(args.litchi)}
    if args.before:
        clients["before"] = os.path.abspath(args.before)
    if not args.no_peers:
        clients["curl"] = "curl"
        clients["wget2"] = "wget2"
    runs = {name: [] for name in clients}
    with tempfile.TemporaryDirectory(prefix="litchi-long-", dir="/dev/shm") as work:
        work = Path(work)
        urls = [f"http://127.0.0.1:{port}/images/{i:07d}.jpg" for i in range(args.urls)]
        url_file = work / "urls.txt"
        url_file.write_text("".join(u + "\n" for u in urls))
        config = work / "curl.cfg"
        config.write_text("".join(f'url = "{u}"\noutput = "{work}/curl/{i:07d}.jpg"\n' for i, u in enumerate(urls)))
        del urls
        for rep in range(args.repeat):
            for name, binary in clients.items():
                out = work / f"out-{name}"
                if name in ("litchi", "before"):
                    argv = [binary, "fetch", "--allow-private", "--progress", "none", "-i", str(url_file),
                            "-o", str(out), "--manifest", str(out) + ".jsonl"]
                elif name == "curl":
                    argv = ["curl", "--parallel", "--parallel-max", "32", "--silent", "--config", str(config)]
                else:
                    argv = ["wget2", "--max-threads=32", "--tries=1", "--quiet", "--no-robots", "-i", str(url_file),
                            "-P", str(out)]
                result = fetch_bench.measure(argv, work)
                runs[name].append(result)
                fetch_bench.log(f"  rep {rep + 1}/{args.repeat} {name:6s} {result['wall']:7.2f} s, "
                                f"peak RSS {result['rss_kib'] / 1024:7.1f} MiB")
                subprocess.run(["rm", "-rf", str(out), str(out) + ".jsonl", str(work / "curl")], check=False)
    rows = []
    for name, rs in runs.items():
        rss = statistics.median(r["rss_kib"] for r in rs)
        rows.append((name, statistics.median(r["wall"] for r in rs), rss, rss * 1024 / args.urls))
    command = fetch_bench.rerun_command("bench/fetch/long_list.py", args, clients["litchi"],
                                        {"urls": 1_000_000, "repeat": 1, "no_peers": False})
    if args.before:
        command += " --before OTHER_BUILD/litchi"
    lines = ["## A long URL list", "",
             f"`litchi fetch` of {args.urls:,} URLs of one host that refuses every connection (a closed port on "
             "127.0.0.1): the host is down after three refusals and every other item fails at once, so this "
             "measures what the list itself costs (reading, queueing, results, manifest). Default flags "
             f"(`-j 32`). curl (`--parallel --parallel-max 32`, a config file) and wget2 (`--max-threads=32 "
             "--tries=1`) beside it, each as it is: curl tries every URL, wget2 gives up on a host that refused. "
             "Peak RSS as `/usr/bin/time` reports it. "
             f"Median of {args.repeat} run(s); measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores.", "",
             f"Command: `{command}`" + (f' ("before": {args.before_label})' if args.before else ""),
             "", "| client | wall s | peak RSS MiB | bytes per URL |", "|---|---:|---:|---:|"]
    for name, wall, rss, per_url in rows:
        lines.append(f"| {name} | {wall:.2f} | {rss / 1024:.1f} | {per_url:.0f} |")
    section = "\n".join(lines) + "\n"
    print(section)
    if not args.no_docs:
        fetch_bench.write_docs(section, "long-list")
        fetch_bench.log("wrote the long-list section of docs/benchmarks.md")


if __name__ == "__main__":
    sys.exit(main())
