"""The endpoint's HTTP/1.1 layer on its own: keep-alive, pipelining, chunked bodies, Expect, early answers,
body cap, malformed requests, deferred answers and graceful shutdown (with a small echo application)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator

import pytest

from sconeflow.endpoint.httpserver import HttpServer, Request, Respond, Response


class EchoApp:
    """Answers with what it saw; ``/slow`` answers 50 ms later; ``/reject`` is refused from its headers."""

    max_body = 1000

    def __init__(self) -> None:
        self.slow_started = threading.Event()

    def early(self, request: Request) -> Response | None:
        if request.path == "/reject":
            return Response(429, b'{"message":"no"}', headers=(("x-amzn-ErrorType", "ThrottlingException"),))
        return None

    def handle(self, request: Request, respond: Respond) -> None:
        seen = {
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "body": request.body.decode("latin-1"),
            "size": request.body_size,
            "type": request.headers.get("content-type"),
        }
        answer = Response(200, json.dumps(seen).encode())
        if request.path == "/slow":
            self.slow_started.set()
            asyncio.get_running_loop().call_later(0.05, respond, answer)
        else:
            respond(answer)


class Running:
    def __init__(self) -> None:
        self.app = EchoApp()
        self.loop = asyncio.new_event_loop()
        self.server = HttpServer(self.app, keep_alive_timeout=0.3)
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.port = self.loop.run_until_complete(self.server.start("127.0.0.1", 0))
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert started.wait(10)

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        return sock

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.shutdown(timeout=5), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def running() -> Iterator[Running]:
    server = Running()
    yield server
    server.stop()


def read_response(sock: socket.socket, buffer: bytearray) -> tuple[int, dict[str, str], bytes]:
    """One response from ``sock`` (leftover bytes stay in ``buffer``)."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a response")
        buffer += chunk
    end = buffer.index(b"\r\n\r\n")
    head = buffer[:end].decode("latin-1").split("\r\n")
    del buffer[: end + 4]
    status = int(head[0].split(" ")[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:])}
    length = int(headers.get("content-length", "0"))
    while len(buffer) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed mid-body")
        buffer += chunk
    body = bytes(buffer[:length])
    del buffer[:length]
    return status, headers, body


def post(path: str, body: bytes, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: {len(body)}\r\n"
        f"{extra}\r\n"
    ).encode() + body


def test_keep_alive_and_pipelined_requests_are_answered_in_order(running: Running) -> None:
    sock = running.connect()
    buffer = bytearray()
    sock.sendall(post("/a?x=1", b"one"))
    status, headers, body = read_response(sock, buffer)
    assert status == 200 and headers["content-type"] == "application/json"
    assert json.loads(body) == {
        "method": "POST",
        "path": "/a",
        "query": "x=1",
        "body": "one",
        "size": 3,
        "type": "image/png",
    }
    # three pipelined requests in one segment, the first answered late: answers keep the order
    sock.sendall(post("/slow", b"1") + post("/b", b"2") + post("/c", b"3"))
    answers = [json.loads(read_response(sock, buffer)[2]) for _ in range(3)]
    assert [(a["path"], a["body"]) for a in answers] == [("/slow", "1"), ("/b", "2"), ("/c", "3")]
    sock.close()


def test_chunked_body_expect_continue_and_head(running: Running) -> None:
    sock = running.connect()
    buffer = bytearray()
    sock.sendall(
        b"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
    )
    interim = sock.recv(100)
    assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    buffer += interim[len(b"HTTP/1.1 100 Continue\r\n\r\n") :]
    sock.sendall(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
    status, _, body = read_response(sock, buffer)
    assert status == 200 and json.loads(body)["body"] == "abcde"
    sock.sendall(b"HEAD /ping HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, _ = read_response_head_only(sock, buffer)
    assert status == 200 and int(headers["content-length"]) > 0  # the length a GET would have, no body
    sock.sendall(post("/after-head", b"z"))
    assert json.loads(read_response(sock, buffer)[2])["path"] == "/after-head"
    sock.close()


def read_response_head_only(sock: socket.socket, buffer: bytearray) -> tuple[int, dict[str, str], bytes]:
    while b"\r\n\r\n" not in buffer:
        buffer += sock.recv(65536)
    end = buffer.index(b"\r\n\r\n")
    head = buffer[:end].decode("latin-1").split("\r\n")
    del buffer[: end + 4]
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:])}
    return int(head[0].split(" ")[1]), headers, b""


def test_early_answer_discards_the_body_and_the_connection_stays_usable(running: Running) -> None:
    sock = running.connect()
    buffer = bytearray()
    sock.sendall(post("/reject", b"x" * 5000) + post("/next", b"ok"))
    status, headers, body = read_response(sock, buffer)
    assert status == 429 and headers["x-amzn-errortype"] == "ThrottlingException"
    assert json.loads(body) == {"message": "no"}
    assert json.loads(read_response(sock, buffer)[2])["body"] == "ok"
    sock.close()


def test_body_over_the_cap_is_counted_not_kept(running: Running) -> None:
    sock = running.connect()
    buffer = bytearray()
    sock.sendall(post("/big", b"y" * 5000))
    seen = json.loads(read_response(sock, buffer)[2])
    assert seen["size"] == 5000 and seen["body"] == ""  # the application decides what to answer
    sock.close()


def test_malformed_request_is_a_400_and_closes(running: Running) -> None:
    sock = running.connect()
    buffer = bytearray()
    sock.sendall(b"NOT-HTTP\r\n\r\n")
    status, headers, body = read_response(sock, buffer)
    assert status == 400 and headers["connection"] == "close"
    assert "malformed" in json.loads(body)["message"]
    assert sock.recv(10) == b""
    sock.close()


def test_connection_close_and_http_1_0(running: Running) -> None:
    for request in (
        b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /y HTTP/1.0\r\n\r\n",
    ):
        sock = running.connect()
        buffer = bytearray()
        sock.sendall(request)
        status, headers, _ = read_response(sock, buffer)
        assert status == 200 and headers["connection"] == "close"
        assert sock.recv(10) == b""
        sock.close()


def test_idle_keep_alive_connections_are_closed(running: Running) -> None:
    sock = running.connect()
    buffer = bytearray()
    sock.sendall(post("/a", b"1"))
    assert read_response(sock, buffer)[0] == 200
    sock.settimeout(5)
    assert sock.recv(10) == b""  # closed by the server after keep_alive_timeout (0.3 s)
    sock.close()


def test_shutdown_answers_the_request_in_flight() -> None:
    server = Running()
    sock = server.connect()
    buffer = bytearray()
    sock.sendall(post("/slow", b"last"))
    assert server.app.slow_started.wait(5)
    server.stop()  # while /slow waits for its answer
    status, headers, body = read_response(sock, buffer)
    assert status == 200 and json.loads(body)["body"] == "last"
    assert headers["connection"] == "close"
    sock.close()


def test_expect_continue_refused_from_the_headers_is_answered_before_the_body(running: Running) -> None:
    """RFC 9110 10.1.1: the final status instead of 100 Continue, without waiting for the body."""
    sock = running.connect()
    sock.settimeout(2)
    sock.sendall(
        b"POST /reject HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 7000000\r\n"
        b"Expect: 100-continue\r\n\r\n"
    )
    status, headers, body = read_response(sock, bytearray())  # no body sent: a wait would time out
    assert status == 429 and headers["x-amzn-errortype"] == "ThrottlingException"
    assert headers["connection"] == "close" and json.loads(body) == {"message": "no"}
    assert sock.recv(100) == b""  # closed: the announced body will never follow
    sock.close()
