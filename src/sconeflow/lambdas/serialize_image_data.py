"""serialize_image_data: read the image named by the event from S3 and return it base64-encoded.

Event (bare, or wrapped as ``{"body": {...}}`` by a previous function):
``{"s3_bucket": str, "s3_key": str, "image_data": str, "inferences": [float, ...]}``.
Returns ``{"statusCode": 200, "body": {... same fields, image_data = base64 of the object ...}}``.

Environment: ``MAX_IMAGE_BYTES`` (default 4000000, so the base64 body stays under Lambda's 6 MB
response limit). Standard library and boto3 only: this file is deployable to AWS Lambda as is.
"""

import base64
import os

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, ParamValidationError

DEFAULT_MAX_IMAGE_BYTES = 4_000_000
# S3's answers to a bucket name or key it refuses outright (not one that merely does not exist).
INVALID_LOCATION_CODES = ("InvalidBucketName", "InvalidArgument", "KeyTooLongError")

_s3 = None


class MissingEventField(Exception):
    """The event lacks a required field, or it has the wrong type."""


class ImageNotFound(Exception):
    """The S3 object (or its bucket) does not exist."""


class ImageTooLarge(Exception):
    """The S3 object is larger than MAX_IMAGE_BYTES."""


class InvalidS3Location(Exception):
    """S3 refuses the bucket name or the key (not a valid name, too long, a '..' segment locally)."""


class InvalidConfiguration(Exception):
    """MAX_IMAGE_BYTES is not a positive integer."""


class EmptyImage(Exception):
    """The S3 object holds no bytes, so there is no image to classify."""


def _client():
    """One S3 client per warm process; path-style addressing works on AWS and on local gateways."""
    global _s3
    if _s3 is None:
        _s3 = boto3.client("s3", config=Config(s3={"addressing_style": "path"}))
    return _s3


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


def _required_str(event, name):
    value = event.get(name)
    if not isinstance(value, str) or not value:
        raise MissingEventField(f"event field '{name}' is missing or not a non-empty string")
    return value


def _max_image_bytes():
    raw = os.environ.get("MAX_IMAGE_BYTES", "") or str(DEFAULT_MAX_IMAGE_BYTES)
    try:
        limit = int(raw)
    except ValueError:
        raise InvalidConfiguration(f"MAX_IMAGE_BYTES={raw!r} is not an integer") from None
    if limit < 1:
        raise InvalidConfiguration(f"MAX_IMAGE_BYTES={raw!r} must be at least 1")
    return limit


def lambda_handler(event, context):
    event = _unwrap(event)
    bucket = _required_str(event, "s3_bucket")
    key = _required_str(event, "s3_key")
    limit = _max_image_bytes()
    try:
        response = _client().get_object(Bucket=bucket, Key=key)
    except ParamValidationError as exc:
        raise InvalidS3Location(f"s3://{bucket}/{key} is not a valid S3 location: {exc}") from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        if code in ("NoSuchKey", "NoSuchBucket", "404"):
            raise ImageNotFound(f"s3://{bucket}/{key} does not exist ({code})") from None
        if code in INVALID_LOCATION_CODES:
            message = error.get("Message", "")
            raise InvalidS3Location(f"s3://{bucket}/{key} is refused by S3 ({code}): {message}") from None
        raise
    size = response.get("ContentLength", 0)
    if size > limit:
        response["Body"].close()
        raise ImageTooLarge(f"s3://{bucket}/{key} is {size} bytes; the limit is {limit} (MAX_IMAGE_BYTES)")
    data = response["Body"].read()
    if not data:
        raise EmptyImage(f"s3://{bucket}/{key} is empty (0 bytes); there is no image to classify")
    body = dict(event)
    body.update(
        {
            "image_data": base64.b64encode(data).decode("ascii"),
            "s3_bucket": bucket,
            "s3_key": key,
            "inferences": event.get("inferences") or [],
        }
    )
    return {"statusCode": 200, "body": body}
