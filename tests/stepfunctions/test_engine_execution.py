"""Execution-level behaviour: abort, execution timeout, the history listener, parse errors."""

from __future__ import annotations

import threading
import time

import pytest

from sconeflow.stepfunctions.engine import InvalidDefinition, RealClock, parse_definition

from .engine_helpers import RecordingClock, details, run, types

WAIT_60 = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 60, "End": True}}}


def test_cancel_aborts_a_waiting_execution_promptly() -> None:
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    start = time.monotonic()
    result = run(WAIT_60, {}, clock=RealClock(), cancel=cancel)
    assert time.monotonic() - start < 5
    assert result.status == "ABORTED"
    assert types(result) == ["ExecutionStarted", "WaitStateEntered", "ExecutionAborted"]


def test_execution_timeout_seconds_times_out() -> None:
    definition = dict(WAIT_60, TimeoutSeconds=5)
    clock = RecordingClock()
    result = run(definition, {}, clock=clock)
    assert result.status == "TIMED_OUT"
    assert types(result)[-1] == "ExecutionTimedOut"
    assert clock.sleeps == [5.0]


def test_listener_sees_every_event_in_order() -> None:
    seen: list[dict] = []

    class Listener:
        def on_event(self, event: dict) -> None:
            seen.append(event)

    result = run(
        {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}, {"a": 1}, listener=Listener()
    )
    assert seen == result.events
    assert [e["id"] for e in seen] == [1, 2, 3, 4]
    started = details(seen[0])
    assert started["input"] == '{"a": 1}' and started["inputDetails"] == {"truncated": False}
    assert "roleArn" in started


def test_invalid_definition_raises_with_diagnostics() -> None:
    with pytest.raises(InvalidDefinition) as info:
        parse_definition({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}})
    assert info.value.diagnostics[0].code == "MISSING_TRANSITION_TARGET"
    assert "Missing 'Next' target: B" in str(info.value)


def test_invalid_execution_input_fails_cleanly() -> None:
    from sconeflow.stepfunctions.engine import ExecutionContext, run_execution

    machine = parse_definition({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    context = ExecutionContext("arn:e", "e", "arn:aws:states:us-east-1:1:stateMachine:m", "m")
    result = run_execution(machine, "{not json", context, None, clock=RecordingClock())  # type: ignore[arg-type]
    assert result.status == "FAILED" and result.error == "States.Runtime"


def test_endless_loop_stops_at_the_history_event_limit() -> None:
    loop = {
        "StartAt": "A",
        "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Next": "A"}},
    }
    result = run(loop, {})
    assert result.status == "FAILED" and result.error == "States.Runtime"
    assert "maximum number of history events (25000)" in result.cause
    assert len(result.events) == 25000 and result.events[-1]["type"] == "ExecutionFailed"
