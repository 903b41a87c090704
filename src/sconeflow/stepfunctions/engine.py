"""The ASL interpreter: runs a parsed :class:`StateMachine` against an input with AWS semantics."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from sconeflow.stepfunctions.definition import StateMachine
from sconeflow.stepfunctions.errors import InvalidDefinition, LambdaFunctionNotFound
from sconeflow.stepfunctions.parser import parse_definition

__all__ = [
    "Clock",
    "ExecutionContext",
    "ExecutionResult",
    "HistoryListener",
    "Integrations",
    "InvalidDefinition",
    "LambdaFunctionNotFound",
    "LambdaResponse",
    "RealClock",
    "VirtualClock",
    "parse_definition",
    "run_execution",
]


@dataclass(frozen=True)
class LambdaResponse:
    payload: bytes  # raw response payload as the Invoke API returns it
    function_error: str | None = None  # "Unhandled" on a function error
    status_code: int = 200
    executed_version: str = "$LATEST"
    request_id: str = ""


class Integrations(Protocol):
    def invoke_lambda(
        self,
        function_name: str,
        payload: bytes,
        *,
        qualifier: str | None = None,
        invocation_type: str = "RequestResponse",
    ) -> LambdaResponse:
        """Invoke a function; raise LambdaFunctionNotFound for an unknown one."""
        ...

    def publish_sns(
        self,
        topic_arn: str,
        message: str,
        *,
        subject: str | None = None,
        message_attributes: dict | None = None,
    ) -> str:
        """Publish a message; return its MessageId."""
        ...


class Clock(Protocol):
    def now(self) -> datetime: ...

    def sleep(self, seconds: float, cancel: threading.Event | None = None) -> bool:
        """Wait; return False if ``cancel`` was set meanwhile."""
        ...


class RealClock:
    """Wall-clock time; ``sleep`` wakes early when the cancel event is set."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float, cancel: threading.Event | None = None) -> bool:
        if seconds <= 0:
            return not (cancel and cancel.is_set())
        if cancel is None:
            time.sleep(seconds)
            return True
        return not cancel.wait(seconds)


class VirtualClock:
    """Simulated time: ``sleep`` advances the clock instantly (for tests and conformance)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def sleep(self, seconds: float, cancel: threading.Event | None = None) -> bool:
        from datetime import timedelta

        with self._lock:
            if seconds > 0:
                self._now += timedelta(seconds=seconds)
        return not (cancel and cancel.is_set())


@dataclass(frozen=True)
class ExecutionContext:
    execution_arn: str
    execution_name: str
    state_machine_arn: str
    state_machine_name: str
    role_arn: str = "arn:aws:iam::123456789012:role/service-role/StepFunctions-sconeflow"
    start_time: datetime | None = None  # UTC; default now
    redrive_count: int = 0


class HistoryListener(Protocol):
    def on_event(self, event: dict) -> None:
        """Called with each AWS-shaped HistoryEvent as it is appended."""
        ...


@dataclass
class ExecutionResult:
    status: str  # SUCCEEDED | FAILED | TIMED_OUT | ABORTED
    output: str | None  # compact JSON text (SUCCEEDED)
    error: str | None
    cause: str | None
    events: list[dict] = field(default_factory=list)


def run_execution(
    machine: StateMachine,
    input_text: str,
    context: ExecutionContext,
    integrations: Integrations,
    *,
    listener: HistoryListener | None = None,
    cancel: threading.Event | None = None,
    clock: Clock | None = None,
) -> ExecutionResult:
    """Run one execution to its end and return its result with the full history."""
    raise NotImplementedError
