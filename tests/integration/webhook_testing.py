"""A webhook receiver for the integration tests (Python stdlib only).

`Receiver` is an HTTP server on 127.0.0.1 (a free port) in a thread of the
test process. It records every POST (path, headers, raw body) and answers
with the next status of its script (then 200 for ever). Tests wait on its
condition for the n-th delivery instead of sleeping:

    with Receiver(script=[500]) as hook:
        ... create a job with {"webhook": {"url": hook.url("/h"), "secret": "s"}}
        first, second = hook.wait_for(2)
        assert signature_ok(second, "s")

`hold_first=True` keeps the first request unanswered until release() (a
delivery in flight while the test kills the server).
"""

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Delivery:
    def __init__(self, path, headers, body):
        self.path = path
        self.headers = headers  # lower-case names
        self.body = body        # bytes, exactly as received

    @property
    def id(self):
        return self.headers.get("x-litchi-delivery")

    @property
    def event(self):
        return self.headers.get("x-litchi-event")

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"Delivery({self.path}, {self.headers}, {self.body[:200]!r})"


def expected_signature(body, secret):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_ok(delivery, secret):
    return hmac.compare_digest(delivery.headers.get("x-litchi-signature", ""),
                               expected_signature(delivery.body, secret))


class Receiver:
    def __init__(self, script=(), hold_first=False):
        self.script = list(script)
        self.hold_first = hold_first
        self.released = threading.Event()
        self.cond = threading.Condition()
        self.deliveries = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver.cond:
                    receiver.deliveries.append(Delivery(self.path, headers, body))
                    first = len(receiver.deliveries) == 1
                    status = receiver.script.pop(0) if receiver.script else 200
                    receiver.cond.notify_all()
                if first and receiver.hold_first:
                    receiver.released.wait(120)
                    self.close_connection = True
                    return  # no answer: the sender is gone by now
                reply = b"ok\n"
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                       daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.released.set()
        self.server.shutdown()
        self.server.server_close()

    def url(self, path="/hook"):
        return f"http://127.0.0.1:{self.port}{path}"

    def release(self):
        self.released.set()

    def wait_for(self, count, timeout=60):
        """Waits until `count` deliveries arrived; returns the first `count`."""
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.deliveries) >= count, timeout):
                raise AssertionError(f"{len(self.deliveries)} deliveries, not {count}, after {timeout}s: "
                                     f"{self.deliveries}")
            return list(self.deliveries[:count])

    def count(self):
        with self.cond:
            return len(self.deliveries)
