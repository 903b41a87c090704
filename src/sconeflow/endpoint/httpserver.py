"""The endpoint's HTTP/1.1 server: ``asyncio.Protocol`` + httptools, keep-alive, one write per response.

A purpose-built replacement for uvicorn + ASGI on the endpoint's hot path: an invocation costs one
``data_received`` (httptools parses in C), one call into the application, and one ``transport.write``
of the whole response, with no ASGI message dicts, no task per request and no header-list copies.
TCP_NODELAY is set on every connection, so a response leaves at once.

This module holds no endpoint state and makes no endpoint decision: it turns bytes into
:class:`Request` values, asks the :class:`Application` twice (``early`` once the headers are in, so
throttling and header errors are answered without buffering the body; ``handle`` once the body is
complete) and writes back the :class:`Response` the application hands to ``respond``, possibly later
(after a micro-batch). Requests on one connection are answered in order (pipelined requests wait).

Also: ``Expect: 100-continue``, chunked request bodies (httptools de-chunks), a body-size cap
(bytes beyond it are counted and discarded, never buffered), an idle keep-alive timeout, and a
graceful :meth:`HttpServer.shutdown` that stops accepting, lets every request in flight finish, then
closes the connections.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, Protocol

import httptools

log = logging.getLogger(__name__)

MAX_PIPELINED = 32  # requests waiting behind the one in flight before reading pauses


class Request:
    """One parsed request. ``state`` is the application's (set in ``early``, read in ``handle``)."""

    __slots__ = (
        "body",
        "body_size",
        "early_response",
        "headers",
        "keep_alive",
        "method",
        "path",
        "query",
        "state",
    )

    def __init__(self, method: str, path: str, query: str, headers: dict[str, str], keep_alive: bool) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers  # lowercase names; repeated headers joined with ","
        self.keep_alive = keep_alive
        self.body = b""
        self.body_size = 0  # bytes received, including any discarded beyond the cap
        self.early_response: Response | None = None
        self.state: Any = None


class Response:
    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(
        self,
        status: int,
        body: bytes = b"",
        content_type: str = "application/json",
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers


Respond = Callable[[Response], None]


class Application(Protocol):
    max_body: int  # bytes of a request body kept; more are discarded (``Request.body_size`` tells)

    def early(self, request: Request) -> Response | None:
        """Headers are in (no body yet): a response to answer with at once, or None to read the body."""

    def handle(self, request: Request, respond: Respond) -> None:
        """The complete request: call ``respond`` exactly once, now or later, on the event-loop thread."""


# -- response formatting ------------------------------------------------------------------------------

_STATUS_LINES: dict[int, bytes] = {}
_date_cache: list[Any] = [0, b""]


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        line = _STATUS_LINES[status] = f"HTTP/1.1 {status} {reason}\r\n".encode("ascii")
    return line


def _date_header() -> bytes:
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[0] = now
        _date_cache[1] = f"Date: {formatdate(now, usegmt=True)}\r\nServer: sconeflow\r\n".encode("ascii")
    return _date_cache[1]


def format_response(response: Response, *, keep_alive: bool, head_only: bool = False) -> bytes:
    """Status line, headers and body as one bytes object (one ``write``, one segment when small)."""
    parts = [
        _status_line(response.status),
        _date_header(),
        b"Content-Type: ",
        response.content_type.encode("latin-1"),
        b"\r\nContent-Length: ",
        str(len(response.body)).encode("ascii"),
        b"\r\n",
    ]
    for name, value in response.headers:
        parts.append(f"{name}: {value}\r\n".encode("latin-1", "replace"))
    parts.append(b"\r\n" if keep_alive else b"Connection: close\r\n\r\n")
    if not head_only:
        parts.append(response.body)
    return b"".join(parts)


# -- one connection -------------------------------------------------------------------------------------


class _Connection(asyncio.Protocol):
    """Parses requests with httptools and answers them in order; holds no application state."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.app = server.app
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.header_list: list[tuple[bytes, bytes]] = []
        self.request: Request | None = None  # being parsed
        self.chunks: list[bytes] = []
        self.current: Request | None = None  # being answered
        self.waiting: deque[Request] = deque()
        self.last_active = time.monotonic()
        self.paused = False

    # -- asyncio.Protocol ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.transport = None
        self.waiting.clear()

    def data_received(self, data: bytes) -> None:
        self.last_active = time.monotonic()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, "protocol upgrades are not supported")
        except httptools.HttpParserError as exc:
            self._fail(400, f"malformed HTTP request: {exc}")

    def _fail(self, status: int, message: str) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        body = ('{"message":"' + message.replace('"', "'").replace("\\", "/") + '"}').encode("latin-1")
        self.transport.write(format_response(Response(status, body), keep_alive=False))
        self.transport.close()

    # -- httptools callbacks ---------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.url = b""
        self.header_list = []
        self.chunks = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_list.append((name, value))

    def on_headers_complete(self) -> None:
        headers: dict[str, str] = {}
        for raw_name, raw_value in self.header_list:
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1").strip()
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        target = self.url.decode("latin-1")
        path, _, query = target.partition("?")
        if path.startswith(("http://", "https://")):  # absolute-form request target
            path = "/" + path.split("/", 3)[3] if path.count("/") >= 3 else "/"
        request = Request(
            self.parser.get_method().decode("ascii"), path, query, headers, self.parser.should_keep_alive()
        )
        try:
            request.early_response = self.app.early(request)
        except Exception:  # an application bug must not take the connection down silently
            log.exception("early() failed")
            request.early_response = Response(500, b'{"message":"internal error"}')
        self.request = request
        if headers.get("expect", "").lower() == "100-continue" and self.transport is not None:
            if request.early_response is None:
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            elif self.current is None and not self.waiting:
                self._refuse_before_body(self.transport, request.early_response)

    def _refuse_before_body(self, transport: asyncio.Transport, response: Response) -> None:
        """Answer an ``Expect: 100-continue`` request refused from its headers at once, then close.

        RFC 9110 10.1.1: the server may send the final status instead of 100 Continue. The client then
        never sends the body (waiting for it made curl, which expects 100-continue above 1 MiB, stall a
        second and upload a body only to have it discarded); as the body was announced but will not
        follow, the connection cannot carry another request and is closed.
        """
        transport.write(format_response(response, keep_alive=False))
        transport.close()
        self.request = None  # a body sent anyway is parsed and dropped

    def on_body(self, body: bytes) -> None:
        request = self.request
        if request is None:
            return
        request.body_size += len(body)
        if request.early_response is None and request.body_size <= self.app.max_body:
            self.chunks.append(body)

    def on_message_complete(self) -> None:
        request = self.request
        self.request = None
        if request is None:
            return
        chunks = self.chunks
        if chunks and request.body_size <= self.app.max_body:
            request.body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self.chunks = []
        if self.current is None:
            self._dispatch(request)
        else:
            self.waiting.append(request)
            if len(self.waiting) > MAX_PIPELINED and self.transport is not None and not self.paused:
                self.paused = True
                self.transport.pause_reading()

    # -- answering ---------------------------------------------------------------------------------
    def _dispatch(self, request: Request) -> None:
        self.current = request
        if request.early_response is not None:
            self.respond(request.early_response)
            return
        try:
            self.app.handle(request, self.respond)
        except Exception:
            log.exception("handle() failed")
            if self.current is request:
                self.respond(Response(500, b'{"message":"internal error"}'))

    def respond(self, response: Response) -> None:
        """Write the answer to the request in flight, then start on the next one waiting."""
        request = self.current
        if request is None:
            return
        self.current = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        keep_alive = request.keep_alive and not self.server.closing
        transport.write(format_response(response, keep_alive=keep_alive, head_only=request.method == "HEAD"))
        self.last_active = time.monotonic()
        if not keep_alive:
            transport.close()
            return
        if self.waiting:
            if self.paused and len(self.waiting) <= MAX_PIPELINED // 2:
                self.paused = False
                transport.resume_reading()
            self._dispatch(self.waiting.popleft())

    @property
    def idle(self) -> bool:
        return self.current is None and self.request is None and not self.waiting

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


# -- the server -----------------------------------------------------------------------------------------


class HttpServer:
    """Serves one :class:`Application` on a listening socket of the running event loop."""

    def __init__(self, app: Application, *, keep_alive_timeout: float = 75.0) -> None:
        self.app = app
        self.keep_alive_timeout = keep_alive_timeout
        self.connections: set[_Connection] = set()
        self.closing = False
        self._server: asyncio.base_events.Server | None = None
        self._reaper: asyncio.Task[None] | None = None

    async def start(self, host: str, port: int, *, backlog: int = 2048) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), host, port, backlog=backlog, reuse_address=True
        )
        self._reaper = loop.create_task(self._reap_idle())
        return int(self._server.sockets[0].getsockname()[1])

    async def _reap_idle(self) -> None:
        period = max(0.05, min(10.0, self.keep_alive_timeout / 4))
        while True:
            await asyncio.sleep(period)
            cutoff = time.monotonic() - self.keep_alive_timeout
            for connection in list(self.connections):
                if connection.idle and connection.last_active < cutoff:
                    connection.close()

    async def shutdown(self, timeout: float = 25.0) -> None:
        """Stop accepting; answer every request in flight (closing each connection after it); close."""
        self.closing = True
        if self._server is not None:
            self._server.close()
        deadline = time.monotonic() + timeout
        while True:
            for connection in list(self.connections):
                if connection.idle:
                    connection.close()
            if not self.connections or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.01)
        for connection in list(self.connections):
            connection.close()
        if self._reaper is not None:
            self._reaper.cancel()
        if self._server is not None:
            await self._server.wait_closed()
