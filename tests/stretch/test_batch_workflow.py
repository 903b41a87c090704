"""workflow/step-function-batch.json (stretch goal 2): fan-out over many images in one execution, through
REAL executions (StepFunctionsService), the REAL Lambdas (list_images included) and a REAL endpoint."""

from __future__ import annotations

import json

import pytest

from sconeflow.lambda_runtime import LambdaRuntime
from sconeflow.stepfunctions.service import StepFunctionsService
from sconeflow.stepfunctions.topic_log import TopicLog
from sconeflow.stepfunctions.validate import validate_definition

from .conftest import BATCH_WORKFLOW, Deployed

RETRY = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]


def _machine(deployed: Deployed) -> StepFunctionsService:
    service = StepFunctionsService(deployed.settings)
    try:
        service.describe_state_machine("batch")
    except Exception:
        service.create_state_machine("batch", BATCH_WORKFLOW.read_text())
    return service


def _run(service: StepFunctionsService, payload: dict, name: str):
    return service.run_to_end("batch", json.dumps(payload), name=name)


def test_batch_definition_is_valid_and_deployable_as_is() -> None:
    text = BATCH_WORKFLOW.read_text()
    assert validate_definition(text).result == "OK"
    spec = json.loads(text)
    assert spec["StartAt"] == "CheckInput" and spec["States"]["CheckInput"]["Type"] == "Choice"
    fan_out = spec["States"]["ClassifyImages"]
    assert fan_out["Type"] == "Map"
    # inline Map: AWS documents ToleratedFailure* for Distributed Map only; tolerance is explicit here
    assert fan_out["ItemProcessor"]["ProcessorConfig"] == {"Mode": "INLINE"}
    assert "MaxConcurrency" in fan_out and not any(k.startswith("ToleratedFailure") for k in fan_out)
    tasks = {
        name: state
        for name, state in [*spec["States"].items(), *fan_out["ItemProcessor"]["States"].items()]
        if state.get("Resource") == "arn:aws:states:::lambda:invoke"
    }
    assert sorted(tasks) == ["ClassifyImage", "FilterLowConfidence", "ListImages", "SerializeImageData"]
    for state in tasks.values():
        assert state["Resource"] == "arn:aws:states:::lambda:invoke"
        assert state["Arguments"]["FunctionName"].startswith(
            "arn:aws:lambda:us-east-1:123456789012:function:"
        )
        assert state["Retry"][0]["ErrorEquals"] == RETRY
    notify = spec["States"]["NotifyBatchFailure"]
    assert (
        notify["Resource"] == "arn:aws:states:::sns:publish"
        and notify["Next"] == "ToleratedFailureThresholdExceeded"
    )
    catches = tasks["FilterLowConfidence"]["Catch"]
    assert (
        catches[0]["ErrorEquals"] == ["ThresholdConfidenceNotMet"] and catches[0]["Next"] == "LowConfidence"
    )


@pytest.mark.timeout(300)
def test_keys_fan_out_with_per_image_results_and_tolerated_failures(deployed: Deployed) -> None:
    service = _machine(deployed)
    bucket = deployed.settings.bucket
    good = deployed.confident_keys[:4]
    keys = [*good, deployed.unsure_key, "test/no-such-image.png"]
    record = _run(
        service,
        {"s3_bucket": bucket, "s3_keys": keys, "max_concurrency": 3, "tolerated_failure_percentage": 40},
        "keys-tolerated",
    )
    assert record.status == "SUCCEEDED", (record.error, record.cause)
    out = json.loads(record.output)
    assert (out["total"], out["confident"], out["low_confidence"], out["failed"]) == (6, 4, 1, 1)
    assert out["failure_percentage"] == pytest.approx(100 * 2 / 6)
    results = out["results"]
    assert [r["s3_key"] for r in results] == keys  # input order, whatever the completion order
    assert [r["status"] for r in results] == ["confident"] * 4 + ["low_confidence", "failed"]
    for result in results[:4]:
        assert len(result["inferences"]) == 3 and result["confidence"] >= deployed.threshold
    assert (
        results[4]["error"] == "ThresholdConfidenceNotMet" and results[4]["confidence"] < deployed.threshold
    )
    assert results[5]["error"] == "ImageNotFound"
    # results stay small (no base64 image, causes cut at 200 characters): 1000 fit in a state's 256 KiB
    assert all("image_data" not in r and len(json.dumps(r)) < 400 for r in results)
    assert len(results[5]["cause"]) == 200 and "cause" not in results[4]
    types = [e["type"] for e in service.history("keys-tolerated")[1]]
    assert types.count("MapIterationStarted") == 6 and types.count("MapIterationSucceeded") == 6

    # the same batch with a stricter tolerance fails as a whole, naming the counts
    strict = _run(
        service, {"s3_bucket": bucket, "s3_keys": keys, "tolerated_failure_percentage": 10}, "keys-strict"
    )
    assert strict.status == "FAILED" and strict.error == "ToleratedFailureThresholdExceeded"
    assert "2 of 6 images did not pass (1 low confidence, 1 failed)" in strict.cause
    # ... after publishing the failed batch to the errors topic (`sconeflow notifications tail`)
    messages = [
        m.message
        for m in TopicLog(deployed.settings).read("sconeflow-workflow-errors")
        if m.message.get("execution") == strict.arn
    ]
    assert len(messages) == 1
    assert messages[0]["error"] == "ToleratedFailureThresholdExceeded"
    assert messages[0]["image_keys"] == keys[4:] and messages[0]["total"] == 6


@pytest.mark.timeout(300)
def test_prefix_is_listed_by_the_list_images_lambda(deployed: Deployed) -> None:
    service = _machine(deployed)
    bucket = deployed.settings.bucket
    record = _run(service, {"s3_bucket": bucket, "s3_prefix": "test/", "max_concurrency": 0}, "prefix")
    assert record.status == "SUCCEEDED", (record.error, record.cause)
    out = json.loads(record.output)
    listed = sorted(i.key for i in deployed.store.iter_objects(bucket, "test/"))
    assert [r["s3_key"] for r in out["results"]] == listed and out["total"] == len(listed) == 18
    assert out["confident"] == len(deployed.confident_keys)
    types = [e["type"] for e in service.history("prefix")[1]]
    assert types[:4] == ["ExecutionStarted", "ChoiceStateEntered", "ChoiceStateExited", "TaskStateEntered"]

    empty = _run(service, {"s3_bucket": bucket, "s3_prefix": "nothing-here/"}, "empty-prefix")
    assert empty.status == "FAILED" and empty.error == "NoImagesFound"
    no_bucket = _run(service, {"s3_bucket": "no-such-bucket", "s3_prefix": ""}, "no-bucket")
    assert no_bucket.status == "FAILED" and no_bucket.error == "BucketNotFound"


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"s3_keys": ["a.png"]},
        {"s3_bucket": "b"},
        {"s3_bucket": "b", "s3_keys": "a.png"},
        {"s3_bucket": "b", "s3_keys": ["a.png", 3]},
        {"s3_bucket": "b", "s3_keys": ["a.png"], "max_concurrency": -1},
        {"s3_bucket": "b", "s3_keys": ["a.png"], "max_concurrency": 1.5},
        {"s3_bucket": "b", "s3_prefix": "x/", "tolerated_failure_percentage": 101},
        [1, 2],
    ],
)
def test_bad_input_fails_with_invalid_batch_input(deployed: Deployed, payload: object) -> None:
    service = _machine(deployed)
    record = service.run_to_end("batch", json.dumps(payload))
    assert record.status == "FAILED" and record.error == "InvalidBatchInput", record.cause


def test_empty_key_list_succeeds_with_no_results(deployed: Deployed) -> None:
    record = _run(_machine(deployed), {"s3_bucket": deployed.settings.bucket, "s3_keys": []}, "no-keys")
    assert record.status == "SUCCEEDED"
    assert json.loads(record.output) | {"tolerated_failure_percentage": 50} == {
        "s3_bucket": deployed.settings.bucket,
        "total": 0,
        "confident": 0,
        "low_confidence": 0,
        "failed": 0,
        "failure_percentage": 0,
        "tolerated_failure_percentage": 50,
        "results": [],
    }


def test_list_images_lambda(deployed: Deployed) -> None:
    from sconeflow.lambda_runtime.registry import FunctionRegistry

    settings, bucket = deployed.settings, deployed.settings.bucket
    runtime = LambdaRuntime(settings)
    ok = runtime.invoke(
        "list_images", json.dumps({"body": {"s3_bucket": bucket, "s3_prefix": "test/b", "x": 1}}).encode()
    )
    assert ok.function_error is None, ok.payload
    body = json.loads(ok.payload)["body"]
    assert body["x"] == 1 and body["count"] == len(body["s3_keys"]) > 0
    assert all(k.startswith("test/b") and k.endswith(".png") for k in body["s3_keys"])
    # non-image objects (manifests, classes.json) are skipped
    everything = json.loads(runtime.invoke("list_images", json.dumps({"s3_bucket": bucket}).encode()).payload)
    assert not any(k.endswith((".lst", ".json")) for k in everything["body"]["s3_keys"])
    for payload, error in (
        ({"s3_prefix": "test/"}, "MissingEventField"),
        ({"s3_bucket": bucket, "s3_prefix": 3}, "MissingEventField"),
        ({"s3_bucket": "no-such-bucket"}, "BucketNotFound"),
        ({"s3_bucket": bucket, "s3_prefix": "zzz/"}, "NoImagesFound"),
    ):
        result = runtime.invoke("list_images", json.dumps(payload).encode())
        assert result.function_error == "Unhandled" and json.loads(result.payload)["errorType"] == error
    functions = FunctionRegistry(settings)
    functions.update("list_images", environment={"MAX_KEYS": "5"})
    try:
        result = runtime.invoke(
            "list_images", json.dumps({"s3_bucket": bucket, "s3_prefix": "test/"}).encode()
        )
        assert json.loads(result.payload)["errorType"] == "TooManyImages"
    finally:
        functions.update("list_images", environment={"MAX_KEYS": "1000"})
