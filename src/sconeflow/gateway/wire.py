"""Framework-free request/response values that the per-service ``responses`` modules speak.

The HTTP layer (Starlette in :mod:`sconeflow.gateway.app`) turns each HTTP request into a
:class:`WireRequest`, hands it to the service's ``handle(request) -> WireResponse``, and writes the
answer back. Service modules therefore never see the HTTP framework, and hold no state of their own:
state lives in the domain models (store, function registry, endpoints, state machines).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class WireRequest:
    method: str
    path: str  # URL-decoded path, e.g. "/my-bucket/train/a.png"
    query: Mapping[str, list[str]] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)  # keys lower-cased
    body: bytes = b""

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def query_one(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class WireResponse:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def json(
        cls,
        payload: Any,
        status: int = 200,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> WireResponse:
        all_headers = {"Content-Type": content_type, **(headers or {})}
        return cls(status, all_headers, json.dumps(payload, separators=(",", ":")).encode())
