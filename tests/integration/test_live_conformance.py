"""A raw-frame conformance suite for the progress WebSocket, modelled on the
Autobahn testsuite sections 1-7 and 9 (which cannot run here): each case sends
frames with our own socket code (tests/integration/live_testing.RawWebSocket)
and checks the close code RFC 6455 asks for, or that a valid exchange works.

  1/2  framing, pings:  ping echo, fragmented text with interleaved ping
  3    reserved bits:   RSV1-3 set           -> 1002
  4    opcodes:         3-7, 0xB-0xF          -> 1002
  5    fragmentation:   fragmented control, continuation without start,
                        new data frame inside a fragmented message -> 1002
  6    UTF-8:           invalid text          -> 1007
  7    close:           invalid codes, 1-byte payload -> 1002; bad UTF-8 reason -> 1002
                        or 1007 (as Autobahn 7.5.1); codes over 4999 close (7.13,
                        informational); 1000 echoed
  9    limits:          message over 64 KiB (single and fragmented) -> 1009;
                        a 2^63 length header -> closed
  plus: an unmasked client frame -> 1002, and the RFC 6455 section 1.3 handshake vector.
"""

import json
import struct
import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import live_testing as live  # noqa: E402

TEXT, BINARY, CLOSE, PING, PONG, CONT = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0


class ConformanceTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.live = live.LiveServer(cls)

    @classmethod
    def tearDownClass(cls):
        cls.live.close()

    def open(self):
        ws = live.RawWebSocket(self.live.port, "/api/ws",
                               headers={"Sec-WebSocket-Protocol": f"litchi.v1, bearer.{self.live.admin_token}"})
        self.addCleanup(ws.close)
        self.assertEqual(ws.handshake(), 101)
        self.assertEqual(ws.recv_json()["type"], "hello")
        return ws

    def assert_closed_with(self, ws, codes):
        code = ws.wait_close()
        self.assertIn(code, codes if isinstance(codes, (set, tuple, list)) else {codes})

    # --- handshake ------------------------------------------------------------------------

    def test_rfc6455_handshake_vector(self):
        ws = live.RawWebSocket(self.live.port, f"/api/litchi/{self.live.admin_token}")
        self.addCleanup(ws.close)
        self.assertEqual(ws.handshake(key="dGhlIHNhbXBsZSBub25jZQ=="), 101)
        self.assertEqual(ws.response_headers["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        self.assertEqual(ws.response_headers["upgrade"].lower(), "websocket")
        self.assertNotIn("sec-websocket-extensions", ws.response_headers)  # compression is off
        self.assertEqual(ws.recv_json()["type"], "hello")

    # --- 1, 2: framing and pings ----------------------------------------------------------

    def test_ping_is_echoed_and_app_ping_answered(self):
        ws = self.open()
        ws.send_frame(PING, b"hello-ping")
        while True:
            fin, opcode, payload = ws.recv_frame()
            if opcode == PONG:
                self.assertEqual(payload, b"hello-ping")
                break
        ws.send_json({"type": "ping"})
        self.assertEqual(ws.recv_json(), {"type": "pong"})

    def test_fragmented_text_with_interleaved_ping(self):
        ws = self.open()
        text = json.dumps({"type": "ping"}).encode()
        ws.send_frame(TEXT, text[:3], fin=False)
        ws.send_frame(PING, b"mid")
        ws.send_frame(CONT, text[3:8], fin=False)
        ws.send_frame(CONT, text[8:], fin=True)
        got_pong_frame = False
        while True:
            fin, opcode, payload = ws.recv_frame()
            if opcode == PONG:
                self.assertEqual(payload, b"mid")
                got_pong_frame = True
            elif opcode == TEXT:
                message = json.loads(payload)
                if message.get("type") == "pong":
                    break
        self.assertTrue(got_pong_frame)

    def test_unmasked_client_frame(self):
        ws = self.open()
        ws.send_frame(TEXT, json.dumps({"type": "ping"}), mask=False)
        self.assert_closed_with(ws, 1002)

    # --- 3: reserved bits -----------------------------------------------------------------

    def test_reserved_bits(self):
        for rsv in (1, 2, 4, 7):
            with self.subTest(rsv=rsv):
                ws = self.open()
                ws.send_frame(TEXT, json.dumps({"type": "ping"}), rsv=rsv)
                self.assert_closed_with(ws, 1002)

    # --- 4: opcodes -----------------------------------------------------------------------

    def test_reserved_opcodes(self):
        for opcode in (3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF):
            with self.subTest(opcode=opcode):
                ws = self.open()
                ws.send_frame(opcode, b"x")
                self.assert_closed_with(ws, 1002)

    # --- 5: fragmentation -----------------------------------------------------------------

    def test_fragmented_control_frame(self):
        ws = self.open()
        ws.send_frame(PING, b"a", fin=False)
        self.assert_closed_with(ws, 1002)

    def test_control_frame_over_125_bytes(self):
        ws = self.open()
        ws.send_frame(PING, b"x" * 126)
        self.assert_closed_with(ws, 1002)

    def test_continuation_without_start(self):
        ws = self.open()
        ws.send_frame(CONT, b"{}", fin=True)
        self.assert_closed_with(ws, 1002)

    def test_new_message_inside_fragmented_one(self):
        ws = self.open()
        ws.send_frame(TEXT, b'{"ty', fin=False)
        ws.send_frame(TEXT, b'{"type":"ping"}', fin=True)
        self.assert_closed_with(ws, 1002)

    # --- 6: UTF-8 -------------------------------------------------------------------------

    def test_invalid_utf8_text(self):
        for payload in (b"\xff\xfe", b'{"type":"\xc3\x28"}', b"\xed\xa0\x80", b"\xf4\x90\x80\x80"):
            with self.subTest(payload=payload):
                ws = self.open()
                ws.send_frame(TEXT, payload)
                self.assert_closed_with(ws, 1007)

    def test_invalid_utf8_split_across_fragments(self):
        ws = self.open()
        ws.send_frame(TEXT, b'{"a":"\xce', fin=False)
        ws.send_frame(CONT, b'\xff"}', fin=True)
        self.assert_closed_with(ws, 1007)

    # --- 7: close -------------------------------------------------------------------------

    def test_normal_close_is_echoed(self):
        ws = self.open()
        ws.send_frame(CLOSE, struct.pack("!H", 1000) + b"bye")
        self.assert_closed_with(ws, 1000)

    def test_invalid_close_codes(self):
        # Autobahn 7.9.x: codes RFC 6455 reserves or never assigns -> 1002.
        for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999):
            with self.subTest(code=code):
                ws = self.open()
                ws.send_frame(CLOSE, struct.pack("!H", code))
                self.assert_closed_with(ws, 1002)

    def test_close_codes_above_4999(self):
        # Autobahn 7.13.x: "actual events are undefined by the spec" (informational);
        # the suite accepts 1000, the code echoed, or 1002. The socket must close.
        for code in (5000, 65535):
            with self.subTest(code=code):
                ws = self.open()
                ws.send_frame(CLOSE, struct.pack("!H", code))
                self.assert_closed_with(ws, {1000, code, 1002})

    def test_close_with_one_byte_payload(self):
        ws = self.open()
        ws.send_frame(CLOSE, b"\x03")
        self.assert_closed_with(ws, 1002)

    def test_close_reason_invalid_utf8(self):
        # Autobahn 7.5.1 accepts 1002 or 1007 (Beast answers 1002: a bad close payload).
        ws = self.open()
        ws.send_frame(CLOSE, struct.pack("!H", 1000) + b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80")
        self.assert_closed_with(ws, {1002, 1007})

    # --- 9: limits ------------------------------------------------------------------------

    def test_message_over_64_kib(self):
        ws = self.open()
        ws.send_frame(TEXT, b'"' + b"a" * (64 * 1024 + 10) + b'"')
        self.assert_closed_with(ws, 1009)

    def test_fragmented_message_over_64_kib(self):
        ws = self.open()
        piece = b"a" * 16384
        ws.send_frame(TEXT, piece, fin=False)
        for _ in range(4):
            ws.send_frame(CONT, piece, fin=False)
        ws.send_frame(CONT, b"a", fin=True)
        self.assert_closed_with(ws, 1009)

    def test_64_kib_message_is_accepted(self):
        ws = self.open()
        body = json.dumps({"type": "ping", "pad": "x" * (64 * 1024 - 40)}).encode()
        self.assertLessEqual(len(body), 64 * 1024)
        ws.send_frame(TEXT, body)
        self.assertEqual(ws.recv_json(), {"type": "pong"})

    def test_2_pow_63_length_header(self):
        ws = self.open()
        header = struct.pack("!BBQ", 0x80 | TEXT, 0x80 | 127, 1 << 63) + b"\x01\x02\x03\x04"
        ws.sock.sendall(header + b"abcd")
        self.assert_closed_with(ws, {1002, 1009, "eof"})

    # --- protocol messages ----------------------------------------------------------------

    def test_malformed_client_messages_get_errors(self):
        ws = self.open()
        cases = [(b"not json", "bad_message"), (b"[1,2]", "bad_message"), (b'{"no":"type"}', "bad_message"),
                 (b'{"type":"dance"}', "unknown_type"), (b'{"type":"resume","since":"x"}', "bad_message"),
                 (b'{"type":"subscribe","job":999999,"items":true}', "not_found"),
                 (b'{"type":"subscribe","job":1}', "bad_message")]
        for payload, code in cases:
            ws.send_frame(TEXT, payload)
            while True:
                message = ws.recv_json()
                if message["type"] == "error":
                    break
            self.assertEqual(message["code"], code, payload)
        ws.send_frame(BINARY, b"\x00\x01")
        while True:
            message = ws.recv_json()
            if message["type"] == "error":
                break
        self.assertEqual(message["code"], "bad_message")
        ws.send_json({"type": "ping"})  # still open
        while ws.recv_json()["type"] != "pong":
            pass


class KeepAliveTest(unittest.TestCase):
    """Beast's suggested server timeouts, with --ws-idle-timeout 4: a socket
    the server has read nothing from for 2 s gets a protocol ping; one silent
    for 4 s is dropped; one that answers its pings stays open."""

    @classmethod
    def setUpClass(cls):
        cls.live = live.LiveServer(cls, ["--ws-idle-timeout", "4"])

    @classmethod
    def tearDownClass(cls):
        cls.live.close()

    def open(self):
        ws = live.RawWebSocket(self.live.port, f"/api/litchi/{self.live.admin_token}", timeout=20)
        self.addCleanup(ws.close)
        self.assertEqual(ws.handshake(), 101)
        self.assertEqual(ws.recv_json()["type"], "hello")
        return ws

    def test_silent_client_is_pinged_then_dropped(self):
        ws = self.open()
        opened = time.monotonic()
        fin, opcode, payload = ws.recv_frame()  # nothing else is going on: the next frame is the ping
        self.assertEqual(opcode, PING)
        self.assertGreaterEqual(time.monotonic() - opened, 1.0, "pinged long before half the idle timeout")
        # Never answer: the server gives up after the idle timeout, without a close
        # handshake (a peer that answers nothing would not answer that either).
        with self.assertRaises((EOFError, ConnectionResetError)):
            while True:
                ws.recv_frame()
        self.assertGreaterEqual(time.monotonic() - opened, 3.0, "dropped before the idle timeout")

    def test_client_that_answers_pings_stays_open(self):
        ws = self.open()
        opened = time.monotonic()
        pings = 0
        ws.sock.settimeout(1.0)
        while time.monotonic() - opened < 9:  # over twice the idle timeout
            try:
                fin, opcode, payload = ws.recv_frame()
            except TimeoutError:
                continue
            if opcode == PING:
                pings += 1
                ws.send_frame(PONG, payload)
        self.assertGreaterEqual(pings, 2)
        ws.sock.settimeout(20)
        ws.send_json({"type": "ping"})
        while ws.recv_json()["type"] != "pong":
            pass


if __name__ == "__main__":
    unittest.main()
