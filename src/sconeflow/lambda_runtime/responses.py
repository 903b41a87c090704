"""The Lambda REST-JSON wire layer: Invoke, ListFunctions, GetFunction, GetFunctionConfiguration.

Speaks :class:`~sconeflow.gateway.wire.WireRequest` / ``WireResponse``; all state lives in the registry
and the runtime. Errors: header ``x-amzn-ErrorType`` and body ``{"Type": "User", "Message": ...}``.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

from sconeflow.config import Settings
from sconeflow.gateway.wire import WireRequest, WireResponse
from sconeflow.lambda_runtime.errors import InvalidParameterValue, LambdaError
from sconeflow.lambda_runtime.registry import LATEST, FunctionConfig, parse_function_name
from sconeflow.lambda_runtime.runtime import LambdaRuntime

PREFIX = "/2015-03-31/functions"
_INVOKE_RE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations/?$")
_FUNCTION_RE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)(?P<config>/configuration)?/?$")


def error_response(exc: LambdaError) -> WireResponse:
    return WireResponse.json(
        {"Type": "User", "Message": str(exc)},
        status=exc.http_status,
        headers={"x-amzn-ErrorType": exc.aws_code, "x-amzn-RequestId": str(uuid.uuid4())},
    )


def function_configuration(settings: Settings, config: FunctionConfig) -> dict[str, Any]:
    sha = hashlib.sha256(repr(config.fingerprint).encode()).digest()
    import base64

    return {
        "FunctionName": config.name,
        "FunctionArn": config.arn(settings),
        "Runtime": config.runtime,
        "Role": f"arn:aws:iam::{settings.account}:role/sconeflow-lambda",
        "Handler": config.handler,
        "CodeSize": 0,
        "Description": config.description,
        "Timeout": config.timeout,
        "MemorySize": config.memory_size,
        "LastModified": config.last_modified,
        "CodeSha256": base64.b64encode(sha).decode(),
        "Version": LATEST,
        "Environment": {"Variables": dict(config.environment)},
        "TracingConfig": {"Mode": "PassThrough"},
        "RevisionId": str(uuid.UUID(bytes=sha[:16])),
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Zip",
        "Architectures": ["x86_64"],
        "EphemeralStorage": {"Size": 512},
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{config.name}"},
    }


class LambdaHandler:
    def __init__(self, settings: Settings, runtime: LambdaRuntime) -> None:
        self.settings = settings
        self.runtime = runtime

    def handle(self, request: WireRequest) -> WireResponse:
        try:
            return self._dispatch(request)
        except LambdaError as exc:
            return error_response(exc)

    def _dispatch(self, request: WireRequest) -> WireResponse:
        path = request.path
        match = _INVOKE_RE.match(path)
        if match and request.method == "POST":
            return self.invoke(request, match.group("name"))
        if request.method == "GET" and path.rstrip("/") == PREFIX:
            return self.list_functions(request)
        match = _FUNCTION_RE.match(path)
        if match and request.method == "GET":
            name, qualifier = parse_function_name(match.group("name"), request.query_one("Qualifier"))
            config = self.runtime.registry.get(name, qualifier)
            configuration = function_configuration(self.settings, config)
            if match.group("config"):
                return WireResponse.json(configuration)
            return WireResponse.json(
                {
                    "Configuration": configuration,
                    "Code": {"RepositoryType": "S3", "Location": f"file://{config.code_path}"},
                }
            )
        raise InvalidParameterValue(f"unsupported Lambda operation {request.method} {path}")

    def list_functions(self, request: WireRequest) -> WireResponse:
        functions = self.runtime.registry.list()
        marker = request.query_one("Marker")
        start = int(marker) if marker and marker.isdigit() else 0
        try:
            limit = max(1, min(50, int(request.query_one("MaxItems", "50") or 50)))
        except ValueError:
            raise InvalidParameterValue("MaxItems must be an integer") from None
        page = functions[start : start + limit]
        body: dict[str, Any] = {"Functions": [function_configuration(self.settings, f) for f in page]}
        if start + limit < len(functions):
            body["NextMarker"] = str(start + limit)
        return WireResponse.json(body)

    def invoke(self, request: WireRequest, name: str) -> WireResponse:
        result = self.runtime.invoke(
            name,
            request.body,
            request.header("x-amz-invocation-type") or "RequestResponse",
            qualifier=request.query_one("Qualifier"),
            log_type=request.header("x-amz-log-type"),
            client_context=request.header("x-amz-client-context"),
        )
        headers = {
            "Content-Type": "application/json",
            "x-amzn-RequestId": result.request_id,
            "x-amzn-Remapped-Content-Length": "0",
            "X-Amzn-Trace-Id": f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]};Sampled=0",
        }
        if result.status_code == 200:
            headers["X-Amz-Executed-Version"] = result.executed_version
        if result.function_error:
            headers["X-Amz-Function-Error"] = result.function_error
        if result.log_result:
            headers["X-Amz-Log-Result"] = result.log_result
        return WireResponse(result.status_code, headers, result.payload)
