"""classify_image: send the event's image to the SageMaker endpoint and attach its probabilities.

Event (bare, or wrapped as ``{"body": {...}}`` by a previous function):
``{"s3_bucket": str, "s3_key": str, "image_data": str (base64), "inferences": [...]}``.
Calls ``invoke_endpoint(EndpointName=$ENDPOINT_NAME, ContentType="image/png")`` and returns
``{"statusCode": 200, "body": {... same fields, inferences = the parsed probability list ...}}``.

Environment: ``ENDPOINT_NAME`` (required), ``CONTENT_TYPE`` (default image/png).
Standard library and boto3 only: this file is deployable to AWS Lambda as is.
"""

import base64
import binascii
import json
import os

import boto3

_runtime = None


class MissingEventField(Exception):
    """The event lacks a required field, or it has the wrong type."""


class InvalidImageData(Exception):
    """image_data is empty or not valid base64."""


class EndpointNotConfigured(Exception):
    """The ENDPOINT_NAME environment variable is not set."""


class InvalidEndpointResponse(Exception):
    """The endpoint answered something other than a non-empty JSON list of probabilities in [0, 1]."""


def _client():
    """One sagemaker-runtime client per warm process (honours AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME)."""
    global _runtime
    if _runtime is None:
        _runtime = boto3.client("sagemaker-runtime")
    return _runtime


def _unwrap(event):
    if isinstance(event, dict) and isinstance(event.get("body"), dict):
        return event["body"]
    if isinstance(event, dict) and isinstance(event.get("body"), str):
        raise MissingEventField(
            "event 'body' is a JSON string; pass the object itself (OutputPath: $.Payload)"
        )
    if not isinstance(event, dict):
        raise MissingEventField(f"event must be a JSON object, got {type(event).__name__}")
    return event


def _decode(image_data):
    if not isinstance(image_data, str):
        raise MissingEventField("event field 'image_data' is missing or not a string")
    if not image_data:
        raise InvalidImageData("image_data is empty; run serialize_image_data first")
    try:
        return base64.b64decode(image_data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidImageData(f"image_data is not valid base64: {exc}") from None


def _is_probability(value):
    """A JSON number in [0, 1]; NaN (which json.loads accepts) and booleans are not."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value <= 1.0


def _parse_inferences(raw):
    try:
        values = json.loads(raw)
    except ValueError as exc:
        raise InvalidEndpointResponse(f"endpoint response is not JSON: {exc}") from None
    if isinstance(values, dict) and "prediction" in values:
        values = values["prediction"]
    if not isinstance(values, list) or not values or not all(_is_probability(v) for v in values):
        raise InvalidEndpointResponse(
            f"endpoint response is not a non-empty list of probabilities in [0, 1]: {raw[:200]!r}"
        )
    return [float(v) for v in values]


def lambda_handler(event, context):
    event = _unwrap(event)
    image = _decode(event.get("image_data"))
    endpoint = os.environ.get("ENDPOINT_NAME", "")
    if not endpoint:
        raise EndpointNotConfigured(
            "set the function's ENDPOINT_NAME environment variable to the SageMaker endpoint name "
            "(locally: sconeflow lambda update classify_image --env ENDPOINT_NAME=<endpoint>)"
        )
    response = _client().invoke_endpoint(
        EndpointName=endpoint,
        ContentType=os.environ.get("CONTENT_TYPE", "image/png"),
        Body=image,
    )
    inferences = _parse_inferences(response["Body"].read().decode("utf-8"))
    body = dict(event)
    body["inferences"] = inferences
    return {"statusCode": 200, "body": body}
