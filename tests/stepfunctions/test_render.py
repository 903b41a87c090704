"""Execution pictures: statuses read from histories, boxes coloured by them, PNG and SVG."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sconeflow.config import Settings
from sconeflow.stepfunctions.render import (
    CANCELED,
    CAUGHT,
    FAILED,
    IN_PROGRESS,
    NOT_STARTED,
    STATUS_STYLE,
    SUCCEEDED,
    RenderError,
    render_graph,
    state_statuses,
    taken_edges,
)
from sconeflow.stepfunctions.service import StepFunctionsService

from .sfn_helpers import WAIT_LONG, WORKFLOW, PythonIntegrations, close, dumps, hex_rgb, pixel, wait_for

CATCHING = {
    "StartAt": "Prepare",
    "States": {
        "Prepare": {"Type": "Pass", "Next": "Risky"},
        "Risky": {
            "Type": "Task",
            "Resource": "arn:aws:lambda:us-east-1:123456789012:function:boom",
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Recover"}],
            "Next": "Skipped",
        },
        "Skipped": {"Type": "Succeed"},
        "Recover": {"Type": "Pass", "Next": "GiveUp"},
        "GiveUp": {"Type": "Fail", "Error": "Gave.Up", "Cause": "recovered, then failed on purpose"},
    },
}

GROUPS = {
    "StartAt": "Fan",
    "States": {
        "Fan": {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "Left", "States": {"Left": {"Type": "Pass", "End": True}}},
                {"StartAt": "Right", "States": {"Right": {"Type": "Pass", "End": True}}},
            ],
            "ResultPath": "$.fan",
            "Next": "Each",
        },
        "Each": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "ItemProcessor": {"StartAt": "Double", "States": {"Double": {"Type": "Pass", "End": True}}},
            "End": True,
        },
    },
}


def _service(settings: Settings) -> StepFunctionsService:
    def boom(event):
        raise RuntimeError("kaboom")

    integrations = PythonIntegrations({"boom": boom})
    return StepFunctionsService(settings, integrations=lambda machine: integrations)


def _check_colours(result, expected: dict[str, str]) -> None:
    for state, status in expected.items():
        assert result.statuses[state] == status, state
        assert close(pixel(result.path, result.boxes[state]), hex_rgb(STATUS_STYLE[status][0])), (
            state,
            status,
        )


def test_succeeded_caught_failed_and_not_started(settings: Settings, tmp_path: Path) -> None:
    service = _service(settings)
    service.create_state_machine("catching", dumps(CATCHING))
    record = service.run_to_end("catching", "{}", name="c1")
    assert record.status == "FAILED" and record.error == "Gave.Up"
    _, events = service.history("c1")
    result = render_graph(dumps(CATCHING), tmp_path / "c1.png", events=events, execution_status=record.status)
    _check_colours(
        result,
        {
            "Prepare": SUCCEEDED,
            "Risky": CAUGHT,
            "Recover": SUCCEEDED,
            "GiveUp": FAILED,
            "Skipped": NOT_STARTED,
        },
    )
    assert result.path.stat().st_size > 10_000
    assert taken_edges(events) == {
        ("__start__", "Prepare"),
        ("Prepare", "Risky"),
        ("Risky", "Recover"),
        ("Recover", "GiveUp"),
        ("GiveUp", "__end__"),
    }


def test_an_execution_of_a_deleted_machine_is_drawn_with_the_revision_it_ran(
    settings: Settings, tmp_path: Path
) -> None:
    from sconeflow.stepfunctions.render import render_execution

    service = _service(settings)
    service.create_state_machine("catching", dumps(CATCHING))
    service.run_to_end("catching", "{}", name="c1")
    service.delete_state_machine("catching")
    # recreated under the same name (so the same ARN) with another definition: c1 still ran CATCHING
    service.create_state_machine("catching", dumps(GROUPS))
    result = render_execution(service, "c1", tmp_path / "c1.png")
    assert set(result.boxes) == set(CATCHING["States"])
    _check_colours(result, {"Prepare": SUCCEEDED, "Risky": CAUGHT, "GiveUp": FAILED})
    assert json.loads(service.store.machine_for_execution(service.describe_execution("c1")).definition) == (
        CATCHING
    )
    service.delete_state_machine("catching")
    assert set(render_execution(service, "c1", tmp_path / "again.png").boxes) == set(CATCHING["States"])


def test_in_progress_then_canceled(settings: Settings, tmp_path: Path) -> None:
    service = _service(settings)
    service.create_state_machine("hold", dumps(WAIT_LONG))
    service.start_execution("hold", "{}", name="h1")
    wait_for(lambda: any(e["type"] == "WaitStateEntered" for e in service.history("h1")[1]), timeout=10)
    record, events = service.history("h1")
    running = render_graph(
        dumps(WAIT_LONG), tmp_path / "running.png", events=events, execution_status=record.status
    )
    _check_colours(running, {"Hold": IN_PROGRESS, "Done": NOT_STARTED})
    service.stop_execution("h1")
    record, events = service.history("h1")
    stopped = render_graph(
        dumps(WAIT_LONG), tmp_path / "stopped.png", events=events, execution_status=record.status
    )
    _check_colours(stopped, {"Hold": CANCELED, "Done": NOT_STARTED})


def test_parallel_and_map_groups(settings: Settings, tmp_path: Path) -> None:
    service = _service(settings)
    service.create_state_machine("groups", dumps(GROUPS))
    record = service.run_to_end("groups", json.dumps({"items": [1, 2, 3]}))
    assert record.status == "SUCCEEDED"
    _, events = service.history(record.arn)
    result = render_graph(
        dumps(GROUPS), tmp_path / "groups.png", events=events, execution_status=record.status
    )
    _check_colours(
        result,
        {"Fan": SUCCEEDED, "Left": SUCCEEDED, "Right": SUCCEEDED, "Each": SUCCEEDED, "Double": SUCCEEDED},
    )
    # the inner states are drawn inside their group
    fan, left = result.boxes["Fan"], result.boxes["Left"]
    assert fan[0] < left[0] and left[2] < fan[2] and fan[1] < left[1]


def test_statuses_from_a_map_with_one_failed_iteration_and_an_aborted_branch() -> None:
    def ev(i, prev, kind, **details):
        event = {"id": i, "previousEventId": prev, "type": kind}
        if details:
            event["stateEnteredEventDetails" if "Entered" in kind else "stateExitedEventDetails"] = details
        return event

    events = [
        ev(1, 0, "ExecutionStarted"),
        ev(2, 0, "MapStateEntered", name="Each"),
        ev(3, 2, "MapStateStarted"),
        ev(4, 3, "MapIterationStarted"),
        ev(5, 4, "TaskStateEntered", name="Work"),
        ev(6, 3, "MapIterationStarted"),
        ev(7, 6, "TaskStateEntered", name="Work"),
        ev(8, 5, "TaskScheduled"),
        ev(9, 8, "TaskSucceeded"),
        ev(10, 9, "TaskStateExited", name="Work"),
        ev(11, 7, "TaskScheduled"),
        ev(12, 11, "TaskFailed"),
        ev(13, 12, "MapIterationFailed"),
        ev(14, 13, "MapStateFailed"),
        ev(15, 14, "ExecutionFailed"),
    ]
    statuses = state_statuses(events)
    assert statuses == {"Each": FAILED, "Work": FAILED}
    # a retried task that then succeeded is green, not amber
    retried = [
        ev(1, 0, "ExecutionStarted"),
        ev(2, 0, "TaskStateEntered", name="T"),
        ev(3, 2, "TaskScheduled"),
        ev(4, 3, "TaskFailed"),
        ev(5, 4, "TaskScheduled"),
        ev(6, 5, "TaskSucceeded"),
        ev(7, 6, "TaskStateExited", name="T"),
        ev(8, 7, "ExecutionSucceeded"),
    ]
    assert state_statuses(retried) == {"T": SUCCEEDED}
    # a branch still running when its sibling failed is canceled
    branches = [
        ev(1, 0, "ExecutionStarted"),
        ev(2, 0, "ParallelStateEntered", name="P"),
        ev(3, 2, "ParallelStateStarted"),
        ev(4, 3, "WaitStateEntered", name="Slow"),
        ev(5, 3, "FailStateEntered", name="Bad"),
        ev(6, 5, "ParallelStateFailed"),
        ev(7, 6, "ExecutionFailed"),
    ]
    assert state_statuses(branches) == {"P": FAILED, "Slow": CANCELED, "Bad": FAILED}


def test_design_view_svg_and_bad_requests(tmp_path: Path) -> None:
    result = render_graph(WORKFLOW.read_text(), tmp_path / "design.svg", title="design")
    text = result.path.read_text()
    assert text.startswith("<?xml") and "<svg" in text
    assert set(result.statuses.values()) == {NOT_STARTED}
    with pytest.raises(RenderError):
        render_graph(WORKFLOW.read_text(), tmp_path / "graph.gif")
    with pytest.raises(RenderError):
        render_graph("{not json", tmp_path / "graph.png")
    with pytest.raises(RenderError):
        render_graph({"StartAt": "A"}, tmp_path / "graph.png")
