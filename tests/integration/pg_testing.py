"""Throwaway PostgreSQL 15 servers for the integration tests (Python stdlib only).

A thin wrapper over scripts/pg-temp.sh: each server lives in its own folder
under /tmp, listens on 127.0.0.1 on a free port, and is removed on stop.

    with TempPostgres() as pg:
        pg.url                  -> "postgresql://postgres@127.0.0.1:<port>/litchi"
        db = pg.fresh_database()  -> URI of a new, empty database
        psql(db, "SELECT 1")      -> "1"
        pg.restart()            # clean stop + start, same port, data kept
        pg.halt()               # clean stop, data kept (down until restart())
        pg.kill()               # crash: SIGKILL to the whole server; restart() recovers
    # stopped and its folder removed here

`shared_postgres()` is the module's one server for a whole test process (what a
pytest session fixture would be; ctest runs each test_*.py as its own
process), started on first use and stopped at exit. Tests that only need
databases share it, each through fresh_database(); a test that restarts or
kills a server makes its own TempPostgres so it disturbs no other test.

The server is started with this process as its --owner: if the tests die
without stopping it, the script's watcher stops it and removes its folder.
Missing PostgreSQL binaries raise RuntimeError naming the fix
(`scripts/install-deps.sh test`), which fails the test rather than skipping it.
"""

import atexit
import itertools
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from litchi_testing import SOURCE_DIR

PG_TEMP = SOURCE_DIR / "scripts" / "pg-temp.sh"
PGBIN = Path(os.environ.get("LITCHI_PGBIN", "/usr/lib/postgresql/15/bin"))
SCRIPT_TIMEOUT = 180  # a start on a loaded 2-core machine takes a few seconds

_names = itertools.count(1)


def psql_bin():
    """PostgreSQL 15's psql, or whichever `psql` is on PATH."""
    own = PGBIN / "psql"
    found = str(own) if os.access(own, os.X_OK) else shutil.which("psql")
    if not found:
        raise RuntimeError("psql not found: install PostgreSQL with 'scripts/install-deps.sh test' (as root)")
    return found


def psql(url, sql, timeout=60):
    """Runs `sql` with psql against `url`; returns its unaligned, tuples-only
    output, stripped. Raises RuntimeError with psql's message on failure."""
    done = subprocess.run([psql_bin(), "-X", "-v", "ON_ERROR_STOP=1", "-Atq", "-d", url, "-c", sql],
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"psql failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout.strip()


def with_database(url, name):
    """`url` naming database `name` instead (query string kept)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


class TempPostgres:
    """One throwaway server (see the module's docstring). Starts in __init__."""

    def __init__(self):
        # Short, and under /tmp: the unix socket lives in it and the
        # `postgres` user must be able to reach it.
        self.dir = Path(tempfile.mkdtemp(prefix="litchi-pg-", dir="/tmp"))
        self.url = None
        try:
            self.url = self._script("start", "--owner", str(os.getpid()))
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise
        self.port = urlsplit(self.url).port

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def _script(self, command, *args):
        done = subprocess.run(["bash", str(PG_TEMP), command, str(self.dir), *args], capture_output=True,
                              text=True, timeout=SCRIPT_TIMEOUT, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise RuntimeError(f"scripts/pg-temp.sh {command} {self.dir} failed ({done.returncode}):\n"
                               f"{done.stderr.strip()}")
        lines = done.stdout.strip().splitlines()
        return lines[-1] if lines else ""

    def fresh_database(self):
        """Creates a new, empty database with a unique name; returns its URI."""
        name = f"litchi_it_{os.getpid()}_{next(_names)}_{secrets.token_hex(4)}"
        psql(self.url, f"CREATE DATABASE {name}")
        return with_database(self.url, name)

    def restart(self):
        """Stops (fast: clients are disconnected) if running, starts again on
        the same port. Works after kill() too (crash recovery runs)."""
        self.url = self._script("restart")

    def halt(self):
        """Clean stop (fast: clients are disconnected); the folder stays and
        restart() starts the same server again on the same port."""
        self._script("halt")

    def kill(self):
        """Abrupt stop: SIGKILL to the postmaster and all its processes. The
        folder stays, so restart() brings the same data back."""
        self._script("kill")

    def stop(self):
        """Stops the server and removes its folder. Safe to call twice."""
        if self.dir.exists():
            self._script("stop")


_shared = None
_shared_lock = threading.Lock()


def shared_postgres():
    """The test process's one TempPostgres, started on first use, stopped at exit."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = TempPostgres()
            atexit.register(_shared.stop)
        return _shared
