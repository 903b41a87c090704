"""The Lambda REST-JSON wire layer: Invoke, ListFunctions, GetFunction, GetFunctionConfiguration,
CreateFunction, UpdateFunctionCode, UpdateFunctionConfiguration, DeleteFunction.

Speaks :class:`~sconeflow.gateway.wire.WireRequest` / ``WireResponse``; all state lives in the registry
and the runtime. Errors: header ``x-amzn-ErrorType`` and body ``{"Type": "User", "Message": ...}``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from typing import Any

from sconeflow.config import Settings
from sconeflow.gateway.wire import WireRequest, WireResponse
from sconeflow.lambda_runtime.deploy import package_facts, unpack_zip
from sconeflow.lambda_runtime.errors import (
    InvalidParameterValue,
    InvalidRequestContent,
    LambdaError,
    ResourceConflict,
)
from sconeflow.lambda_runtime.registry import LATEST, RUNTIME_NAME, FunctionConfig, parse_function_name
from sconeflow.lambda_runtime.runtime import LambdaRuntime

PREFIX = "/2015-03-31/functions"
_INVOKE_RE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations/?$")
_FUNCTION_RE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)(?P<config>/configuration)?/?$")
_CODE_RE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/code/?$")


def error_response(exc: LambdaError) -> WireResponse:
    return WireResponse.json(
        {"Type": "User", "Message": str(exc)},
        status=exc.http_status,
        headers={"x-amzn-ErrorType": exc.aws_code, "x-amzn-RequestId": str(uuid.uuid4())},
    )


def function_configuration(settings: Settings, config: FunctionConfig) -> dict[str, Any]:
    sha = hashlib.sha256(repr(config.fingerprint).encode()).digest()
    code_sha256, code_size = package_facts(config.code_path)
    return {
        "FunctionName": config.name,
        "FunctionArn": config.arn(settings),
        "Runtime": config.runtime,
        "Role": config.role or f"arn:aws:iam::{settings.account}:role/sconeflow-lambda",
        "Handler": config.handler,
        "CodeSize": code_size,
        "Description": config.description,
        "Timeout": config.timeout,
        "MemorySize": config.memory_size,
        "LastModified": config.last_modified,
        "CodeSha256": code_sha256,
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


def _variables(body: dict[str, Any]) -> dict[str, str]:
    variables = (body.get("Environment") or {}).get("Variables") or {}
    if not isinstance(variables, dict):
        raise InvalidParameterValue("Environment.Variables must be a map of strings")
    return {str(k): str(v) for k, v in variables.items()}


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
        if request.method == "POST" and path.rstrip("/") == PREFIX:
            return self.create_function(request)
        match = _CODE_RE.match(path)
        if match and request.method == "PUT":
            return self.update_code(request, match.group("name"))
        match = _FUNCTION_RE.match(path)
        if match and request.method == "PUT" and match.group("config"):
            return self.update_configuration(request, match.group("name"))
        if match and request.method == "DELETE" and not match.group("config"):
            name, qualifier = parse_function_name(match.group("name"), request.query_one("Qualifier"))
            if qualifier == LATEST:
                message = "$LATEST version cannot be deleted without deleting the function."
                raise InvalidParameterValue(message)
            if qualifier is not None:  # a version or alias: only $LATEST exists locally, so it is not found
                self.runtime.registry.get(name, qualifier)
            self.runtime.registry.delete(name)
            return WireResponse(204, {"x-amzn-RequestId": str(uuid.uuid4())})
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

    # -- deployment ------------------------------------------------------------------------------
    def _json(self, request: WireRequest) -> dict[str, Any]:
        try:
            body = json.loads(request.body or b"{}")
        except ValueError as exc:
            raise InvalidRequestContent(f"Could not parse request body into json: {exc}") from None
        if not isinstance(body, dict):
            raise InvalidRequestContent("Could not parse request body into json: expected an object")
        return body

    def _code_dir(self, name: str, code: dict[str, Any]) -> str:
        if code.get("ZipFile"):
            try:
                data = base64.b64decode(code["ZipFile"], validate=True)
            except (ValueError, TypeError):
                raise InvalidParameterValue("Code.ZipFile is not valid base64") from None
        elif code.get("S3Bucket") and code.get("S3Key"):
            from sconeflow.store import StoreError, open_store

            store = open_store(self.settings.resolved_store_uri)
            try:
                data = store.get_object(code["S3Bucket"], code["S3Key"])
            except StoreError as exc:
                raise InvalidParameterValue(
                    f"Error occurred while GetObject. S3 Error Code: NoSuchKey. S3 Error Message: {exc}"
                ) from None
        else:
            raise InvalidParameterValue(
                "Code must have ZipFile, or S3Bucket and S3Key (ImageUri is not supported)"
            )
        return str(unpack_zip(self.settings, name, data))

    def create_function(self, request: WireRequest) -> WireResponse:
        body = self._json(request)
        name = str(body.get("FunctionName") or "")
        name, _ = parse_function_name(name) if name else ("", None)
        if not name or not body.get("Handler"):
            raise InvalidParameterValue("FunctionName and Handler are required")
        if self.runtime.registry.exists(name):
            raise ResourceConflict(f"Function already exist: {name}")
        config = FunctionConfig(
            name=name,
            handler=str(body["Handler"]),
            code_dir=self._code_dir(name, body.get("Code") or {}),
            environment=_variables(body),
            timeout=int(body.get("Timeout") or 3),
            memory_size=int(body.get("MemorySize") or 128),
            description=str(body.get("Description") or ""),
            runtime=str(body.get("Runtime") or RUNTIME_NAME),
            role=str(body.get("Role") or ""),
        )
        saved = self.runtime.registry.register(config)
        return WireResponse.json(function_configuration(self.settings, saved), status=201)

    def update_code(self, request: WireRequest, name: str) -> WireResponse:
        name, _ = parse_function_name(name)
        self.runtime.registry.get(name)
        code_dir = self._code_dir(name, self._json(request))
        saved = self.runtime.registry.update(name, code_dir=code_dir)
        return WireResponse.json(function_configuration(self.settings, saved))

    def update_configuration(self, request: WireRequest, name: str) -> WireResponse:
        name, _ = parse_function_name(name)
        body = self._json(request)
        current = self.runtime.registry.get(name)
        unset = list(current.environment) if "Environment" in body else []
        saved = self.runtime.registry.update(
            name,
            environment=_variables(body) if "Environment" in body else None,
            unset_env=[k for k in unset if k not in _variables(body)],
            handler=body.get("Handler"),
            timeout=int(body["Timeout"]) if body.get("Timeout") else None,
            memory_size=int(body["MemorySize"]) if body.get("MemorySize") else None,
            description=body.get("Description"),
            runtime=body.get("Runtime"),
            role=body.get("Role"),
        )
        return WireResponse.json(function_configuration(self.settings, saved))

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
