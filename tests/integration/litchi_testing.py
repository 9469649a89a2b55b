"""Shared helpers for Litchi's integration tests (Python stdlib only).

Every tests/integration/test_*.py may import this module. It knows how to:

  * start and stop the test origin (tests/origin/origin.py) -- `Origin`;
  * run the `litchi` binary with a timeout, capturing exit status, stdout,
    stderr and the child's own peak RSS -- `run_litchi`, `LitchiProcess`;
  * read a JSON Lines manifest -- `read_manifest`;
  * check a blob folder: every visible file is named by its sha256, and no
    `.part` file is left anywhere -- `blob_dir_problems`, `sha256_file`;
  * make temporary folders that are removed afterwards -- `temp_dir`.

Environment (ctest sets these; see tests/CMakeLists.txt):
  LITCHI_BIN          the built litchi binary (required to run litchi)
  LITCHI_ORIGIN       tests/origin/origin.py (default: found next to this file)
  LITCHI_SOURCE_DIR   the source tree (default: two folders up from here)

Only 127.0.0.0/8 and ::1 are ever contacted.
"""

import contextlib
import hashlib
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE_DIR = Path(os.environ.get("LITCHI_SOURCE_DIR", HERE.parent.parent))
ORIGIN_SCRIPT = Path(os.environ.get("LITCHI_ORIGIN", SOURCE_DIR / "tests" / "origin" / "origin.py"))
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"


# Talks to the origin directly even when http_proxy & co. are set: tests reach 127.0.0.1 only.
_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def litchi_bin():
    """The litchi binary under test; a clear error when the environment lacks it."""
    path = os.environ.get("LITCHI_BIN")
    if not path:
        raise RuntimeError("LITCHI_BIN is not set: run through ctest, or export LITCHI_BIN=build/<dir>/litchi")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"LITCHI_BIN={path} is not an executable file")
    return path


# ---------------------------------------------------------------------------
# Temporary folders
# ---------------------------------------------------------------------------

@contextlib.contextmanager
def temp_dir(prefix="litchi-test-"):
    """A fresh folder, removed with everything in it on exit."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def make_temp_dir(testcase, prefix="litchi-test-"):
    """A fresh folder removed when `testcase` (a unittest.TestCase) finishes."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    testcase.addCleanup(shutil.rmtree, path, True)
    return path


# ---------------------------------------------------------------------------
# The test origin
# ---------------------------------------------------------------------------

class Origin:
    """The test origin as a context manager:

        with Origin() as origin:
            origin.url("/img/1.png")      -> "http://127.0.0.1:<port>/img/1.png"
            origin.hits("mykey")          -> requests seen for a key

    Started with `python3 origin.py --port 0`; the port is read from its
    `PORT <n>` line. Stopped with SIGTERM (then SIGKILL) on exit.
    """

    def __init__(self, host="127.0.0.1", verbose=False, start_timeout=60, latency_ms=0):
        self.host = host
        self.verbose = verbose
        self.latency_ms = latency_ms  # origin.py --latency: every image takes this long
        self.start_timeout = start_timeout
        self.port = None
        self.process = None
        self._stderr = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        args = [PYTHON, str(ORIGIN_SCRIPT), "--port", "0", "--host", self.host]
        if self.verbose:
            args.append("--verbose")
        if self.latency_ms:
            args += ["--latency", str(self.latency_ms)]
        # stderr goes to a file: a pipe nobody reads could fill up and stall the origin.
        self._stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self._stderr, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.start_timeout
        line = b""
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.process.poll() is not None:
                break
            readable, _, _ = select.select([self.process.stdout], [], [], min(remaining, 0.5))
            if readable:
                byte = os.read(self.process.stdout.fileno(), 1)
                if not byte:
                    break
                line += byte
        parts = line.decode(errors="replace").split()
        if len(parts) != 2 or parts[0] != "PORT":
            self.stop()
            raise RuntimeError(f"test origin did not start (first line {line!r}): {self.stderr_text()}")
        self.port = int(parts[1])

    def stop(self):
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process.stdout.close()
        self.process = None

    def stderr_text(self):
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    @property
    def base(self):
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def url(self, path):
        return self.base + path

    def get(self, path, timeout=30):
        """(status, headers, body) of a plain GET, for tests that inspect the origin itself."""
        try:
            with _NO_PROXY_OPENER.open(self.url(path), timeout=timeout) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    def get_json(self, path):
        status, _, body = self.get(path)
        if status != 200:
            raise RuntimeError(f"GET {path}: HTTP {status}")
        return json.loads(body)

    def hits(self, key):
        """How many requests the origin has seen for `key`."""
        return self.get_json(f"/hits/{key}")["count"]

    def hit_times(self, key):
        """time.time() stamps of those requests, in arrival order."""
        return self.get_json(f"/hits/{key}")["times"]

    def formats(self):
        return self.get_json("/formats")

    def request_counts(self):
        """{path: requests seen} for every fixture path fetched so far (origin.py /requests)."""
        return self.get_json("/requests")["paths"]


# ---------------------------------------------------------------------------
# Running litchi
# ---------------------------------------------------------------------------

@dataclass
class LitchiResult:
    args: list
    returncode: int      # negative: killed by that signal
    stdout: str
    stderr: str
    max_rss_kib: int     # the child's peak resident set (ru_maxrss, KiB on Linux)
    elapsed: float       # seconds from start to exit
    timed_out: bool      # killed by us after the timeout

    def describe(self):
        """A compact text for assertion messages."""
        tail = self.stderr[-3000:]
        return (f"litchi {' '.join(map(str, self.args))}\n  exit {self.returncode} after {self.elapsed:.2f}s"
                f"{' (TIMED OUT)' if self.timed_out else ''}, peak RSS {self.max_rss_kib} KiB\n"
                f"  stdout: {self.stdout[-2000:]!r}\n  stderr tail: {tail!r}")


class LitchiProcess:
    """A running `litchi` child. Output goes to temporary files, not pipes, so
    it can never block on a full pipe; `wait` reaps it with os.wait4 to learn
    its own peak RSS."""

    def __init__(self, args, stdin_text=None, env=None, cwd=None):
        self.args = [str(a) for a in args]
        self._out = tempfile.TemporaryFile()
        self._err = tempfile.TemporaryFile()
        stdin = subprocess.DEVNULL
        self._in = None
        if stdin_text is not None:
            self._in = tempfile.TemporaryFile()
            self._in.write(stdin_text.encode() if isinstance(stdin_text, str) else stdin_text)
            self._in.seek(0)
            stdin = self._in
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        self.started = time.monotonic()
        self.popen = subprocess.Popen([litchi_bin(), *self.args], stdin=stdin, stdout=self._out, stderr=self._err,
                                      env=full_env, cwd=cwd)
        self.result = None

    @property
    def pid(self):
        return self.popen.pid

    def stderr_so_far(self):
        """What the child has written to stderr until now (pread: leaves its offset alone)."""
        return self._peek(self._err)

    def stdout_so_far(self):
        return self._peek(self._out)

    @staticmethod
    def _peek(f):
        chunks, offset = [], 0
        while True:
            chunk = os.pread(f.fileno(), 1 << 20, offset)
            if not chunk:
                return b"".join(chunks).decode(errors="replace")
            chunks.append(chunk)
            offset += len(chunk)

    def running(self):
        """True while the child has not exited. Never reaps it (WNOWAIT), so wait()
        still gets its rusage; Popen.poll() must not be used for that reason."""
        if self.result is not None:
            return False
        return os.waitid(os.P_PID, self.popen.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None

    def send_signal(self, sig):
        if self.result is None:
            self.popen.send_signal(sig)

    def wait(self, timeout):
        """Waits up to `timeout` seconds, then SIGKILLs; returns a LitchiResult."""
        if self.result is not None:
            return self.result
        deadline = self.started + timeout if timeout is not None else None
        timed_out = False
        while True:
            pid, status, usage = os.wait4(self.popen.pid, os.WNOHANG)
            if pid:
                break
            if deadline is not None and time.monotonic() >= deadline:
                timed_out = True
                self.popen.kill()
                _, status, usage = os.wait4(self.popen.pid, 0)
                break
            time.sleep(0.01)
        elapsed = time.monotonic() - self.started
        code = os.waitstatus_to_exitcode(status)
        self.popen.returncode = code  # reaped here; stop Popen from waiting again
        self.result = LitchiResult(self.args, code, self._read(self._out), self._read(self._err),
                                   usage.ru_maxrss, elapsed, timed_out)
        for f in (self._out, self._err, self._in):
            if f is not None:
                f.close()
        return self.result

    @staticmethod
    def _read(f):
        f.seek(0)
        return f.read().decode(errors="replace")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.result is None:
            self.wait(timeout=0)  # kills it if still running


def run_litchi(args, timeout=120, stdin_text=None, env=None, cwd=None):
    """Runs `litchi ARGS...` to completion (killed after `timeout` seconds)."""
    return LitchiProcess(args, stdin_text=stdin_text, env=env, cwd=cwd).wait(timeout)


# ---------------------------------------------------------------------------
# Manifests and blob folders
# ---------------------------------------------------------------------------

def read_manifest(path):
    """The JSON Lines manifest as a list of dicts; raises ValueError naming the bad line."""
    entries = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{number}: not JSON ({err}): {line!r}") from None
            if not isinstance(entry, dict):
                raise ValueError(f"{path}:{number}: not a JSON object: {line!r}")
            entries.append(entry)
    return entries


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def blob_files(root):
    """Visible files under `root` (hidden files and folders skipped), as paths."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(folder) / name for name in files if not name.startswith(".")]
    return sorted(found)


def part_files(root):
    """Every *.part file under `root`, hidden folders included."""
    return sorted(Path(folder) / name for folder, _, files in os.walk(root) for name in files
                  if name.endswith(".part"))


def blob_dir_problems(root, ignore=()):
    """What is wrong with a blob folder, as a list of strings (empty: all good):
    a visible file whose sha256 is not its name stem, or any *.part file.
    `ignore`: file names to skip (e.g. a manifest written into the folder)."""
    problems = [f"leftover part file {p}" for p in part_files(root)]
    for path in blob_files(root):
        if path.name in ignore:
            continue
        actual = sha256_file(path)
        if path.name.split(".")[0] != actual:
            problems.append(f"{path}: sha256 is {actual}")
    return problems
