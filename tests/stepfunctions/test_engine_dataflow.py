"""JSONPath and JSONata data flow: paths, Parameters, context object, intrinsics, variables, states."""

from __future__ import annotations

import pytest

from .engine_helpers import CONTEXT, Functions, RecordingClock, details, output, run, types


def _pass(**fields) -> dict:
    return {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True, **fields}}}


def test_jsonpath_task_order_input_parameters_selector_result_output() -> None:
    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "InputPath": "$.req",
                "Parameters": {"FunctionName": "echo", "Payload": {"n.$": "$.n", "const": 1}},
                "ResultSelector": {"doubled.$": "$.Payload.n"},
                "ResultPath": "$.res",
                "OutputPath": "$.res",
                "End": True,
            }
        },
    }
    assert output(run(definition, {"req": {"n": 5}, "other": 0}, Functions(echo=lambda e: e))) == {
        "doubled": 5
    }


def test_null_paths_follow_aws_quirks() -> None:
    assert output(run(_pass(InputPath=None), {"a": 1})) == {}
    assert output(run(_pass(OutputPath=None), {"a": 1})) == {}
    assert output(run(_pass(Result={"x": 1}, ResultPath=None), {"a": 1})) == {"a": 1}
    # ResultPath null passes the raw input through, taken before InputPath.
    assert output(run(_pass(InputPath="$.a", ResultPath=None), {"a": {"b": 1}})) == {"a": {"b": 1}}


def test_pass_result_is_literal_and_parameters_evaluate_dollar_keys() -> None:
    assert output(run(_pass(Result={"TestResult.$": "ConditionTrue"}))) == {"TestResult.$": "ConditionTrue"}
    assert output(run(_pass(Parameters={"v.$": "$.a[1]", "all.$": "$.a[*]"}), {"a": [1, 2]})) == {
        "v": 2,
        "all": [1, 2],
    }
    assert output(
        run(
            _pass(Parameters={"x.$": "$.items[?(@.ok == true)].id"}),
            {"items": [{"id": 1, "ok": True}, {"id": 2, "ok": False}]},
        )
    ) == {"x": [1]}


def test_result_path_creates_nested_objects() -> None:
    assert output(run(_pass(Result=3, ResultPath="$.a.b.c"), {"a": {"z": 0}})) == {
        "a": {"z": 0, "b": {"c": 3}}
    }


def test_context_object() -> None:
    out = output(run(_pass(Parameters={"ctx.$": "$$"}), {"in": 1}))["ctx"]
    assert out["Execution"]["Id"] == CONTEXT.execution_arn
    assert out["Execution"]["Input"] == {"in": 1}
    assert out["Execution"]["Name"] == "exec-1" and out["Execution"]["RedriveCount"] == 0
    assert out["StateMachine"] == {"Id": CONTEXT.state_machine_arn, "Name": "machine"}
    assert out["State"]["Name"] == "P" and out["State"]["EnteredTime"].endswith("Z")
    assert len(out["Execution"]["StartTime"]) == len("2025-01-01T00:00:00.000Z")


def test_missing_parameter_path_is_states_runtime_with_aws_text() -> None:
    result = run(_pass(Parameters={"value.$": "$.nope"}), {"a": 1})
    assert result.error == "States.Runtime"
    assert result.cause.endswith(
        "The JSONPath '$.nope' specified for the field 'value.$' could not be found in the input '{\"a\":1}'"
    )


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("States.Format('{} and {}', $.num, $.obj)", "1.5 and {a=1, b=[]}"),
        ("States.MathAdd($.x, $.y)", 3),  # 1.49 + 1.5: operands rounded half up first
        ("States.StringSplit($.csv, ',')", [" ", " "]),
        ("States.JsonToString($.obj)", '{"a":1,"b":[]}'),
        ("States.ArrayRange(1, 9, 3)", [1, 4, 7]),
        ("States.ArrayPartition(States.Array(1, 2, 3), 2)", [[1, 2], [3]]),
        ("States.Hash('abc', 'SHA-1')", "a9993e364706816aba3e25717850c26c9cd0d89d"),
        ("States.Base64Decode(States.Base64Encode('hi'))", "hi"),
        ("States.JsonMerge($.obj, States.StringToJson('{\"c\": 2}'), false)", {"a": 1, "b": [], "c": 2}),
        ("States.ArrayUnique(States.Array(1, 1, 2))", [1, 2]),
    ],
)
def test_intrinsic_functions(expression: str, expected: object) -> None:
    data = {"num": 1.5, "obj": {"a": 1, "b": []}, "x": 1.49, "y": 1.5, "csv": ", , ,"}
    assert output(run(_pass(Parameters={"r.$": expression}), data)) == {"r": expected}


def test_variables_assign_and_scope() -> None:
    definition = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Assign": {"greeting": "hi", "n.$": "$.n"}, "Next": "M"},
            "M": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {
                    "StartAt": "I",
                    "States": {
                        "I": {
                            "Type": "Pass",
                            "Assign": {"inner": 1},
                            "Parameters": {"g.$": "$greeting", "v.$": "$"},
                            "End": True,
                        }
                    },
                },
                "ResultPath": "$.out",
                "Next": "B",
            },
            "B": {"Type": "Pass", "Parameters": {"n.$": "$n", "out.$": "$.out"}, "End": True},
        },
    }
    result = run(definition, {"n": 7, "items": [1, 2]})
    assert output(result) == {"n": 7, "out": [{"g": "hi", "v": 1}, {"g": "hi", "v": 2}]}
    exited = next(e for e in result.events if e["type"] == "PassStateExited")
    assert details(exited)["assignedVariables"] == {"greeting": '"hi"', "n": "7"}


def test_jsonata_arguments_output_assign_and_states_variables() -> None:
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Arguments": {"FunctionName": "echo", "Payload": "{% $states.input %}"},
                "Assign": {"conf": "{% $states.result.Payload.p %}"},
                "Output": "{% $states.result.Payload %}",
                "Next": "C",
            },
            "C": {
                "Type": "Choice",
                "Choices": [{"Condition": "{% $conf > 0.9 %}", "Next": "Yes"}],
                "Default": "No",
            },
            "Yes": {
                "Type": "Pass",
                "Output": {"ok": True, "p": "{% $conf %}", "n": "{% $count($states.input) %}"},
                "End": True,
            },
            "No": {"Type": "Fail", "Error": "Low", "Cause": "{% 'conf ' & $string($conf) %}"},
        },
    }
    assert output(run(definition, {"p": 0.95}, Functions(echo=lambda e: e))) == {
        "ok": True,
        "p": 0.95,
        "n": 1,
    }
    failed = run(definition, {"p": 0.5}, Functions(echo=lambda e: e))
    assert (failed.error, failed.cause) == ("Low", "conf 0.5")


def test_jsonata_undefined_result_is_query_evaluation_error_with_evaluation_failed_event() -> None:
    result = run(
        {
            "QueryLanguage": "JSONata",
            "StartAt": "P",
            "States": {"P": {"Type": "Pass", "Output": {"result": "{% $doesNotExist %}"}, "End": True}},
        }
    )
    assert result.error == "States.QueryEvaluationError"
    assert result.cause == (
        "An error occurred while executing the state 'P' (entered at the event id #2). "
        "The JSONata expression '$doesNotExist' specified for the field 'Output/result' "
        "returned nothing (undefined)."
    )
    assert types(result) == ["ExecutionStarted", "PassStateEntered", "EvaluationFailed", "ExecutionFailed"]


def test_jsonata_aws_extra_functions() -> None:
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Pass",
                "Output": {
                    "partition": "{% $partition([1,2,3], 2) %}",
                    "range": "{% $range(0, 4, 2) %}",
                    "hash": "{% $hash('abc', 'MD5') %}",
                    "parse": "{% $parse('{\"a\": [1]}') %}",
                    "uuid": "{% $length($uuid()) %}",
                    "random": "{% $random() < 1 %}",
                },
                "End": True,
            }
        },
    }
    assert output(run(definition)) == {
        "partition": [[1, 2], [3]],
        "range": [0, 2, 4],
        "hash": "900150983cd24fb0d6963f7d28e17f72",
        "parse": {"a": [1]},
        "uuid": 36,
        "random": True,
    }


def test_wait_state_seconds_timestamp_and_paths() -> None:
    clock = RecordingClock()
    definition = {
        "StartAt": "W1",
        "States": {
            "W1": {"Type": "Wait", "Seconds": 10, "Next": "W2"},
            "W2": {"Type": "Wait", "SecondsPath": "$.s", "Next": "W3"},
            "W3": {"Type": "Wait", "TimestampPath": "$.until", "End": True},
        },
    }
    result = run(definition, {"s": 5, "until": "2025-01-01T00:01:00Z"}, clock=clock)
    assert output(result) == {"s": 5, "until": "2025-01-01T00:01:00Z"}
    assert clock.sleeps == [10.0, 5.0, 45.0]
    bad = run(
        {"StartAt": "W", "States": {"W": {"Type": "Wait", "SecondsPath": "$.s", "End": True}}}, {"s": 1.5}
    )
    assert bad.error == "States.Runtime"
    assert bad.cause.endswith("The SecondsPath parameter cannot be parsed as a long value: $.s == 1.5")


def test_wait_timestamps_count_whole_seconds_as_aws_does() -> None:
    """AWS "considers the time value up to seconds and truncates milliseconds" (the Wait state's docs)."""
    clock = RecordingClock()  # starts at 2025-01-01T00:00:00Z
    definition = {
        "StartAt": "W1",
        "States": {
            "W1": {"Type": "Wait", "Timestamp": "2025-01-01T00:00:05.900Z", "Next": "W2"},
            "W2": {"Type": "Wait", "TimestampPath": "$.until", "End": True},
        },
    }
    run(definition, {"until": "2025-01-01T00:00:10.5Z"}, clock=clock)
    assert clock.sleeps == [5.0, 5.0]


@pytest.mark.parametrize("seconds", [1.5, -1, "2"])
def test_a_jsonata_wait_seconds_must_be_a_non_negative_integer(seconds) -> None:
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "W",
        "States": {"W": {"Type": "Wait", "Seconds": "{% $states.input.s %}", "End": True}},
    }
    result = run(definition, {"s": seconds})
    assert result.error == "States.QueryEvaluationError"
    assert "specified for the field 'Seconds' returned an unexpected result type. Expected 'integer'" in (
        result.cause
    )
    clock = RecordingClock()
    assert run(definition, {"s": 2.0}, clock=clock).status == "SUCCEEDED" and clock.sleeps == [2.0]


def test_choice_operators_and_combinators() -> None:
    definition = {
        "StartAt": "C",
        "States": {
            "C": {
                "Type": "Choice",
                "Choices": [
                    {
                        "And": [
                            {"Variable": "$.name", "StringMatches": "bi*cle"},
                            {"Not": {"Variable": "$.conf", "NumericLessThan": 0.9}},
                            {"Variable": "$.when", "TimestampGreaterThanEquals": "2020-01-01T00:00:00Z"},
                        ],
                        "Next": "Yes",
                    },
                    {"Variable": "$.missing", "IsPresent": False, "Next": "No"},
                ],
            },
            "Yes": {"Type": "Pass", "Result": "yes", "End": True},
            "No": {"Type": "Pass", "Result": "no", "End": True},
        },
    }
    assert (
        output(run(definition, {"name": "bicycle", "conf": 0.95, "when": "2024-05-01T10:00:00.5+02:00"}))
        == "yes"
    )
    assert output(run(definition, {"name": "bicycle", "conf": 0.5, "when": "2024-05-01T10:00:00Z"})) == "no"


def test_map_and_parallel_outputs_keep_order() -> None:
    definition = {
        "StartAt": "Par",
        "States": {
            "Par": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": "a", "End": True}}},
                    {
                        "StartAt": "M",
                        "States": {
                            "M": {
                                "Type": "Map",
                                "ItemSelector": {"i.$": "$$.Map.Item.Index", "v.$": "$$.Map.Item.Value"},
                                "MaxConcurrency": 2,
                                "ItemProcessor": {
                                    "StartAt": "I",
                                    "States": {"I": {"Type": "Pass", "End": True}},
                                },
                                "End": True,
                            }
                        },
                    },
                ],
            },
        },
    }
    definition["States"]["Par"]["End"] = True
    result = run(definition, ["x", "y"])
    assert output(result) == ["a", [{"i": 0, "v": "x"}, {"i": 1, "v": "y"}]]
    started = next(e for e in result.events if e["type"] == "MapStateStarted")
    assert details(started) == {"length": 2}
    iteration = next(e for e in result.events if e["type"] == "MapIterationStarted")
    assert details(iteration) == {"name": "M", "index": 0}
