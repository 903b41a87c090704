"""The Lambda REST API through the gateway with a real boto3 client."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sconeflow.config import Settings
from tests.gateway.support import register_code

SLEEPY = "import time\ndef handler(event, context):\n    time.sleep(event.get('s', 0))\n    return event\n"


def test_invoke_request_response(lam: Any) -> None:
    response = lam.invoke(FunctionName="filter_inference", Payload=b'{"inferences": [0.99, 0.01]}')
    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in response
    assert json.loads(response["Payload"].read()) == {"statusCode": 200, "body": {"inferences": [0.99, 0.01]}}
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["content-type"] == "application/json"
    assert headers["x-amzn-remapped-content-length"] == "0"
    assert len(headers["x-amzn-requestid"]) == 36


def test_function_error_header_and_log_tail(lam: Any) -> None:
    response = lam.invoke(
        FunctionName="filter_inference", Payload=b'{"inferences": [0.6, 0.4]}', LogType="Tail"
    )
    assert (response["StatusCode"], response["FunctionError"]) == (200, "Unhandled")
    error = json.loads(response["Payload"].read())
    assert error["errorType"] == "ThresholdConfidenceNotMet"
    assert error["requestId"] == response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    log = base64.b64decode(response["LogResult"]).decode()
    assert "START RequestId:" in log and "REPORT RequestId:" in log


def test_event_and_dry_run(lam: Any) -> None:
    event = lam.invoke(
        FunctionName="filter_inference", InvocationType="Event", Payload=b'{"inferences": [1.0]}'
    )
    assert event["StatusCode"] == 202 and event["Payload"].read() == b""
    dry = lam.invoke(FunctionName="filter_inference", InvocationType="DryRun")
    assert dry["StatusCode"] == 204


def test_api_errors(lam: Any, settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as exc:
        lam.invoke(FunctionName="nope", Payload=b"{}")
    assert exc.value.response["Error"]["Message"] == (
        "Function not found: arn:aws:lambda:us-east-1:123456789012:function:nope:$LATEST"
    )
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(lam.exceptions.RequestTooLargeException) as exc:
        lam.invoke(FunctionName="filter_inference", Payload=b'{"x": "' + b"x" * (6 * 1024 * 1024) + b'"}')
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    with pytest.raises(lam.exceptions.InvalidRequestContentException):
        lam.invoke(FunctionName="filter_inference", Payload=b"{broken")
    # and the runtime keeps serving
    assert lam.invoke(FunctionName="filter_inference", Payload=b'{"inferences": [1.0]}')["StatusCode"] == 200


def test_timeout_through_the_api(lam: Any, settings: Settings, tmp_path: Path) -> None:
    register_code(settings, tmp_path, "sleepy", SLEEPY, timeout=1)
    response = lam.invoke(FunctionName="sleepy", Payload=b'{"s": 5}')
    assert response["FunctionError"] == "Unhandled"
    assert json.loads(response["Payload"].read())["errorType"] == "Sandbox.Timedout"
    assert json.loads(lam.invoke(FunctionName="sleepy", Payload=b'{"s": 0}')["Payload"].read()) == {"s": 0}


def test_list_and_get_function(lam: Any) -> None:
    names = [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    assert names == ["classify_image", "filter_inference", "list_images", "serialize_image_data"]
    paged = lam.list_functions(MaxItems=2)
    assert len(paged["Functions"]) == 2 and paged["NextMarker"]
    function = lam.get_function(
        FunctionName="arn:aws:lambda:us-east-1:123456789012:function:filter_inference"
    )
    config = function["Configuration"]
    assert config["FunctionArn"] == "arn:aws:lambda:us-east-1:123456789012:function:filter_inference"
    assert (config["Handler"], config["Timeout"], config["Runtime"]) == (
        "filter_inference.lambda_handler",
        3,
        "python3.11",
    )
    assert config["Environment"]["Variables"] == {"THRESHOLD": "0.93"}
    assert lam.get_function_configuration(FunctionName="classify_image")["MemorySize"] == 256
    with pytest.raises(ClientError) as exc:
        lam.get_function(FunctionName="nope")
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"


CLIENT_CONTEXT = """
def handler(event, context):
    cc = context.client_context
    return {"custom": cc.custom, "app": cc.client.app_title, "arn": context.invoked_function_arn}
"""


def test_client_context_and_qualifier(lam: Any, settings: Settings, tmp_path: Path) -> None:
    register_code(settings, tmp_path, "cc", CLIENT_CONTEXT)
    context = base64.b64encode(json.dumps({"client": {"app_title": "scones"}, "custom": {"k": "v"}}).encode())
    response = lam.invoke(
        FunctionName="cc", ClientContext=context.decode(), Qualifier="$LATEST", Payload=b"{}"
    )
    assert json.loads(response["Payload"].read()) == {
        "custom": {"k": "v"},
        "app": "scones",
        "arn": "arn:aws:lambda:us-east-1:123456789012:function:cc:$LATEST",
    }
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as exc:
        lam.invoke(FunctionName="cc", Qualifier="1", Payload=b"{}")
    assert exc.value.response["Error"]["Message"].endswith("function:cc:1")
