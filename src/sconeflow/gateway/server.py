"""The gateway's HTTP/1.1 server: threaded, keep-alive, TCP_NODELAY, one write per response.

A blocking thread per connection suits what the gateway forwards to (store I/O, Lambda workers, endpoint
servers) and keeps a warm request well under a millisecond of server overhead. ``serve`` runs it in the
foreground (``sconeflow up``); ``start_in_process`` runs it in a daemon thread (used by the Lambda runtime
when no gateway is up, and by tests).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import socket
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from urllib.parse import parse_qs, unquote

from sconeflow.config import Settings
from sconeflow.errors import SconeflowError
from sconeflow.gateway.router import Router
from sconeflow.gateway.wire import WireRequest, WireResponse

log = logging.getLogger(__name__)

# The largest body read into memory. S3 takes up to 5 GB in one PutObject; above this a client must use
# multipart uploads (boto3's upload_file and the AWS CLI do from 8 MB). Lambda and SageMaker cap at 6 MB.
MAX_BODY = 64 * 1024 * 1024
MAX_LINE = 64 * 1024
MAX_HEADERS = 200
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class GatewayError(SconeflowError):
    """The gateway could not be started or reached."""


class GatewayNotRunning(GatewayError):
    """No gateway is running for this home."""


class PortInUse(GatewayError):
    """Another program already listens on the requested port."""


class InvalidListenAddress(GatewayError):
    """The --host / --port to listen on is not an address of this machine."""


class _BadRequest(Exception):
    pass


class _TooLarge(_BadRequest):
    pass


def _declared_length(headers: dict[str, str]) -> int:
    try:
        return int(headers.get("content-length") or 0)
    except ValueError:
        raise _BadRequest("malformed Content-Length") from None


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


class _Handler(socketserver.StreamRequestHandler):
    """A lean HTTP/1.1 connection handler: keep-alive, Expect: 100-continue, chunked bodies.

    ``http.server`` parses headers with the email package, which costs more than everything else the
    gateway does for a small request; headers here are split by hand.
    """

    rbufsize = 1 << 16
    wbufsize = 0
    disable_nagle_algorithm = True
    server: _Server

    def handle(self) -> None:
        try:
            while self._handle_one():
                pass
        except (ConnectionError, TimeoutError, OSError):
            return

    def _handle_one(self) -> bool:
        line = self.rfile.readline(MAX_LINE + 1)
        while line in (b"\r\n", b"\n"):  # tolerate stray blank lines between requests
            line = self.rfile.readline(MAX_LINE + 1)
        if not line:
            return False
        try:
            method, target, version = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
            headers = self._read_headers()
        except (ValueError, _BadRequest):
            self._send("GET", WireResponse.json({"message": "malformed HTTP request"}, status=400), False)
            return False
        connection = headers.get("connection", "").lower()
        keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        path, _, query = target.partition("?")
        if path.startswith(("http://", "https://")):  # absolute-form request target
            path = "/" + path.split("/", 3)[-1] if path.count("/") >= 3 else "/"
        request = WireRequest(
            method=method,
            path=unquote(path),
            query=parse_qs(query, keep_blank_values=True),
            headers=headers,
            body=b"",
        )
        try:
            if _declared_length(headers) > MAX_BODY:  # answer before the client sends it (no 100 Continue)
                raise _TooLarge
            if headers.get("expect", "").lower() == "100-continue":
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            request = dataclasses.replace(request, body=self._read_body(headers))
        except _TooLarge:
            self._send(method, self.server.router.too_large(request, MAX_BODY), False)
            return False
        except _BadRequest as exc:
            self._send(method, WireResponse.json({"message": str(exc)}, status=400), False)
            return False
        self._send(method, self.server.router.dispatch(request), keep_alive)
        log.debug("%s %s %s", method, target, version)
        return keep_alive

    def _read_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS):
            raw = self.rfile.readline(MAX_LINE + 1)
            if raw in (b"\r\n", b"\n", b""):
                return headers
            if len(raw) > MAX_LINE:
                raise _BadRequest("header line too long")
            name, sep, value = raw.decode("latin-1").partition(":")
            if not sep:
                raise _BadRequest("malformed header line")
            key = name.strip().lower()
            value = value.strip()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        raise _BadRequest("too many headers")

    def _read_body(self, headers: dict[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks = []
            total = 0
            while True:
                size_line = self.rfile.readline(MAX_LINE + 1)
                try:
                    size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                except ValueError:
                    raise _BadRequest("malformed chunk size") from None
                if size == 0:
                    while self.rfile.readline(MAX_LINE + 1) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    raise _TooLarge
                chunks.append(self.rfile.read(size))
                self.rfile.readline(MAX_LINE + 1)
        length = _declared_length(headers)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, method: str, response: WireResponse, keep_alive: bool) -> None:
        headers = dict(response.headers)
        if not any(k.lower() == "content-length" for k in headers):
            headers["Content-Length"] = str(len(response.body))
        headers.setdefault("Date", formatdate(usegmt=True))
        headers.setdefault("Server", "sconeflow")
        if not keep_alive:
            headers["Connection"] = "close"
        head = f"HTTP/1.1 {response.status} {_reason(response.status)}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()
        )
        data = (head + "\r\n").encode("latin-1", "replace")
        self.wfile.write(data if method == "HEAD" else data + response.body)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], router: Router) -> None:
        self.router = router
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)


def bind(settings: Settings, host: str = "127.0.0.1", port: int = 0) -> tuple[_Server, str]:
    """Bind the server (port 0: a free one) and return it with its URL; the router knows its own URL."""
    if not 0 <= port <= 65535:
        raise InvalidListenAddress(f"port {port} is not a TCP port (0-65535; 0 picks a free one)")
    router = Router(settings)
    try:
        server = _Server((host, port), router)
    except OSError as exc:
        router.close()
        message = f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
            raise InvalidListenAddress(message) from exc
        if exc.errno == errno.EADDRINUSE:
            message += " (another program listens there; --port 0 picks a free port)"
        raise PortInUse(message) from exc
    bound_host, bound_port = server.server_address[:2]
    shown = "127.0.0.1" if bound_host in ("0.0.0.0", "") else bound_host
    shown = f"[{shown}]" if ":" in str(shown) else shown
    url = f"http://{shown}:{bound_port}"
    router.self_url = url
    return server, url


@dataclass
class InProcessGateway:
    url: str
    server: _Server
    thread: threading.Thread

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.server.router.close()
        self.thread.join(timeout=5)


def start_in_process(settings: Settings, host: str = "127.0.0.1", port: int = 0) -> InProcessGateway:
    """Serve the gateway from a daemon thread of this process (tests, the Lambda runtime's fallback)."""
    server, url = bind(settings, host, port)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.2},
        name=f"sconeflow-gateway-{url}",
        daemon=True,
    )
    thread.start()
    return InProcessGateway(url, server, thread)


@contextlib.contextmanager
def running_gateway(settings: Settings) -> Iterator[InProcessGateway]:
    gateway = start_in_process(settings)
    try:
        yield gateway
    finally:
        gateway.close()
