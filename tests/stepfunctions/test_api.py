"""The Step Functions JSON-1.0 API through the real gateway, with a real boto3 client."""

from __future__ import annotations

import json

import pytest

from sconeflow.config import Settings
from sconeflow.gateway.wire import WireRequest
from sconeflow.stepfunctions.responses import handle

from .sfn_helpers import FILTER_TASK, PASS_CHAIN, WAIT_LONG, dumps, wait_for

ROLE = "arn:aws:iam::123456789012:role/service-role/StepFunctions-test"


def _code(exc_info: pytest.ExceptionInfo) -> str:
    return exc_info.value.response["Error"]["Code"]


def test_state_machine_lifecycle(sfn) -> None:
    created = sfn.create_state_machine(name="chain", definition=dumps(PASS_CHAIN), roleArn=ROLE)
    arn = created["stateMachineArn"]
    assert arn == "arn:aws:states:us-east-1:123456789012:stateMachine:chain"
    described = sfn.describe_state_machine(stateMachineArn=arn)
    assert described["definition"] == dumps(PASS_CHAIN)
    assert (
        described["status"] == "ACTIVE" and described["type"] == "STANDARD" and described["roleArn"] == ROLE
    )
    listed = sfn.list_state_machines()["stateMachines"]
    assert [m["name"] for m in listed] == ["chain"]
    with pytest.raises(sfn.exceptions.StateMachineAlreadyExists):
        sfn.create_state_machine(name="chain", definition=dumps(dict(PASS_CHAIN, Comment="x")), roleArn=ROLE)
    with pytest.raises(sfn.exceptions.InvalidDefinition) as info:
        sfn.create_state_machine(name="bad", definition='{"StartAt": "A", "States": {}}', roleArn=ROLE)
    assert "Invalid State Machine Definition" in info.value.response["Error"]["Message"]
    with pytest.raises(sfn.exceptions.InvalidName):
        sfn.create_state_machine(name="no spaces please", definition=dumps(PASS_CHAIN), roleArn=ROLE)
    first = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
    wait_for(lambda: sfn.describe_execution(executionArn=first)["status"] == "SUCCEEDED")
    sfn.delete_state_machine(stateMachineArn=arn)
    with pytest.raises(sfn.exceptions.StateMachineDoesNotExist):
        sfn.describe_state_machine(stateMachineArn=arn)
    # the same name again with another definition runs the new one (no stale parsed copy)
    other = {"StartAt": "Only", "States": {"Only": {"Type": "Pass", "Result": "v2", "End": True}}}
    sfn.create_state_machine(name="chain", definition=dumps(other), roleArn=ROLE)
    second = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
    done = wait_for(lambda: (d := sfn.describe_execution(executionArn=second))["status"] != "RUNNING" and d)
    assert done["output"] == '"v2"'
    # the first execution still describes the definition it ran, not the new machine's
    ran = sfn.describe_state_machine_for_execution(executionArn=first)
    assert ran["definition"] == dumps(PASS_CHAIN) and ran["stateMachineArn"] == arn
    assert sfn.describe_state_machine_for_execution(executionArn=second)["definition"] == dumps(other)


def test_executions_describe_list_history(sfn) -> None:
    arn = sfn.create_state_machine(name="chain", definition=dumps(PASS_CHAIN), roleArn=ROLE)[
        "stateMachineArn"
    ]
    started = sfn.start_execution(stateMachineArn=arn, name="e1", input='{"a":\n 1}')
    exec_arn = started["executionArn"]
    assert exec_arn == "arn:aws:states:us-east-1:123456789012:execution:chain:e1"
    done = wait_for(lambda: (d := sfn.describe_execution(executionArn=exec_arn))["status"] != "RUNNING" and d)
    assert done["status"] == "SUCCEEDED"
    assert done["input"] == '{"a":\n 1}' and json.loads(done["output"]) == {"a": 1, "first": {"step": 1}}
    assert done["stopDate"] >= done["startDate"]
    assert "error" not in done
    listed = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert [(e["name"], e["status"]) for e in listed] == [("e1", "SUCCEEDED")]
    assert sfn.list_executions(stateMachineArn=arn, statusFilter="FAILED")["executions"] == []
    events = sfn.get_execution_history(executionArn=exec_arn)["events"]
    assert events[0]["type"] == "ExecutionStarted" and events[-1]["type"] == "ExecutionSucceeded"
    assert events[0]["executionStartedEventDetails"]["input"] == '{"a":\n 1}'
    assert events[1]["stateEnteredEventDetails"]["name"] == "First"
    assert hasattr(events[0]["timestamp"], "tzinfo")  # botocore parsed our epoch seconds
    reverse = sfn.get_execution_history(executionArn=exec_arn, reverseOrder=True, maxResults=2)
    assert [e["id"] for e in reverse["events"]] == [events[-1]["id"], events[-2]["id"]]
    page2 = sfn.get_execution_history(
        executionArn=exec_arn, reverseOrder=True, maxResults=2, nextToken=reverse["nextToken"]
    )
    assert page2["events"][0]["id"] == events[-3]["id"]
    with pytest.raises(sfn.exceptions.ExecutionAlreadyExists):
        sfn.start_execution(stateMachineArn=arn, name="e1", input="{}")


def test_start_execution_is_idempotent_while_running(sfn) -> None:
    arn = sfn.create_state_machine(name="hold", definition=dumps(WAIT_LONG), roleArn=ROLE)["stateMachineArn"]
    first = sfn.start_execution(stateMachineArn=arn, name="same", input='{"a": 1}')
    again = sfn.start_execution(stateMachineArn=arn, name="same", input='{"a": 1}')
    assert again["executionArn"] == first["executionArn"]
    with pytest.raises(sfn.exceptions.ExecutionAlreadyExists):
        sfn.start_execution(stateMachineArn=arn, name="same", input='{"a": 2}')
    sfn.stop_execution(executionArn=first["executionArn"])


def test_errors_have_aws_shapes(sfn, settings: Settings) -> None:
    missing = "arn:aws:states:us-east-1:123456789012:execution:chain:missing"
    with pytest.raises(sfn.exceptions.ExecutionDoesNotExist) as info:
        sfn.describe_execution(executionArn=missing)
    assert missing in info.value.response["Error"]["Message"]
    with pytest.raises(sfn.exceptions.StateMachineDoesNotExist):
        sfn.start_execution(stateMachineArn="arn:aws:states:us-east-1:123456789012:stateMachine:nope")
    with pytest.raises(sfn.exceptions.InvalidArn):
        sfn.describe_execution(executionArn="not-an-arn")
    arn = sfn.create_state_machine(name="chain", definition=dumps(PASS_CHAIN), roleArn=ROLE)[
        "stateMachineArn"
    ]
    with pytest.raises(sfn.exceptions.InvalidExecutionInput):
        sfn.start_execution(stateMachineArn=arn, input="{oops")
    with pytest.raises(sfn.exceptions.StateMachineTypeNotSupported):
        sfn.start_sync_execution(stateMachineArn=arn, input="{}")
    # the raw wire shape
    raw = handle(
        settings,
        WireRequest(
            "POST",
            "/",
            headers={"x-amz-target": "AWSStepFunctions.DescribeExecution"},
            body=json.dumps({"executionArn": missing}).encode(),
        ),
    )
    assert raw.status == 400
    assert json.loads(raw.body) == {
        "__type": "com.amazonaws.swf.service.v2.model#ExecutionDoesNotExist",
        "message": f"Execution Does Not Exist: '{missing}'",
    }
    unknown = handle(settings, WireRequest("POST", "/", headers={"x-amz-target": "AWSStepFunctions.Nope"}))
    assert unknown.status == 400 and "UnknownOperationException" in json.loads(unknown.body)["__type"]
    garbage = handle(
        settings,
        WireRequest(
            "POST", "/", headers={"x-amz-target": "AWSStepFunctions.ListStateMachines"}, body=b"{not json"
        ),
    )
    assert garbage.status == 400 and "SerializationException" in json.loads(garbage.body)["__type"]


def test_stop_execution(sfn) -> None:
    arn = sfn.create_state_machine(name="hold", definition=dumps(WAIT_LONG), roleArn=ROLE)["stateMachineArn"]
    exec_arn = sfn.start_execution(stateMachineArn=arn, name="held")["executionArn"]
    wait_for(lambda: len(sfn.get_execution_history(executionArn=exec_arn)["events"]) >= 2, timeout=10)
    stop = sfn.stop_execution(executionArn=exec_arn, error="Manual", cause="enough")
    assert "stopDate" in stop
    described = sfn.describe_execution(executionArn=exec_arn)
    assert (described["status"], described["error"], described["cause"]) == ("ABORTED", "Manual", "enough")
    events = sfn.get_execution_history(executionArn=exec_arn)["events"]
    assert events[-1]["type"] == "ExecutionAborted"
    assert events[-1]["executionAbortedEventDetails"] == {"error": "Manual", "cause": "enough"}


def test_start_sync_execution_with_a_real_lambda(sfn) -> None:
    arn = sfn.create_state_machine(
        name="filter", definition=dumps(FILTER_TASK), roleArn=ROLE, type="EXPRESS"
    )["stateMachineArn"]
    ok = sfn.start_sync_execution(stateMachineArn=arn, input=json.dumps({"inferences": [0.97, 0.03]}))
    assert ok["status"] == "SUCCEEDED", ok
    assert json.loads(ok["output"])["body"]["inferences"] == [0.97, 0.03]
    assert ok["executionArn"].startswith("arn:aws:states:us-east-1:123456789012:express:filter:")
    assert ok["billingDetails"]["billedMemoryUsedInMB"] == 64
    unsure = sfn.start_sync_execution(stateMachineArn=arn, input=json.dumps({"inferences": [0.6, 0.4]}))
    assert unsure["status"] == "FAILED" and unsure["error"] == "ThresholdConfidenceNotMet"
    assert "output" not in unsure


def test_validate_state_machine_definition(sfn, shared_dir) -> None:
    ok = sfn.validate_state_machine_definition(definition=dumps(PASS_CHAIN))
    assert ok["result"] == "OK" and ok["diagnostics"] == []
    broken = (
        shared_dir / "fixtures/stepfunctions/definitions/mohelwah__image_classification.json"
    ).read_text()
    result = sfn.validate_state_machine_definition(definition=broken)
    assert result["result"] == "FAIL"
    assert any("fileterInferResults" in d["message"] for d in result["diagnostics"])


def test_describe_state_machine_for_execution_uses_the_revision_that_ran(sfn) -> None:
    arn = sfn.create_state_machine(name="chain", definition=dumps(PASS_CHAIN), roleArn=ROLE)[
        "stateMachineArn"
    ]
    exec_arn = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    wait_for(lambda: sfn.describe_execution(executionArn=exec_arn)["status"] != "RUNNING")
    sfn.update_state_machine(stateMachineArn=arn, definition=dumps(dict(PASS_CHAIN, Comment="v2")))
    assert json.loads(sfn.describe_state_machine(stateMachineArn=arn)["definition"])["Comment"] == "v2"
    ran = sfn.describe_state_machine_for_execution(executionArn=exec_arn)
    assert ran["definition"] == dumps(PASS_CHAIN)


# -- edge cases a boto3 user meets ---------------------------------------------------------------


def _finished(sfn, exec_arn: str) -> dict:
    return wait_for(lambda: (d := sfn.describe_execution(executionArn=exec_arn))["status"] != "RUNNING" and d)


def test_list_executions_pages_do_not_repeat_when_an_execution_starts_in_between(sfn) -> None:
    arn = sfn.create_state_machine(name="chain", definition=dumps(PASS_CHAIN), roleArn=ROLE)[
        "stateMachineArn"
    ]
    for name in ("e1", "e2", "e3"):
        _finished(sfn, sfn.start_execution(stateMachineArn=arn, name=name)["executionArn"])
    first = sfn.list_executions(stateMachineArn=arn, maxResults=2)
    assert [e["name"] for e in first["executions"]] == ["e3", "e2"]
    _finished(sfn, sfn.start_execution(stateMachineArn=arn, name="e4")["executionArn"])  # newest first
    second = sfn.list_executions(stateMachineArn=arn, maxResults=2, nextToken=first["nextToken"])
    assert [e["name"] for e in second["executions"]] == ["e1"]
    assert "nextToken" not in second
    # the paginator walks every execution exactly once
    pages = sfn.get_paginator("list_executions").paginate(
        stateMachineArn=arn, PaginationConfig={"PageSize": 1}
    )
    assert [e["name"] for page in pages for e in page["executions"]] == ["e4", "e3", "e2", "e1"]
    with pytest.raises(sfn.exceptions.InvalidToken):
        sfn.list_executions(stateMachineArn=arn, nextToken="bm90IGEgdG9rZW4=")


def test_reverse_history_pages_of_a_running_execution_do_not_repeat_events(sfn) -> None:
    arn = sfn.create_state_machine(name="hold", definition=dumps(WAIT_LONG), roleArn=ROLE)["stateMachineArn"]
    exec_arn = sfn.start_execution(stateMachineArn=arn, name="held")["executionArn"]
    wait_for(lambda: len(sfn.get_execution_history(executionArn=exec_arn)["events"]) >= 2, timeout=10)
    newest = sfn.get_execution_history(executionArn=exec_arn, reverseOrder=True, maxResults=1)
    assert [e["type"] for e in newest["events"]] == ["WaitStateEntered"]
    sfn.stop_execution(executionArn=exec_arn)  # appends ExecutionAborted (id 3) before the next page
    rest = sfn.get_execution_history(
        executionArn=exec_arn, reverseOrder=True, maxResults=1, nextToken=newest["nextToken"]
    )
    assert [e["type"] for e in rest["events"]] == ["ExecutionStarted"]


def test_update_state_machine_with_nothing_to_change_is_refused(sfn) -> None:
    arn = sfn.create_state_machine(name="chain", definition=dumps(PASS_CHAIN), roleArn=ROLE)[
        "stateMachineArn"
    ]
    with pytest.raises(sfn.exceptions.MissingRequiredParameter) as info:
        sfn.update_state_machine(stateMachineArn=arn)
    assert "must be specified" in info.value.response["Error"]["Message"]
    sfn.update_state_machine(stateMachineArn=arn, roleArn=ROLE + "-2")
    assert sfn.describe_state_machine(stateMachineArn=arn)["roleArn"] == ROLE + "-2"


def test_definitions_over_aws_size_limit_are_refused(sfn) -> None:
    big = dumps(dict(PASS_CHAIN, Comment="x" * 1_048_576))
    for call in (
        lambda: sfn.create_state_machine(name="big", definition=big, roleArn=ROLE),
        lambda: sfn.validate_state_machine_definition(definition=big),
    ):
        with pytest.raises(sfn.exceptions.ClientError) as info:
            call()
        assert _code(info) == "ValidationException"
        assert "1048576" in info.value.response["Error"]["Message"]
    arn = sfn.create_state_machine(name="chain", definition=dumps(PASS_CHAIN), roleArn=ROLE)[
        "stateMachineArn"
    ]
    with pytest.raises(sfn.exceptions.ClientError) as info:
        sfn.update_state_machine(stateMachineArn=arn, definition=big)
    assert _code(info) == "ValidationException"
    assert sfn.list_state_machines()["stateMachines"][0]["name"] == "chain"


@pytest.mark.parametrize("text", ['{"a": NaN}', "Infinity", "[-Infinity]"])
def test_inputs_with_python_only_json_constants_are_invalid(sfn, text: str) -> None:
    arn = sfn.create_state_machine(name="chain", definition=dumps(PASS_CHAIN), roleArn=ROLE)[
        "stateMachineArn"
    ]
    with pytest.raises(sfn.exceptions.InvalidExecutionInput):
        sfn.start_execution(stateMachineArn=arn, input=text)
    assert sfn.list_executions(stateMachineArn=arn)["executions"] == []


def test_start_execution_of_an_express_machine_returns_an_express_arn(sfn) -> None:
    arn = sfn.create_state_machine(name="quick", definition=dumps(PASS_CHAIN), roleArn=ROLE, type="EXPRESS")[
        "stateMachineArn"
    ]
    started = sfn.start_execution(stateMachineArn=arn, name="run-1", input='{"a": 1}')
    prefix = "arn:aws:states:us-east-1:123456789012:express:quick:run-1:"
    assert started["executionArn"].startswith(prefix), started["executionArn"]
    # EXPRESS names are not unique: a second start with the same name is another execution
    again = sfn.start_execution(stateMachineArn=arn, name="run-1", input='{"a": 1}')
    assert again["executionArn"].startswith(prefix) and again["executionArn"] != started["executionArn"]


def test_tags_of_a_state_machine(sfn) -> None:
    arn = sfn.create_state_machine(
        name="chain",
        definition=dumps(PASS_CHAIN),
        roleArn=ROLE,
        tags=[{"key": "project", "value": "scones"}, {"key": "stage", "value": "dev"}],
    )["stateMachineArn"]
    assert sfn.list_tags_for_resource(resourceArn=arn)["tags"] == [
        {"key": "project", "value": "scones"},
        {"key": "stage", "value": "dev"},
    ]
    sfn.tag_resource(
        resourceArn=arn, tags=[{"key": "stage", "value": "prod"}, {"key": "owner", "value": "ml"}]
    )
    sfn.untag_resource(resourceArn=arn, tagKeys=["project", "not-there"])
    assert sfn.list_tags_for_resource(resourceArn=arn)["tags"] == [
        {"key": "stage", "value": "prod"},
        {"key": "owner", "value": "ml"},
    ]
    with pytest.raises(sfn.exceptions.TooManyTags):
        sfn.tag_resource(resourceArn=arn, tags=[{"key": f"k{i}", "value": "v"} for i in range(49)])
    assert len(sfn.list_tags_for_resource(resourceArn=arn)["tags"]) == 2  # nothing half-written
    missing = "arn:aws:states:us-east-1:123456789012:stateMachine:nope"
    with pytest.raises(sfn.exceptions.ResourceNotFound):
        sfn.list_tags_for_resource(resourceArn=missing)
    with pytest.raises(sfn.exceptions.ResourceNotFound):
        sfn.tag_resource(resourceArn=missing, tags=[{"key": "a", "value": "b"}])
    # deleting the state machine drops its tags: the same name created again starts untagged
    sfn.delete_state_machine(stateMachineArn=arn)
    sfn.create_state_machine(name="chain", definition=dumps(PASS_CHAIN), roleArn=ROLE)
    assert sfn.list_tags_for_resource(resourceArn=arn)["tags"] == []
