"""The Lambda REST-JSON wire layer: the operations in :data:`IMPLEMENTED_OPERATIONS`.

Speaks :class:`~sconeflow.gateway.wire.WireRequest` / ``WireResponse``; all state lives in the registry
and the runtime. Errors: header ``x-amzn-ErrorType`` and body ``{"Type": "User", "Message": ...}``; an
operation the local service does not implement answers ``501 NotImplemented`` (as the S3 part does)
and changes nothing.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from typing import Any

from sconeflow.config import Settings
from sconeflow.gateway.wire import WireRequest, WireResponse
from sconeflow.lambda_runtime.deploy import unpack_zip
from sconeflow.lambda_runtime.errors import (
    InvalidParameterValue,
    InvalidRequestContent,
    LambdaError,
    NotImplementedOperation,
    ResourceConflict,
)
from sconeflow.lambda_runtime.registry import (
    LATEST,
    RUNTIME_NAME,
    AliasConfig,
    EventInvokeConfig,
    FunctionConfig,
    function_arn,
    parse_function_name,
)
from sconeflow.lambda_runtime.runtime import LambdaRuntime

PREFIX = "/2015-03-31/functions"
_INVOKE_RE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations/?$")
_FUNCTION_RE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)(?P<config>/configuration)?/?$")
_CODE_RE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/code/?$")
_VERSIONS_RE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/versions/?$")
_ALIASES_RE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/aliases(?:/(?P<alias>[^/]+))?/?$")
_EVENT_CONFIG_RE = re.compile(
    r"^/2019-09-25/functions/(?P<name>[^/]+)/event-invoke-config(?P<list>/list)?/?$"
)

# What the local Lambda service answers (docs/lambda.md lists the same); anything else is 501.
IMPLEMENTED_OPERATIONS = (
    "Invoke",
    "ListFunctions",
    "GetFunction",
    "GetFunctionConfiguration",
    "CreateFunction",
    "UpdateFunctionCode",
    "UpdateFunctionConfiguration",
    "DeleteFunction",
    "PublishVersion",
    "ListVersionsByFunction",
    "CreateAlias",
    "GetAlias",
    "UpdateAlias",
    "DeleteAlias",
    "ListAliases",
    "PutFunctionEventInvokeConfig",
    "GetFunctionEventInvokeConfig",
    "UpdateFunctionEventInvokeConfig",
    "DeleteFunctionEventInvokeConfig",
    "ListFunctionEventInvokeConfigs",
)
# Lambda operations that are not implemented, by a path fragment, to name them in the 501 answer.
_UNIMPLEMENTED_HINTS = (
    ("/policy", "AddPermission, GetPolicy or RemovePermission"),
    ("/tags/", "TagResource, UntagResource or ListTags"),
    ("/concurrency", "Put/Get/DeleteFunctionConcurrency"),
    ("/provisioned-concurrency", "provisioned concurrency"),
    ("/event-source-mappings", "the EventSourceMapping operations"),
    ("/url", "the function URL operations"),
    ("/layers", "the layer operations"),
    ("/account-settings", "GetAccountSettings"),
    ("/code-signing-config", "the code signing operations"),
    ("/response-streaming-invocations", "InvokeWithResponseStreaming"),
    ("/recursion-config", "Get/PutFunctionRecursionConfig"),
    ("/runtime-management-config", "Get/PutRuntimeManagementConfig"),
)


def error_response(exc: LambdaError) -> WireResponse:
    return WireResponse.json(
        {"Type": "User", "Message": str(exc)},
        status=exc.http_status,
        headers={"x-amzn-ErrorType": exc.aws_code, "x-amzn-RequestId": str(uuid.uuid4())},
    )


def not_implemented(request: WireRequest) -> NotImplementedOperation:
    hint = next((ops for fragment, ops in _UNIMPLEMENTED_HINTS if fragment in request.path), None)
    what = f"{hint} ({request.method} {request.path})" if hint else f"{request.method} {request.path}"
    return NotImplementedOperation(
        f"A Lambda operation this local service does not implement: {what} is not implemented. "
        f"Implemented: {', '.join(IMPLEMENTED_OPERATIONS)}."
    )


def function_configuration(
    settings: Settings, config: FunctionConfig, qualifier: str | None = None
) -> dict[str, Any]:
    """FunctionConfiguration. The ARN is unqualified for $LATEST unless ``qualifier`` is given (as
    ListVersionsByFunction and a qualified GetFunction answer); a published version's carries its number."""
    code_sha256, code_size = config.code_facts()
    if qualifier is None and config.version != LATEST:
        qualifier = config.version
    return {
        "FunctionName": config.name,
        "FunctionArn": config.arn(settings, qualifier),
        "Runtime": config.runtime,
        "Role": config.role or f"arn:aws:iam::{settings.account}:role/sconeflow-lambda",
        "Handler": config.handler,
        "CodeSize": code_size,
        "Description": config.description,
        "Timeout": config.timeout,
        "MemorySize": config.memory_size,
        "LastModified": config.last_modified,
        "CodeSha256": code_sha256,
        "Version": config.version,
        "Environment": {"Variables": dict(config.environment)},
        "TracingConfig": {"Mode": "PassThrough"},
        "RevisionId": config.revision_id,
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Zip",
        "Architectures": ["x86_64"],
        "EphemeralStorage": {"Size": 512},
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{config.name}"},
    }


def alias_configuration(settings: Settings, alias: AliasConfig) -> dict[str, Any]:
    body: dict[str, Any] = {
        "AliasArn": function_arn(settings, alias.function, alias.name),
        "Name": alias.name,
        "FunctionVersion": alias.function_version,
        "Description": alias.description,
        "RevisionId": alias.revision_id,
    }
    if alias.routing:
        body["RoutingConfig"] = {"AdditionalVersionWeights": dict(alias.routing)}
    return body


def event_invoke_configuration(settings: Settings, config: EventInvokeConfig) -> dict[str, Any]:
    """FunctionEventInvokeConfig: the qualified ARN ($LATEST included), the settings given, and
    DestinationConfig with OnSuccess/OnFailure (empty objects when not set), as Lambda answers."""
    body: dict[str, Any] = {
        "LastModified": config.last_modified,
        "FunctionArn": function_arn(settings, config.function, config.qualifier),
        "DestinationConfig": {
            "OnSuccess": dict(config.destinations.get("OnSuccess") or {}),
            "OnFailure": dict(config.destinations.get("OnFailure") or {}),
        },
    }
    if config.max_retry_attempts is not None:
        body["MaximumRetryAttempts"] = config.max_retry_attempts
    if config.max_event_age is not None:
        body["MaximumEventAgeInSeconds"] = config.max_event_age
    return body


def _page(request: WireRequest, items: list, limit_max: int = 50) -> tuple[list, str | None]:
    """One page of ``items`` (Marker: an index from a previous page; MaxItems, at most ``limit_max``)."""
    marker = request.query_one("Marker")
    start = int(marker) if marker and marker.isdigit() else 0
    try:
        limit = int(request.query_one("MaxItems", "50") or 50)
    except ValueError:
        raise InvalidParameterValue("MaxItems must be an integer") from None
    if limit < 1:
        raise InvalidParameterValue("MaxItems must be at least 1")
    limit = min(limit, limit_max)
    return items[start : start + limit], str(start + limit) if start + limit < len(items) else None


def _routing_config(body: dict[str, Any]) -> dict[str, float] | None:
    """RoutingConfig.AdditionalVersionWeights of a CreateAlias/UpdateAlias body (None: not given;
    ``{}``: no additional version)."""
    if "RoutingConfig" not in body:
        return None
    routing = body.get("RoutingConfig") or {}
    if not isinstance(routing, dict):
        raise InvalidParameterValue("RoutingConfig must be an object with AdditionalVersionWeights")
    weights = routing.get("AdditionalVersionWeights")
    return {} if weights is None else weights


def _destinations(settings: Settings, registry: Any, body: dict[str, Any]) -> dict[str, Any] | None:
    """DestinationConfig: locally a destination is a Lambda function of this home (its ARN, or a
    qualified ARN); queues, topics, buckets and event buses are not available locally."""
    if "DestinationConfig" not in body:
        return None
    config = body.get("DestinationConfig") or {}
    clean: dict[str, Any] = {}
    for key in ("OnSuccess", "OnFailure"):
        destination = (config.get(key) or {}).get("Destination")
        if not destination:
            continue
        destination = str(destination)
        if ":lambda:" not in destination or ":function:" not in destination:
            raise InvalidParameterValue(
                f"The destination ARN {destination} is not supported by the local Lambda service: only a "
                "Lambda function of this home can be a destination (SQS, SNS, S3 and EventBridge are not "
                "available locally)"
            )
        name, qualifier = parse_function_name(destination, settings=settings)
        registry.get(name, qualifier)  # ResourceNotFoundException when it does not exist
        clean[key] = {"Destination": destination}
    return clean


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

    def _name(self, raw: str, qualifier: str | None = None) -> tuple[str, str | None]:
        return parse_function_name(raw, qualifier, settings=self.settings)

    def _dispatch(self, request: WireRequest) -> WireResponse:
        path, method = request.path, request.method
        match = _INVOKE_RE.match(path)
        if match and method == "POST":
            return self.invoke(request, match.group("name"))
        if path.rstrip("/") == PREFIX:
            if method == "GET":
                return self.list_functions(request)
            if method == "POST":
                return self.create_function(request)
        match = _CODE_RE.match(path)
        if match and method == "PUT":
            return self.update_code(request, match.group("name"))
        match = _VERSIONS_RE.match(path)
        if match and method in ("GET", "POST"):
            if method == "GET":
                return self.list_versions(request, match.group("name"))
            return self.publish_version(request, match.group("name"))
        match = _ALIASES_RE.match(path)
        if match:
            response = self.aliases(request, match.group("name"), match.group("alias"))
            if response is not None:
                return response
        match = _EVENT_CONFIG_RE.match(path)
        if match:
            response = self.event_invoke_config(request, match.group("name"), bool(match.group("list")))
            if response is not None:
                return response
        match = _FUNCTION_RE.match(path)
        if match and method == "PUT" and match.group("config"):
            return self.update_configuration(request, match.group("name"))
        if match and method == "DELETE" and not match.group("config"):
            return self.delete_function(request, match.group("name"))
        if match and method == "GET":
            name, qualifier = self._name(match.group("name"), request.query_one("Qualifier"))
            config = self.runtime.registry.get(name, qualifier)
            configuration = function_configuration(self.settings, config, qualifier)
            if match.group("config"):
                return WireResponse.json(configuration)
            return WireResponse.json(
                {
                    "Configuration": configuration,
                    "Code": {"RepositoryType": "S3", "Location": f"file://{config.code_path}"},
                }
            )
        raise not_implemented(request)

    def delete_function(self, request: WireRequest, raw_name: str) -> WireResponse:
        name, qualifier = self._name(raw_name, request.query_one("Qualifier"))
        if qualifier == LATEST:
            raise InvalidParameterValue("$LATEST version cannot be deleted without deleting the function.")
        if qualifier is not None:  # that published version only
            self.runtime.registry.delete_version(name, qualifier)
        else:
            self.runtime.registry.delete(name)
        return WireResponse(204, {"x-amzn-RequestId": str(uuid.uuid4())})

    # -- versions and aliases --------------------------------------------------------------------
    def publish_version(self, request: WireRequest, raw_name: str) -> WireResponse:
        name, _ = self._name(raw_name)
        body = self._json(request)
        published = self.runtime.registry.publish_version(
            name,
            description=body.get("Description"),
            code_sha256=body.get("CodeSha256"),
            revision_id=body.get("RevisionId"),
        )
        return WireResponse.json(function_configuration(self.settings, published), status=201)

    def list_versions(self, request: WireRequest, raw_name: str) -> WireResponse:
        name, _ = self._name(raw_name)
        versions = self.runtime.registry.list_versions(name)
        page, next_marker = _page(request, versions)
        body: dict[str, Any] = {
            "Versions": [function_configuration(self.settings, v, v.version) for v in page]
        }
        if next_marker:
            body["NextMarker"] = next_marker
        return WireResponse.json(body)

    def aliases(self, request: WireRequest, raw_name: str, alias: str | None) -> WireResponse | None:
        registry = self.runtime.registry
        method = request.method
        if alias is None and method == "GET":
            name, _ = self._name(raw_name)
            aliases = registry.list_aliases(name, request.query_one("FunctionVersion"))
            page, next_marker = _page(request, aliases)
            body: dict[str, Any] = {"Aliases": [alias_configuration(self.settings, a) for a in page]}
            if next_marker:
                body["NextMarker"] = next_marker
            return WireResponse.json(body)
        if alias is None and method == "POST":
            name, _ = self._name(raw_name)
            body = self._json(request)
            if not body.get("Name") or not body.get("FunctionVersion"):
                raise InvalidParameterValue("Name and FunctionVersion are required")
            created = registry.create_alias(
                name,
                str(body["Name"]),
                str(body["FunctionVersion"]),
                str(body.get("Description") or ""),
                routing=_routing_config(body),
            )
            return WireResponse.json(alias_configuration(self.settings, created), status=201)
        if alias is None:
            return None
        name, _ = self._name(raw_name)
        if method == "GET":
            return WireResponse.json(alias_configuration(self.settings, registry.get_alias(name, alias)))
        if method == "PUT":
            body = self._json(request)
            version = body.get("FunctionVersion")
            description = body.get("Description")
            updated = registry.update_alias(
                name,
                alias,
                function_version=str(version) if version else None,
                description=str(description) if description is not None else None,
                revision_id=body.get("RevisionId"),
                routing=_routing_config(body),
            )
            return WireResponse.json(alias_configuration(self.settings, updated))
        if method == "DELETE":
            registry.delete_alias(name, alias)
            return WireResponse(204, {"x-amzn-RequestId": str(uuid.uuid4())})
        return None

    def event_invoke_config(self, request: WireRequest, raw_name: str, listing: bool) -> WireResponse | None:
        """Put/Get/Update/Delete/ListFunctionEventInvokeConfig(s)."""
        registry = self.runtime.registry
        method = request.method
        if listing:
            if method != "GET":
                return None
            name, _ = self._name(raw_name)
            page, next_marker = _page(request, registry.list_event_configs(name))
            body: dict[str, Any] = {
                "FunctionEventInvokeConfigs": [event_invoke_configuration(self.settings, c) for c in page]
            }
            if next_marker:
                body["NextMarker"] = next_marker
            return WireResponse.json(body)
        name, qualifier = self._name(raw_name, request.query_one("Qualifier"))
        if method == "GET":
            found = registry.get_event_config(name, qualifier)
            return WireResponse.json(event_invoke_configuration(self.settings, found))
        if method == "DELETE":
            registry.delete_event_config(name, qualifier)
            return WireResponse(204, {"x-amzn-RequestId": str(uuid.uuid4())})
        if method in ("PUT", "POST"):
            body = self._json(request)
            saved = registry.put_event_config(
                name,
                qualifier,
                max_retry_attempts=body.get("MaximumRetryAttempts"),
                max_event_age=body.get("MaximumEventAgeInSeconds"),
                destinations=_destinations(self.settings, registry, body),
                merge=method == "POST",
            )
            return WireResponse.json(event_invoke_configuration(self.settings, saved))
        return None

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
        name, _ = self._name(name) if name else ("", None)
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
        if body.get("Publish"):
            saved = self.runtime.registry.publish_version(name)
        return WireResponse.json(function_configuration(self.settings, saved), status=201)

    def update_code(self, request: WireRequest, name: str) -> WireResponse:
        name, _ = self._name(name)
        body = self._json(request)
        self.runtime.registry.check_revision(name, body.get("RevisionId"))
        code_dir = self._code_dir(name, body)
        saved = self.runtime.registry.update(name, code_dir=code_dir)
        if body.get("Publish"):
            saved = self.runtime.registry.publish_version(name)
        return WireResponse.json(function_configuration(self.settings, saved))

    def update_configuration(self, request: WireRequest, name: str) -> WireResponse:
        name, _ = self._name(name)
        body = self._json(request)
        current = self.runtime.registry.check_revision(name, body.get("RevisionId"))
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
        page, next_marker = _page(request, self.runtime.registry.list())
        body: dict[str, Any] = {"Functions": [function_configuration(self.settings, f) for f in page]}
        if next_marker:
            body["NextMarker"] = next_marker
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
