"""The ASL interpreter: runs a parsed :class:`StateMachine` against an input with AWS semantics.

One :class:`_Run` per execution holds the history, the clock and the integrations; each state type
has one ``_state_<type>`` method, and the data-flow rules of each query language live in
:mod:`sconeflow.stepfunctions.dataflow`-style helpers below (JSONPath: InputPath -> Parameters ->
task -> ResultSelector -> ResultPath -> OutputPath; JSONata: Arguments -> task -> Output/Assign).
"""

from __future__ import annotations

import base64
import json
import logging
import random
import re
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, Protocol

from sconeflow.stepfunctions import choice as choice_mod
from sconeflow.stepfunctions import errors as E
from sconeflow.stepfunctions import intrinsics, jsonata_eval, jsonpath
from sconeflow.stepfunctions.definition import (
    Catcher,
    ChoiceState,
    FailState,
    MapState,
    ParallelState,
    PassState,
    Retrier,
    State,
    StateMachine,
    SucceedState,
    TaskState,
    WaitState,
)
from sconeflow.stepfunctions.errors import InvalidDefinition, LambdaFunctionNotFound, StatesError
from sconeflow.stepfunctions.history import History
from sconeflow.stepfunctions.parser import parse_definition

log = logging.getLogger(__name__)

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

MAX_PAYLOAD_BYTES = 262144
MAX_INLINE_CONCURRENCY = 40  # AWS runs at most about 40 inline Map iterations at once


@dataclass(frozen=True)
class LambdaResponse:
    payload: bytes  # raw response payload as the Invoke API returns it
    function_error: str | None = None  # "Unhandled" on a function error
    status_code: int = 200
    executed_version: str = "$LATEST"
    request_id: str = ""
    log_result: str | None = None  # base64 tail of the invocation log (LogType Tail), if known


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


# --- helpers -----------------------------------------------------------------------------------


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def iso_millis(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class _Aborted(Exception):
    pass


class _TimedOut(Exception):
    pass


class _Fatal(StatesError):
    """An error that no Retry/Catch may handle (States.Runtime, States.DataLimitExceeded, ...)."""


_MISSING = choice_mod.MISSING
_VAR_RE = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)(.*)$", re.DOTALL)


class _Scope:
    """Workflow variables: each Map iteration / Parallel branch reads outer scopes, writes its own."""

    __slots__ = ("parent", "vars")

    def __init__(self, parent: _Scope | None = None) -> None:
        self.parent = parent
        self.vars: dict[str, Any] = {}

    def get(self, name: str) -> Any:
        scope: _Scope | None = self
        while scope is not None:
            if name in scope.vars:
                return scope.vars[name]
            scope = scope.parent
        return _MISSING

    def all(self) -> dict[str, Any]:
        chain = []
        scope: _Scope | None = self
        while scope is not None:
            chain.append(scope.vars)
            scope = scope.parent
        out: dict[str, Any] = {}
        for layer in reversed(chain):
            out.update(layer)
        return out


@dataclass
class _Frame:
    """Where a program runs: its variables, the Map item, and the stop signals of enclosing branches."""

    scope: _Scope
    map_item: dict | None = None
    stops: tuple[threading.Event, ...] = ()

    def child(self, map_item: dict | None, stop: threading.Event | None = None) -> _Frame:
        return _Frame(_Scope(self.scope), map_item, self.stops + ((stop,) if stop is not None else ()))

    def stopped(self) -> bool:
        return any(stop.is_set() for stop in self.stops)


class _Stopped(Exception):
    """A sibling branch/iteration failed: unwind this one quietly."""


@dataclass
class _StateCtx:
    """Per-visit data of one state: its context object, entered event id and retry count."""

    state: State
    frame: _Frame
    entered_id: int
    entered_time: datetime
    retry_count: int = 0
    extra: dict = field(default_factory=dict)


# --- the run -----------------------------------------------------------------------------------


class _Run:
    def __init__(
        self,
        machine: StateMachine,
        context: ExecutionContext,
        integrations: Integrations,
        listener: HistoryListener | None,
        cancel: threading.Event | None,
        clock: Clock,
    ) -> None:
        self.machine = machine
        self.context = context
        self.integrations = integrations
        self.cancel = cancel
        self.clock = clock
        self.history = History(clock.now, listener)
        self.start_time = context.start_time or clock.now()
        self.deadline = (
            self.start_time + timedelta(seconds=machine.timeout_seconds) if machine.timeout_seconds else None
        )
        arn_parts = context.state_machine_arn.split(":")
        self.region = arn_parts[3] if len(arn_parts) > 3 and arn_parts[3] else "us-east-1"
        self.account = arn_parts[4] if len(arn_parts) > 4 and arn_parts[4] else "123456789012"
        self.execution_ctx: dict[str, Any] = {}
        self.first_state = True
        # Real time: Map iterations and Parallel branches run on threads (a slow Lambda in one does not
        # hold up the others). Virtual time (tests, conformance): sequential, so history order is fixed.
        self.concurrent = isinstance(clock, RealClock)

    # --- context object / lookups -------------------------------------------------------------

    def context_object(self, sctx: _StateCtx) -> dict:
        state_obj: dict[str, Any] = {"Name": sctx.state.name, "EnteredTime": iso_millis(sctx.entered_time)}
        if isinstance(sctx.state, TaskState):
            state_obj["RetryCount"] = sctx.retry_count
        obj: dict[str, Any] = {
            "Execution": self.execution_ctx,
            "StateMachine": {"Id": self.context.state_machine_arn, "Name": self.context.state_machine_name},
            "State": state_obj,
        }
        if sctx.frame.map_item is not None:
            obj["Map"] = {"Item": sctx.frame.map_item}
        return obj

    def lookup(self, text: str, data: Any, sctx: _StateCtx) -> Any:
        """Evaluate ``$...``, ``$$...`` or ``$var...``; raises jsonpath.PathNotFound when missing."""
        if text.startswith("$$"):
            return jsonpath.compile_path(text).get(self.context_object(sctx))
        m = _VAR_RE.match(text)
        if m:
            value = sctx.frame.scope.get(m.group(1))
            if value is _MISSING:
                raise jsonpath.PathNotFound(f"Variable ${m.group(1)} is not defined")
            rest = m.group(2)
            return jsonpath.compile_path("$" + rest).get(value) if rest else value
        return jsonpath.compile_path(text).get(data)

    def check_time(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise _Aborted()
        if self.deadline is not None and self.clock.now() >= self.deadline:
            raise _TimedOut()

    def sleep(self, seconds: float, frame: _Frame | None = None) -> None:
        """Wait (Wait state, retry delay); wakes for an abort, the execution deadline or a failed sibling."""
        if seconds <= 0:
            self.check_time()
            return
        timed_out = False
        if self.deadline is not None:
            left = (self.deadline - self.clock.now()).total_seconds()
            if seconds >= left:
                seconds, timed_out = max(left, 0), True
        if frame is not None and frame.stops and self.concurrent:
            end = time.monotonic() + seconds
            while (remaining := end - time.monotonic()) > 0:
                if frame.stopped():
                    raise _Stopped()
                if not self.clock.sleep(min(remaining, 0.05), self.cancel):
                    raise _Aborted()
        elif not self.clock.sleep(seconds, self.cancel):
            raise _Aborted()
        self.check_time()
        if timed_out:
            raise _TimedOut()

    def runtime_error(self, sctx: _StateCtx, detail: str, error: str = E.RUNTIME) -> StatesError:
        cause = (
            f"An error occurred while executing the state '{sctx.state.name}' "
            f"(entered at the event id #{sctx.entered_id}). {detail}"
        )
        if error == E.RUNTIME:
            return _Fatal(error, cause)
        return StatesError(error, cause)

    def query_error(self, sctx: _StateCtx, detail: str, location: str | None = None) -> StatesError:
        err = self.runtime_error(sctx, detail, E.QUERY_EVALUATION_ERROR)
        details: dict[str, Any] = {"error": err.error, "cause": err.cause}
        if location:
            details["location"] = location
        details["state"] = sctx.state.name
        self.history.add("EvaluationFailed", details)
        return err

    # --- JSONPath data flow ---------------------------------------------------------------------

    def apply_path(self, sctx: _StateCtx, path: str | None, data: Any) -> Any:
        if path is None:
            return {}
        if path == "$":
            return data
        try:
            return self.lookup(path, data, sctx)
        except jsonpath.PathNotFound as exc:
            raise self.runtime_error(sctx, f"Invalid path '{path}' : {exc}") from None

    def template(self, sctx: _StateCtx, value: Any, data: Any) -> Any:
        if isinstance(value, dict):
            out = {}
            for key, sub in value.items():
                if key.endswith(".$") and isinstance(sub, str):
                    out[key[:-2]] = self.dynamic(sctx, key, sub, data)
                else:
                    out[key] = self.template(sctx, sub, data)
            return out
        if isinstance(value, list):
            return [self.template(sctx, v, data) for v in value]
        return value

    def dynamic(self, sctx: _StateCtx, field_name: str, text: str, data: Any) -> Any:
        if intrinsics.looks_like_intrinsic(text):
            return self.intrinsic(sctx, text, data)
        try:
            return self.lookup(text, data, sctx)
        except jsonpath.PathNotFound:
            raise self.runtime_error(
                sctx,
                f"The JSONPath '{text}' specified for the field '{field_name}' could not be found in the "
                f"input '{compact(data)}'",
            ) from None

    def intrinsic(self, sctx: _StateCtx, text: str, data: Any) -> Any:
        call = intrinsics.parse_intrinsic(text)

        def resolve(path: str) -> Any:
            try:
                return self.lookup(path, data, sctx)
            except jsonpath.PathNotFound:
                raise self.runtime_error(
                    sctx,
                    f"The JSONPath '{path}' specified for the field '{text}' could not be found in the "
                    f"input '{compact(data)}'",
                ) from None

        try:
            return intrinsics.finish(intrinsics.evaluate(call, resolve))
        except intrinsics.IntrinsicError as exc:
            raise StatesError(E.INTRINSIC_FAILURE, self.runtime_error(sctx, str(exc)).cause) from None

    def result_path(self, sctx: _StateCtx, path: str | None, raw_input: Any, result: Any) -> Any:
        if path is None:
            return raw_input
        if path == "$":
            return result
        try:
            return jsonpath.set_path(raw_input, jsonpath.compile_path(path), result)
        except jsonpath.ResultPathError:
            raise StatesError(
                E.RESULT_PATH_MATCH_FAILURE,
                self.runtime_error(
                    sctx, f"Unable to apply ResultPath '{path}' to input '{compact(raw_input)}'"
                ).cause,
            ) from None

    # --- JSONata data flow -----------------------------------------------------------------------

    def states_binding(self, sctx: _StateCtx, data: Any, **extra: Any) -> dict:
        binding = {"input": data, "context": self.context_object(sctx)}
        binding.update({k: v for k, v in extra.items() if v is not _MISSING})
        return binding

    def jsonata(self, sctx: _StateCtx, value: Any, states: dict, location: str) -> Any:
        """Evaluate a template: ``{% %}`` strings anywhere inside objects/arrays."""
        if isinstance(value, str):
            if not jsonata_eval.is_expression(value):
                return value
            body = jsonata_eval.expression_body(value)
            bindings = sctx.frame.scope.all()
            bindings["states"] = states
            try:
                return jsonata_eval.evaluate(body, bindings)
            except jsonata_eval.Undefined:
                raise self.query_error(
                    sctx,
                    f"The JSONata expression '{body}' specified for the field '{location}' returned nothing "
                    "(undefined).",
                    location,
                ) from None
            except jsonata_eval.UnsupportedResult:
                raise self.query_error(
                    sctx,
                    f"The JSONata expression '{body}' specified for the field '{location}' returned an "
                    "unsupported result type.",
                    location,
                ) from None
            except (jsonata_eval.JsonataEvalError, jsonata_eval.JsonataSyntaxError) as exc:
                raise self.query_error(
                    sctx,
                    f"An error occurred while evaluating the JSONata expression '{body}' specified for the "
                    f"field '{location}': {exc}",
                    location,
                ) from None
        if isinstance(value, dict):
            return {k: self.jsonata(sctx, v, states, f"{location}/{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [self.jsonata(sctx, v, states, f"{location}/{i}") for i, v in enumerate(value)]
        return value

    def assign(self, sctx: _StateCtx, assign: dict | None, data: Any, states: dict | None) -> dict | None:
        """Evaluate Assign (JSONPath: against ``data``; JSONata: with ``states``); commit later."""
        if not assign:
            return None
        if sctx.state.is_jsonata:
            return {k: self.jsonata(sctx, v, states or {}, f"Assign/{k}") for k, v in assign.items()}
        return self.template(sctx, assign, data)

    def commit(self, sctx: _StateCtx, values: dict | None) -> None:
        if values:
            sctx.frame.scope.vars.update(values)

    # --- programs and states --------------------------------------------------------------------

    def run_program(self, program: StateMachine, data: Any, frame: _Frame) -> Any:
        name = program.start_at
        while True:
            self.check_time()
            if frame.stops and frame.stopped():
                raise _Stopped()
            state = program.states[name]
            data, nxt = self.run_state(state, data, frame)
            if nxt is None:
                return data
            name = nxt

    def run_state(self, state: State, data: Any, frame: _Frame) -> tuple[Any, str | None]:
        previous = 0 if self.first_state else None
        self.first_state = False
        input_text = compact(data)
        entered_id = self.history.add(
            f"{state.type}StateEntered",
            {"name": state.name, "input": input_text, "inputDetails": {"truncated": False}},
            previous,
        )
        sctx = _StateCtx(state, frame, entered_id, self.clock.now())
        if len(input_text.encode()) > MAX_PAYLOAD_BYTES:
            raise _Fatal(E.DATA_LIMIT_EXCEEDED, self._limit_cause(state.name))
        handler: Callable[[_StateCtx, Any], tuple[Any, str | None, dict | None]] = getattr(
            self, f"state_{state.type.lower()}"
        )
        try:
            output, nxt, assigned = handler(sctx, data)
        except StatesError as err:
            if isinstance(err, _Fatal) or not state.catch:
                raise
            catcher = _match_catcher(state.catch, err.error)
            if catcher is None:
                raise
            output, assigned = self.catch_output(sctx, catcher, err, data)
            self.exit(sctx, output, assigned)
            return output, catcher.next
        self.exit(sctx, output, assigned)
        if state.end or isinstance(state, SucceedState):
            return output, None
        return output, nxt

    def exit(self, sctx: _StateCtx, output: Any, assigned: dict | None) -> None:
        output_text = compact(output)
        if len(output_text.encode()) > MAX_PAYLOAD_BYTES:
            raise _Fatal(E.DATA_LIMIT_EXCEEDED, self._limit_cause(sctx.state.name))
        details: dict[str, Any] = {
            "name": sctx.state.name,
            "output": output_text,
            "outputDetails": {"truncated": False},
        }
        if assigned:
            details["assignedVariables"] = {k: compact(v) for k, v in assigned.items()}
            details["assignedVariablesDetails"] = {"truncated": False}
        self.history.add(f"{sctx.state.type}StateExited", details)
        self.commit(sctx, assigned)

    @staticmethod
    def _limit_cause(name: str) -> str:
        return (
            f"The state/task '{name}' returned a result with a size exceeding the maximum number of bytes "
            "service limit."
        )

    def catch_output(
        self, sctx: _StateCtx, catcher: Catcher, err: StatesError, raw_input: Any
    ) -> tuple[Any, dict | None]:
        error_output = {"Error": err.error, "Cause": err.cause if err.cause is not None else ""}
        if sctx.state.is_jsonata:
            states = self.states_binding(sctx, raw_input, errorOutput=error_output)
            assigned = (
                {k: self.jsonata(sctx, v, states, f"Assign/{k}") for k, v in catcher.assign.items()}
                if catcher.assign
                else None
            )
            output = (
                self.jsonata(sctx, catcher.output, states, "Output") if catcher.has_output else error_output
            )
            return output, assigned
        assigned = self.template(sctx, catcher.assign, error_output) if catcher.assign else None
        return self.result_path(sctx, catcher.result_path, raw_input, error_output), assigned

    # --- Pass ------------------------------------------------------------------------------------

    def state_pass(self, sctx: _StateCtx, data: Any) -> tuple[Any, str | None, dict | None]:
        state: PassState = sctx.state  # type: ignore[assignment]
        if state.is_jsonata:
            states = self.states_binding(sctx, data)
            result = state.result if state.has_result else data
            if state.has_result:
                states["result"] = result
            assigned = self.assign(sctx, state.assign, data, states)
            output = self.jsonata(sctx, state.output, states, "Output") if state.has_output else result
            return output, state.next, assigned
        effective = self.apply_path(sctx, state.input_path, data)
        if state.has_result:
            result = state.result
        elif state.has_parameters:
            result = self.template(sctx, state.parameters, effective)
        else:
            result = effective
        assigned = self.assign(sctx, state.assign, result, None)
        output = self.result_path(sctx, state.result_path, data, result)
        output = self.apply_path(sctx, state.output_path, output)
        return output, state.next, assigned

    # --- Succeed / Fail --------------------------------------------------------------------------

    def state_succeed(self, sctx: _StateCtx, data: Any) -> tuple[Any, str | None, dict | None]:
        state = sctx.state
        if state.is_jsonata:
            if state.has_output:
                return self.jsonata(sctx, state.output, self.states_binding(sctx, data), "Output"), None, None
            return data, None, None
        effective = self.apply_path(sctx, state.input_path, data)
        return self.apply_path(sctx, state.output_path, effective), None, None

    def state_fail(self, sctx: _StateCtx, data: Any) -> tuple[Any, str | None, dict | None]:
        state: FailState = sctx.state  # type: ignore[assignment]
        if state.is_jsonata:
            states = self.states_binding(sctx, data)
            error = self.jsonata(sctx, state.error, states, "Error") if state.error is not None else None
            cause = self.jsonata(sctx, state.cause, states, "Cause") if state.cause is not None else None
        else:
            error = self.fail_field(sctx, state.error, state.error_path, "ErrorPath", data)
            cause = self.fail_field(sctx, state.cause, state.cause_path, "CausePath", data)
        raise _FailStateError(
            None if error is None else _to_text(error), None if cause is None else _to_text(cause)
        )

    def fail_field(self, sctx: _StateCtx, literal: Any, path: str | None, name: str, data: Any) -> Any:
        if path is None:
            return literal
        if intrinsics.looks_like_intrinsic(path):
            return self.intrinsic(sctx, path, data)
        try:
            return self.lookup(path, data, sctx)
        except jsonpath.PathNotFound:
            raise self.runtime_error(
                sctx,
                f"The JSONPath '{path}' specified for the field '{name}' could not be found in the input "
                f"'{compact(data)}'",
            ) from None

    # --- Choice ----------------------------------------------------------------------------------

    def state_choice(self, sctx: _StateCtx, data: Any) -> tuple[Any, str | None, dict | None]:
        state: ChoiceState = sctx.state  # type: ignore[assignment]
        if state.is_jsonata:
            states = self.states_binding(sctx, data)

            def condition(expr: Any) -> bool:
                value = self.jsonata(sctx, expr, states, "Condition")
                if not isinstance(value, bool):
                    raise self.query_error(
                        sctx,
                        f"The JSONata expression '{jsonata_eval.expression_body(expr)}' specified for the "
                        f"field 'Condition' returned an unexpected result type. Expected 'boolean', but was "
                        f"'{_json_type(value)}' for value: {compact(value)}",
                        "Condition",
                    )
                return value

            for rule in state.choices:
                if choice_mod.evaluate_rule(rule.rule, lambda p: _MISSING, condition):
                    assigned = self.assign(sctx, rule.assign, data, states)
                    if rule.has_output:
                        output = self.jsonata(sctx, rule.output, states, "Output")
                    elif state.has_output:
                        output = self.jsonata(sctx, state.output, states, "Output")
                    else:
                        output = data
                    return output, rule.next, assigned
            if state.default is None:
                raise StatesError(E.NO_CHOICE_MATCHED, self.runtime_error(sctx, "No Matches!").cause)
            assigned = self.assign(sctx, state.assign, data, states)
            output = self.jsonata(sctx, state.output, states, "Output") if state.has_output else data
            return output, state.default, assigned

        effective = self.apply_path(sctx, state.input_path, data)

        def lookup(path: str) -> Any:
            try:
                return self.lookup(path, effective, sctx)
            except jsonpath.PathNotFound:
                return _MISSING

        for rule in state.choices:
            if choice_mod.evaluate_rule(rule.rule, lookup, lambda expr: bool(expr)):
                assigned = self.assign(sctx, rule.assign, effective, None)
                return self.apply_path(sctx, state.output_path, effective), rule.next, assigned
        if state.default is None:
            raise StatesError(E.NO_CHOICE_MATCHED, self.runtime_error(sctx, "No Matches!").cause)
        assigned = self.assign(sctx, state.assign, effective, None)
        return self.apply_path(sctx, state.output_path, effective), state.default, assigned

    # --- Wait ------------------------------------------------------------------------------------

    def state_wait(self, sctx: _StateCtx, data: Any) -> tuple[Any, str | None, dict | None]:
        state: WaitState = sctx.state  # type: ignore[assignment]
        states = self.states_binding(sctx, data) if state.is_jsonata else None
        effective = data if state.is_jsonata else self.apply_path(sctx, state.input_path, data)
        seconds: float = 0
        if state.seconds is not None:
            value = state.seconds
            if states is not None and jsonata_eval.is_expression(value):
                value = self.jsonata(sctx, value, states, "Seconds")
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise self.query_error(
                        sctx,
                        f"The JSONata expression '{jsonata_eval.expression_body(state.seconds)}' "
                        "specified for the field 'Seconds' returned an unexpected result type. "
                        f"Expected 'integer', but was '{_json_type(value)}' for value: {compact(value)}",
                        "Seconds",
                    )
            seconds = float(value)
        elif state.seconds_path is not None:
            try:
                value = self.lookup(state.seconds_path, effective, sctx)
            except jsonpath.PathNotFound:
                raise self.runtime_error(
                    sctx, f"Invalid path '{state.seconds_path}' : No results for path: {state.seconds_path}"
                ) from None
            if isinstance(value, bool) or not (
                isinstance(value, int) or (isinstance(value, float) and value.is_integer())
            ):
                raise self.runtime_error(
                    sctx,
                    f"The SecondsPath parameter cannot be parsed as a long value: {state.seconds_path} == "
                    f"{_plain(value)}",
                )
            if value < 0:
                raise self.runtime_error(
                    sctx,
                    f"The SecondsPath parameter references a negative value: {state.seconds_path} == "
                    f"{_plain(value)}",
                )
            seconds = float(value)
        else:
            if state.timestamp is not None:
                value = state.timestamp
                if states is not None and jsonata_eval.is_expression(value):
                    value = self.jsonata(sctx, value, states, "Timestamp")
                moment = choice_mod.parse_timestamp(value)
                if moment is None:
                    detail = (
                        "The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time "
                        f"format string: {_plain(value)}"
                    )
                    if state.is_jsonata:
                        raise self.query_error(sctx, detail, "Timestamp")
                    raise self.runtime_error(sctx, detail)
            else:
                try:
                    value = self.lookup(state.timestamp_path, effective, sctx)  # type: ignore[arg-type]
                except jsonpath.PathNotFound:
                    raise self.runtime_error(
                        sctx,
                        f"Invalid path '{state.timestamp_path}' : "
                        f"No results for path: {state.timestamp_path}",
                    ) from None
                moment = choice_mod.parse_timestamp(value)
                if moment is None:
                    raise self.runtime_error(
                        sctx,
                        "The TimestampPath parameter does not reference a valid ISO-8601 extended offset "
                        f"date-time format string: {state.timestamp_path} == {_plain(value)}",
                    )
            seconds = (moment - self.clock.now()).total_seconds()
        self.sleep(seconds, sctx.frame)
        if state.is_jsonata:
            assigned = self.assign(sctx, state.assign, data, states)
            output = self.jsonata(sctx, state.output, states or {}, "Output") if state.has_output else data
            return output, state.next, assigned
        assigned = self.assign(sctx, state.assign, effective, None)
        return self.apply_path(sctx, state.output_path, effective), state.next, assigned

    # --- Task ------------------------------------------------------------------------------------

    def state_task(self, sctx: _StateCtx, data: Any) -> tuple[Any, str | None, dict | None]:
        state: TaskState = sctx.state  # type: ignore[assignment]
        if state.is_jsonata:
            states = self.states_binding(sctx, data)
            if state.has_arguments:
                args = self.jsonata(sctx, state.arguments, states, "Arguments")
            else:
                args = data
            timeout = self.jsonata_int(sctx, state.timeout_seconds, states, "TimeoutSeconds")
            heartbeat = self.jsonata_int(sctx, state.heartbeat_seconds, states, "HeartbeatSeconds")
            result = self.with_retry(sctx, lambda: self.invoke(sctx, args, timeout, heartbeat))
            states = self.states_binding(sctx, data, result=result)
            assigned = self.assign(sctx, state.assign, data, states)
            output = self.jsonata(sctx, state.output, states, "Output") if state.has_output else result
            return output, state.next, assigned
        effective = self.apply_path(sctx, state.input_path, data)
        timeout = state.timeout_seconds
        if state.timeout_seconds_path:
            timeout = self.path_int(sctx, state.timeout_seconds_path, effective, "TimeoutSecondsPath")
        heartbeat = state.heartbeat_seconds
        if state.heartbeat_seconds_path:
            heartbeat = self.path_int(sctx, state.heartbeat_seconds_path, effective, "HeartbeatSecondsPath")

        def attempt() -> Any:
            params = self.template(sctx, state.parameters, effective) if state.has_parameters else effective
            return self.invoke(sctx, params, timeout, heartbeat)

        result = self.with_retry(sctx, attempt)
        if state.result_selector is not None:
            result = self.template(sctx, state.result_selector, result)
        assigned = self.assign(sctx, state.assign, result, None)
        output = self.result_path(sctx, state.result_path, data, result)
        output = self.apply_path(sctx, state.output_path, output)
        return output, state.next, assigned

    def jsonata_int(self, sctx: _StateCtx, value: Any, states: dict, name: str) -> Any:
        if isinstance(value, str) and jsonata_eval.is_expression(value):
            return self.jsonata(sctx, value, states, name)
        return value

    def path_int(self, sctx: _StateCtx, path: str, data: Any, name: str) -> int:
        try:
            value = self.lookup(path, data, sctx)
        except jsonpath.PathNotFound:
            raise self.runtime_error(sctx, f"Invalid path '{path}' : No results for path: {path}") from None
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            shown = value if isinstance(value, str) else compact(value)
            raise self.runtime_error(
                sctx, f'The {name} field refers to value "{shown}" which is not a valid integer: {path}'
            )
        return value

    def with_retry(self, sctx: _StateCtx, attempt: Callable[[], Any]) -> Any:
        retriers = sctx.state.retry
        counts = [0] * len(retriers)
        while True:
            try:
                return attempt()
            except StatesError as err:
                if isinstance(err, _Fatal) or not retriers:
                    raise
                index = _match_retrier(retriers, err.error)
                if index is None:
                    raise
                retrier = retriers[index]
                max_attempts = self.retrier_value(sctx, retrier.max_attempts, "MaxAttempts")
                if counts[index] >= max_attempts:
                    raise
                delay = self.retry_delay(sctx, retrier, counts[index])
                counts[index] += 1
                sctx.retry_count += 1
                self.sleep(delay, sctx.frame)

    def retrier_value(self, sctx: _StateCtx, value: Any, name: str) -> Any:
        if isinstance(value, str) and jsonata_eval.is_expression(value):
            return self.jsonata(sctx, value, self.states_binding(sctx, None), f"Retry/{name}")
        return value

    def retry_delay(self, sctx: _StateCtx, retrier: Retrier, count: int) -> float:
        interval = self.retrier_value(sctx, retrier.interval_seconds, "IntervalSeconds")
        rate = self.retrier_value(sctx, retrier.backoff_rate, "BackoffRate")
        delay = float(interval) * float(rate) ** count
        cap = self.retrier_value(sctx, retrier.max_delay_seconds, "MaxDelaySeconds")
        if cap is not None:
            delay = min(delay, float(cap))
        if retrier.jitter_strategy == "FULL":
            delay = random.uniform(0, delay)
        return delay

    # --- integrations ----------------------------------------------------------------------------

    def invoke(self, sctx: _StateCtx, params: Any, timeout: Any, heartbeat: Any) -> Any:
        resource = sctx.state.resource  # type: ignore[attr-defined]
        if resource.startswith("arn:aws:lambda:") or (":lambda:" in resource and ":function:" in resource):
            return self.invoke_legacy_lambda(sctx, resource, params, timeout)
        base = resource.split(":::", 1)[1] if ":::" in resource else resource
        if base == "lambda:invoke":
            return self.invoke_lambda_task(sctx, params, timeout, heartbeat, sdk=False)
        if base == "aws-sdk:lambda:invoke":
            return self.invoke_lambda_task(sctx, params, timeout, heartbeat, sdk=True)
        if base == "sns:publish":
            return self.publish_sns(sctx, params, timeout, heartbeat)
        raise StatesError(E.RUNTIME, f"The resource '{resource}' is not supported locally")

    def call_with_timeout(self, fn: Callable[[], Any], timeout: Any) -> Any:
        """Run ``fn``; raise _TaskTimeout when it takes longer than ``timeout`` seconds."""
        if not timeout:
            return fn()
        if isinstance(self.clock, RealClock):
            box: dict[str, Any] = {}

            def target() -> None:
                try:
                    box["value"] = fn()
                except BaseException as exc:  # re-raised in the caller's thread
                    box["error"] = exc

            worker = threading.Thread(target=target, daemon=True, name="sfn-task")
            worker.start()
            worker.join(float(timeout))
            if worker.is_alive():
                raise _TaskTimeout()
            if "error" in box:
                raise box["error"]
            return box["value"]
        started = self.clock.now()
        value = fn()
        if (self.clock.now() - started).total_seconds() >= float(timeout):
            raise _TaskTimeout()
        return value

    def task_scheduled(
        self, resource_type: str, resource: str, params: Any, timeout: Any, heartbeat: Any
    ) -> None:
        details: dict[str, Any] = {
            "resourceType": resource_type,
            "resource": resource,
            "region": self.region,
            "parameters": compact(params),
        }
        if timeout:
            details["timeoutInSeconds"] = timeout
        if heartbeat:
            details["heartbeatInSeconds"] = heartbeat
        self.history.add("TaskScheduled", details)
        self.history.add("TaskStarted", {"resourceType": resource_type, "resource": resource})

    def task_failed(self, resource_type: str, resource: str, error: str | None, cause: str | None) -> None:
        details: dict[str, Any] = {"resourceType": resource_type, "resource": resource}
        if error is not None:
            details["error"] = error
        if cause is not None:
            details["cause"] = cause
        self.history.add("TaskFailed", details)

    def task_result(self, sctx: _StateCtx, resource_type: str, resource: str, result: Any) -> Any:
        text = compact(result)
        if len(text.encode()) > MAX_PAYLOAD_BYTES:
            cause = self._limit_cause(resource_type)
            self.task_failed(resource_type, resource, E.DATA_LIMIT_EXCEEDED, cause)
            raise StatesError(E.DATA_LIMIT_EXCEEDED, cause)
        self.history.add(
            "TaskSucceeded",
            {
                "resourceType": resource_type,
                "resource": resource,
                "output": text,
                "outputDetails": {"truncated": False},
            },
        )
        return result

    def invoke_lambda_task(
        self, sctx: _StateCtx, params: Any, timeout: Any, heartbeat: Any, *, sdk: bool
    ) -> Any:
        resource_type = "aws-sdk:lambda" if sdk else "lambda"
        if not isinstance(params, dict) or "FunctionName" not in params:
            raise self.runtime_error(sctx, "The field 'FunctionName' is required for lambda:invoke")
        function = str(params["FunctionName"])
        name, qualifier, region, account = _parse_function(function, self.region, self.account)
        qualifier = params.get("Qualifier") or qualifier
        payload = params.get("Payload")
        if isinstance(payload, str) and (sdk or _is_json_text(payload)):
            payload_bytes = payload.encode()
        else:
            payload_bytes = compact({} if payload is None else payload).encode()
        self.task_scheduled(resource_type, "invoke", params, timeout, heartbeat)
        invocation_type = params.get("InvocationType", "RequestResponse")
        try:
            response = self.call_with_timeout(
                lambda: self.integrations.invoke_lambda(
                    name, payload_bytes, qualifier=qualifier, invocation_type=invocation_type
                ),
                timeout,
            )
        except _TaskTimeout:
            self.history.add(
                "TaskTimedOut", {"resourceType": resource_type, "resource": "invoke", "error": E.TIMEOUT}
            )
            raise StatesError(E.TIMEOUT, None) from None
        except LambdaFunctionNotFound:
            request_id = str(uuid.uuid4())
            arn = f"arn:aws:lambda:{region}:{account}:function:{name}:{qualifier or '$LATEST'}"
            error = "Lambda.ResourceNotFoundException"
            cause = (
                f"Function not found: {arn} (Service: AWSLambda; Status Code: 404; Error Code: "
                f"ResourceNotFoundException; Request ID: {request_id}; Proxy: null)"
            )
            self.task_failed(resource_type, "invoke", error, cause)
            raise StatesError(error, cause) from None
        except (_Aborted, _TimedOut):
            raise
        except Exception as exc:  # the integration itself broke: AWS's service-exception shape
            log.warning("lambda invoke of %s failed: %s", name, exc)
            error, cause = "Lambda.ServiceException", f"{exc} (Service: AWSLambda; Status Code: 500)"
            self.task_failed(resource_type, "invoke", error, cause)
            raise StatesError(error, cause) from None
        text = response.payload.decode("utf-8", errors="replace")
        if sdk:
            result: dict[str, Any] = {"ExecutedVersion": response.executed_version}
            if response.function_error:
                result["FunctionError"] = response.function_error
            result["Payload"] = text
            result["StatusCode"] = response.status_code
            return self.task_result(sctx, resource_type, "invoke", result)
        if response.function_error:
            error, cause = _function_error(text, compact_cause=True)
            self.task_failed(resource_type, "invoke", error, cause)
            raise StatesError(error, cause)
        request_id = response.request_id or str(uuid.uuid4())
        log_result = None
        if params.get("LogType") == "Tail":
            log_result = (
                response.log_result
                or base64.b64encode(
                    f"START RequestId: {request_id} Version: {response.executed_version}\n"
                    f"END RequestId: {request_id}\n".encode()
                ).decode()
            )
        result = {"ExecutedVersion": response.executed_version}
        if log_result is not None:
            result["LogResult"] = log_result
        result.update(
            {
                "Payload": _parse_payload(text),
                "SdkHttpMetadata": _http_metadata(
                    request_id, response.executed_version, len(response.payload), self.clock.now(), log_result
                ),
                "SdkResponseMetadata": {"RequestId": request_id},
                "StatusCode": response.status_code,
            }
        )
        return self.task_result(sctx, resource_type, "invoke", result)

    def invoke_legacy_lambda(self, sctx: _StateCtx, resource: str, params: Any, timeout: Any) -> Any:
        name, qualifier, region, account = _parse_function(resource, self.region, self.account)
        input_text = compact(params)
        details: dict[str, Any] = {
            "resource": resource,
            "input": input_text,
            "inputDetails": {"truncated": False},
        }
        if timeout:
            details["timeoutInSeconds"] = timeout
        self.history.add("LambdaFunctionScheduled", details)
        self.history.add("LambdaFunctionStarted", None)
        try:
            response = self.call_with_timeout(
                lambda: self.integrations.invoke_lambda(name, input_text.encode(), qualifier=qualifier),
                timeout,
            )
        except _TaskTimeout:
            self.history.add("LambdaFunctionTimedOut", {"error": E.TIMEOUT})
            raise StatesError(E.TIMEOUT, None) from None
        except LambdaFunctionNotFound:
            arn = f"arn:aws:lambda:{region}:{account}:function:{name}:{qualifier or '$LATEST'}"
            error = "Lambda.ResourceNotFoundException"
            cause = (
                f"Function not found: {arn} (Service: AWSLambda; Status Code: 404; Error Code: "
                f"ResourceNotFoundException; Request ID: {uuid.uuid4()}; Proxy: null)"
            )
            self.history.add("LambdaFunctionFailed", {"error": error, "cause": cause})
            raise StatesError(error, cause) from None
        except (_Aborted, _TimedOut):
            raise
        except Exception as exc:
            log.warning("lambda invoke of %s failed: %s", name, exc)
            error, cause = "Lambda.ServiceException", str(exc)
            self.history.add("LambdaFunctionFailed", {"error": error, "cause": cause})
            raise StatesError(error, cause) from None
        text = response.payload.decode("utf-8", errors="replace")
        if response.function_error:
            error, cause = _function_error(text, compact_cause=False)
            details = {}
            if error is not None:
                details["error"] = error
            if cause is not None:
                details["cause"] = cause
            self.history.add("LambdaFunctionFailed", details)
            raise StatesError(error, cause)
        result = _parse_payload(text)
        out_text = compact(result)
        if len(out_text.encode()) > MAX_PAYLOAD_BYTES:
            cause = self._limit_cause(resource)
            self.history.add("LambdaFunctionFailed", {"error": E.DATA_LIMIT_EXCEEDED, "cause": cause})
            raise StatesError(E.DATA_LIMIT_EXCEEDED, cause)
        self.history.add(
            "LambdaFunctionSucceeded", {"output": out_text, "outputDetails": {"truncated": False}}
        )
        return result

    def publish_sns(self, sctx: _StateCtx, params: Any, timeout: Any, heartbeat: Any) -> Any:
        if not isinstance(params, dict) or "TopicArn" not in params or "Message" not in params:
            raise self.runtime_error(sctx, "The fields 'TopicArn' and 'Message' are required for sns:publish")
        message = params["Message"]
        text = message if isinstance(message, str) else compact(message)
        self.task_scheduled("sns", "publish", params, timeout, heartbeat)
        try:
            message_id = self.call_with_timeout(
                lambda: self.integrations.publish_sns(
                    str(params["TopicArn"]),
                    text,
                    subject=params.get("Subject"),
                    message_attributes=params.get("MessageAttributes"),
                ),
                timeout,
            )
        except _TaskTimeout:
            self.history.add(
                "TaskTimedOut", {"resourceType": "sns", "resource": "publish", "error": E.TIMEOUT}
            )
            raise StatesError(E.TIMEOUT, None) from None
        except (_Aborted, _TimedOut):
            raise
        except Exception as exc:
            error, cause = "SNS.NotFoundException", f"{exc} (Service: Sns; Status Code: 404)"
            self.task_failed("sns", "publish", error, cause)
            raise StatesError(error, cause) from None
        request_id = str(uuid.uuid4())
        result = {
            "MessageId": message_id,
            "SdkHttpMetadata": {
                "AllHttpHeaders": {
                    "x-amzn-RequestId": [request_id],
                    "Content-Length": ["294"],
                    "Date": [format_datetime(self.clock.now().astimezone(UTC), usegmt=True)],
                    "Content-Type": ["text/xml"],
                },
                "HttpHeaders": {
                    "Content-Length": "294",
                    "Content-Type": "text/xml",
                    "Date": format_datetime(self.clock.now().astimezone(UTC), usegmt=True),
                    "x-amzn-RequestId": request_id,
                },
                "HttpStatusCode": 200,
            },
            "SdkResponseMetadata": {"RequestId": request_id},
        }
        return self.task_result(sctx, "sns", "publish", result)

    # --- Parallel --------------------------------------------------------------------------------

    def state_parallel(self, sctx: _StateCtx, data: Any) -> tuple[Any, str | None, dict | None]:
        state: ParallelState = sctx.state  # type: ignore[assignment]
        if state.is_jsonata:
            states = self.states_binding(sctx, data)
            branch_input = (
                self.jsonata(sctx, state.arguments, states, "Arguments") if state.has_arguments else data
            )
        else:
            effective = self.apply_path(sctx, state.input_path, data)
            branch_input = (
                self.template(sctx, state.parameters, effective) if state.has_parameters else effective
            )

        def attempt() -> list:
            self.history.add("ParallelStateStarted", None)
            if self.concurrent and len(state.branches) > 1:
                return self.parallel_threads(sctx, state.branches, branch_input)
            results = []
            for branch in state.branches:
                results.append(self.run_program(branch, branch_input, sctx.frame.child(sctx.frame.map_item)))
            return results

        try:
            result = self.with_retry(sctx, attempt)
        except StatesError as err:
            if not isinstance(err, _Fatal):
                self.history.add("ParallelStateFailed", _error_details(err))
            raise
        return self.finish_composite(sctx, data, result)

    def parallel_threads(self, sctx: _StateCtx, branches: tuple[StateMachine, ...], data: Any) -> list:
        """Run every branch in its own thread; the first failure stops the others."""
        stop = threading.Event()
        results: list[Any] = [None] * len(branches)
        errors: list[BaseException] = []
        lock = threading.Lock()

        def one(index: int) -> None:
            try:
                frame = sctx.frame.child(sctx.frame.map_item, stop)
                results[index] = self.run_program(branches[index], data, frame)
            except _Stopped:
                pass
            except BaseException as exc:  # re-raised in the state's thread below
                with lock:
                    errors.append(exc)
                stop.set()

        with ThreadPoolExecutor(len(branches), thread_name_prefix="sfn-parallel") as pool:
            list(pool.map(one, range(len(branches))))
        if errors:
            raise errors[0]
        return results

    def finish_composite(
        self, sctx: _StateCtx, data: Any, result: Any
    ) -> tuple[Any, str | None, dict | None]:
        state = sctx.state
        if state.is_jsonata:
            states = self.states_binding(sctx, data, result=result)
            assigned = self.assign(sctx, state.assign, data, states)
            output = self.jsonata(sctx, state.output, states, "Output") if state.has_output else result
            return output, state.next, assigned
        if state.result_selector is not None:
            result = self.template(sctx, state.result_selector, result)
        assigned = self.assign(sctx, state.assign, result, None)
        output = self.result_path(sctx, state.result_path, data, result)
        output = self.apply_path(sctx, state.output_path, output)
        return output, state.next, assigned

    # --- Map -------------------------------------------------------------------------------------

    def state_map(self, sctx: _StateCtx, data: Any) -> tuple[Any, str | None, dict | None]:
        try:
            return self.map_state(sctx, data)
        except StatesError as err:
            if not isinstance(err, _Fatal):
                self.history.add("MapStateFailed", _error_details(err))
            raise

    def map_state(self, sctx: _StateCtx, data: Any) -> tuple[Any, str | None, dict | None]:
        state: MapState = sctx.state  # type: ignore[assignment]
        if state.is_jsonata:
            states = self.states_binding(sctx, data)
            effective = data
            if state.has_items:
                raw_items = state.items
                items = self.jsonata(sctx, raw_items, states, "Items")
                if not isinstance(items, list):
                    body = (
                        jsonata_eval.expression_body(raw_items)
                        if isinstance(raw_items, str)
                        else compact(raw_items)
                    )
                    raise self.query_error(
                        sctx,
                        f"The JSONata expression '{body}' specified for the field 'Items' returned an "
                        f"unexpected result type. Expected 'array', but was '{_json_type(items)}' for value: "
                        f"{compact(items)}",
                        "Items",
                    )
            else:
                items = data
                if not isinstance(items, list):
                    raise self.query_error(
                        sctx, f"Map state input must be an array but was: {compact(items)}"
                    )
        else:
            states = None
            effective = self.apply_path(sctx, state.input_path, data)
            try:
                items = self.lookup(state.items_path, effective, sctx)
            except jsonpath.PathNotFound:
                raise self.runtime_error(
                    sctx, f"Invalid path '{state.items_path}' : No results for path: {state.items_path}"
                ) from None
            if not isinstance(items, list):
                raise self.runtime_error(sctx, f"Map state input must be an array but was: {compact(items)}")
        max_conc = self.map_concurrency(sctx, effective, states)

        def attempt() -> list:
            self.history.add("MapStateStarted", {"length": len(items)})
            tol_count, tol_pct = self.map_tolerance(sctx, effective, states)
            tolerant = tol_count is not None or tol_pct is not None
            if state.distributed:
                self.history.add("MapRunStarted", {"mapRunArn": f"{self.context.execution_arn}:map-run"})
            try:
                results, failures = self.run_iterations(sctx, items, effective, states, max_conc, tolerant)
                if failures and not self.tolerated(len(failures), len(items), tol_count, tol_pct):
                    if tolerant:
                        raise StatesError(
                            E.EXCEED_TOLERATED_FAILURE_THRESHOLD,
                            "The specified tolerance threshold was exceeded",
                        )
                    raise failures[0]
            except StatesError as err:
                if state.distributed and not isinstance(err, _Fatal):
                    self.history.add("MapRunFailed", _error_details(err))
                raise
            if state.distributed:
                self.history.add("MapRunSucceeded", None)
            self.history.add("MapStateSucceeded", None)
            return results

        result = self.with_retry(sctx, attempt)
        return self.finish_composite(sctx, data, result)

    def map_concurrency(self, sctx: _StateCtx, effective: Any, states: dict | None) -> int:
        state: MapState = sctx.state  # type: ignore[assignment]
        if states is not None:
            max_conc = self.jsonata_int(sctx, state.max_concurrency, states, "MaxConcurrency") or 0
        else:
            max_conc = state.max_concurrency or 0
            if state.max_concurrency_path:
                max_conc = self.path_int(sctx, state.max_concurrency_path, effective, "MaxConcurrencyPath")
        if isinstance(max_conc, bool) or not isinstance(max_conc, int | float) or max_conc < 0:
            raise self.runtime_error(sctx, "MaxConcurrency must be a non-negative integer.")
        return int(max_conc)

    def map_tolerance(self, sctx: _StateCtx, effective: Any, states: dict | None) -> tuple[Any, Any]:
        state: MapState = sctx.state  # type: ignore[assignment]
        if states is not None:
            tol_count = self.jsonata_int(sctx, state.tolerated_failure_count, states, "ToleratedFailureCount")
            tol_pct = self.jsonata_int(
                sctx, state.tolerated_failure_percentage, states, "ToleratedFailurePercentage"
            )
        else:
            tol_count = state.tolerated_failure_count
            if state.tolerated_failure_count_path:
                tol_count = self.path_int(
                    sctx, state.tolerated_failure_count_path, effective, "ToleratedFailureCountPath"
                )
            tol_pct = state.tolerated_failure_percentage
            if state.tolerated_failure_percentage_path:
                try:
                    tol_pct = self.lookup(state.tolerated_failure_percentage_path, effective, sctx)
                except jsonpath.PathNotFound:
                    tol_pct = None
                if isinstance(tol_pct, str):
                    try:
                        tol_pct = float(tol_pct)
                    except ValueError:
                        pass
                if isinstance(tol_pct, bool) or not isinstance(tol_pct, int | float):
                    shown = tol_pct if isinstance(tol_pct, str) else compact(tol_pct)
                    raise self.runtime_error(
                        sctx,
                        f'The ToleratedFailurePercentagePath field refers to value "{shown}" which is not a '
                        f"valid float: {state.tolerated_failure_percentage_path}",
                    )
        if tol_count is not None and tol_count < 0:
            raise self.runtime_error(sctx, "ToleratedFailureCount cannot be negative.")
        if tol_pct is not None and not 0 <= tol_pct <= 100:
            raise self.runtime_error(sctx, "ToleratedFailurePercentage must be between 0 and 100.")
        return tol_count, tol_pct

    @staticmethod
    def tolerated(failed: int, total: int, count: Any, pct: Any) -> bool:
        if count is not None and failed <= count:
            return True
        return pct is not None and total > 0 and failed * 100.0 / total <= pct

    def run_iterations(
        self,
        sctx: _StateCtx,
        items: list,
        effective: Any,
        states: dict | None,
        max_conc: int,
        tolerant: bool,
    ) -> tuple[list, list[StatesError]]:
        state: MapState = sctx.state  # type: ignore[assignment]
        processor = state.processor
        assert processor is not None
        results: list[Any] = [None] * len(items)
        failures: list[StatesError] = []
        distributed = state.distributed
        if self.concurrent and not distributed and max_conc != 1 and len(items) > 1:
            return self.map_threads(sctx, items, effective, states, max_conc, tolerant)
        for index, item in enumerate(items):
            self.check_time()
            map_item = {"Index": index, "Value": item}
            value = self.item_value(sctx, index, item, effective, states)
            frame = sctx.frame.child(map_item)
            if not distributed:
                self.history.add("MapIterationStarted", {"name": state.name, "index": index})
            try:
                results[index] = (
                    self.run_program(processor, value, frame)
                    if not distributed
                    else (self.run_child(processor, value, frame))
                )
            except StatesError as err:
                if not distributed:
                    self.history.add("MapIterationFailed", {"name": state.name, "index": index})
                if isinstance(err, _Fatal) and not distributed:
                    raise
                failures.append(err)
                results[index] = {"Error": err.error, "Cause": err.cause}
                if not tolerant:
                    return results, failures
                continue
            if not distributed:
                self.history.add("MapIterationSucceeded", {"name": state.name, "index": index})
        return results, failures

    def item_value(self, sctx: _StateCtx, index: int, item: Any, effective: Any, states: dict | None) -> Any:
        state: MapState = sctx.state  # type: ignore[assignment]
        if not state.has_item_selector:
            return item
        item_ctx = _StateCtx(
            state,
            _Frame(sctx.frame.scope, {"Index": index, "Value": item}),
            sctx.entered_id,
            sctx.entered_time,
        )
        if states is not None:
            binding = self.states_binding(item_ctx, effective)
            return self.jsonata(item_ctx, state.item_selector, binding, "ItemSelector")
        return self.template(item_ctx, state.item_selector, effective)

    def map_threads(
        self,
        sctx: _StateCtx,
        items: list,
        effective: Any,
        states: dict | None,
        max_conc: int,
        tolerant: bool,
    ) -> tuple[list, list[StatesError]]:
        """Inline Map iterations on up to ``max_conc`` threads (0 = unlimited, capped at 40 like AWS)."""
        state: MapState = sctx.state  # type: ignore[assignment]
        processor = state.processor
        assert processor is not None
        values = [self.item_value(sctx, i, item, effective, states) for i, item in enumerate(items)]
        workers = min(len(items), max_conc or MAX_INLINE_CONCURRENCY, MAX_INLINE_CONCURRENCY)
        stop = threading.Event()
        results: list[Any] = [None] * len(items)
        failures: list[StatesError] = []
        other_errors: list[BaseException] = []
        lock = threading.Lock()

        def one(index: int) -> None:
            if stop.is_set():
                return
            map_item = {"Index": index, "Value": items[index]}
            self.history.add("MapIterationStarted", {"name": state.name, "index": index})
            try:
                results[index] = self.run_program(processor, values[index], sctx.frame.child(map_item, stop))
            except _Stopped:
                self.history.add("MapIterationAborted", {"name": state.name, "index": index})
                return
            except StatesError as err:
                self.history.add("MapIterationFailed", {"name": state.name, "index": index})
                with lock:
                    failures.append(err)
                    results[index] = {"Error": err.error, "Cause": err.cause}
                if not tolerant or isinstance(err, _Fatal):
                    stop.set()
                return
            except BaseException as exc:  # abort / execution timeout: re-raised below
                with lock:
                    other_errors.append(exc)
                stop.set()
                return
            self.history.add("MapIterationSucceeded", {"name": state.name, "index": index})

        with ThreadPoolExecutor(workers, thread_name_prefix="sfn-map") as pool:
            list(pool.map(one, range(len(items))))
        if other_errors:
            raise other_errors[0]
        fatal = [f for f in failures if isinstance(f, _Fatal)]
        if fatal:
            raise fatal[0]
        return results, failures

    def run_child(self, processor: StateMachine, value: Any, frame: _Frame) -> Any:
        """A Distributed Map child: its events go to a child history, not the parent's."""
        parent_history, parent_first = self.history, self.first_state
        self.history = History(self.clock.now, None)
        self.first_state = True
        try:
            return self.run_program(processor, value, frame)
        finally:
            self.history, self.first_state = parent_history, parent_first


class _FailStateError(StatesError):
    """Raised by a Fail state."""


class _TaskTimeout(Exception):
    pass


def _error_details(err: StatesError) -> dict:
    details = {}
    if err.error is not None:
        details["error"] = err.error
    if err.cause is not None:
        details["cause"] = err.cause
    return details


def _to_text(value: Any) -> str:
    return value if isinstance(value, str) else compact(value)


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else compact(value)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _error_matches(names: tuple[str, ...], error: str | None) -> bool:
    for name in names:
        if name == E.ALL:
            # AWS's docs say States.ALL does not catch States.DataLimitExceeded, but real executions
            # (asl-conformance states_errors__*catch_state_all*) show it does for an oversized task
            # result; the oversized state input/output is fatal (_Fatal) and never reaches here.
            return error != E.RUNTIME
        if name == E.TASK_FAILED and error not in (E.TIMEOUT, E.RUNTIME):
            return True
        if name == error:
            return True
    return False


def _match_retrier(retriers: tuple[Retrier, ...], error: str | None) -> int | None:
    for index, retrier in enumerate(retriers):
        if _error_matches(retrier.error_equals, error):
            return index
    return None


def _match_catcher(catchers: tuple[Catcher, ...], error: str | None) -> Catcher | None:
    for catcher in catchers:
        if _error_matches(catcher.error_equals, error):
            return catcher
    return None


def _parse_function(function: str, region: str, account: str) -> tuple[str, str | None, str, str]:
    """(name, qualifier, region, account) from a name, ``name:qualifier``, or a (partial) ARN."""
    parts = function.split(":")
    if function.startswith("arn:") and len(parts) >= 7:
        return parts[6], (parts[7] if len(parts) > 7 else None), parts[3] or region, parts[4] or account
    if len(parts) >= 3 and parts[1] == "function":  # 123456789012:function:name[:qual]
        return parts[2], (parts[3] if len(parts) > 3 else None), region, parts[0]
    if len(parts) == 2:
        return parts[0], parts[1], region, account
    return function, None, region, account


def _is_json_text(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _parse_payload(text: str) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _function_error(text: str, *, compact_cause: bool) -> tuple[str | None, str | None]:
    try:
        obj = json.loads(text)
    except ValueError:
        return "Lambda.Unknown", text
    error = obj.get("errorType") if isinstance(obj, dict) else None
    if error is None:
        error = "Lambda.Unknown"
    cause = compact(obj) if compact_cause else text
    return error, cause


def _http_metadata(request_id: str, version: str, length: int, now: datetime, log_result: str | None) -> dict:
    date = format_datetime(now.astimezone(UTC), usegmt=True)
    trace = f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]};Sampled=0"
    headers = {"X-Amz-Log-Result": log_result} if log_result is not None else {}
    headers |= {
        "X-Amz-Executed-Version": version,
        "x-amzn-Remapped-Content-Length": "0",
        "Connection": "keep-alive",
        "x-amzn-RequestId": request_id,
        "Content-Length": str(length),
        "Date": date,
        "X-Amzn-Trace-Id": trace,
        "Content-Type": "application/json",
    }
    return {
        "AllHttpHeaders": {k: [v] for k, v in headers.items()},
        "HttpHeaders": dict(sorted(headers.items())),
        "HttpStatusCode": 200,
    }


# --- entry point -------------------------------------------------------------------------------


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
    run = _Run(machine, context, integrations, listener, cancel, clock or RealClock())
    history = run.history
    history.add(
        "ExecutionStarted",
        {"input": input_text, "inputDetails": {"truncated": False}, "roleArn": context.role_arn},
    )
    try:
        data = json.loads(input_text) if input_text.strip() else {}
    except ValueError:
        data = None
        error, cause = E.RUNTIME, "The execution input is not valid JSON"
        history.add("ExecutionFailed", {"error": error, "cause": cause})
        return ExecutionResult("FAILED", None, error, cause, history.events)
    run.execution_ctx = {
        "Id": context.execution_arn,
        "Input": data,
        "StartTime": iso_millis(run.start_time),
        "Name": context.execution_name,
        "RoleArn": context.role_arn,
        "RedriveCount": context.redrive_count,
    }
    try:
        output = run.run_program(machine, data, _Frame(_Scope()))
    except StatesError as err:
        details = {}
        if err.error is not None:
            details["error"] = err.error
        if err.cause is not None:
            details["cause"] = err.cause
        history.add("ExecutionFailed", details)
        return ExecutionResult("FAILED", None, err.error, err.cause, history.events)
    except _Aborted:
        history.add("ExecutionAborted", {})
        return ExecutionResult("ABORTED", None, None, None, history.events)
    except _TimedOut:
        history.add("ExecutionTimedOut", {})
        return ExecutionResult("TIMED_OUT", None, None, None, history.events)
    text = compact(output)
    history.add("ExecutionSucceeded", {"output": text, "outputDetails": {"truncated": False}})
    return ExecutionResult("SUCCEEDED", text, None, None, history.events)
