"""Retry (timing, matching, per-retrier counters), Catch, the States.* errors, Fail states."""

from __future__ import annotations

import json

import pytest

from .engine_helpers import Functions, RaisedError, RecordingClock, details, invoke_task, output, run, types


def _failing(*errors: str):
    """A function raising the given error types in turn, then returning 'done'."""
    queue = list(errors)

    def handler(event):
        if queue:
            raise RaisedError(queue.pop(0), "failed")
        return "done"

    return handler


def _retry_machine(retry: list, catch: list | None = None) -> dict:
    task = invoke_task("f", Retry=retry)
    states = {"T": task}
    if catch is not None:
        task["Catch"] = catch
        states["Caught"] = {"Type": "Pass", "End": True}
    return {"StartAt": "T", "States": states}


def test_retry_waits_interval_times_backoff_and_counts_attempts() -> None:
    clock = RecordingClock()
    machine = _retry_machine(
        [{"ErrorEquals": ["E"], "IntervalSeconds": 3, "BackoffRate": 1.5, "MaxAttempts": 2}]
    )
    result = run(machine, {}, Functions(f=_failing("E", "E")), clock=clock)
    assert output(result) == "done"
    assert clock.sleeps == [3.0, 4.5]
    assert types(result).count("TaskScheduled") == 3
    assert types(result).count("TaskStateEntered") == 1  # retries happen inside one state visit


def test_retry_gives_up_after_max_attempts_and_max_attempts_zero_never_retries() -> None:
    clock = RecordingClock()
    machine = _retry_machine([{"ErrorEquals": ["E"], "MaxAttempts": 2}])
    result = run(machine, {}, Functions(f=_failing("E", "E", "E")), clock=clock)
    assert result.status == "FAILED" and result.error == "E"
    assert clock.sleeps == [1.0, 2.0]  # defaults: IntervalSeconds 1, BackoffRate 2.0
    clock = RecordingClock()
    result = run(
        _retry_machine([{"ErrorEquals": ["E"], "MaxAttempts": 0}]),
        {},
        Functions(f=_failing("E")),
        clock=clock,
    )
    assert result.status == "FAILED" and clock.sleeps == []


def test_each_retrier_keeps_its_own_counter_and_an_exhausted_one_goes_to_catch() -> None:
    # The AWS docs example: errors A, B, C, B with retrier1 (A|B, max 2) and retrier2 (C, 5 s).
    clock = RecordingClock()
    machine = _retry_machine(
        [
            {"ErrorEquals": ["ErrorA", "ErrorB"], "IntervalSeconds": 1, "BackoffRate": 2.0, "MaxAttempts": 2},
            {"ErrorEquals": ["ErrorC"], "IntervalSeconds": 5},
        ],
        [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
    )
    result = run(
        machine, {}, Functions(f=_failing("ErrorA", "ErrorB", "ErrorC", "ErrorB", "ErrorB")), clock=clock
    )
    assert clock.sleeps == [1.0, 2.0, 5.0]
    assert output(result)["Error"] == "ErrorB"


def test_max_delay_seconds_caps_and_full_jitter_stays_within_the_delay() -> None:
    clock = RecordingClock()
    machine = _retry_machine(
        [
            {
                "ErrorEquals": ["E"],
                "IntervalSeconds": 4,
                "BackoffRate": 10,
                "MaxAttempts": 3,
                "MaxDelaySeconds": 30,
            }
        ]
    )
    run(machine, {}, Functions(f=_failing("E", "E", "E")), clock=clock)
    assert clock.sleeps == [4.0, 30.0, 30.0]
    clock = RecordingClock()
    machine = _retry_machine(
        [{"ErrorEquals": ["E"], "IntervalSeconds": 4, "MaxAttempts": 3, "JitterStrategy": "FULL"}]
    )
    run(machine, {}, Functions(f=_failing("E", "E", "E")), clock=clock)
    assert len(clock.sleeps) == 3
    assert all(0 <= s <= limit for s, limit in zip(clock.sleeps, [4, 8, 16], strict=True))


def test_retry_count_is_visible_in_the_context_object() -> None:
    machine = _retry_machine([{"ErrorEquals": ["E"], "MaxAttempts": 3}])
    machine["States"]["T"]["ResultSelector"] = {"retries.$": "$$.State.RetryCount"}
    machine["States"]["T"].pop("OutputPath")
    assert output(run(machine, {}, Functions(f=_failing("E", "E")))) == {"retries": 2}


def test_catch_replaces_input_by_default_and_merges_at_result_path() -> None:
    machine = _retry_machine([], [{"ErrorEquals": ["E"], "Next": "Caught"}])
    machine["States"]["T"].pop("Retry")
    result = run(machine, {"keep": 1}, Functions(f=_failing("E")))
    assert output(result)["Error"] == "E"
    assert json.loads(output(result)["Cause"])["errorType"] == "E"
    assert types(result)[-5:] == [
        "TaskFailed",
        "TaskStateExited",
        "PassStateEntered",
        "PassStateExited",
        "ExecutionSucceeded",
    ]
    machine["States"]["T"]["Catch"][0]["ResultPath"] = "$.error"
    merged = output(run(machine, {"keep": 1}, Functions(f=_failing("E"))))
    assert merged["keep"] == 1 and merged["error"]["Error"] == "E"


def test_states_all_and_task_failed_wildcards() -> None:
    clock = RecordingClock()

    def slow(event):
        clock.sleep(100)
        return event

    timeout_task = invoke_task(
        "slow",
        TimeoutSeconds=1,
        Catch=[
            {"ErrorEquals": ["States.TaskFailed"], "Next": "ByTaskFailed"},
            {"ErrorEquals": ["States.ALL"], "Next": "ByAll"},
        ],
    )
    machine = {
        "StartAt": "T",
        "States": {
            "T": timeout_task,
            "ByTaskFailed": {"Type": "Pass", "Result": "task-failed", "End": True},
            "ByAll": {"Type": "Pass", "Result": "all", "End": True},
        },
    }
    # States.TaskFailed matches every error except States.Timeout; States.ALL catches the timeout.
    assert output(run(machine, {}, Functions(slow=slow), clock=clock)) == "all"
    assert output(run(machine, {}, Functions(slow=_failing("Boom")))) == "task-failed"


def test_states_runtime_is_never_caught() -> None:
    machine = {
        "StartAt": "P",
        "States": {
            "P": {"Type": "Pass", "InputPath": "$.missing", "Next": "End"},
            "End": {"Type": "Pass", "End": True},
        },
    }
    result = run(machine, {"a": 1})
    assert result.status == "FAILED" and result.error == "States.Runtime"
    assert result.cause == (
        "An error occurred while executing the state 'P' (entered at the event id #2). "
        "Invalid path '$.missing' : No results for path: $['missing']"
    )


def test_fail_state_error_cause_and_paths() -> None:
    assert run({"StartAt": "F", "States": {"F": {"Type": "Fail"}}}).error is None
    result = run({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Bad", "Cause": "why"}}})
    assert (result.status, result.error, result.cause) == ("FAILED", "Bad", "why")
    assert types(result) == ["ExecutionStarted", "FailStateEntered", "ExecutionFailed"]
    result = run(
        {
            "StartAt": "F",
            "States": {
                "F": {"Type": "Fail", "ErrorPath": "$.e", "CausePath": "States.Format('code {}', $.n)"}
            },
        },
        {"e": "E1", "n": 7},
    )
    assert (result.error, result.cause) == ("E1", "code 7")


def test_fail_inside_parallel_propagates_its_own_error_to_catch() -> None:
    machine = {
        "StartAt": "Par",
        "States": {
            "Par": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "Ok", "States": {"Ok": {"Type": "Pass", "End": True}}},
                    {
                        "StartAt": "Bad",
                        "States": {"Bad": {"Type": "Fail", "Error": "BranchError", "Cause": "c"}},
                    },
                ],
                "Catch": [{"ErrorEquals": ["BranchError"], "Next": "Handled"}],
                "End": True,
            },
            "Handled": {"Type": "Pass", "End": True},
        },
    }
    result = run(machine, {})
    assert output(result) == {"Error": "BranchError", "Cause": "c"}
    failed = next(e for e in result.events if e["type"] == "ParallelStateFailed")
    assert details(failed) == {"error": "BranchError", "cause": "c"}


def test_no_choice_matched_and_oversized_state_output() -> None:
    machine = {
        "StartAt": "C",
        "States": {
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "NumericEquals": 1, "Next": "D"}]},
            "D": {"Type": "Pass", "End": True},
        },
    }
    assert run(machine, {"x": 2}).error == "States.NoChoiceMatched"
    big = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": "a" * 262144, "End": True}}}
    result = run(big, {})
    assert result.error == "States.DataLimitExceeded"
    assert result.cause == (
        "The state/task 'P' returned a result with a size exceeding the maximum number of "
        "bytes service limit."
    )


def _choice(rule: dict) -> dict:
    return {
        "StartAt": "C",
        "States": {
            "C": {"Type": "Choice", "Choices": [{**rule, "Next": "Yes"}], "Default": "No"},
            "Yes": {"Type": "Pass", "Result": "yes", "End": True},
            "No": {"Type": "Pass", "Result": "no", "End": True},
        },
    }


@pytest.mark.parametrize(
    ("rule", "path"),
    [
        ({"Variable": "$.approved", "BooleanEquals": True}, "$.approved"),
        ({"Not": {"Variable": "$.approved", "BooleanEquals": True}}, "$.approved"),  # not "true by Not"
        ({"Variable": "$.approved", "IsNull": True}, "$.approved"),
        ({"Variable": "$.a", "NumericEqualsPath": "$.b"}, "$.b"),  # a missing ...Path operand
        ({"And": [{"Variable": "$.a", "NumericEquals": 1}, {"Variable": "$.x", "IsString": True}]}, "$.x"),
    ],
)
def test_a_choice_rule_on_a_missing_path_fails_with_states_runtime(rule: dict, path: str) -> None:
    """AWS never reads a missing Variable as false: every operator but IsPresent fails the execution."""
    result = run(_choice(rule), {"a": 1, "status": "PENDING"})
    assert (result.status, result.error) == ("FAILED", "States.Runtime")
    assert result.cause == (
        "An error occurred while executing the state 'C' (entered at the event id #2). "
        f"Invalid path '{path}': The choice state's condition path references an invalid value."
    )


def test_a_choice_rule_reads_no_path_once_its_and_or_or_is_decided() -> None:
    present = {"Variable": "$.a", "IsPresent": False}
    assert output(run(_choice(present), {})) == "yes"  # IsPresent is the one operator made for this
    decided_and = {"And": [{"Variable": "$.a", "NumericEquals": 2}, {"Variable": "$.x", "IsNull": True}]}
    decided_or = {"Or": [{"Variable": "$.a", "NumericEquals": 1}, {"Variable": "$.x", "IsNull": True}]}
    assert output(run(_choice(decided_and), {"a": 1})) == "no"
    assert output(run(_choice(decided_or), {"a": 1})) == "yes"


def test_map_tolerated_failures() -> None:
    machine = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "ToleratedFailureCount": 1,
                "ItemProcessor": {
                    "StartAt": "C",
                    "States": {
                        "C": {
                            "Type": "Choice",
                            "Choices": [{"Variable": "$", "NumericEquals": 0, "Next": "Bad"}],
                            "Default": "Ok",
                        },
                        "Bad": {"Type": "Fail", "Error": "Zero"},
                        "Ok": {"Type": "Pass", "End": True},
                    },
                },
                "End": True,
            }
        },
    }
    assert output(run(machine, [1, 0, 2]))[0] == 1
    result = run(machine, [0, 0, 2])
    assert result.error == "States.ExceedToleratedFailureThreshold"
    machine["States"]["M"].pop("ToleratedFailureCount")
    assert run(machine, [1, 0, 2]).error == "Zero"


def test_lambda_unknown_matches_sandbox_timeouts_but_not_python_exceptions() -> None:
    machine = {
        "StartAt": "T",
        "States": {
            "T": invoke_task("f", Catch=[{"ErrorEquals": ["Lambda.Unknown"], "Next": "Caught"}]),
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    assert output(run(machine, {}, Functions(f=_failing("Sandbox.Timedout"))))["Error"] == "Sandbox.Timedout"
    assert run(machine, {}, Functions(f=_failing("Exception"))).error == "Exception"
