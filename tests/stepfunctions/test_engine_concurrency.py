"""Real-time runs: Map iterations and Parallel branches on threads, MaxConcurrency, failure stops siblings."""

from __future__ import annotations

import threading
import time

from sconeflow.stepfunctions.engine import RealClock

from .engine_helpers import Functions, invoke_task, output, run, types


class SlowEcho:
    """A function that sleeps, tracking how many calls overlap."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.active = 0
        self.peak = 0
        self.lock = threading.Lock()

    def __call__(self, event):
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(self.seconds)
        with self.lock:
            self.active -= 1
        return event


def _map(max_concurrency: int) -> dict:
    return {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "MaxConcurrency": max_concurrency,
                "ItemProcessor": {"StartAt": "T", "States": {"T": invoke_task("slow")}},
                "End": True,
            }
        },
    }


def test_map_iterations_run_concurrently_and_keep_order() -> None:
    slow = SlowEcho(0.3)
    start = time.monotonic()
    result = run(_map(0), [1, 2, 3, 4], Functions(slow=slow), clock=RealClock())
    elapsed = time.monotonic() - start
    assert output(result) == [1, 2, 3, 4]
    assert elapsed < 0.9 and slow.peak == 4
    assert types(result).count("MapIterationSucceeded") == 4


def test_max_concurrency_limits_overlap() -> None:
    slow = SlowEcho(0.15)
    result = run(_map(2), [1, 2, 3, 4], Functions(slow=slow), clock=RealClock())
    assert output(result) == [1, 2, 3, 4]
    assert slow.peak == 2


def test_failed_parallel_branch_stops_the_waiting_sibling() -> None:
    definition = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Parallel",
                "End": True,
                "Branches": [
                    {
                        "StartAt": "W",
                        "States": {
                            "W": {"Type": "Wait", "Seconds": 60, "Next": "After"},
                            "After": {"Type": "Pass", "End": True},
                        },
                    },
                    {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Early", "Cause": "stop"}}},
                ],
            }
        },
    }
    start = time.monotonic()
    result = run(definition, {}, clock=RealClock())
    assert time.monotonic() - start < 5
    assert (result.status, result.error) == ("FAILED", "Early")
    assert "PassStateEntered" not in types(result)


def test_failed_map_iteration_stops_the_others() -> None:
    definition = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "End": True,
                "ItemProcessor": {
                    "StartAt": "C",
                    "States": {
                        "C": {
                            "Type": "Choice",
                            "Choices": [{"Variable": "$", "NumericEquals": 0, "Next": "Bad"}],
                            "Default": "W",
                        },
                        "Bad": {"Type": "Fail", "Error": "Zero"},
                        "W": {"Type": "Wait", "Seconds": 60, "End": True},
                    },
                },
            }
        },
    }
    start = time.monotonic()
    result = run(definition, [1, 0, 2], clock=RealClock())
    assert time.monotonic() - start < 5
    assert result.error == "Zero"
    assert types(result).count("MapIterationAborted") >= 1  # the others never start or are aborted
    assert "MapIterationSucceeded" not in types(result)


def test_concurrent_iterations_keep_their_own_previous_event_chains() -> None:
    """Each iteration's events point back along that iteration, not at another iteration's event."""
    slow = SlowEcho(0.1)
    result = run(_map(0), [1, 2, 3, 4], Functions(slow=slow), clock=RealClock())
    by_id = {event["id"]: event for event in result.events}
    map_started = next(e["id"] for e in result.events if e["type"] == "MapStateStarted")
    for event in result.events:
        if event["type"] != "MapIterationSucceeded":
            continue
        index = event["mapIterationSucceededEventDetails"]["index"]
        chain = []
        current = event
        while current["type"] != "MapIterationStarted":
            chain.append(current["type"])
            current = by_id[current["previousEventId"]]
        assert current["mapIterationStartedEventDetails"]["index"] == index
        assert current["previousEventId"] == map_started
        assert chain[-1] == "TaskStateEntered" and "TaskSucceeded" in chain
