"""The gateway's HTTP/1.1 server: a threaded stdlib server (keep-alive, TCP_NODELAY, one write per response).

A blocking thread per connection suits what the gateway forwards to (store I/O, Lambda workers, endpoint
servers) and keeps a warm request well under a millisecond of server overhead. ``serve`` runs it in the
foreground (``sconeflow up``); ``start_in_process`` runs it in a daemon thread (used by the Lambda runtime
when no gateway is up, and by tests).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from sconeflow.config import Settings
from sconeflow.errors import SconeflowError
from sconeflow.gateway.router import Router
from sconeflow.gateway.wire import WireRequest, WireResponse

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024 * 1024  # nothing we serve takes more in one request (multipart is not supported)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class GatewayError(SconeflowError):
    """The gateway could not be started or reached."""


class GatewayNotRunning(GatewayError):
    """No gateway is running for this home."""


class PortInUse(GatewayError):
    """Another program already listens on the requested port."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sconeflow"
    sys_version = ""
    server: _Server

    def setup(self) -> None:
        super().setup()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _read_body(self) -> bytes | None:
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            chunks = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return None
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        body = self._read_body()
        if body is None:
            self.close_connection = True
            self._send(WireResponse.json({"message": "request body too large"}, status=413))
            return
        parts = urlsplit(self.path)
        request = WireRequest(
            method=self.command,
            path=unquote(parts.path),
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        self._send(self.server.router.dispatch(request))

    def _send(self, response: WireResponse) -> None:
        status = response.status
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
        lines = [f"HTTP/1.1 {status} {reason}"]
        headers = dict(response.headers)
        names = {k.lower() for k in headers}
        if "content-length" not in names:
            headers["Content-Length"] = str(len(response.body))
        headers.setdefault("Date", self.date_time_string())
        headers.setdefault("Server", "sconeflow")
        if self.close_connection:
            headers["Connection"] = "close"
        lines.extend(f"{k}: {v}" for k, v in headers.items())
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        body = b"" if self.command == "HEAD" else response.body
        self.wfile.write(head + body)
        self.log_request(status, len(body))

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _dispatch


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], router: Router) -> None:
        self.router = router
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.address_family = family
        super().__init__(address, _Handler)


def bind(settings: Settings, host: str = "127.0.0.1", port: int = 0) -> tuple[_Server, str]:
    """Bind the server (port 0: a free one) and return it with its URL; the router knows its own URL."""
    router = Router(settings)
    try:
        server = _Server((host, port), router)
    except OSError as exc:
        router.close()
        raise PortInUse(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
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
