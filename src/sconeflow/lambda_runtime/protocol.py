"""The framing between the runtime and its worker processes (standard library only).

Runtime -> worker: ``>II`` (header length, payload length), the JSON header, the payload bytes.
Worker -> runtime: ``>III`` (header length, payload length, log length), header, payload, log text.
(The worker sends its log through a file instead, see ``worker._Capture``, so the log part is empty.)
One ``os.write`` per message, so a message is never interleaved with another.
"""

from __future__ import annotations

import json
import os
import select
import struct
import time
from typing import Any

REQUEST = struct.Struct(">II")
RESPONSE = struct.Struct(">III")


class WorkerGone(Exception):
    """The other end closed the pipe (the worker exited or crashed)."""


class WorkerTimeout(Exception):
    """No complete message arrived before the deadline."""


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def read_exact(fd: int, size: int, deadline: float | None = None) -> bytes:
    """Read ``size`` bytes; ``deadline`` is a ``time.monotonic()`` value (None: wait for ever)."""
    chunks: list[bytes] = []
    remaining = size
    poller = None
    while remaining:
        if deadline is not None:
            if poller is None:
                poller = select.poll()
                poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
            wait_ms = max(0, int((deadline - time.monotonic()) * 1000))
            if not poller.poll(wait_ms):
                raise WorkerTimeout()
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise WorkerGone()
        chunks.append(chunk)
        remaining -= len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def encode_request(header: dict[str, Any], payload: bytes) -> bytes:
    head = json.dumps(header, separators=(",", ":")).encode()
    return REQUEST.pack(len(head), len(payload)) + head + payload


def read_request(fd: int) -> tuple[dict[str, Any], bytes]:
    head_len, payload_len = REQUEST.unpack(read_exact(fd, REQUEST.size))
    head = json.loads(read_exact(fd, head_len)) if head_len else {}
    return head, read_exact(fd, payload_len) if payload_len else b""


def encode_response(header: dict[str, Any], payload: bytes, log: bytes) -> bytes:
    head = json.dumps(header, separators=(",", ":")).encode()
    return RESPONSE.pack(len(head), len(payload), len(log)) + head + payload + log


def read_response(fd: int, deadline: float | None) -> tuple[dict[str, Any], bytes, bytes]:
    head_len, payload_len, log_len = RESPONSE.unpack(read_exact(fd, RESPONSE.size, deadline))
    body = read_exact(fd, head_len + payload_len + log_len, deadline)
    head = json.loads(body[:head_len])
    return head, body[head_len : head_len + payload_len], body[head_len + payload_len :]
