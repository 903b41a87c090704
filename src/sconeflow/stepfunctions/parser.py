"""Parse an ASL definition once into typed components (after validating it)."""

from __future__ import annotations

import json
from typing import Any

from sconeflow.stepfunctions import choice
from sconeflow.stepfunctions.definition import (
    JSONATA,
    JSONPATH,
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
from sconeflow.stepfunctions.errors import InvalidDefinition


def parse_definition(definition: str | dict) -> StateMachine:
    """Validate then parse; raises InvalidDefinition (with ``.diagnostics``) when invalid."""
    from sconeflow.stepfunctions.validate import validate_definition

    text = definition if isinstance(definition, str) else json.dumps(definition)
    result = validate_definition(text)
    if result.result != "OK":
        first = result.diagnostics[0] if result.diagnostics else None
        where = f" at {first.location}" if first and first.location else ""
        message = f"{first.message}{where}" if first else "invalid definition"
        if len(result.diagnostics) > 1:
            message += f" (and {len(result.diagnostics) - 1} more problem(s))"
        raise InvalidDefinition(message, result.diagnostics)
    raw = json.loads(text) if isinstance(definition, str) else definition
    return build_machine(raw, raw.get("QueryLanguage", JSONPATH))


def build_machine(raw: dict, query_language: str) -> StateMachine:
    """Build components from an already validated definition (or branch / item processor)."""
    ql = raw.get("QueryLanguage", query_language)
    states = {name: _build_state(name, body, ql) for name, body in raw["States"].items()}
    return StateMachine(
        start_at=raw["StartAt"],
        states=states,
        query_language=ql,
        timeout_seconds=raw.get("TimeoutSeconds"),
        comment=raw.get("Comment"),
        raw=raw,
    )


def _retrier(raw: dict) -> Retrier:
    return Retrier(
        error_equals=tuple(raw["ErrorEquals"]),
        interval_seconds=raw.get("IntervalSeconds", 1),
        max_attempts=raw.get("MaxAttempts", 3),
        backoff_rate=raw.get("BackoffRate", 2.0),
        max_delay_seconds=raw.get("MaxDelaySeconds"),
        jitter_strategy=raw.get("JitterStrategy", "NONE"),
    )


def _catcher(raw: dict) -> Catcher:
    return Catcher(
        error_equals=tuple(raw["ErrorEquals"]),
        next=raw["Next"],
        result_path=raw.get("ResultPath", "$"),
        output=raw.get("Output"),
        has_output="Output" in raw,
        assign=raw.get("Assign"),
    )


_CLASSES: dict[str, type[State]] = {
    "Pass": PassState,
    "Task": TaskState,
    "Choice": ChoiceState,
    "Wait": WaitState,
    "Succeed": SucceedState,
    "Fail": FailState,
    "Parallel": ParallelState,
    "Map": MapState,
}


def _build_state(name: str, raw: dict, parent_ql: str) -> State:
    ql = raw.get("QueryLanguage", parent_ql)
    kind = raw["Type"]
    common: dict[str, Any] = {
        "name": name,
        "type": kind,
        "query_language": ql,
        "next": raw.get("Next"),
        "end": bool(raw.get("End", False)),
        "comment": raw.get("Comment"),
        "input_path": raw.get("InputPath", "$"),
        "output_path": raw.get("OutputPath", "$"),
        "result_path": raw.get("ResultPath", "$"),
        "parameters": raw.get("Parameters"),
        "has_parameters": "Parameters" in raw,
        "result_selector": raw.get("ResultSelector"),
        "arguments": raw.get("Arguments"),
        "has_arguments": "Arguments" in raw,
        "output": raw.get("Output"),
        "has_output": "Output" in raw,
        "assign": raw.get("Assign"),
        "retry": tuple(_retrier(r) for r in raw.get("Retry", [])),
        "catch": tuple(_catcher(c) for c in raw.get("Catch", [])),
        "raw": raw,
    }
    extra: dict[str, Any] = {}
    if kind == "Pass":
        extra = {"result": raw.get("Result"), "has_result": "Result" in raw}
    elif kind == "Task":
        extra = {
            "resource": raw["Resource"],
            "timeout_seconds": raw.get("TimeoutSeconds"),
            "timeout_seconds_path": raw.get("TimeoutSecondsPath"),
            "heartbeat_seconds": raw.get("HeartbeatSeconds"),
            "heartbeat_seconds_path": raw.get("HeartbeatSecondsPath"),
            "credentials": raw.get("Credentials"),
        }
    elif kind == "Choice":
        extra = {
            "choices": tuple(choice.parse_choice(c) for c in raw.get("Choices", [])),
            "default": raw.get("Default"),
        }
    elif kind == "Wait":
        extra = {
            "seconds": raw.get("Seconds"),
            "timestamp": raw.get("Timestamp"),
            "seconds_path": raw.get("SecondsPath"),
            "timestamp_path": raw.get("TimestampPath"),
        }
    elif kind == "Fail":
        extra = {
            "error": raw.get("Error"),
            "cause": raw.get("Cause"),
            "error_path": raw.get("ErrorPath"),
            "cause_path": raw.get("CausePath"),
        }
    elif kind == "Parallel":
        extra = {"branches": tuple(build_machine(b, ql) for b in raw.get("Branches", []))}
    elif kind == "Map":
        processor_raw = raw.get("ItemProcessor") or raw.get("Iterator")
        mode = ((processor_raw or {}).get("ProcessorConfig") or {}).get("Mode", "INLINE")
        selector_key = "ItemSelector" if "ItemSelector" in raw else "Parameters"
        extra = {
            "processor": build_machine(processor_raw, ql) if processor_raw else None,
            "items_path": raw.get("ItemsPath", "$"),
            "items": raw.get("Items"),
            "has_items": "Items" in raw,
            "item_selector": raw.get(selector_key),
            "has_item_selector": selector_key in raw,
            "max_concurrency": raw.get("MaxConcurrency", 0),
            "max_concurrency_path": raw.get("MaxConcurrencyPath"),
            "tolerated_failure_percentage": raw.get("ToleratedFailurePercentage"),
            "tolerated_failure_percentage_path": raw.get("ToleratedFailurePercentagePath"),
            "tolerated_failure_count": raw.get("ToleratedFailureCount"),
            "tolerated_failure_count_path": raw.get("ToleratedFailureCountPath"),
            "distributed": mode == "DISTRIBUTED",
            "label": raw.get("Label"),
        }
        common["has_parameters"] = False
        common["parameters"] = None
    return _CLASSES[kind](**common, **extra)


__all__ = ["JSONATA", "JSONPATH", "build_machine", "parse_definition"]
