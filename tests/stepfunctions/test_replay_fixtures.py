"""Replay 61 console exports of real runs of the Scones workflow, and validate the 45 committed definitions.

Each export (../shared/fixtures/stepfunctions/executions) holds the definition and the full history with
every Lambda input and output. The definition runs in the engine with an Integrations that returns the
recorded Lambda outcomes in order (it stands in for AWS Lambda), and the recorded status, output and
sequence of event types must come out again.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sconeflow.stepfunctions.engine import ExecutionContext, LambdaResponse, VirtualClock, run_execution
from sconeflow.stepfunctions.parser import parse_definition
from sconeflow.stepfunctions.validate import validate_definition

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "stepfunctions"
EXECUTIONS = sorted((FIXTURES / "executions").glob("*.json")) if FIXTURES.is_dir() else []
DEFINITIONS = sorted((FIXTURES / "definitions").glob("*.json")) if FIXTURES.is_dir() else []
BROKEN = {
    "mohelwah__image_classification.json": {"MISSING_TRANSITION_TARGET": "fileterInferResults"},
    "emadreda1__ML-Workflow-For-Scones-Unlimited-On-Amazon-SageMaker.json": {
        "DUPLICATE_STATE_NAME": "ImageClassification",
        "INVALID_RESOURCE": "arn:aws:states:sns:publish",
    },
}


def _events(export: dict) -> list[dict]:
    history = export["historyHash"]
    return [history[k] for k in sorted(history, key=int)]


def _first_run(events: list[dict]) -> list[dict]:
    """The original run: events up to the first ExecutionRedriven (redrives are not replayed)."""
    for index, event in enumerate(events):
        if event["type"] == "ExecutionRedriven":
            return events[:index]
    return events


def _details(event: dict) -> dict:
    for key, value in event.items():
        if key.endswith("EventDetails") and value:
            return value
    return {}


class RecordedLambdas:
    """Returns the Lambda outcomes recorded in an export, in order (a stand-in for AWS Lambda)."""

    def __init__(self, events: list[dict]) -> None:
        self.outcomes: list[tuple[str, Any]] = []
        for event in events:
            kind = event["type"]
            details = _details(event)
            if kind == "TaskSucceeded":
                output = details["output"]
                result = json.loads(output) if isinstance(output, str) else output
                payload = result.get("Payload") if isinstance(result, dict) else result
                if details.get("resourceType") == "aws-sdk:lambda":
                    self.outcomes.append(
                        ("raw", payload if isinstance(payload, str) else json.dumps(payload))
                    )
                else:
                    self.outcomes.append(("ok", payload))
            elif kind == "LambdaFunctionSucceeded":
                output = details["output"]
                self.outcomes.append(("ok", json.loads(output) if isinstance(output, str) else output))
            elif kind in ("TaskFailed", "LambdaFunctionFailed"):
                self.outcomes.append(("error", details.get("cause") or ""))
        self.calls: list[tuple[str, Any]] = []

    def invoke_lambda(
        self,
        function_name: str,
        payload: bytes,
        *,
        qualifier: str | None = None,
        invocation_type: str = "RequestResponse",
    ) -> LambdaResponse:
        self.calls.append((function_name, json.loads(payload) if payload else None))
        kind, value = self.outcomes.pop(0)
        if kind == "error":
            return LambdaResponse(value.encode(), "Unhandled", request_id="r")
        if kind == "raw":
            return LambdaResponse(value.encode(), request_id="r")
        return LambdaResponse(json.dumps(value).encode(), request_id="r")

    def publish_sns(
        self,
        topic_arn: str,
        message: str,
        *,
        subject: str | None = None,
        message_attributes: dict | None = None,
    ) -> str:
        return "m-1"


_VOLATILE = {"SdkHttpMetadata", "SdkResponseMetadata"}  # request ids, dates, trace ids of the real run


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def replay(path: Path) -> tuple[Any, list[dict]]:
    export = json.loads(path.read_text())
    events = _first_run(_events(export))
    machine = parse_definition(export["stateMachine"]["definition"])
    started = _details(events[0])
    lambdas = RecordedLambdas(events)
    clock = VirtualClock(datetime(2025, 1, 1, tzinfo=UTC))
    arn = export["execution"]["executionArn"]
    sm_arn = export["execution"]["stateMachineArn"]
    context = ExecutionContext(arn, arn.rsplit(":", 1)[-1], sm_arn, sm_arn.rsplit(":", 1)[-1])
    result = run_execution(machine, started["input"], context, lambdas, clock=clock)
    assert not lambdas.outcomes, f"{len(lambdas.outcomes)} recorded Lambda outcome(s) were not consumed"
    return result, events


@pytest.mark.needs_shared
@pytest.mark.parametrize("path", EXECUTIONS, ids=[p.name.split("__")[0] for p in EXECUTIONS])
def test_replay_execution_export(path: Path) -> None:
    export = json.loads(path.read_text())
    recorded = _first_run(_events(export))
    if recorded[-1]["type"] not in ("ExecutionSucceeded", "ExecutionFailed"):
        pytest.skip("the exported history stops before the execution ended (no terminal event)")
    result, events = replay(path)
    assert [e["type"] for e in result.events] == [e["type"] for e in events]
    last = _details(events[-1])
    if events[-1]["type"] == "ExecutionSucceeded":
        assert result.status == "SUCCEEDED"
        assert _stable(json.loads(result.output)) == _stable(json.loads(last["output"]))
    else:
        assert result.status == "FAILED"
        assert result.error == last.get("error")
        assert json.loads(result.cause) == json.loads(last["cause"])


def test_fixture_corpus_present() -> None:
    if not FIXTURES.is_dir():
        pytest.skip(f"../shared fixtures are absent ({FIXTURES})")
    assert len(EXECUTIONS) == 61
    assert len(DEFINITIONS) == 45


@pytest.mark.needs_shared
@pytest.mark.parametrize("path", DEFINITIONS, ids=[p.name.split("__")[0] for p in DEFINITIONS])
def test_validate_committed_definition(path: Path) -> None:
    result = validate_definition(path.read_text())
    expected_problems = BROKEN.get(path.name)
    if expected_problems is None:
        assert result.result == "OK", [d.to_api() for d in result.diagnostics]
        parse_definition(path.read_text())
        return
    assert result.result == "FAIL"
    for code, needle in expected_problems.items():
        assert any(d.code == code and needle in d.message for d in result.diagnostics), (
            code,
            [d.to_api() for d in result.diagnostics],
        )
