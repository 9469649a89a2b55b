#!/usr/bin/python3
"""A latency-injecting static file server for the fetch benchmark's second case.

Serves every file of one folder from memory at /<name>, each response sent
DELAY milliseconds after its request arrived (default 50), HTTP/1.1 keep-alive.
It is asyncio on one thread, so waiting costs nothing and the server's own
overhead (tens of microseconds a request) stays far below the injected latency;
the thread-per-connection test origin is built for faults, not for this.

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


async def serve_connection(reader, writer, responses, delay):
    try:
        while True:
            # The request line and headers in one read (a readline per header
            # cost enough Python per request to delay the last of 64
            # simultaneous answers by several milliseconds).
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, _, headers = head.partition(b"\r\n")
            close = b"connection: close" in headers.lower()
            parts = request_line.split()
            path = parts[1].decode(errors="replace").split("?")[0] if len(parts) >= 2 else ""
            await asyncio.sleep(delay)
            writer.write(responses.get(path, NOT_FOUND))
            await writer.drain()
            if close:
                break
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--delay", type=float, default=50, help="milliseconds before each response")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()

    responses = load_responses(args.folder)
    delay = args.delay / 1000
    server = await asyncio.start_server(lambda r, w: serve_connection(r, w, responses, delay),
                                        args.host, args.port, backlog=1024)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
