"""The ASL interpreter: runs a parsed :class:`StateMachine` against an input with AWS semantics.

One :class:`_Run` per execution holds the history, the clock and the integrations, and the rules every
state shares: the context object, JSONPath data flow (InputPath -> Parameters -> task ->
ResultSelector -> ResultPath -> OutputPath), JSONata data flow (Arguments -> task -> Output/Assign),
variables, Retry and Catch. Each state type has one ``state_<type>`` method, in
:mod:`.states` (Pass, Succeed, Fail, Choice, Wait), :mod:`.tasks` (Task and its integrations) and
:mod:`.composite` (Parallel, Map); shared internals are in :mod:`.runtime`.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sconeflow.stepfunctions import errors as E
from sconeflow.stepfunctions import intrinsics, jsonata_eval, jsonpath
from sconeflow.stepfunctions.composite import CompositeStates
from sconeflow.stepfunctions.definition import (
    Catcher,
    Retrier,
    State,
    StateMachine,
    SucceedState,
    TaskState,
)
from sconeflow.stepfunctions.errors import InvalidDefinition, LambdaFunctionNotFound, StatesError
from sconeflow.stepfunctions.history import History
from sconeflow.stepfunctions.parser import parse_definition
from sconeflow.stepfunctions.runtime import (
    MAX_PAYLOAD_BYTES,
    MISSING,
    VAR_RE,
    Aborted,
    Clock,
    Fatal,
    Frame,
    RealClock,
    Scope,
    StateCtx,
    Stopped,
    TimedOut,
    VirtualClock,
    compact,
    iso_millis,
)
from sconeflow.stepfunctions.states import BasicStates
from sconeflow.stepfunctions.tasks import TaskStates

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


@dataclass(frozen=True)
class ExecutionContext:
    execution_arn: str
    execution_name: str
    state_machine_arn: str
    state_machine_name: str
    role_arn: str = "arn:aws:iam::123456789012:role/service-role/StepFunctions-sconeflow"
    start_time: datetime | None = None  # UTC; default now
    redrive_count: int = 0
    # started through a version ARN (or an alias ARN, which names the version it routed to): the
    # ExecutionStarted event carries them, as on AWS
    version_arn: str | None = None
    alias_arn: str | None = None


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


# --- the run -----------------------------------------------------------------------------------


class _Run(BasicStates, TaskStates, CompositeStates):
    """One execution: history, clock, integrations, and the rules shared by every state type."""

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

    def context_object(self, sctx: StateCtx) -> dict:
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

    def lookup(self, text: str, data: Any, sctx: StateCtx) -> Any:
        """Evaluate ``$...``, ``$$...`` or ``$var...``; raises jsonpath.PathNotFound when missing."""
        if text.startswith("$$"):
            return jsonpath.compile_path(text).get(self.context_object(sctx))
        m = VAR_RE.match(text)
        if m:
            value = sctx.frame.scope.get(m.group(1))
            if value is MISSING:
                raise jsonpath.PathNotFound(f"Variable ${m.group(1)} is not defined")
            rest = m.group(2)
            return jsonpath.compile_path("$" + rest).get(value) if rest else value
        return jsonpath.compile_path(text).get(data)

    def check_time(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Aborted()
        if self.deadline is not None and self.clock.now() >= self.deadline:
            raise TimedOut()

    def sleep(self, seconds: float, frame: Frame | None = None) -> None:
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
                    raise Stopped()
                if not self.clock.sleep(min(remaining, 0.05), self.cancel):
                    raise Aborted()
        elif not self.clock.sleep(seconds, self.cancel):
            raise Aborted()
        self.check_time()
        if timed_out:
            raise TimedOut()

    def runtime_error(self, sctx: StateCtx, detail: str, error: str = E.RUNTIME) -> StatesError:
        cause = (
            f"An error occurred while executing the state '{sctx.state.name}' "
            f"(entered at the event id #{sctx.entered_id}). {detail}"
        )
        if error == E.RUNTIME:
            return Fatal(error, cause)
        return StatesError(error, cause)

    def query_error(self, sctx: StateCtx, detail: str, location: str | None = None) -> StatesError:
        err = self.runtime_error(sctx, detail, E.QUERY_EVALUATION_ERROR)
        details: dict[str, Any] = {"error": err.error, "cause": err.cause}
        if location:
            details["location"] = location
        details["state"] = sctx.state.name
        self.history.add("EvaluationFailed", details)
        return err

    # --- JSONPath data flow ---------------------------------------------------------------------

    def apply_path(self, sctx: StateCtx, path: str | None, data: Any) -> Any:
        if path is None:
            return {}
        if path == "$":
            return data
        try:
            return self.lookup(path, data, sctx)
        except jsonpath.PathNotFound as exc:
            raise self.runtime_error(sctx, f"Invalid path '{path}' : {exc}") from None

    def template(self, sctx: StateCtx, value: Any, data: Any) -> Any:
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

    def dynamic(self, sctx: StateCtx, field_name: str, text: str, data: Any) -> Any:
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

    def intrinsic(self, sctx: StateCtx, text: str, data: Any) -> Any:
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

    def result_path(self, sctx: StateCtx, path: str | None, raw_input: Any, result: Any) -> Any:
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

    def states_binding(self, sctx: StateCtx, data: Any, **extra: Any) -> dict:
        binding = {"input": data, "context": self.context_object(sctx)}
        binding.update({k: v for k, v in extra.items() if v is not MISSING})
        return binding

    def jsonata(self, sctx: StateCtx, value: Any, states: dict, location: str) -> Any:
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

    def assign(self, sctx: StateCtx, assign: dict | None, data: Any, states: dict | None) -> dict | None:
        """Evaluate Assign (JSONPath: against ``data``; JSONata: with ``states``); commit later."""
        if not assign:
            return None
        if sctx.state.is_jsonata:
            return {k: self.jsonata(sctx, v, states or {}, f"Assign/{k}") for k, v in assign.items()}
        return self.template(sctx, assign, data)

    def commit(self, sctx: StateCtx, values: dict | None) -> None:
        if values:
            sctx.frame.scope.vars.update(values)

    # --- programs and states --------------------------------------------------------------------

    def run_program(self, program: StateMachine, data: Any, frame: Frame) -> Any:
        name = program.start_at
        while True:
            self.check_time()
            if frame.stops and frame.stopped():
                raise Stopped()
            state = program.states[name]
            data, nxt = self.run_state(state, data, frame)
            if nxt is None:
                return data
            name = nxt

    def run_state(self, state: State, data: Any, frame: Frame) -> tuple[Any, str | None]:
        previous = 0 if self.first_state else None
        self.first_state = False
        input_text = compact(data)
        entered_id = self.history.add(
            f"{state.type}StateEntered",
            {"name": state.name, "input": input_text, "inputDetails": {"truncated": False}},
            previous,
        )
        sctx = StateCtx(state, frame, entered_id, self.clock.now())
        if len(input_text.encode()) > MAX_PAYLOAD_BYTES:
            raise Fatal(E.DATA_LIMIT_EXCEEDED, self._limit_cause(state.name))
        handler: Callable[[StateCtx, Any], tuple[Any, str | None, dict | None]] = getattr(
            self, f"state_{state.type.lower()}"
        )
        try:
            output, nxt, assigned = handler(sctx, data)
        except StatesError as err:
            if isinstance(err, Fatal) or not state.catch:
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

    def exit(self, sctx: StateCtx, output: Any, assigned: dict | None) -> None:
        output_text = compact(output)
        if len(output_text.encode()) > MAX_PAYLOAD_BYTES:
            raise Fatal(E.DATA_LIMIT_EXCEEDED, self._limit_cause(sctx.state.name))
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
        self, sctx: StateCtx, catcher: Catcher, err: StatesError, raw_input: Any
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

    # --- Succeed / Fail --------------------------------------------------------------------------

    # --- Choice ----------------------------------------------------------------------------------

    # --- Wait ------------------------------------------------------------------------------------

    # --- Task ------------------------------------------------------------------------------------

    def jsonata_int(self, sctx: StateCtx, value: Any, states: dict, name: str) -> Any:
        if isinstance(value, str) and jsonata_eval.is_expression(value):
            return self.jsonata(sctx, value, states, name)
        return value

    def path_int(self, sctx: StateCtx, path: str, data: Any, name: str) -> int:
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

    def with_retry(self, sctx: StateCtx, attempt: Callable[[], Any]) -> Any:
        retriers = sctx.state.retry
        counts = [0] * len(retriers)
        while True:
            try:
                return attempt()
            except StatesError as err:
                if isinstance(err, Fatal) or not retriers:
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

    def retrier_value(self, sctx: StateCtx, value: Any, name: str) -> Any:
        if isinstance(value, str) and jsonata_eval.is_expression(value):
            return self.jsonata(sctx, value, self.states_binding(sctx, None), f"Retry/{name}")
        return value

    def retry_delay(self, sctx: StateCtx, retrier: Retrier, count: int) -> float:
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

    # --- Parallel --------------------------------------------------------------------------------

    # --- Map -------------------------------------------------------------------------------------


def _error_matches(names: tuple[str, ...], error: str | None) -> bool:
    for name in names:
        if name == E.ALL:
            # AWS's docs say States.ALL does not catch States.DataLimitExceeded, but real executions
            # (asl-conformance states_errors__*catch_state_all*) show it does for an oversized task
            # result; the oversized state input/output is fatal (Fatal) and never reaches here.
            return error != E.RUNTIME
        if name == E.TASK_FAILED and error not in (E.TIMEOUT, E.RUNTIME):
            return True
        if name == error:
            return True
        if name == "Lambda.Unknown" and error in _LAMBDA_UNKNOWN_ALIASES:
            return True
    return False


# Unhandled Lambda failures the docs call ``Lambda.Unknown``; a current runtime reports a function timeout
# as ``Sandbox.Timedout`` (aws-contracts 5a), so a Catch/Retry on Lambda.Unknown matches both.
_LAMBDA_UNKNOWN_ALIASES = frozenset(
    {"Sandbox.Timedout", "Runtime.ExitError", "Function.ResponseSizeTooLarge"}
)


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
    started: dict[str, Any] = {
        "input": input_text,
        "inputDetails": {"truncated": False},
        "roleArn": context.role_arn,
    }
    if context.alias_arn:
        started["stateMachineAliasArn"] = context.alias_arn
    if context.version_arn:
        started["stateMachineVersionArn"] = context.version_arn
    history.add("ExecutionStarted", started)
    try:
        data = json.loads(input_text, parse_float=intrinsics.finite_float) if input_text.strip() else {}
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
        output = run.run_program(machine, data, Frame(Scope()))
    except StatesError as err:
        details = {}
        if err.error is not None:
            details["error"] = err.error
        if err.cause is not None:
            details["cause"] = err.cause
        history.add("ExecutionFailed", details)
        return ExecutionResult("FAILED", None, err.error, err.cause, history.events)
    except Aborted:
        history.add("ExecutionAborted", {})
        return ExecutionResult("ABORTED", None, None, None, history.events)
    except TimedOut:
        history.add("ExecutionTimedOut", {})
        return ExecutionResult("TIMED_OUT", None, None, None, history.events)
    text = compact(output)
    history.add("ExecutionSucceeded", {"output": text, "outputDetails": {"truncated": False}})
    return ExecutionResult("SUCCEEDED", text, None, None, history.events)
