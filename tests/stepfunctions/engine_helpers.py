"""Shared helpers of the engine tests: run a definition with in-process Lambdas and a virtual clock."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sconeflow.stepfunctions.engine import (
    ExecutionContext,
    ExecutionResult,
    LambdaResponse,
    VirtualClock,
    run_execution,
)
from sconeflow.stepfunctions.errors import LambdaFunctionNotFound
from sconeflow.stepfunctions.parser import parse_definition

CONTEXT = ExecutionContext(
    execution_arn="arn:aws:states:us-east-1:123456789012:execution:machine:exec-1",
    execution_name="exec-1",
    state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:machine",
    state_machine_name="machine",
)


class RaisedError(Exception):
    """A handler raises this to simulate a Python exception inside a Lambda function."""

    def __init__(self, error_type: str, message: str = "") -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


class Functions:
    """Python callables standing in for Lambda functions; ``calls`` records (name, event)."""

    def __init__(self, clock: VirtualClock | None = None, **handlers: Callable[[Any], Any]) -> None:
        self.handlers = handlers
        self.clock = clock
        self.calls: list[tuple[str, Any]] = []
        self.published: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def invoke_lambda(
        self,
        function_name: str,
        payload: bytes,
        *,
        qualifier: str | None = None,
        invocation_type: str = "RequestResponse",
    ) -> LambdaResponse:
        if function_name not in self.handlers:
            raise LambdaFunctionNotFound(function_name)
        event = json.loads(payload) if payload else None
        with self._lock:
            self.calls.append((function_name, event))
        request_id = str(uuid.uuid4())
        try:
            result = self.handlers[function_name](event)
        except RaisedError as exc:
            body = {
                "errorMessage": exc.message,
                "errorType": exc.error_type,
                "requestId": request_id,
                "stackTrace": ['  File "/var/task/handler.py", line 2, in handler\n'],
            }
            return LambdaResponse(json.dumps(body).encode(), "Unhandled", request_id=request_id)
        if isinstance(result, bytes):
            return LambdaResponse(result, request_id=request_id)
        return LambdaResponse(json.dumps(result).encode(), request_id=request_id)

    def publish_sns(
        self,
        topic_arn: str,
        message: str,
        *,
        subject: str | None = None,
        message_attributes: dict | None = None,
    ) -> str:
        self.published.append({"TopicArn": topic_arn, "Message": message, "Subject": subject})
        return f"msg-{len(self.published)}"


class RecordingClock(VirtualClock):
    """A virtual clock that remembers every sleep (Wait states and Retry delays)."""

    def __init__(self) -> None:
        super().__init__(datetime(2025, 1, 1, tzinfo=UTC))
        self.sleeps: list[float] = []

    def sleep(self, seconds: float, cancel: threading.Event | None = None) -> bool:
        self.sleeps.append(round(seconds, 6))
        return super().sleep(seconds, cancel)


def run(
    definition: dict | str,
    data: Any = None,
    functions: Functions | None = None,
    *,
    clock: VirtualClock | None = None,
    cancel: threading.Event | None = None,
    listener: Any = None,
) -> ExecutionResult:
    machine = parse_definition(definition if isinstance(definition, str) else json.dumps(definition))
    clock = clock or RecordingClock()
    return run_execution(
        machine,
        json.dumps({} if data is None else data),
        CONTEXT,
        functions or Functions(),
        clock=clock,
        cancel=cancel,
        listener=listener,
    )


def output(result: ExecutionResult) -> Any:
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    return json.loads(result.output or "null")


def types(result: ExecutionResult) -> list[str]:
    return [e["type"] for e in result.events]


def details(event: dict) -> dict:
    return next(v for k, v in event.items() if k.endswith("EventDetails"))


def lambda_arn(name: str) -> str:
    return f"arn:aws:lambda:us-east-1:123456789012:function:{name}"


def invoke_task(name: str, **extra: Any) -> dict:
    body = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": lambda_arn(name) + ":$LATEST", "Payload.$": "$"},
        "OutputPath": "$.Payload",
    }
    body.update(extra)
    if "Next" not in body and "End" not in body:
        body["End"] = True
    return body
