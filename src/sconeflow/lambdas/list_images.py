"""list_images: list the image objects under an S3 prefix, for the batch (fan-out) state machine.

Event (bare, or wrapped as ``{"body": {...}}``): ``{"s3_bucket": str, "s3_prefix": str}`` (the prefix may be
empty: the whole bucket). Other fields are passed through unchanged. Returns
``{"statusCode": 200, "body": {...event..., "s3_keys": [key, ...], "count": n}}`` with the keys in S3's
(lexicographic) order, keeping only objects whose name ends in one of ``IMAGE_SUFFIXES``.

Environment: ``IMAGE_SUFFIXES`` (default ``.png,.jpg,.jpeg``, case-insensitive), ``MAX_KEYS`` (default
1000: a batch's per-image results must fit in a state's 256 KiB and its history in 25,000 events).
Standard library and boto3 only: this file is deployable to AWS Lambda as is.
"""

import os

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, ParamValidationError

DEFAULT_SUFFIXES = ".png,.jpg,.jpeg"
DEFAULT_MAX_KEYS = 1000
# S3's answers to a bucket name or prefix it refuses outright (not one that merely does not exist).
INVALID_LOCATION_CODES = ("InvalidBucketName", "InvalidArgument", "KeyTooLongError")

_s3 = None


class MissingEventField(Exception):
    """The event lacks a required field, or it has the wrong type."""


class BucketNotFound(Exception):
    """The S3 bucket does not exist."""


class InvalidS3Location(Exception):
    """S3 refuses the bucket name or the prefix (not a valid name, too long, a '..' segment locally)."""


class NoImagesFound(Exception):
    """No image object lies under the prefix."""


class TooManyImages(Exception):
    """More than MAX_KEYS images lie under the prefix."""


class InvalidConfiguration(Exception):
    """MAX_KEYS or IMAGE_SUFFIXES is malformed."""


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


def _settings():
    raw = os.environ.get("MAX_KEYS", "") or str(DEFAULT_MAX_KEYS)
    try:
        max_keys = int(raw)
    except ValueError:
        raise InvalidConfiguration(f"MAX_KEYS={raw!r} is not an integer") from None
    if max_keys < 1:
        raise InvalidConfiguration(f"MAX_KEYS={raw!r} must be at least 1")
    suffixes = tuple(
        s.strip().lower()
        for s in (os.environ.get("IMAGE_SUFFIXES") or DEFAULT_SUFFIXES).split(",")
        if s.strip()
    )
    if not suffixes:
        raise InvalidConfiguration("IMAGE_SUFFIXES names no suffix")
    return max_keys, suffixes


def lambda_handler(event, context):
    event = _unwrap(event)
    bucket = event.get("s3_bucket")
    if not isinstance(bucket, str) or not bucket:
        raise MissingEventField("event field 's3_bucket' is missing or not a non-empty string")
    prefix = event.get("s3_prefix", "")
    if not isinstance(prefix, str):
        raise MissingEventField("event field 's3_prefix' must be a string")
    max_keys, suffixes = _settings()
    keys = []
    paginator = _client().get_paginator("list_objects_v2")
    try:
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                if key.lower().endswith(suffixes):
                    keys.append(key)
                    if len(keys) > max_keys:
                        raise TooManyImages(
                            f"more than {max_keys} images under s3://{bucket}/{prefix} (MAX_KEYS); "
                            "split the batch into narrower prefixes"
                        )
    except ParamValidationError as exc:
        raise InvalidS3Location(f"s3://{bucket}/{prefix} is not a valid S3 location: {exc}") from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        if code in ("NoSuchBucket", "404"):
            raise BucketNotFound(f"bucket {bucket} does not exist") from None
        if code in INVALID_LOCATION_CODES:
            message = error.get("Message", "")
            raise InvalidS3Location(f"s3://{bucket}/{prefix} is refused by S3 ({code}): {message}") from None
        raise
    if not keys:
        raise NoImagesFound(f"no {'/'.join(suffixes)} objects under s3://{bucket}/{prefix}")
    body = dict(event)
    body.update({"s3_bucket": bucket, "s3_prefix": prefix, "s3_keys": keys, "count": len(keys)})
    return {"statusCode": 200, "body": body}
