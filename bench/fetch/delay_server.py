#!/usr/bin/python3
"""A latency-injecting static file server for the fetch benchmark's second case.

Serves every file of one folder from memory at /<name>, each response sent
DELAY milliseconds after its request arrived (default 50), HTTP/1.1 keep-alive.
It is asyncio on one thread (a protocol and loop timers, no coroutine per
request), so waiting costs nothing and the server's own overhead stays far
below the injected latency. It still matters: all 64 connections are answered
in the same instant, one after the other, so every microsecond a request costs
here delays the last answer of a round by 64 of them. (The first version, a
coroutine reading header lines one by one, held the last answer back ~5 ms a
round: curl measured +16 % over the ideal against it, and +13 % now.) The
thread-per-connection test origin is built for faults, not for this.

Run:  python3 delay_server.py DIR [--delay 50] [--port 0] [--host 127.0.0.1]
Prints `PORT <n>` on stdout once listening; SIGTERM/SIGINT stop it.
"""

import argparse
import asyncio
import os
import signal

CONTENT_TYPES = {".jpg": "image/jpeg", ".png": "image/png", ".gif": "image/gif", ".webp": "image/webp"}


def load_responses(folder):
    responses = {}
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if not os.path.isfile(path) or name.startswith("."):
            continue
        with open(path, "rb") as f:
            body = f.read()
        kind = CONTENT_TYPES.get(os.path.splitext(name)[1], "application/octet-stream")
        head = f"HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        responses["/" + name] = head + body
    return responses


NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


class DelayedResponses(asyncio.Protocol):
    """One connection: every request answered `delay` seconds after it
    arrived, in order. A protocol with loop timers, not a coroutine per
    request: with 64 connections answered in the same instant, a few
    microseconds of Python per request instead of tens, so the last answer
    of a round is not held back behind the others'."""

    def __init__(self, responses, delay):
        self.responses = responses
        self.delay = delay
        self.buffer = b""
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buffer += data
        loop = asyncio.get_running_loop()
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head, self.buffer = self.buffer[:end], self.buffer[end + 4:]
            request_line, _, headers = head.partition(b"\r\n")
            parts = request_line.split()
            path = parts[1].decode(errors="replace").split("?")[0] if len(parts) >= 2 else ""
            close = b"connection: close" in headers.lower()
            loop.call_later(self.delay, self.answer, self.responses.get(path, NOT_FOUND), close)

    def answer(self, response, close):
        if self.transport.is_closing():
            return
        self.transport.write(response)
        if close:
            self.transport.close()


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--delay", type=float, default=50, help="milliseconds before each response")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()

    responses = load_responses(args.folder)
    delay = args.delay / 1000
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: DelayedResponses(responses, delay), args.host, args.port,
                                      backlog=1024)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
