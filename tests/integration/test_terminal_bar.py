"""The progress bar in a real terminal: `litchi fetch` inside tmux at 80 and
at 60 columns (and resized from one to the other while it runs) never draws
a line longer than the terminal, never leaves a stack of bars behind, and
ends with the summary by failure reason. tmux's capture-pane -J joins
wrapped rows back into one line, so a line that wrapped shows up as longer
than the width.
"""

import os
import re
import shlex
import subprocess
import time
import unittest
import uuid

import litchi_testing as lt

BAR = re.compile(r"\d+%\s+\d+/\d+ done")


def tmux(*args):
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


class TerminalBar(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.origin = lt.Origin().__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.origin.__exit__(None, None, None)

    def start(self, width, urls):
        tmp = lt.make_temp_dir(self)
        listing = tmp / "urls.txt"
        listing.write_text("\n".join(urls) + "\n")
        self.done_marker = tmp / "exit-status"
        command = " ".join(shlex.quote(str(a)) for a in [
            lt.litchi_bin(), "fetch", "-i", listing, "-o", tmp / "out", "--allow-private", "-j", "2",
            "--retries", "0", "--progress", "bar"])
        self.session = f"litchi-bar-{uuid.uuid4().hex[:8]}"
        # A private tmux server (-L): nothing of the user's own sessions is touched.
        self.socket = self.session
        env = dict(os.environ)
        env.pop("COLUMNS", None)  # the terminal's own size decides (TIOCGWINSZ)
        subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", "new-session", "-d", "-s", self.session,
                        "-x", str(width), "-y", "24",
                        f"{command}; echo $? > {shlex.quote(str(self.done_marker))}; sleep 600"],
                       check=True, env=env)
        self.addCleanup(lambda: subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True))

    def screen(self):
        out = subprocess.run(["tmux", "-L", self.socket, "capture-pane", "-p", "-J", "-t", self.session],
                             check=True, capture_output=True, text=True).stdout
        return [line.rstrip() for line in out.splitlines()]

    def wait_for(self, ready, what, timeout=120):
        deadline = time.monotonic() + timeout
        while True:
            lines = self.screen()
            if ready(lines):
                return lines
            self.assertLess(time.monotonic(), deadline, f"{what}; screen:\n" + "\n".join(lines))
            time.sleep(0.05)

    def assert_fits(self, lines, width):
        for line in lines:
            self.assertLessEqual(len(line), width, f"a line wider than {width} columns: {line!r}")
        bars = [line for line in lines if BAR.search(line)]
        self.assertLessEqual(len(bars), 1, "stacked bars:\n" + "\n".join(lines))

    def slow_urls(self, count, prefix):
        return [self.origin.url(f"/img/{prefix}{i}.png?delay=150") for i in range(count)]

    def test_bar_fits_80_then_60_columns_and_summarises_failures(self):
        urls = self.slow_urls(100, "w") + [self.origin.url("/status/404"), self.origin.url("/status/503")]
        self.start(80, urls)
        seen = []
        # Several redraws at 80 columns: one bar line, never wider.
        for _ in range(5):
            lines = self.wait_for(lambda ls: any(BAR.search(line) for line in ls) and ls != seen,
                                  "no bar (or no redraw) at 80 columns")
            self.assert_fits(lines, 80)
            seen = lines
        tmux("-L", self.socket, "resize-window", "-t", self.session, "-x", "60", "-y", "24")
        # tmux reflows the old 80-column bar into two rows at once; the next
        # draw (prompted by SIGWINCH) must clear both and fit.
        seen = self.wait_for(lambda ls: any(BAR.search(line) and len(line) <= 60 for line in ls),
                             "no redraw at 60 columns")
        self.assert_fits(seen, 60)
        for _ in range(5):
            lines = self.wait_for(lambda ls: any(BAR.search(line) for line in ls) and ls != seen,
                                  "no bar (or no redraw) at 60 columns")
            self.assert_fits(lines, 60)
            seen = lines
        self.wait_for(lambda ls: self.done_marker.exists(), "fetch did not finish", timeout=300)
        lines = self.screen()
        self.assert_fits(lines, 60)
        self.assertEqual(self.done_marker.read_text().strip(), "1")  # some items failed
        self.assertEqual(sum(1 for line in lines if BAR.search(line)), 1, "one bar left, not a stack")
        text = "\n".join(lines)
        self.assertIn("100%", text)
        self.assertIn("failures by reason", text)
        self.assertRegex(text, r"http\s+2\s")

    def test_narrow_terminal_still_shows_counts(self):
        self.start(40, self.slow_urls(30, "n"))
        lines = self.wait_for(lambda ls: any(BAR.search(line) for line in ls), "no bar at 40 columns")
        self.assert_fits(lines, 40)
        self.wait_for(lambda ls: self.done_marker.exists(), "fetch did not finish", timeout=300)
        self.assert_fits(self.screen(), 40)


if __name__ == "__main__":
    unittest.main()
