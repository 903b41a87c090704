"""The three handlers in the local runtime, with their boto3 clients on the local gateway."""

from __future__ import annotations

import base64
import json

import pytest

from sconeflow.config import Settings
from sconeflow.lambda_runtime.registry import FunctionRegistry
from sconeflow.lambda_runtime.runtime import InvokeResult, LambdaRuntime
from sconeflow.store import LocalStore

KEY = "test/bicycle_s_000513.png"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def _invoke(runtime: LambdaRuntime, name: str, event: object) -> InvokeResult:
    return runtime.invoke(name, json.dumps(event).encode())


def _error(result: InvokeResult) -> dict:
    assert result.status_code == 200
    assert result.function_error == "Unhandled", result.payload
    return json.loads(result.payload)


@pytest.fixture
def image(store: LocalStore, settings: Settings) -> str:
    store.create_bucket(settings.bucket, exist_ok=True)
    store.put_object(settings.bucket, KEY, PNG, content_type="image/png")
    return settings.bucket


def test_serialize_reads_the_classic_test_object(runtime: LambdaRuntime, image: str) -> None:
    result = _invoke(runtime, "serialize_image_data", {"image_data": "", "s3_bucket": image, "s3_key": KEY})
    assert result.function_error is None, result.payload
    out = json.loads(result.payload)
    assert out["statusCode"] == 200
    assert isinstance(out["body"], dict)
    assert out["body"] == {
        "image_data": base64.b64encode(PNG).decode(),
        "s3_bucket": image,
        "s3_key": KEY,
        "inferences": [],
    }


def test_serialize_accepts_a_wrapped_event(runtime: LambdaRuntime, image: str) -> None:
    wrapped = {
        "statusCode": 200,
        "body": {"s3_bucket": image, "s3_key": KEY, "image_data": "", "inferences": []},
    }
    result = _invoke(runtime, "serialize_image_data", wrapped)
    assert json.loads(result.payload)["body"]["image_data"] == base64.b64encode(PNG).decode()


@pytest.mark.parametrize(
    ("event", "error_type", "fragment"),
    [
        ({"s3_bucket": "sconeflow-default"}, "MissingEventField", "'s3_key'"),
        ({"s3_key": KEY}, "MissingEventField", "'s3_bucket'"),
        ({"s3_bucket": "sconeflow-default", "s3_key": "test/missing.png"}, "ImageNotFound", "does not exist"),
        ({"s3_bucket": "no-such-bucket", "s3_key": KEY}, "ImageNotFound", "NoSuchBucket"),
        ({"body": '{"s3_key": 1}'}, "MissingEventField", "JSON string"),
    ],
)
def test_serialize_errors_are_named(
    runtime: LambdaRuntime, image: str, event: dict, error_type: str, fragment: str
) -> None:
    error = _error(_invoke(runtime, "serialize_image_data", event))
    assert error["errorType"] == error_type
    assert fragment in error["errorMessage"]


def test_serialize_refuses_an_object_over_the_size_limit(
    runtime: LambdaRuntime, settings: Settings, image: str
) -> None:
    FunctionRegistry(settings).update("serialize_image_data", environment={"MAX_IMAGE_BYTES": "100"})
    error = _error(_invoke(runtime, "serialize_image_data", {"s3_bucket": image, "s3_key": KEY}))
    assert error["errorType"] == "ImageTooLarge"
    assert f"is {len(PNG)} bytes; the limit is 100" in error["errorMessage"]


def test_filter_passes_a_confident_event_through(runtime: LambdaRuntime) -> None:
    event = {"s3_bucket": "b", "s3_key": KEY, "image_data": "aGk=", "inferences": [0.97, 0.03]}
    result = _invoke(runtime, "filter_inference", {"statusCode": 200, "body": event})
    assert result.function_error is None
    assert json.loads(result.payload) == {"statusCode": 200, "body": event}


def test_filter_raises_threshold_confidence_not_met(runtime: LambdaRuntime) -> None:
    error = _error(_invoke(runtime, "filter_inference", {"inferences": [0.87, 0.13]}))
    assert error["errorType"] == "ThresholdConfidenceNotMet"
    assert error["errorMessage"] == "THRESHOLD_CONFIDENCE_NOT_MET: max confidence 0.87 < 0.93"


def test_filter_never_shows_equal_looking_numbers(runtime: LambdaRuntime) -> None:
    error = _error(_invoke(runtime, "filter_inference", {"inferences": [0.9299, 0.0701]}))
    assert error["errorMessage"] == "THRESHOLD_CONFIDENCE_NOT_MET: max confidence 0.9299 < 0.9300"


def test_filter_threshold_comes_from_the_environment(runtime: LambdaRuntime, settings: Settings) -> None:
    FunctionRegistry(settings).update("filter_inference", environment={"THRESHOLD": "0.8"})
    assert _invoke(runtime, "filter_inference", {"inferences": [0.87, 0.13]}).function_error is None
    FunctionRegistry(settings).update("filter_inference", environment={"THRESHOLD": "high"})
    assert (
        _error(_invoke(runtime, "filter_inference", {"inferences": [0.87]}))["errorType"]
        == "InvalidThreshold"
    )


@pytest.mark.parametrize(
    "inferences", [[], None, "0.9", [0.5, "x"], [True], [1.5, 0.1], [float("nan")]], ids=repr
)
def test_filter_rejects_empty_or_malformed_inferences(runtime: LambdaRuntime, inferences: object) -> None:
    payload = json.dumps({"inferences": inferences} if inferences is not None else {}).encode()
    error = _error(runtime.invoke("filter_inference", payload))
    assert error["errorType"] == "InvalidInferences"


def test_classify_needs_image_data_and_an_endpoint(runtime: LambdaRuntime, settings: Settings) -> None:
    assert _error(_invoke(runtime, "classify_image", {"image_data": ""}))["errorType"] == "InvalidImageData"
    assert _error(_invoke(runtime, "classify_image", {"image_data": "@@not base64@@"}))["errorType"] == (
        "InvalidImageData"
    )
    assert _error(_invoke(runtime, "classify_image", {"s3_key": KEY}))["errorType"] == "MissingEventField"
    image = base64.b64encode(PNG).decode()
    assert _error(_invoke(runtime, "classify_image", {"image_data": image}))["errorType"] == (
        "EndpointNotConfigured"
    )
    FunctionRegistry(settings).update("classify_image", environment={"ENDPOINT_NAME": "no-such-endpoint"})
    error = _error(_invoke(runtime, "classify_image", {"body": {"image_data": image}}))
    assert error["errorType"] == "ValidationError"
    assert "Endpoint no-such-endpoint of account 123456789012 not found." in error["errorMessage"]


def test_serialize_refuses_an_empty_object(runtime: LambdaRuntime, store: LocalStore, image: str) -> None:
    """A zero-byte object is named here, not later as classify's 'image_data is empty; run serialize...'."""
    store.put_object(image, "test/empty.png", b"", content_type="image/png")
    error = _error(_invoke(runtime, "serialize_image_data", {"s3_bucket": image, "s3_key": "test/empty.png"}))
    assert error["errorType"] == "EmptyImage"
    assert error["errorMessage"] == (
        f"s3://{image}/test/empty.png is empty (0 bytes); there is no image to classify"
    )


@pytest.mark.parametrize(
    ("function", "event", "code"),
    [
        ("serialize_image_data", {"s3_key": "../etc/passwd"}, "InvalidArgument"),
        ("serialize_image_data", {"s3_key": "test/" + "k" * 1100}, "KeyTooLongError"),
        ("serialize_image_data", {"s3_bucket": "Bad..Bucket", "s3_key": KEY}, "InvalidBucketName"),
        ("serialize_image_data", {"s3_bucket": "a/b", "s3_key": KEY}, "not a valid S3 location"),
        ("list_images", {"s3_bucket": "Bad..Bucket"}, "InvalidBucketName"),
        ("list_images", {"s3_bucket": "a/b"}, "not a valid S3 location"),
    ],
)
def test_a_location_s3_refuses_is_a_named_error(
    runtime: LambdaRuntime, image: str, function: str, event: dict, code: str
) -> None:
    """A bad bucket name or key was boto3's generic ClientError; a Catch could not tell it from an outage."""
    error = _error(_invoke(runtime, function, {"s3_bucket": image, **event}))
    assert error["errorType"] == "InvalidS3Location", error
    assert code in error["errorMessage"]


@pytest.mark.parametrize("value", ["4MB", "-1", "0"])
def test_serialize_refuses_a_malformed_size_limit(
    runtime: LambdaRuntime, settings: Settings, image: str, value: str
) -> None:
    """MAX_IMAGE_BYTES=4MB was a bare ValueError from int(); -1 or 0 refused every image as too large."""
    FunctionRegistry(settings).update("serialize_image_data", environment={"MAX_IMAGE_BYTES": value})
    error = _error(_invoke(runtime, "serialize_image_data", {"s3_bucket": image, "s3_key": KEY}))
    assert error["errorType"] == "InvalidConfiguration"
    assert f"MAX_IMAGE_BYTES={value!r}" in error["errorMessage"]


@pytest.mark.parametrize(
    ("function", "error_type", "body"),
    [
        ("classify_image", "MissingEventField", {"image_data": "aGk=", "s3_key": KEY}),
        ("filter_inference", "InvalidInferences", {"inferences": [0.98, 0.02]}),
        ("list_images", "MissingEventField", {"s3_bucket": "sconeflow-default", "s3_prefix": "test/"}),
    ],
)
def test_a_body_that_is_a_json_string_is_named_by_every_handler(
    runtime: LambdaRuntime, function: str, error_type: str, body: dict
) -> None:
    """Recorded executions return body as json.dumps(...) about half the time; after such a function the
    handlers said 'image_data is missing' / 'inferences must be a non-empty list' although both were there."""
    error = _error(_invoke(runtime, function, {"statusCode": 200, "body": json.dumps(body)}))
    assert error["errorType"] == error_type
    assert error["errorMessage"].startswith("event 'body' is a JSON string"), error["errorMessage"]


class _StubRuntime:
    """A sagemaker-runtime client whose endpoint answers ``body``."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def invoke_endpoint(self, **kwargs: object) -> dict:
        import io

        return {"Body": io.BytesIO(self.body), "ContentType": "application/json"}


@pytest.mark.parametrize(
    "body",
    [b"[]", b"[NaN, 0.5]", b"[Infinity]", b"[1.7, -0.7]", b'{"prediction": []}', b'["0.9"]', b"[true]"],
    ids=repr,
)
def test_classify_refuses_an_endpoint_answer_that_is_not_probabilities(
    monkeypatch: pytest.MonkeyPatch, body: bytes
) -> None:
    """An empty list or NaN went on as inferences: the filter then blamed the event (InvalidInferences), and
    NaN is not even JSON for Step Functions; the classifier names the endpoint's answer instead."""
    from sconeflow.lambdas import classify_image

    monkeypatch.setenv("ENDPOINT_NAME", "stub")
    monkeypatch.setattr(classify_image, "_runtime", _StubRuntime(body))
    with pytest.raises(classify_image.InvalidEndpointResponse, match="not a non-empty list of probabilities"):
        classify_image.lambda_handler({"image_data": base64.b64encode(PNG).decode()}, None)


def test_classify_keeps_a_probability_list_and_the_batch_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    from sconeflow.lambdas import classify_image

    monkeypatch.setenv("ENDPOINT_NAME", "stub")
    event = {"image_data": base64.b64encode(PNG).decode(), "s3_key": KEY}
    for body, expected in (
        (b"[0.9388836622238159, 0.061116307973861694]", [0.9388836622238159, 0.061116307973861694]),
        (b'{"prediction": [0.25, 0.75]}', [0.25, 0.75]),
        (b"[1, 0]", [1.0, 0.0]),
    ):
        monkeypatch.setattr(classify_image, "_runtime", _StubRuntime(body))
        assert classify_image.lambda_handler(dict(event), None)["body"]["inferences"] == expected
