"""Asynchronous invocation retries and the EventInvokeConfig operations, through a real boto3 Lambda
client against the in-process gateway. The retry waits are shortened with the documented local setting
SCONEFLOW_LAMBDA_ASYNC_RETRY_DELAYS; by default they are Lambda's one and two minutes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sconeflow.config import Settings
from sconeflow.lambda_runtime.logs import LogStore
from tests.gateway.support import register_code

ARN = "arn:aws:lambda:us-east-1:123456789012:function"
ASYNC_RETRY_DELAYS_ENV = "SCONEFLOW_LAMBDA_ASYNC_RETRY_DELAYS"  # the documented local setting

# Fails while the marker file holds a number below FAIL_TIMES, counting its attempts in the file.
FLAKY = """import os
def handler(event, context):
    path = os.environ["MARKER"]
    count = int(open(path).read()) if os.path.exists(path) else 0
    open(path, "w").write(str(count + 1))
    if count < int(os.environ["FAIL_TIMES"]):
        raise RuntimeError(f"attempt {count + 1} fails")
    return {"attempt": count + 1}
"""
RECORDER = """import json, os
def handler(event, context):
    with open(os.environ["OUT"], "a") as out:
        out.write(json.dumps(event) + "\\n")
"""


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ASYNC_RETRY_DELAYS_ENV, "0.2,0.4")


def _flaky(settings: Settings, tmp_path: Path, fail_times: int) -> Path:
    marker = tmp_path / "attempts"
    register_code(
        settings, tmp_path, "flaky", FLAKY, environment={"MARKER": str(marker), "FAIL_TIMES": str(fail_times)}
    )
    return marker


def _attempt_logs(settings: Settings, request_id: str, expected: int, settle: float = 1.0) -> list[str]:
    """The log texts of ``request_id`` once there are ``expected`` (then ``settle`` s more for extras)."""
    store = LogStore(settings)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if len(store.read("flaky", request_id=request_id)) >= expected:
            break
        time.sleep(0.05)
    time.sleep(settle)
    return [record.text for record in store.read("flaky", request_id=request_id)]


def test_failed_event_is_retried_twice_by_default_each_attempt_logged(
    settings: Settings, tmp_path: Path, lam: Any, fast_retries: None
) -> None:
    marker = _flaky(settings, tmp_path, fail_times=99)
    response = lam.invoke(FunctionName="flaky", InvocationType="Event", Payload=b'{"n": 1}')
    assert response["StatusCode"] == 202
    request_id = response["ResponseMetadata"]["RequestId"]
    texts = _attempt_logs(settings, request_id, expected=3)
    assert len(texts) == 3, texts  # the first attempt and 2 retries, no more
    for text in texts:  # each attempt is its own START/END/REPORT with the same request id
        assert text.count(f"START RequestId: {request_id} Version: $LATEST") == 1
        assert text.count(f"END RequestId: {request_id}") == 1
        assert text.count(f"REPORT RequestId: {request_id}") == 1
    assert [f"attempt {n} fails" in text for n, text in enumerate(texts, 1)] == [True] * 3
    assert marker.read_text() == "3"


def test_an_event_that_succeeds_on_retry_stops_there(
    settings: Settings, tmp_path: Path, lam: Any, fast_retries: None
) -> None:
    marker = _flaky(settings, tmp_path, fail_times=1)
    request_id = lam.invoke(FunctionName="flaky", InvocationType="Event")["ResponseMetadata"]["RequestId"]
    assert len(_attempt_logs(settings, request_id, expected=2)) == 2
    assert marker.read_text() == "2"


def test_maximum_retry_attempts_zero_runs_once(
    settings: Settings, tmp_path: Path, lam: Any, fast_retries: None
) -> None:
    marker = _flaky(settings, tmp_path, fail_times=99)
    lam.put_function_event_invoke_config(FunctionName="flaky", MaximumRetryAttempts=0)
    request_id = lam.invoke(FunctionName="flaky", InvocationType="Event")["ResponseMetadata"]["RequestId"]
    assert len(_attempt_logs(settings, request_id, expected=1, settle=1.5)) == 1
    assert marker.read_text() == "1"


def test_retry_waits_are_lambdas_minutes_by_default(
    settings: Settings, tmp_path: Path, lam: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sconeflow.lambda_runtime.runtime import async_retry_delays

    monkeypatch.delenv(ASYNC_RETRY_DELAYS_ENV, raising=False)
    assert async_retry_delays(settings) == (60.0, 120.0)
    monkeypatch.setenv(ASYNC_RETRY_DELAYS_ENV, "1,2")
    assert async_retry_delays(settings) == (1.0, 2.0)
    monkeypatch.delenv(ASYNC_RETRY_DELAYS_ENV)
    marker = _flaky(settings, tmp_path, fail_times=99)
    request_id = lam.invoke(FunctionName="flaky", InvocationType="Event")["ResponseMetadata"]["RequestId"]
    assert len(_attempt_logs(settings, request_id, expected=1, settle=1.5)) == 1  # the retry waits a minute
    assert marker.read_text() == "1"


def test_event_invoke_config_operations(settings: Settings, tmp_path: Path, lam: Any) -> None:
    _flaky(settings, tmp_path, fail_times=0)
    with pytest.raises(ClientError) as exc:
        lam.get_function_event_invoke_config(FunctionName="flaky")
    error = exc.value.response["Error"]
    assert (error["Code"], exc.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (
        "ResourceNotFoundException",
        404,
    )
    assert error["Message"] == f"The function {ARN}:flaky:$LATEST doesn't have an EventInvokeConfig"

    put = lam.put_function_event_invoke_config(FunctionName="flaky", MaximumRetryAttempts=1)
    assert put["FunctionArn"] == f"{ARN}:flaky:$LATEST"
    assert put["MaximumRetryAttempts"] == 1 and "MaximumEventAgeInSeconds" not in put
    assert put["DestinationConfig"] == {"OnSuccess": {}, "OnFailure": {}}
    updated = lam.update_function_event_invoke_config(FunctionName="flaky", MaximumEventAgeInSeconds=300)
    assert (updated["MaximumRetryAttempts"], updated["MaximumEventAgeInSeconds"]) == (1, 300)  # merged
    replaced = lam.put_function_event_invoke_config(FunctionName="flaky", MaximumEventAgeInSeconds=600)
    assert "MaximumRetryAttempts" not in replaced  # Put replaces the whole configuration
    got = lam.get_function_event_invoke_config(FunctionName="flaky")
    assert got["MaximumEventAgeInSeconds"] == 600

    for bad in ({"MaximumRetryAttempts": 3}, {"MaximumEventAgeInSeconds": 21601}):
        with pytest.raises(ClientError) as exc:
            lam.put_function_event_invoke_config(FunctionName="flaky", **bad)
        assert exc.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as exc:  # a qualifier that does not exist
        lam.put_function_event_invoke_config(FunctionName="flaky", Qualifier="7", MaximumRetryAttempts=0)
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"

    lam.publish_version(FunctionName="flaky")
    lam.create_alias(FunctionName="flaky", Name="live", FunctionVersion="1")
    lam.put_function_event_invoke_config(FunctionName="flaky:live", MaximumRetryAttempts=0)
    listed = lam.list_function_event_invoke_configs(FunctionName="flaky")["FunctionEventInvokeConfigs"]
    assert [c["FunctionArn"] for c in listed] == [f"{ARN}:flaky:$LATEST", f"{ARN}:flaky:live"]
    lam.delete_function_event_invoke_config(FunctionName="flaky", Qualifier="live")
    listed = lam.list_function_event_invoke_configs(FunctionName="flaky")["FunctionEventInvokeConfigs"]
    assert [c["FunctionArn"] for c in listed] == [f"{ARN}:flaky:$LATEST"]
    with pytest.raises(ClientError) as exc:  # destinations must be local functions
        lam.put_function_event_invoke_config(
            FunctionName="flaky",
            DestinationConfig={"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:123456789012:dlq"}},
        )
    assert exc.value.response["Error"]["Code"] == "InvalidParameterValueException"


def test_on_failure_and_on_success_destinations_get_lambdas_record(
    settings: Settings, tmp_path: Path, lam: Any, fast_retries: None
) -> None:
    out = tmp_path / "records.jsonl"
    register_code(settings, tmp_path, "recorder", RECORDER, environment={"OUT": str(out)})
    _flaky(settings, tmp_path, fail_times=99)
    lam.put_function_event_invoke_config(
        FunctionName="flaky",
        MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": f"{ARN}:recorder"}},
    )
    request_id = lam.invoke(FunctionName="flaky", InvocationType="Event", Payload=b'{"n": 1}')[
        "ResponseMetadata"
    ]["RequestId"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not out.exists():
        time.sleep(0.05)
    record = json.loads(out.read_text().splitlines()[0])
    assert record["requestContext"] == {
        "requestId": request_id,
        "functionArn": f"{ARN}:flaky",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 2,
    }
    assert record["requestPayload"] == {"n": 1}
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert record["responsePayload"]["errorMessage"] == "attempt 2 fails"
