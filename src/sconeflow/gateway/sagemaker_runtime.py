"""SageMaker Runtime InvokeEndpoint: forwarded by endpoint name to the endpoint's own server.

The endpoint server speaks the runtime API itself (headers, ``x-amzn-ErrorType`` errors), so the
answer is passed back unchanged. Only the errors before the endpoint is reached are made here.
"""

from __future__ import annotations

import http.client
import logging
import re
import threading
import uuid
from urllib.parse import quote, urlsplit

from sconeflow.config import Settings
from sconeflow.errors import SconeflowError
from sconeflow.gateway.wire import WireRequest, WireResponse

log = logging.getLogger(__name__)

_PATH_RE = re.compile(r"^/endpoints/(?P<name>[^/]+)/(?P<op>invocations|async-invocations)$")
_FORWARD = ("content-type", "accept")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "date", "server"}
FORWARD_TIMEOUT_S = 60.0  # SageMaker gives a container 60 s to answer, then fails the invocation
TIMED_OUT = (
    "Your invocation timed out while waiting for a response from container primary. Review the latency "
    "metrics for each container in Amazon CloudWatch, resolve the issue, and try again."
)


def _error(code: str, message: str, status: int) -> WireResponse:
    return WireResponse.json(
        {"message": message},
        status=status,
        headers={"x-amzn-ErrorType": code, "x-amzn-RequestId": str(uuid.uuid4())},
    )


class SageMakerRuntimeHandler:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._local = threading.local()

    def handle(self, request: WireRequest) -> WireResponse:
        match = _PATH_RE.match(request.path)
        if not match or request.method != "POST":
            return _error(
                "UnknownOperationException",
                f"unsupported SageMaker Runtime call {request.method} {request.path}",
                404,
            )
        if match.group("op") != "invocations":
            return _error("ValidationError", "InvokeEndpointAsync is not supported locally", 400)
        name = match.group("name")
        try:
            from sconeflow.endpoint.registry import resolve_endpoint_url
        except ImportError:
            return _error("ServiceUnavailable", "the endpoint stage is not installed", 503)
        try:
            base = resolve_endpoint_url(self.settings, name)
        except SconeflowError as exc:
            if type(exc).__name__ == "EndpointNotFound":
                return _error(
                    "ValidationError", f"Endpoint {name} of account {self.settings.account} not found.", 400
                )
            return _error("ValidationError", str(exc), 400)
        try:
            return self._forward(base, name, request)
        except TimeoutError:
            self._drop(base)
            return self._timed_out(name)
        except (OSError, http.client.HTTPException) as exc:
            self._drop(base)
            return _error(
                "ServiceUnavailable", f"the server of endpoint {name} at {base} did not answer: {exc}", 503
            )

    def _timed_out(self, name: str) -> WireResponse:
        """SageMaker's answer when the container does not respond within 60 s: 424 ModelError, status 0."""
        from sconeflow.endpoint.errors import ModelError
        from sconeflow.endpoint.server import error_body

        error = ModelError(
            f'Received server error (0) from primary with message "{TIMED_OUT}"',
            original_status=0,
            original_message=TIMED_OUT,
        )
        return WireResponse.json(
            error_body(error, endpoint=name, settings=self.settings),
            status=error.status,
            headers={"x-amzn-ErrorType": error.code, "x-amzn-RequestId": str(uuid.uuid4())},
        )

    def _connection(self, base: str) -> http.client.HTTPConnection:
        cache: dict[str, http.client.HTTPConnection] = self._local.__dict__.setdefault("conns", {})
        conn = cache.get(base)
        if conn is None:
            parts = urlsplit(base)
            conn = http.client.HTTPConnection(
                parts.hostname or "127.0.0.1", parts.port or 80, timeout=FORWARD_TIMEOUT_S
            )
            cache[base] = conn
        return conn

    def _drop(self, base: str) -> None:
        conn = self._local.__dict__.get("conns", {}).pop(base, None)
        if conn is not None:
            conn.close()

    def _forward(self, base: str, name: str, request: WireRequest) -> WireResponse:
        headers = {
            k: v for k, v in request.headers.items() if k in _FORWARD or k.startswith("x-amzn-sagemaker-")
        }
        headers["Content-Length"] = str(len(request.body))
        path = urlsplit(base).path.rstrip("/") + f"/endpoints/{quote(name, safe='')}/invocations"
        for attempt in (1, 2):
            conn = self._connection(base)
            try:
                conn.request("POST", path, body=request.body, headers=headers)
                response = conn.getresponse()
                body = response.read()
                break
            except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
                # a kept-alive connection the server closed: retry once on a fresh one
                self._drop(base)
                if attempt == 2:
                    raise
        out_headers = {k: v for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP}
        if response.getheader("connection", "").lower() == "close":
            self._drop(base)
        return WireResponse(response.status, out_headers, body)
