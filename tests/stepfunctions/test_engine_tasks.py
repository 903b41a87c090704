"""Task states: the Lambda integrations' result shapes, history events and errors, SNS, timeouts."""

from __future__ import annotations

import json
import time

from sconeflow.stepfunctions.engine import RealClock

from .engine_helpers import (
    Functions,
    RaisedError,
    RecordingClock,
    details,
    invoke_task,
    lambda_arn,
    output,
    run,
    types,
)

SCONES = {
    "StartAt": "Serialize",
    "States": {
        "Serialize": invoke_task("serializeImageData", Next="Classify"),
        "Classify": invoke_task("classifyImage", Next="Filter"),
        "Filter": invoke_task("filterInferences"),
    },
}


def _echo_functions(**overrides) -> Functions:
    handlers = {name: (lambda e: e) for name in ("serializeImageData", "classifyImage", "filterInferences")}
    handlers.update(overrides)
    return Functions(**handlers)


def test_three_step_workflow_history_matches_the_real_17_event_run() -> None:
    result = run(SCONES, {"s3_key": "test/bicycle.png"}, _echo_functions())
    assert output(result) == {"s3_key": "test/bicycle.png"}
    task = ["TaskStateEntered", "TaskScheduled", "TaskStarted", "TaskSucceeded", "TaskStateExited"]
    assert types(result) == ["ExecutionStarted", *task, *task, *task, "ExecutionSucceeded"]
    ids = [(e["id"], e["previousEventId"]) for e in result.events]
    assert ids[0] == (1, 0) and ids[1] == (2, 0)  # the first state-entered event points to 0, as on AWS
    assert all(prev == i - 1 for i, prev in ids[2:])
    scheduled = details(result.events[2])
    assert scheduled["resourceType"] == "lambda" and scheduled["resource"] == "invoke"
    assert json.loads(scheduled["parameters"]) == {
        "FunctionName": lambda_arn("serializeImageData") + ":$LATEST",
        "Payload": {"s3_key": "test/bicycle.png"},
    }
    assert "taskScheduledEventDetails" in result.events[2]
    assert "stateEnteredEventDetails" in result.events[1]
    assert details(result.events[-1]) == {
        "output": '{"s3_key":"test/bicycle.png"}',
        "outputDetails": {"truncated": False},
    }


def test_lambda_invoke_result_envelope_without_output_path() -> None:
    definition = {"StartAt": "T", "States": {"T": invoke_task("echo", OutputPath="$")}}
    result = output(run(definition, {"a": 1}, Functions(echo=lambda e: e)))
    assert list(result) == [
        "ExecutedVersion",
        "Payload",
        "SdkHttpMetadata",
        "SdkResponseMetadata",
        "StatusCode",
    ]
    assert result["Payload"] == {"a": 1} and result["StatusCode"] == 200
    assert result["ExecutedVersion"] == "$LATEST"
    headers = result["SdkHttpMetadata"]["HttpHeaders"]
    assert headers["x-amzn-RequestId"] == result["SdkResponseMetadata"]["RequestId"]
    assert result["SdkHttpMetadata"]["AllHttpHeaders"]["Content-Type"] == ["application/json"]


def test_function_error_surfaces_error_type_and_compact_cause() -> None:
    def boom(event):
        raise RaisedError("ThresholdConfidenceNotMet", "THRESHOLD_CONFIDENCE_NOT_MET")

    result = run(SCONES, {}, _echo_functions(filterInferences=boom))
    assert result.status == "FAILED"
    assert result.error == "ThresholdConfidenceNotMet"
    cause = json.loads(result.cause)
    assert cause["errorMessage"] == "THRESHOLD_CONFIDENCE_NOT_MET"
    assert ", " not in result.cause.split("stackTrace")[0]  # re-serialized compactly, like AWS
    assert types(result)[-3:] == ["TaskStarted", "TaskFailed", "ExecutionFailed"]  # no TaskStateExited


def test_legacy_function_arn_returns_payload_and_keeps_python_spacing_in_cause() -> None:
    definition = {
        "StartAt": "T",
        "States": {"T": {"Type": "Task", "Resource": lambda_arn("echo"), "End": True}},
    }
    result = run(definition, {"x": [1]}, Functions(echo=lambda e: {"got": e}))
    assert output(result) == {"got": {"x": [1]}}
    assert types(result) == [
        "ExecutionStarted",
        "TaskStateEntered",
        "LambdaFunctionScheduled",
        "LambdaFunctionStarted",
        "LambdaFunctionSucceeded",
        "TaskStateExited",
        "ExecutionSucceeded",
    ]

    def boom(event):
        raise RaisedError("ValueError", "bad")

    failed = run(definition, {}, Functions(echo=boom))
    assert failed.error == "ValueError"
    assert failed.cause.startswith('{"errorMessage": "bad", "errorType": "ValueError"')


def test_unknown_function_is_lambda_resource_not_found_with_aws_message() -> None:
    definition = {"StartAt": "T", "States": {"T": invoke_task("missing")}}
    result = run(definition, {}, Functions())
    assert result.error == "Lambda.ResourceNotFoundException"
    assert result.cause.startswith(
        "Function not found: arn:aws:lambda:us-east-1:123456789012:function:missing:$LATEST "
        "(Service: AWSLambda; Status Code: 404; Error Code: ResourceNotFoundException; Request ID: "
    )
    assert result.cause.endswith("; Proxy: null)")


def test_aws_sdk_lambda_invoke_leaves_payload_unparsed() -> None:
    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:lambda:invoke",
                "Parameters": {"FunctionName": "echo", "Payload.$": "$"},
                "End": True,
            }
        },
    }
    result = output(run(definition, {"k": "v"}, Functions(echo=lambda e: e)))
    assert result["StatusCode"] == 200
    assert json.loads(result["Payload"]) == {"k": "v"}
    assert isinstance(result["Payload"], str)


def test_sns_publish_sends_message_text_and_returns_message_id() -> None:
    functions = Functions()
    definition = {
        "StartAt": "N",
        "States": {
            "N": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sns:publish",
                "Parameters": {"TopicArn": "arn:aws:sns:us-east-1:123456789012:alerts", "Message.$": "$"},
                "End": True,
            }
        },
    }
    result = output(run(definition, {"alert": "low confidence"}, functions))
    assert result["MessageId"] == "msg-1"
    assert functions.published == [
        {
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:alerts",
            "Message": '{"alert":"low confidence"}',
            "Subject": None,
        }
    ]


def test_task_timeout_with_virtual_clock_is_states_timeout_without_cause() -> None:
    clock = RecordingClock()

    def slow(event):
        clock.sleep(60)
        return event

    definition = {"StartAt": "T", "States": {"T": invoke_task("slow", TimeoutSeconds=5)}}
    result = run(definition, {}, Functions(slow=slow), clock=clock)
    assert result.status == "FAILED" and result.error == "States.Timeout" and result.cause is None
    timed_out = [e for e in result.events if e["type"] == "TaskTimedOut"]
    assert details(timed_out[0]) == {
        "resourceType": "lambda",
        "resource": "invoke",
        "error": "States.Timeout",
    }
    scheduled = next(e for e in result.events if e["type"] == "TaskScheduled")
    assert details(scheduled)["timeoutInSeconds"] == 5


def test_task_timeout_with_real_clock_does_not_wait_for_the_function() -> None:
    def slow(event):
        time.sleep(3)
        return event

    definition = {"StartAt": "T", "States": {"T": invoke_task("slow", TimeoutSeconds=1)}}
    start = time.monotonic()
    result = run(definition, {}, Functions(slow=slow), clock=RealClock())
    assert result.error == "States.Timeout"
    assert time.monotonic() - start < 2.5


def test_payload_string_that_is_json_is_sent_verbatim() -> None:
    functions = Functions(echo=lambda e: e)
    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "echo", "Payload": "[1, 2]"},
                "OutputPath": "$.Payload",
                "End": True,
            }
        },
    }
    assert output(run(definition, {}, functions)) == [1, 2]


def test_function_map_style_names_and_qualifiers_resolve_to_the_function_name() -> None:
    functions = Functions(fn=lambda e: "ok")
    for name in ("fn", "fn:prod", lambda_arn("fn"), lambda_arn("fn") + ":7", "123456789012:function:fn"):
        definition = {
            "StartAt": "T",
            "States": {
                "T": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": name},
                    "OutputPath": "$.Payload",
                    "End": True,
                }
            },
        }
        assert output(run(definition, {}, functions)) == "ok"
    assert functions.calls[0] == ("fn", {})  # a missing Payload is sent as {}


def test_oversized_task_result_is_data_limit_exceeded_and_catchable() -> None:
    big = "a" * (257 * 1024)
    definition = {
        "StartAt": "T",
        "States": {
            "T": invoke_task("big", Catch=[{"ErrorEquals": ["States.DataLimitExceeded"], "Next": "Caught"}]),
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    result = output(run(definition, {}, Functions(big=lambda e: big)))
    assert result["Error"] == "States.DataLimitExceeded"
    assert "exceeding the maximum number of bytes service limit" in result["Cause"]
