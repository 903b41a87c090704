"""Executions started through a state machine version ARN, with a real boto3 client and the real gateway.

AWS associates an execution with the version ARN it was started through (never with an unqualified
ARN, even when that ran the same revision): DescribeExecution and ListExecutions' items carry
``stateMachineVersionArn``, and ListExecutions given a version ARN lists only that version's executions.
"""

from __future__ import annotations

import json

import pytest

from .sfn_helpers import dumps, wait_for

ROLE = "arn:aws:iam::123456789012:role/service-role/StepFunctions-test"


def _machine(result: str) -> str:
    return dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": result, "End": True}}})


def _finished(sfn, arn: str) -> dict:
    return wait_for(lambda: (d := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and d)


def test_version_arn_executions_are_described_and_listed_per_version(sfn) -> None:
    created = sfn.create_state_machine(name="vm", definition=_machine("v1"), roleArn=ROLE, publish=True)
    arn, v1 = created["stateMachineArn"], created["stateMachineVersionArn"]
    assert v1 == f"{arn}:1"
    v2 = sfn.update_state_machine(stateMachineArn=arn, definition=_machine("v2"), publish=True)[
        "stateMachineVersionArn"
    ]
    assert v2 == f"{arn}:2"

    by_v1 = sfn.start_execution(stateMachineArn=v1, name="by-v1")["executionArn"]
    by_v2 = sfn.start_execution(stateMachineArn=v2, name="by-v2")["executionArn"]
    plain = sfn.start_execution(stateMachineArn=arn, name="plain")["executionArn"]
    assert by_v1 == "arn:aws:states:us-east-1:123456789012:execution:vm:by-v1"

    described = _finished(sfn, by_v1)
    assert described["output"] == '"v1"'  # the version's definition ran
    assert described["stateMachineArn"] == arn  # the unqualified ARN, as on AWS
    assert described["stateMachineVersionArn"] == v1
    assert "stateMachineAliasArn" not in described
    assert _finished(sfn, by_v2)["stateMachineVersionArn"] == v2
    # an unqualified ARN associates the execution with no version, though it ran revision 2
    latest = _finished(sfn, plain)
    assert latest["output"] == '"v2"' and "stateMachineVersionArn" not in latest

    listed = sfn.list_executions(stateMachineArn=v1)["executions"]
    assert [e["executionArn"] for e in listed] == [by_v1]
    assert listed[0]["stateMachineVersionArn"] == v1 and listed[0]["stateMachineArn"] == arn
    assert [e["name"] for e in sfn.list_executions(stateMachineArn=v2)["executions"]] == ["by-v2"]
    everything = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert sorted(e["name"] for e in everything) == ["by-v1", "by-v2", "plain"]
    assert {e["name"]: e.get("stateMachineVersionArn") for e in everything} == {
        "by-v1": v1,
        "by-v2": v2,
        "plain": None,
    }
    assert sfn.list_executions(stateMachineArn=v1, statusFilter="FAILED")["executions"] == []
    with pytest.raises(sfn.exceptions.StateMachineDoesNotExist):
        sfn.list_executions(stateMachineArn=f"{arn}:9")


def test_list_executions_map_run_arn(sfn) -> None:
    arn = sfn.create_state_machine(name="vm", definition=_machine("v1"), roleArn=ROLE)["stateMachineArn"]
    map_run = "arn:aws:states:us-east-1:123456789012:mapRun:vm/Map:0b5d5f1c-0000-0000-0000-000000000000"
    with pytest.raises(sfn.exceptions.ClientError) as both:
        sfn.list_executions(stateMachineArn=arn, mapRunArn=map_run)
    assert both.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(sfn.exceptions.ResourceNotFound):
        sfn.list_executions(mapRunArn=map_run)


@pytest.mark.parametrize("text", ["[1e999]", '{"n": -1e400}', '{"a": [1, 2.5e308]}'])
def test_a_number_a_float_cannot_hold_is_invalid_execution_input(sfn, text: str) -> None:
    """Python would read 1e999 as inf and write the output as ``[Infinity]``, which is not JSON."""
    echo = dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    arn = sfn.create_state_machine(name="echo", definition=echo, roleArn=ROLE)["stateMachineArn"]
    with pytest.raises(sfn.exceptions.InvalidExecutionInput) as info:
        sfn.start_execution(stateMachineArn=arn, input=text)
    assert "too large for a 64-bit floating-point value" in info.value.response["Error"]["Message"]
    assert sfn.list_executions(stateMachineArn=arn)["executions"] == []
    # big numbers a float can hold, and integers of any size, still run and come back as JSON
    ok = sfn.start_execution(stateMachineArn=arn, input='{"n": 1e308, "i": 123456789012345678901234567890}')
    done = _finished(sfn, ok["executionArn"])
    assert json.loads(done["output"], parse_constant=pytest.fail) == {
        "n": 1e308,
        "i": 123456789012345678901234567890,
    }
