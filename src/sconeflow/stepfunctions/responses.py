"""The AWS Step Functions wire layer: JSON 1.0 (``X-Amz-Target: AWSStepFunctions.<Op>``) over the service.

``handle(settings, request) -> WireResponse`` is what the gateway calls for a Step Functions request.
It parses the JSON body, calls :class:`~sconeflow.stepfunctions.service.StepFunctionsService`, and writes
AWS's response shapes (dates as epoch seconds) and error shapes
(``{"__type": "com.amazonaws.swf.service.v2.model#ExecutionDoesNotExist", "message": ...}``, HTTP 400),
so ``boto3.client("stepfunctions", endpoint_url=...)`` works unchanged.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sconeflow.config import Settings
from sconeflow.errors import SconeflowError
from sconeflow.gateway.wire import WireRequest, WireResponse
from sconeflow.stepfunctions import executions as ex
from sconeflow.stepfunctions import service as svc
from sconeflow.stepfunctions.errors import InvalidDefinition

log = logging.getLogger(__name__)

TARGET_PREFIX = "AWSStepFunctions."
CONTENT_TYPE = "application/x-amz-json-1.0"
_SWF = "com.amazonaws.swf.service.v2.model#"

# our named errors -> AWS error codes
_ERROR_CODES: dict[type[BaseException], str] = {
    ex.StateMachineDoesNotExist: "StateMachineDoesNotExist",
    ex.StateMachineAlreadyExists: "StateMachineAlreadyExists",
    ex.ExecutionDoesNotExist: "ExecutionDoesNotExist",
    ex.ExecutionAlreadyExists: "ExecutionAlreadyExists",
    ex.ConflictException: "ConflictException",
    ex.ServiceQuotaExceeded: "ServiceQuotaExceededException",
    svc.InvalidName: "InvalidName",
    svc.InvalidArn: "InvalidArn",
    svc.InvalidExecutionInput: "InvalidExecutionInput",
    svc.StateMachineTypeNotSupported: "StateMachineTypeNotSupported",
    svc.ValidationException: "ValidationException",
    svc.ResourceNotFound: "ResourceNotFound",
    svc.TooManyTags: "TooManyTags",
    InvalidDefinition: "InvalidDefinition",
}


class _ApiError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def _error_response(code: str, message: str, status: int = 400) -> WireResponse:
    prefix = "com.amazon.coral.validate#" if code == "ValidationException" else _SWF
    if code == "UnknownOperationException":
        prefix = "com.amazon.coral.service#"
    return WireResponse.json(
        {"__type": prefix + code, "message": message},
        status=status,
        headers={"x-amzn-RequestId": str(uuid.uuid4())},
        content_type=CONTENT_TYPE,
    )


def _epoch(value: datetime | None) -> float | None:
    return None if value is None else round(value.timestamp(), 3)


def _drop_none(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if v is not None}


def _require(body: dict[str, Any], name: str) -> Any:
    value = body.get(name)
    if value is None or value == "":
        raise _ApiError(
            "ValidationException",
            f"1 validation error detected: Value null at '{name}' failed to "
            "satisfy constraint: Member must not be null",
        )
    return value


def _arn(body: dict[str, Any], name: str) -> str:
    value = _require(body, name)
    if not isinstance(value, str) or not value.startswith("arn:"):
        raise _ApiError("InvalidArn", f"Invalid Arn: 'Resource type not valid in this context: {value}'")
    return value


MAX_DEFINITION_CHARS = 1_048_576


def _definition(body: dict[str, Any], *, allow_empty: bool = False) -> str:
    """The request's ``definition``: required, and at most 1,048,576 characters (AWS's constraint).

    ``allow_empty``: ValidateStateMachineDefinition answers an empty one with a diagnostic instead."""
    definition = body.get("definition")
    if definition is None or (definition == "" and not allow_empty):
        _require(body, "definition")  # raises
    if isinstance(definition, str) and len(definition) > MAX_DEFINITION_CHARS:
        raise _ApiError(
            "ValidationException",
            "1 validation error detected: Value at 'definition' failed to satisfy constraint: "
            f"Member must have length less than or equal to {MAX_DEFINITION_CHARS}",
        )
    return definition


def _page(
    items: list[Any], body: dict[str, Any], key: Callable[[Any], Any], default: int = 100
) -> tuple[list[Any], str | None]:
    """One page of ``items`` and the token of the next one.

    The token names the last item returned (its ``key``: an ARN, an event id) as well as its position,
    so the next page starts right after that item even when the list changed in between: a new
    execution listed first (newest first), or new events of a running execution read in reverse order.
    Only when that item is gone (deleted, or no longer matching ``statusFilter``) does the position count.
    """
    max_results = int(body.get("maxResults") or default)
    if not 0 < max_results <= 1000:
        raise _ApiError("ValidationException", "maxResults must be between 1 and 1000")
    start = 0
    token = body.get("nextToken")
    if token:
        try:
            anchor = json.loads(base64.b64decode(token, validate=True).decode())
            start, last = int(anchor["n"]), anchor["k"]
        except (ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
            raise _ApiError("InvalidToken", f"Invalid Token: '{token}'") from exc
        start = next((i + 1 for i, item in enumerate(items) if key(item) == last), start)
    chunk = items[start : start + max_results]
    if start + max_results >= len(items):
        return chunk, None
    anchor = {"n": start + max_results, "k": key(chunk[-1])}
    return chunk, base64.b64encode(json.dumps(anchor).encode()).decode()


def _definition_message(exc: InvalidDefinition) -> str:
    parts = []
    for diag in exc.diagnostics:
        code = getattr(diag, "code", "SCHEMA_VALIDATION_FAILED")
        text = f"{code}: {getattr(diag, 'message', diag)}"
        location = getattr(diag, "location", None)
        if location:
            text += f" at {location}"
        parts.append(text)
    return f"Invalid State Machine Definition: '{', '.join(parts) or exc}'"


# -- shapes ----------------------------------------------------------------------------------------


def machine_shape(machine: ex.StateMachineRecord) -> dict[str, Any]:
    return {
        "stateMachineArn": machine.arn,
        "name": machine.name,
        "status": "ACTIVE",
        "definition": machine.definition,
        "roleArn": machine.role_arn,
        "type": machine.type,
        "creationDate": _epoch(machine.created),
        "loggingConfiguration": {"level": "OFF", "includeExecutionData": False},
        "tracingConfiguration": {"enabled": False},
        "revisionId": machine.revision_id,
    }


def version_shape(version: ex.VersionRecord, machine: ex.StateMachineRecord) -> dict[str, Any]:
    """DescribeStateMachine of a version ARN: that version's definition, revision and description."""
    shape = machine_shape(machine)
    shape["stateMachineArn"] = version.arn
    shape["creationDate"] = _epoch(version.created)
    if version.description is not None:
        shape["description"] = version.description
    return shape


def alias_shape(alias: ex.AliasRecord) -> dict[str, Any]:
    return _drop_none(
        {
            "stateMachineAliasArn": alias.arn,
            "name": alias.name,
            "description": alias.description,
            "routingConfiguration": [
                {"stateMachineVersionArn": arn, "weight": weight} for arn, weight in alias.routing
            ],
            "creationDate": _epoch(alias.created),
            "updateDate": _epoch(alias.updated),
        }
    )


def execution_shape(record: ex.ExecutionRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "executionArn": record.arn,
        "stateMachineArn": record.state_machine_arn,
        "name": record.name,
        "status": record.status,
        "startDate": _epoch(record.start_date),
        "stopDate": _epoch(record.stop_date),
        "input": record.input,
        "inputDetails": {"included": True},
        # started through a version ARN (or an alias, which names the version it chose): AWS returns
        # them (neither for an unqualified ARN, even when the execution ran the same revision)
        "stateMachineVersionArn": record.version_arn,
        "stateMachineAliasArn": record.alias_arn,
    }
    if record.status == "SUCCEEDED":
        out["output"] = record.output
        out["outputDetails"] = {"included": True}
    if record.status in ("FAILED", "ABORTED"):
        if record.error is not None:
            out["error"] = record.error
        if record.cause is not None:
            out["cause"] = record.cause
    out["redriveCount"] = 0
    out["redriveStatus"] = "NOT_REDRIVABLE"
    out["redriveStatusReason"] = (
        f"Execution is {record.status} and cannot be redriven"
        if record.status in ("RUNNING", "SUCCEEDED")
        else "Redrive is not supported by sconeflow"
    )
    return _drop_none(out)


def list_item_shape(record: ex.ExecutionRecord) -> dict[str, Any]:
    return _drop_none(
        {
            "executionArn": record.arn,
            "stateMachineArn": record.state_machine_arn,
            "name": record.name,
            "status": record.status,
            "startDate": _epoch(record.start_date),
            "stopDate": _epoch(record.stop_date),
            "stateMachineVersionArn": record.version_arn,
            "stateMachineAliasArn": record.alias_arn,
        }
    )


def event_shape(event: dict[str, Any], include_data: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in event.items():
        if key == "timestamp":
            out[key] = _epoch(value) if isinstance(value, datetime) else value
        elif key.endswith("EventDetails") and isinstance(value, dict) and not include_data:
            out[key] = {k: v for k, v in value.items() if k not in ("input", "output", "parameters")}
        else:
            out[key] = value
    return out


# -- operations ------------------------------------------------------------------------------------


def _version_description(body: dict[str, Any]) -> str | None:
    """``versionDescription`` (at most 256 characters), which AWS accepts only with ``publish``."""
    description = body.get("versionDescription")
    if description is not None and not body.get("publish"):
        raise _ApiError("ValidationException", "Version description can only be set when publish is true")
    return svc.check_description(description, "versionDescription")


def _create_state_machine(service: svc.StepFunctionsService, body: dict[str, Any]) -> dict[str, Any]:
    definition = _definition(body)
    description = _version_description(body)
    machine = service.create_state_machine(
        _require(body, "name"),
        definition,
        type=body.get("type") or "STANDARD",
        role_arn=body.get("roleArn"),
        tags=body.get("tags"),
    )
    out = {"stateMachineArn": machine.arn, "creationDate": _epoch(machine.created)}
    if body.get("publish"):
        out["stateMachineVersionArn"] = service.publish_version(machine.arn, description=description).arn
    return out


def _update_state_machine(service: svc.StepFunctionsService, body: dict[str, Any]) -> dict[str, Any]:
    target = _arn(body, "stateMachineArn")
    current = service.describe_state_machine(target)
    if target != current.arn:  # a version is immutable; an alias is changed with UpdateStateMachineAlias
        raise _ApiError(
            "ValidationException", f"Invalid Arn: '{target}': only a state machine ARN can be updated"
        )
    changes = ("definition", "roleArn", "loggingConfiguration", "tracingConfiguration")
    if not any(body.get(k) for k in changes):
        raise _ApiError(
            "MissingRequiredParameter",
            "Either the definition, the role ARN, the LoggingConfiguration, or the TracingConfiguration "
            "must be specified",
        )
    if body.get("definition"):
        _definition(body)
    description = _version_description(body)
    machine = service.create_state_machine(
        current.name,
        body.get("definition") or current.definition,
        type=current.type,
        role_arn=body.get("roleArn") or current.role_arn,
        function_map=current.function_map,
        update=True,
    )
    out = {"updateDate": _epoch(machine.updated), "revisionId": machine.revision_id}
    if body.get("publish"):  # an unchanged revision already published answers with that version
        out["stateMachineVersionArn"] = service.publish_version(machine.arn, description=description).arn
    return out


def _describe_state_machine(service: svc.StepFunctionsService, body: dict[str, Any]) -> dict[str, Any]:
    arn = _arn(body, "stateMachineArn")
    if ex.version_arn_of(arn) is not None:  # a version ARN: that version's definition and description
        return version_shape(*service.describe_version(arn))
    return machine_shape(service.describe_state_machine(arn))


def _describe_state_machine_for_execution(service: svc.StepFunctionsService, body: dict[str, Any]) -> dict:
    record = service.describe_execution(_arn(body, "executionArn"))
    machine = service.store.machine_for_execution(record)
    shape = machine_shape(machine)
    return {k: shape[k] for k in ("stateMachineArn", "name", "definition", "roleArn", "revisionId")} | {
        "updateDate": _epoch(machine.updated),
        "loggingConfiguration": shape["loggingConfiguration"],
        "tracingConfiguration": shape["tracingConfiguration"],
    }


def _list_state_machines(service: svc.StepFunctionsService, body: dict[str, Any]) -> dict[str, Any]:
    machines = [
        {"stateMachineArn": m.arn, "name": m.name, "type": m.type, "creationDate": _epoch(m.created)}
        for m in service.list_state_machines()
    ]
    chunk, token = _page(machines, body, key=lambda m: m["stateMachineArn"])
    return _drop_none({"stateMachines": chunk, "nextToken": token})


def _delete_state_machine(service: svc.StepFunctionsService, body: dict[str, Any]) -> dict[str, Any]:
    arn = _arn(body, "stateMachineArn")
    try:
        service.delete_state_machine(arn)
    except ex.StateMachineDoesNotExist:
        pass  # AWS: deleting a missing state machine succeeds
    return {}


def _start_execution(service: svc.StepFunctionsService, body: dict[str, Any]) -> dict[str, Any]:
    machine_arn = _arn(body, "stateMachineArn")
    machine = service.machine_of(machine_arn)  # also for a version or alias ARN
    name = body.get("name")
    input_text = body.get("input")
    if name:
        arn = service.execution_arn(machine.name, name)
        existing = service.store.find_execution(arn)
        if existing is not None:
            if existing.status == "RUNNING" and existing.input == svc.check_input(input_text):
                return {"executionArn": existing.arn, "startDate": _epoch(existing.start_date)}
            raise ex.ExecutionAlreadyExists(f"Execution Already Exists: '{arn}'")
    record = service.start_execution(machine_arn, input_text, name=name)
    return {"executionArn": record.arn, "startDate": _epoch(record.start_date)}


def _start_sync_execution(service: svc.StepFunctionsService, body: dict[str, Any]) -> dict[str, Any]:
    record = service.start_sync_execution(
        _arn(body, "stateMachineArn"), body.get("input"), name=body.get("name")
    )
    shape = execution_shape(record)
    for key in ("redriveCount", "redriveStatus", "redriveStatusReason"):
        shape.pop(key, None)
    if record.status == "ABORTED":  # StartSyncExecution knows only SUCCEEDED | FAILED | TIMED_OUT
        shape["status"] = "FAILED"
    duration_ms = 0.0
    if record.stop_date is not None:
        duration_ms = (record.stop_date - record.start_date).total_seconds() * 1000
    shape["billingDetails"] = {
        "billedMemoryUsedInMB": 64,
        "billedDurationInMilliseconds": max(100, math.ceil(duration_ms / 100.0) * 100),
    }
    if body.get("traceHeader"):
        shape["traceHeader"] = body["traceHeader"]
    return shape


def _describe_execution(service: svc.StepFunctionsService, body: dict[str, Any]) -> dict[str, Any]:
    return execution_shape(service.describe_execution(_arn(body, "executionArn")))


def _list_executions(service: svc.StepFunctionsService, body: dict[str, Any]) -> dict[str, Any]:
    map_run = body.get("mapRunArn")
    if map_run and body.get("stateMachineArn"):
        raise _ApiError(
            "ValidationException", "You can specify either a mapRunArn or a stateMachineArn, but not both"
        )
    if map_run:  # sconeflow runs no Distributed Map, so no Map Run exists
        raise _ApiError("ResourceNotFound", f"Resource not found: '{map_run}'")
    # a version ARN (...:stateMachine:x:2) lists only the executions started through it
    machine_arn = _arn(body, "stateMachineArn")
    status = body.get("statusFilter")
    if status is not None and status not in (*ex.STATUSES, "PENDING_REDRIVE"):
        raise _ApiError("ValidationException", f"Invalid statusFilter {status!r}")
    records = service.list_executions(machine_arn, status=status)
    chunk, token = _page([list_item_shape(r) for r in records], body, key=lambda e: e["executionArn"])
    return _drop_none({"executions": chunk, "nextToken": token})


def _get_execution_history(service: svc.StepFunctionsService, body: dict[str, Any]) -> dict[str, Any]:
    _, events = service.history(_arn(body, "executionArn"))
    if body.get("reverseOrder"):
        events = list(reversed(events))
    include = body.get("includeExecutionData", True) is not False
    chunk, token = _page([event_shape(e, include) for e in events], body, key=lambda e: e["id"])
    return _drop_none({"events": chunk, "nextToken": token})


def _stop_execution(service: svc.StepFunctionsService, body: dict[str, Any]) -> dict[str, Any]:
    record = service.stop_execution(
        _arn(body, "executionArn"), error=body.get("error"), cause=body.get("cause")
    )
    return {"stopDate": _epoch(record.stop_date)}


def _validate_definition(service: svc.StepFunctionsService, body: dict[str, Any]) -> dict[str, Any]:
    from sconeflow.stepfunctions.validate import validate_definition

    definition = _definition(body, allow_empty=True)
    result = validate_definition(
        definition,
        state_machine_type=body.get("type") or "STANDARD",
        severity=body.get("severity") or "ERROR",
        max_results=int(body.get("maxResults") or 100),
    )
    return result.to_api()


def _tag_resource(service: svc.StepFunctionsService, body: dict[str, Any]) -> dict[str, Any]:
    service.tag_resource(_arn(body, "resourceArn"), _require(body, "tags"))
    return {}


def _untag_resource(service: svc.StepFunctionsService, body: dict[str, Any]) -> dict[str, Any]:
    service.untag_resource(_arn(body, "resourceArn"), _require(body, "tagKeys"))
    return {}


def _list_tags_for_resource(service: svc.StepFunctionsService, body: dict[str, Any]) -> dict[str, Any]:
    return {"tags": service.list_tags(_arn(body, "resourceArn"))}


def _publish_state_machine_version(service: svc.StepFunctionsService, body: dict[str, Any]) -> dict:
    version = service.publish_version(
        _arn(body, "stateMachineArn"), revision_id=body.get("revisionId"), description=body.get("description")
    )
    return {"creationDate": _epoch(version.created), "stateMachineVersionArn": version.arn}


def _list_state_machine_versions(service: svc.StepFunctionsService, body: dict[str, Any]) -> dict:
    versions = [
        {"stateMachineVersionArn": v.arn, "creationDate": _epoch(v.created)}
        for v in service.list_versions(_arn(body, "stateMachineArn"))
    ]
    chunk, token = _page(versions, body, key=lambda v: v["stateMachineVersionArn"])
    return _drop_none({"stateMachineVersions": chunk, "nextToken": token})


def _delete_state_machine_version(service: svc.StepFunctionsService, body: dict[str, Any]) -> dict:
    service.delete_version(_arn(body, "stateMachineVersionArn"))
    return {}


def _create_state_machine_alias(service: svc.StepFunctionsService, body: dict[str, Any]) -> dict:
    alias, _ = service.create_alias(
        body.get("name"), _require(body, "routingConfiguration"), body.get("description")
    )
    return {"stateMachineAliasArn": alias.arn, "creationDate": _epoch(alias.created)}


def _describe_state_machine_alias(service: svc.StepFunctionsService, body: dict[str, Any]) -> dict:
    return alias_shape(service.describe_alias(_arn(body, "stateMachineAliasArn")))


def _update_state_machine_alias(service: svc.StepFunctionsService, body: dict[str, Any]) -> dict:
    alias = service.update_alias(
        _arn(body, "stateMachineAliasArn"),
        description=body.get("description"),
        routing=body.get("routingConfiguration"),
    )
    return {"updateDate": _epoch(alias.updated)}


def _delete_state_machine_alias(service: svc.StepFunctionsService, body: dict[str, Any]) -> dict:
    service.delete_alias(_arn(body, "stateMachineAliasArn"))
    return {}


def _list_state_machine_aliases(service: svc.StepFunctionsService, body: dict[str, Any]) -> dict:
    aliases = [
        {"stateMachineAliasArn": a.arn, "creationDate": _epoch(a.created)}
        for a in service.list_aliases(_arn(body, "stateMachineArn"))
    ]
    chunk, token = _page(aliases, body, key=lambda a: a["stateMachineAliasArn"])
    return _drop_none({"stateMachineAliases": chunk, "nextToken": token})


OPERATIONS: dict[str, Callable[[svc.StepFunctionsService, dict[str, Any]], dict[str, Any]]] = {
    "CreateStateMachine": _create_state_machine,
    "UpdateStateMachine": _update_state_machine,
    "DescribeStateMachine": _describe_state_machine,
    "DescribeStateMachineForExecution": _describe_state_machine_for_execution,
    "ListStateMachines": _list_state_machines,
    "DeleteStateMachine": _delete_state_machine,
    "StartExecution": _start_execution,
    "StartSyncExecution": _start_sync_execution,
    "DescribeExecution": _describe_execution,
    "ListExecutions": _list_executions,
    "GetExecutionHistory": _get_execution_history,
    "StopExecution": _stop_execution,
    "ValidateStateMachineDefinition": _validate_definition,
    "TagResource": _tag_resource,
    "UntagResource": _untag_resource,
    "ListTagsForResource": _list_tags_for_resource,
    "PublishStateMachineVersion": _publish_state_machine_version,
    "ListStateMachineVersions": _list_state_machine_versions,
    "DeleteStateMachineVersion": _delete_state_machine_version,
    "CreateStateMachineAlias": _create_state_machine_alias,
    "DescribeStateMachineAlias": _describe_state_machine_alias,
    "UpdateStateMachineAlias": _update_state_machine_alias,
    "DeleteStateMachineAlias": _delete_state_machine_alias,
    "ListStateMachineAliases": _list_state_machine_aliases,
}


_SERVICES: dict[str, svc.StepFunctionsService] = {}


def service_for(settings: Settings) -> svc.StepFunctionsService:
    """One service per home in this process, so parsed definitions are cached across requests."""
    key = str(settings.home)
    service = _SERVICES.get(key)
    if service is None:
        service = _SERVICES[key] = svc.StepFunctionsService(settings)
    return service


def is_stepfunctions_request(request: WireRequest) -> bool:
    return (request.header("x-amz-target") or "").startswith(TARGET_PREFIX)


def handle(
    settings: Settings, request: WireRequest, *, service: svc.StepFunctionsService | None = None
) -> WireResponse:
    """Answer one Step Functions JSON-protocol request."""
    target = request.header("x-amz-target") or ""
    operation = target[len(TARGET_PREFIX) :] if target.startswith(TARGET_PREFIX) else ""
    func = OPERATIONS.get(operation)
    if func is None:
        return _error_response("UnknownOperationException", f"Unknown or unsupported operation: {target!r}")
    try:
        body = json.loads(request.body or b"{}")
        if not isinstance(body, dict):
            raise ValueError("the request body must be a JSON object")
    except ValueError as exc:
        return _error_response("SerializationException", f"Could not parse the request body: {exc}")
    try:
        payload = func(service or service_for(settings), body)
    except _ApiError as exc:
        return _error_response(exc.code, exc.message, exc.status)
    except InvalidDefinition as exc:
        return _error_response("InvalidDefinition", _definition_message(exc))
    except SconeflowError as exc:
        code = next((c for t, c in _ERROR_CODES.items() if isinstance(exc, t)), "ValidationException")
        return _error_response(code, str(exc), 409 if code == "ConflictException" else 400)
    except Exception as exc:  # never answer with a traceback
        log.exception("Step Functions %s failed", operation)
        return _error_response("InternalFailure", f"{type(exc).__name__}: {exc}", status=500)
    return WireResponse.json(
        payload, headers={"x-amzn-RequestId": str(uuid.uuid4())}, content_type=CONTENT_TYPE
    )
