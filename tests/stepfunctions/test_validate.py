"""validate_definition: AWS-like diagnostics (code, location, message) for each kind of mistake."""

from __future__ import annotations

import json

import pytest

from sconeflow.stepfunctions.validate import validate_definition


def _problems(definition: dict | str, **kwargs) -> list[tuple[str, str | None, str]]:
    text = definition if isinstance(definition, str) else json.dumps(definition)
    result = validate_definition(text, **kwargs)
    return [(d.code, d.location, d.message) for d in result.diagnostics]


def _one(state: dict, **extra) -> dict:
    return {"StartAt": "S", "States": {"S": state, **extra}}


def test_valid_definition_is_ok_and_credentials_are_accepted() -> None:
    task = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Credentials": {"RoleArn": "x"},
        "Parameters": {"FunctionName": "f", "Payload.$": "$"},
        "End": True,
    }
    result = validate_definition(json.dumps(_one(task)))
    assert result.result == "OK" and result.diagnostics == [] and result.to_api()["truncated"] is False


def test_empty_non_json_and_missing_top_level_fields() -> None:
    assert _problems("") == [("SCHEMA_VALIDATION_FAILED", None, "Definition must be a valid JSON object")]
    assert _problems("{nope")[0][0] == "INVALID_JSON_DESCRIPTION"
    assert _problems({}) == [
        ("SCHEMA_VALIDATION_FAILED", "/", "These fields are required: [States, StartAt]")
    ]


def test_next_to_missing_state_and_unreachable_state() -> None:
    problems = _problems(
        {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Bx"}, "B": {"Type": "Pass", "End": True}}}
    )
    assert ("MISSING_TRANSITION_TARGET", "/States/A/Next", "Missing 'Next' target: Bx") in problems
    assert ("UNREACHABLE_STATE", "/States/B", "State 'B' is not reachable") in problems


def test_duplicate_state_names_in_the_raw_text_and_across_branches() -> None:
    text = (
        '{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}, "A": {"Type": "Pass", "End": true}}}'
    )
    assert ("DUPLICATE_STATE_NAME", "/States/A", "Duplicate State name: A") in _problems(text)
    branch = {"StartAt": "X", "States": {"X": {"Type": "Pass", "End": True}}}
    problems = _problems(_one({"Type": "Parallel", "Branches": [branch, branch], "End": True}))
    assert any(code == "DUPLICATE_STATE_NAME" and "X" in message for code, _, message in problems)


@pytest.mark.parametrize(
    ("state", "location", "needle"),
    [
        ({"Type": "Passs", "End": True}, "/States/S/Type", "Unknown state type"),
        ({"Type": "Pass", "End": True, "Bogus": 1}, "/States/S/Bogus", "not supported"),
        ({"Type": "Pass"}, "/States/S", "Next or End"),
        ({"Type": "Pass", "End": True, "InputPath": "$.a[?"}, "/States/S/InputPath", "valid JSONPath"),
        ({"Type": "Pass", "End": True, "ResultPath": "$.a[*]"}, "/States/S/ResultPath", "valid JSONPath"),
        (
            {"Type": "Pass", "End": True, "Parameters": {"x.$": "States.Nope(1)"}},
            "/States/S/Parameters/x.$",
            "intrinsic",
        ),
        ({"Type": "Wait", "End": True}, "/States/S", "Exactly one of"),
        ({"Type": "Choice", "Choices": []}, "/States/S/Choices", "non-empty"),
        ({"Type": "Fail", "Error": "a", "ErrorPath": "$.e"}, "/States/S", "Only one of Error or ErrorPath"),
    ],
)
def test_state_shape_errors(state: dict, location: str, needle: str) -> None:
    problems = _problems(_one(state))
    assert any(loc == location and needle in message for _, loc, message in problems), problems


def test_retry_and_catch_shape_errors() -> None:
    task = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "End": True,
        "Retry": [
            {"ErrorEquals": ["States.ALL"]},
            {"ErrorEquals": []},
            {"ErrorEquals": ["E"], "BackoffRate": 0.5, "JitterStrategy": "SOME"},
        ],
        "Catch": [{"ErrorEquals": ["E"]}],
    }
    problems = _problems(_one(task))
    locations = {loc for _, loc, _ in problems}
    assert {
        "/States/S/Retry/0/ErrorEquals",
        "/States/S/Retry/1/ErrorEquals",
        "/States/S/Retry/2/BackoffRate",
        "/States/S/Retry/2/JitterStrategy",
        "/States/S/Catch/0",
    } <= locations


def test_jsonata_rules() -> None:
    bad_expr = {
        "QueryLanguage": "JSONata",
        "StartAt": "S",
        "States": {"S": {"Type": "Pass", "Output": "{% $states.input. %}", "End": True}},
    }
    assert any(loc == "/States/S/Output" and "JSONata" in m for _, loc, m in _problems(bad_expr))
    path_field = {
        "QueryLanguage": "JSONata",
        "StartAt": "S",
        "States": {"S": {"Type": "Pass", "InputPath": "$.a", "End": True}},
    }
    assert any(loc == "/States/S/InputPath" for _, loc, _ in _problems(path_field))
    downgrade = {
        "QueryLanguage": "JSONata",
        "StartAt": "S",
        "States": {"S": {"Type": "Pass", "QueryLanguage": "JSONPath", "End": True}},
    }
    assert (
        "SCHEMA_VALIDATION_FAILED",
        "/States/S/QueryLanguage",
        "'QueryLanguage' can not be 'JSONPath' if set to 'JSONata' for whole state machine",
    ) in _problems(downgrade)


def test_unsupported_and_malformed_resources() -> None:
    dynamo = _one({"Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem", "End": True})
    ((code, location, message),) = _problems(dynamo)
    assert code == "UNSUPPORTED_LOCALLY" and location == "/States/S/Resource"
    assert "not supported locally" in message
    callback = _one(
        {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken", "End": True}
    )
    assert "not supported locally" in _problems(callback)[0][2]
    assert _problems(callback, state_machine_type="EXPRESS")[0][2] == (
        "Express state machine does not support '.waitForTaskToken' service integration "
    )
    malformed = _one({"Type": "Task", "Resource": "arn:aws:states:sns:publish", "End": True})
    assert _problems(malformed)[0][:2] == ("INVALID_RESOURCE", "/States/S/Resource")


def test_max_results_truncates() -> None:
    states = {f"S{i}": {"Type": "Pass", "End": True, "Bogus": i} for i in range(5)}
    states["S0"]["End"] = True
    result = validate_definition(json.dumps({"StartAt": "S0", "States": states}), max_results=2)
    assert result.result == "FAIL" and len(result.diagnostics) == 2 and result.truncated


@pytest.mark.parametrize(
    "definition",
    [
        {"StartAt": "S", "States": {"S": {"Type": {}, "End": True}}},
        {"StartAt": "S", "States": {"S": {"Type": "Choice", "Choices": 5, "Default": "S"}}},
        {"StartAt": None, "States": {"S": {"Type": "Pass", "End": True}}},
        {
            "StartAt": "S",
            "States": {
                "S": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Catch": 1.5, "End": True}
            },
        },
        {
            "StartAt": "M",
            "States": {
                "M": {
                    "Type": "Map",
                    "End": True,
                    "ItemProcessor": {
                        "ProcessorConfig": "x",
                        "StartAt": "P",
                        "States": {"P": {"Type": "Pass", "End": True}},
                    },
                }
            },
        },
    ],
)
def test_malformed_values_are_diagnostics_not_crashes(definition: dict) -> None:
    result = validate_definition(json.dumps(definition))
    assert result.result == "FAIL" and result.diagnostics


@pytest.mark.needs_shared
def test_every_definition_aws_ran_in_the_conformance_corpus_is_accepted() -> None:
    from pathlib import Path

    cases_dir = Path(__file__).resolve().parents[3] / "shared" / "asl-conformance" / "cases"
    if not cases_dir.is_dir():
        pytest.skip(f"the conformance corpus is absent ({cases_dir})")
    rejected = []
    for path in sorted(cases_dir.glob("*/*.json")):
        definition = json.loads(path.read_text())["definition"]
        result = validate_definition(json.dumps(definition))
        if result.result != "OK":
            rejected.append((path.name, [d.to_api() for d in result.diagnostics][:2]))
    assert not rejected, rejected[:5]
