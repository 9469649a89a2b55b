"""Security of the live-progress transports: 401 before any upgrade, 403 for a
foreign Origin, the subprotocol answer never echoes the token, user B never
sees user A's events (WebSocket and SSE), a token revoked while connected
closes the socket (1008) and ends the SSE stream, and no token ever reaches a
log line (canary tokens grepped in the server's stdout and stderr)."""

import json
import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import live_testing as live  # noqa: E402

ALLOWED = "http://app.example.test:5173"
CANARY = "lt_CANARYcanaryCANARYcanaryCANARYcanary0123456"


class LiveSecurityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.live = live.LiveServer(cls, extra_args=["-j", "4", "--allow-origin", ALLOWED])
        # The session the login link was exchanged for is used like any token.
        cls.used_tokens = {cls.live.bob_token, cls.live.admin_token, CANARY}
        cls.login_link = cls.live.server.admin_link

    @classmethod
    def tearDownClass(cls):
        # Whatever order the tests ran in: the server's whole output (complete,
        # the process has exited) holds none of the tokens any test used, and
        # the admin's login link only once (printed at first start, by design).
        result = cls.live.server.stop()
        cls.live.close()
        output = result.stdout + result.stderr
        if any(token in output for token in cls.used_tokens):
            raise AssertionError("a token reached the server's output")
        if not cls.login_link or output.count(cls.login_link) != 1:
            raise AssertionError("the admin's login link was not printed exactly once")

    def raw(self, path, headers):
        ws = live.RawWebSocket(self.live.port, path, headers=headers)
        self.addCleanup(ws.close)
        return ws

    def test_401_before_upgrade(self):
        cases = [("/api/ws", {}), ("/api/ws", {"Sec-WebSocket-Protocol": f"litchi.v1, bearer.{CANARY}"}),
                 (f"/api/litchi/{CANARY}", {}), ("/api/ws", {"Cookie": f"litchi_session={CANARY}"})]
        for path, headers in cases:
            with self.subTest(path=path.replace(CANARY, "CANARY"), headers=list(headers)):
                ws = self.raw(path, headers)
                self.assertEqual(ws.handshake(), 401)
                body = json.loads(ws.response_body)
                self.assertEqual(body["error"]["code"], "unauthorized")
                self.assertNotIn(CANARY, ws.response_body.decode())

    def test_subprotocol_answer_never_echoes_token(self):
        token = self.live.bob_token
        ws = self.raw("/api/ws", {"Sec-WebSocket-Protocol": f"litchi.v1, bearer.{token}"})
        self.assertEqual(ws.handshake(), 101)
        self.assertEqual(ws.response_headers["sec-websocket-protocol"], "litchi.v1")
        self.assertNotIn(token, json.dumps(ws.response_headers))

    def test_origin_rules(self):
        token = self.live.bob_token
        port = self.live.port
        for origin, status in [("http://evil.example", 403), ("null", 403), (f"http://localhost:{port + 1}", 403),
                               (f"http://127.0.0.1:{port}", 101), (ALLOWED, 101), (ALLOWED + "/", 101)]:
            with self.subTest(origin=origin):
                ws = self.raw("/api/ws", {"Sec-WebSocket-Protocol": f"litchi.v1, bearer.{token}", "Origin": origin})
                self.assertEqual(ws.handshake(), status)
                if status == 403:
                    self.assertEqual(json.loads(ws.response_body)["error"]["code"], "forbidden_origin")
        # The seed form and SSE follow the same rule.
        ws = self.raw(f"/api/litchi/{token}", {"Origin": "http://evil.example"})
        self.assertEqual(ws.handshake(), 403)
        sse = live.SseReader(port, token, headers={"Origin": "http://evil.example"})
        self.addCleanup(sse.close)
        self.assertEqual(sse.status, 403)

    def test_users_see_only_their_own_events(self):
        port = self.live.port
        bob_ws = self.raw("/api/ws", {"Sec-WebSocket-Protocol": f"litchi.v1, bearer.{self.live.bob_token}"})
        self.assertEqual(bob_ws.handshake(), 101)
        bob_hello = bob_ws.recv_json()
        self.assertEqual(bob_hello["type"], "hello")
        bob_sse = live.SseReader(port, self.live.bob_token)
        self.addCleanup(bob_sse.close)
        self.assertEqual(bob_sse.next_event()["data"]["type"], "hello")
        admin_ws = self.raw("/api/ws", {"Sec-WebSocket-Protocol": f"litchi.v1, bearer.{self.live.admin_token}"})
        self.assertEqual(admin_ws.handshake(), 101)
        self.assertEqual(admin_ws.recv_json()["type"], "hello")

        job = self.live.admin.create_job(self.live.urls(30, prefix="iso"))
        self.live.admin.wait_job(job["id"])
        # Admin saw the job; bob asks for its items and is told it does not exist.
        seen_by_admin = False
        while not seen_by_admin:
            message = admin_ws.recv_json()
            seen_by_admin = message["type"] in ("progress", "job") and message["job"]["id"] == job["id"]
        bob_ws.send_json({"type": "subscribe", "job": job["id"], "items": True})
        bob_ws.send_json({"type": "ping"})
        answers = []
        while not answers or answers[-1]["type"] != "pong":
            answers.append(bob_ws.recv_json())
        self.assertEqual([a["type"] for a in answers], ["error", "pong"], answers)
        self.assertEqual(answers[0]["code"], "not_found")
        # SSE: bob's stream stays silent apart from keep-alives (none within this window).
        bob_sse.sock.settimeout(2)
        try:
            event = bob_sse.next_event()
            self.assertIsNone(event and event["data"], f"bob received {event}")
        except (TimeoutError, OSError):
            pass
        sse_items = live.SseReader(port, self.live.bob_token, query=f"?items={job['id']}")
        self.addCleanup(sse_items.close)
        kinds = []
        while len(kinds) < 2:
            event = sse_items.next_event()
            if event["data"] is not None:
                kinds.append(event["data"])
        self.assertEqual(kinds[0]["type"], "error")
        self.assertEqual(kinds[0]["code"], "not_found")
        self.assertEqual(kinds[1]["type"], "hello")
        self.assertEqual(kinds[1]["jobs"], [])

    def test_revoked_token_closes_socket_and_stream(self):
        client = self.live.server.client()
        response = client.post("/api/login", {"username": "bob", "password": "bob-password-1"})
        self.assertEqual(response.status, 200, response)
        session_token = response.json()["token"]
        self.used_tokens.add(session_token)
        ws = self.raw("/api/ws", {"Sec-WebSocket-Protocol": f"litchi.v1, bearer.{session_token}"})
        self.assertEqual(ws.handshake(), 101)
        self.assertEqual(ws.recv_json()["type"], "hello")
        seed = self.raw(f"/api/litchi/{session_token}", {})
        self.assertEqual(seed.handshake(), 101)
        sse = live.SseReader(self.live.port, session_token)
        self.addCleanup(sse.close)
        self.assertEqual(sse.next_event()["data"]["type"], "hello")

        logout = client.post("/api/logout", token=session_token)
        self.assertEqual(logout.status, 204, logout)
        started = time.monotonic()
        self.assertEqual(ws.wait_close(timeout=10), 1008)
        self.assertEqual(seed.wait_close(timeout=10), 1008)
        self.assertLess(time.monotonic() - started, 10)
        while True:
            event = sse.next_event()
            if event is None:
                break
        self.assertTrue(sse.ended)
        again = self.raw("/api/ws", {"Sec-WebSocket-Protocol": f"litchi.v1, bearer.{session_token}"})
        self.assertEqual(again.handshake(), 401)

    def test_cookie_session_opens_socket_and_stream(self):
        # What the web app does: POST /api/login, then WS /api/ws and SSE with the cookie.
        client = self.live.server.client()
        response = client.post("/api/login", {"username": "bob", "password": "bob-password-1"})
        self.assertEqual(response.status, 200, response)
        session_token = response.json()["token"]
        self.used_tokens.add(session_token)
        cookie = f"litchi_session={session_token}"
        same_origin = f"http://127.0.0.1:{self.live.port}"
        ws = self.raw("/api/ws", {"Cookie": cookie, "Origin": same_origin})
        self.assertEqual(ws.handshake(), 101)
        self.assertNotIn("sec-websocket-protocol", ws.response_headers)  # none offered, none answered
        self.assertEqual(ws.recv_json()["type"], "hello")
        foreign = self.raw("/api/ws", {"Cookie": cookie, "Origin": "http://evil.example"})
        self.assertEqual(foreign.handshake(), 403)
        sse = live.SseReader(self.live.port, headers={"Cookie": cookie, "Origin": same_origin})
        self.addCleanup(sse.close)
        self.assertEqual(sse.status, 200)
        hello = sse.next_event()
        self.assertEqual(hello["data"]["type"], "hello")
        # The app's own reconnect: ?since= the hello's seq continues without a new hello.
        again = live.SseReader(self.live.port, query=f"?since={hello['id']}&epoch={hello['data']['epoch']}",
                               headers={"Cookie": cookie})
        self.addCleanup(again.close)
        self.assertEqual(again.status, 200)
        again.sock.settimeout(2)
        try:
            event = again.next_event()
            self.assertNotEqual(event["data"] and event["data"]["type"], "hello", event)
        except (TimeoutError, OSError):
            pass  # nothing new for bob: no hello, no event

    def test_seed_path_spellings_are_redacted(self):
        # Percent-encoded and absolute-form spellings of the seed path reach the
        # access log too; none may show the token (tearDownClass checks the log).
        token = self.live.bob_token
        encoded = self.raw(f"/api/%6Citchi/{token}", {})
        self.assertEqual(encoded.handshake(), 101)
        self.assertEqual(encoded.recv_json()["type"], "hello")
        for target in (f"/API/litchi/{CANARY}", f"http://127.0.0.1:{self.live.port}/api/litchi/{CANARY}"):
            with self.subTest(target=target.replace(CANARY, "CANARY")):
                sock = live.socket.create_connection(("127.0.0.1", self.live.port), timeout=10)
                self.addCleanup(sock.close)
                sock.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
                reply = b""
                while chunk := sock.recv(65536):
                    reply += chunk
                self.assertTrue(reply.startswith(b"HTTP/1.1 "), reply[:40])  # 400, or the web app's page
                self.assertNotIn(CANARY.encode(), reply)

    def test_seed_form_is_logged_redacted(self):
        token = self.live.bob_token
        ws = self.raw(f"/api/litchi/{token}", {})
        self.assertEqual(ws.handshake(), 101)
        self.assertEqual(ws.recv_json()["type"], "hello")
        ws.close()
        # A marker request after it: once its access-log line is there, so is
        # the seed request's (answered first).
        marker = "seed-form-marker"
        self.assertEqual(self.live.admin.get(f"/healthz?m={marker}").status, 200)
        deadline = time.monotonic() + 10
        while marker not in (output := self.live.server.process.stdout_so_far() +
                             self.live.server.stderr_so_far()):
            self.assertLess(time.monotonic(), deadline, "no access-log line for the marker")
            time.sleep(0.02)
        self.assertIn("/api/litchi/[redacted]", output)
        self.assertNotIn(token, output)

if __name__ == "__main__":
    unittest.main()
