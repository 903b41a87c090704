"""Which AWS service a request is for, and the per-service handlers (created lazily, holding no state).

The service comes from the SigV4 credential scope (``Credential=AKID/date/region/<service>/aws4_request``,
header or presigned query), then ``X-Amz-Target``, then the path: this is how one port serves S3, Lambda,
SageMaker Runtime and Step Functions, as LocalStack does.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from typing import Any

from sconeflow.config import Settings
from sconeflow.gateway.wire import WireRequest, WireResponse

log = logging.getLogger(__name__)

HEALTH_PATH = "/_sconeflow/health"
_SCOPE_RE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_SAGEMAKER_PATH_RE = re.compile(r"^/endpoints/[^/]+/(async-)?invocations$")


def detect_service(request: WireRequest) -> str:
    """One of ``s3``, ``lambda``, ``sagemaker``, ``states``."""
    target = request.header("x-amz-target") or ""
    if target.startswith("AWSStepFunctions."):
        return "states"
    scope = request.header("authorization") or request.query_one("X-Amz-Credential") or ""
    match = _SCOPE_RE.search(scope if "Credential=" in scope else f"Credential={scope}")
    if match:
        service = match.group(1)
        return {"runtime.sagemaker": "sagemaker"}.get(service, service)
    if request.path.startswith("/2015-03-31/"):
        return "lambda"
    if request.method == "POST" and _SAGEMAKER_PATH_RE.match(request.path):
        return "sagemaker"
    return "s3"


class Router:
    """Dispatches a WireRequest to the right service handler."""

    def __init__(self, settings: Settings, self_url: str | None = None) -> None:
        self.settings = settings
        self.self_url = self_url
        self._lock = threading.Lock()
        self._handlers: dict[str, Any] = {}

    def _handler(self, service: str) -> Any:
        handler = self._handlers.get(service)
        if handler is not None:
            return handler
        with self._lock:
            handler = self._handlers.get(service)
            if handler is None:
                handler = self._handlers[service] = self._make(service)
        return handler

    def _make(self, service: str) -> Any:
        if service == "s3":
            from sconeflow.gateway.s3_responses import S3Handler
            from sconeflow.store import open_store

            return S3Handler(self.settings, open_store(self.settings.resolved_store_uri))
        if service == "lambda":
            from sconeflow.lambda_runtime.responses import LambdaHandler
            from sconeflow.lambda_runtime.runtime import LambdaRuntime

            return LambdaHandler(self.settings, LambdaRuntime(self.settings, endpoint_url=self.self_url))
        if service == "sagemaker":
            from sconeflow.gateway.sagemaker_runtime import SageMakerRuntimeHandler

            return SageMakerRuntimeHandler(self.settings)
        if service == "states":
            return _StepFunctionsHandler(self.settings)
        raise KeyError(service)

    def dispatch(self, request: WireRequest) -> WireResponse:
        if request.path == HEALTH_PATH:
            return WireResponse.json({"status": "ok", "url": self.self_url})
        service = detect_service(request)
        try:
            handler = self._handler(service)
        except KeyError:
            return WireResponse.json(
                {
                    "__type": "UnknownServiceException",
                    "message": f"sconeflow does not serve AWS service {service!r}",
                },
                status=400,
                headers={"x-amzn-ErrorType": "UnknownServiceException"},
            )
        try:
            return handler.handle(request)
        except Exception as exc:
            log.exception("%s %s failed", request.method, request.path)
            return WireResponse.json(
                {"__type": "InternalFailure", "message": f"{type(exc).__name__}: {exc}"},
                status=500,
                headers={"x-amzn-ErrorType": "InternalFailure", "x-amzn-RequestId": str(uuid.uuid4())},
            )

    def too_large(self, request: WireRequest, limit: int) -> WireResponse:
        """The answer to a request whose body exceeds ``limit`` bytes, in its service's error shape
        (``request`` carries the method, path and headers; its body was never read)."""
        if detect_service(request) == "s3":
            from sconeflow.gateway.s3_responses import entity_too_large

            return entity_too_large(request, limit)
        message = f"Request must be smaller than {limit} bytes for this local gateway"
        return WireResponse.json(
            {"__type": "RequestTooLargeException", "message": message},
            status=413,
            headers={"x-amzn-ErrorType": "RequestTooLargeException"},
        )

    def close(self) -> None:
        lambda_handler = self._handlers.get("lambda")
        if lambda_handler is not None:
            lambda_handler.runtime.close()


class _StepFunctionsHandler:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def handle(self, request: WireRequest) -> WireResponse:
        try:
            from sconeflow.stepfunctions.responses import handle
        except ImportError as exc:
            return WireResponse.json(
                {"__type": "ServiceUnavailable", "message": f"Step Functions is not available: {exc}"},
                status=503,
                headers={"x-amzn-ErrorType": "ServiceUnavailable"},
                content_type="application/x-amz-json-1.0",
            )
        return handle(self.settings, request)
