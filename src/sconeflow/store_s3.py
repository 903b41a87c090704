"""The ``s3://`` object store backend: the :class:`~sconeflow.store.ObjectStore` interface over boto3.

Two layouts, chosen by the URI:

- ``s3://`` -- store buckets are real S3 buckets (``put_object("b", "k")`` writes ``s3://b/k``).
- ``s3://root-bucket[/prefix]`` -- every store bucket lives as a folder in one real bucket:
  ``put_object("b", "k")`` writes ``s3://root-bucket/prefix/b/k``, and a bucket exists when its
  zero-byte marker ``prefix/.buckets/b`` does (outside every bucket's folder, so it never shows in a
  listing). Useful with a single bucket you are allowed to write.

The endpoint comes from boto3's usual configuration (``AWS_ENDPOINT_URL``/``AWS_ENDPOINT_URL_S3``,
profiles), so the same code talks to AWS, to sconeflow's gateway or to moto. Keys and bucket names
are validated exactly as the local store does, and S3's error codes become the same named errors.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any, BinaryIO
from urllib.parse import urlparse

from sconeflow.store import (
    BucketAlreadyExists,
    BucketInfo,
    BucketNotEmpty,
    InvalidRange,
    ListResult,
    NoSuchBucket,
    NoSuchKey,
    ObjectInfo,
    StoreError,
    guess_content_type,
    standard_headers,
    validate_bucket_name,
    validate_key,
)

_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
BUCKET_MARKERS = ".buckets"  # namespaced layout: <prefix>.buckets/<bucket> marks a bucket


# boto3's parameter for each standard header; Expires goes as the raw HTTP date (ExpiresString on read).
_HEADER_PARAMS = {
    "Cache-Control": "CacheControl",
    "Content-Disposition": "ContentDisposition",
    "Content-Encoding": "ContentEncoding",
    "Content-Language": "ContentLanguage",
}


def _header_params(headers: dict[str, str] | None) -> dict[str, Any]:
    given = standard_headers(headers)
    params: dict[str, Any] = {_HEADER_PARAMS[k]: v for k, v in given.items() if k in _HEADER_PARAMS}
    if "Expires" in given:
        try:
            params["Expires"] = parsedate_to_datetime(given["Expires"])
        except (TypeError, ValueError):
            pass  # S3 keeps only valid dates as Expires
    return params


def _headers_of(head: dict[str, Any]) -> dict[str, str]:
    found = {name: head[param] for name, param in _HEADER_PARAMS.items() if head.get(param)}
    expires = head.get("ExpiresString") or head.get("Expires")
    if expires:
        found["Expires"] = expires if isinstance(expires, str) else format_datetime(expires, usegmt=True)
    return found


def _etag(value: str | None) -> str:
    return (value or "").strip('"')


class _Body(io.RawIOBase):
    """A botocore StreamingBody as a readable, closeable binary file."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        return self._body.read() if size is None or size < 0 else self._body.read(size)

    def close(self) -> None:
        try:
            self._body.close()
        finally:
            super().close()


class S3Store:
    """An :class:`ObjectStore` on S3 (or any S3-compatible endpoint) through boto3."""

    def __init__(self, uri: str = "s3://", *, client: Any = None) -> None:
        parsed = urlparse(uri)
        if parsed.scheme != "s3":
            raise StoreError(f"S3Store needs an s3:// URI, not {uri!r}")
        self.uri = uri
        self.root_bucket = parsed.netloc or None
        prefix = parsed.path.strip("/")
        self.prefix = f"{prefix}/" if prefix else ""
        if self.root_bucket:
            validate_bucket_name(self.root_bucket)
        if client is None:
            import boto3
            from botocore.config import Config

            region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
            custom_endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
            # Local S3-compatible servers (sconeflow's gateway included) route path-style requests.
            config = Config(s3={"addressing_style": "path"}) if custom_endpoint else None
            client = boto3.client("s3", region_name=region, config=config)
        self.client = client

    # -- mapping between store names and real S3 names -----------------------------------------
    def _base(self, bucket: str) -> tuple[str, str]:
        """(real bucket, real key prefix) of a store bucket."""
        validate_bucket_name(bucket)
        if self.root_bucket:
            return self.root_bucket, f"{self.prefix}{bucket}/"
        return bucket, ""

    def _loc(self, bucket: str, key: str) -> tuple[str, str]:
        validate_key(key)
        real_bucket, base = self._base(bucket)
        return real_bucket, base + key

    def _error(self, exc: Exception, bucket: str, key: str | None = None) -> StoreError:
        from botocore.exceptions import ClientError

        if not isinstance(exc, ClientError):
            return StoreError(f"S3 request failed: {exc}")
        code = str(exc.response.get("Error", {}).get("Code", ""))
        where = f"s3://{bucket}/{key}" if key is not None else f"bucket {bucket!r}"
        if code == "NoSuchBucket" or (code in _NOT_FOUND and key is None):
            return NoSuchBucket(f"bucket {bucket!r} does not exist")
        if code in _NOT_FOUND:
            return NoSuchKey(f"{where} does not exist")
        if code in ("BucketAlreadyExists", "BucketAlreadyOwnedByYou"):
            return BucketAlreadyExists(f"bucket {bucket!r} already exists")
        if code == "BucketNotEmpty":
            return BucketNotEmpty(f"bucket {bucket!r} is not empty")
        if code == "InvalidRange":
            return InvalidRange(f"the requested range of {where} is not satisfiable")
        message = exc.response.get("Error", {}).get("Message", "")
        return StoreError(f"S3 {code} on {where}: {message}")

    def _key_error(self, exc: Exception, bucket: str, key: str) -> StoreError:
        """Like :meth:`_error`, but a missing key in a missing bucket is :class:`NoSuchBucket`."""
        error = self._error(exc, bucket, key)
        if isinstance(error, NoSuchKey) and not self.bucket_exists(bucket):
            return NoSuchBucket(f"bucket {bucket!r} does not exist")
        return error

    def _marker(self, bucket: str) -> str:
        """The key that says a store bucket exists (namespaced layout only)."""
        return f"{self.prefix}{BUCKET_MARKERS}/{bucket}"

    def _require_bucket(self, bucket: str) -> None:
        if not self.bucket_exists(bucket):
            raise NoSuchBucket(f"bucket {bucket!r} does not exist")

    # -- buckets -------------------------------------------------------------------------------
    def create_bucket(self, bucket: str, *, exist_ok: bool = False) -> None:
        real_bucket, base = self._base(bucket)
        if self.bucket_exists(bucket):
            if exist_ok:
                return
            raise BucketAlreadyExists(f"bucket {bucket!r} already exists")
        try:
            if base:
                self.client.put_object(Bucket=real_bucket, Key=self._marker(bucket), Body=b"")
            else:
                self.client.create_bucket(Bucket=real_bucket)
        except Exception as exc:
            error = self._error(exc, bucket)
            if isinstance(error, BucketAlreadyExists) and exist_ok:
                return
            raise error from None

    def delete_bucket(self, bucket: str) -> None:
        real_bucket, base = self._base(bucket)
        self._require_bucket(bucket)
        if base:
            if next(iter(self.list_objects(bucket, max_keys=1).objects), None) is not None:
                raise BucketNotEmpty(f"bucket {bucket!r} is not empty")
            self.client.delete_object(Bucket=real_bucket, Key=self._marker(bucket))
            return
        try:
            self.client.delete_bucket(Bucket=real_bucket)
        except Exception as exc:
            raise self._error(exc, bucket) from None

    def bucket_exists(self, bucket: str) -> bool:
        try:
            real_bucket, base = self._base(bucket)
        except StoreError:
            return False
        try:
            if base:
                self.client.head_object(Bucket=real_bucket, Key=self._marker(bucket))
            else:
                self.client.head_bucket(Bucket=real_bucket)
            return True
        except Exception as exc:
            error = self._error(exc, bucket, self._marker(bucket) if base else None)
            if isinstance(error, NoSuchBucket | NoSuchKey):
                return False
            raise error from None

    def list_buckets(self) -> list[BucketInfo]:
        if not self.root_bucket:
            response = self.client.list_buckets()
            return [BucketInfo(b["Name"], b["CreationDate"]) for b in response.get("Buckets", [])]
        buckets = []
        markers = f"{self.prefix}{BUCKET_MARKERS}/"
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.root_bucket, Prefix=markers):
                for item in page.get("Contents", []):
                    buckets.append(BucketInfo(item["Key"][len(markers) :], item["LastModified"]))
        except Exception as exc:
            raise self._error(exc, self.root_bucket or "") from None
        return sorted(buckets, key=lambda b: b.name)

    # -- objects -------------------------------------------------------------------------------
    def put_object(
        self,
        bucket: str,
        key: str,
        data: bytes | BinaryIO,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        defer_etag: bool = False,  # S3 computes its own ETag; accepted for the protocol
        etag: str | None = None,  # likewise: a single PUT gets S3's own (MD5) ETag
    ) -> ObjectInfo:
        real_bucket, real_key = self._loc(bucket, key)
        if self.root_bucket:
            self._require_bucket(bucket)
        body = bytes(data) if isinstance(data, bytes | bytearray | memoryview) else data.read()
        ctype = content_type or guess_content_type(key)
        try:
            response = self.client.put_object(
                Bucket=real_bucket,
                Key=real_key,
                Body=body,
                ContentType=ctype,
                Metadata=dict(metadata or {}),
                **_header_params(headers),
            )
        except Exception as exc:
            raise self._error(exc, bucket, key) from None
        return ObjectInfo(
            bucket,
            key,
            len(body),
            _etag(response.get("ETag")),
            datetime.now(UTC),
            ctype,
            dict(metadata or {}),
            standard_headers(headers),
        )

    def get_object(self, bucket: str, key: str, *, byte_range: tuple[int, int | None] | None = None) -> bytes:
        real_bucket, real_key = self._loc(bucket, key)
        extra = {}
        if byte_range is not None:
            start, end = byte_range
            if end is not None and end < start:
                raise InvalidRange(f"range {start}-{end} is not satisfiable")
            extra["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            response = self.client.get_object(Bucket=real_bucket, Key=real_key, **extra)
        except Exception as exc:
            raise self._key_error(exc, bucket, key) from None
        with response["Body"] as body:
            return body.read()

    def open_object(self, bucket: str, key: str) -> BinaryIO:
        real_bucket, real_key = self._loc(bucket, key)
        try:
            response = self.client.get_object(Bucket=real_bucket, Key=real_key)
        except Exception as exc:
            raise self._key_error(exc, bucket, key) from None
        return io.BufferedReader(_Body(response["Body"]))  # type: ignore[return-value]

    def head_object(self, bucket: str, key: str) -> ObjectInfo:
        real_bucket, real_key = self._loc(bucket, key)
        try:
            head = self.client.head_object(Bucket=real_bucket, Key=real_key)
        except Exception as exc:
            raise self._key_error(exc, bucket, key) from None
        return ObjectInfo(
            bucket,
            key,
            int(head["ContentLength"]),
            _etag(head.get("ETag")),
            head["LastModified"],
            head.get("ContentType") or guess_content_type(key),
            dict(head.get("Metadata") or {}),
            _headers_of(head),
        )

    def list_objects(
        self,
        bucket: str,
        prefix: str = "",
        *,
        delimiter: str | None = None,
        max_keys: int = 1000,
        continuation_token: str | None = None,
        start_after: str | None = None,
    ) -> ListResult:
        real_bucket, base = self._base(bucket)
        if base:
            self._require_bucket(bucket)
        if max_keys <= 0:
            return ListResult([], [], False, None, 0)
        args: dict[str, Any] = {"Bucket": real_bucket, "Prefix": base + prefix, "MaxKeys": max_keys}
        if delimiter:
            args["Delimiter"] = delimiter
        if continuation_token:
            args["ContinuationToken"] = continuation_token
        if start_after:
            args["StartAfter"] = base + start_after
        try:
            page = self.client.list_objects_v2(**args)
        except Exception as exc:
            raise self._error(exc, bucket) from None
        objects = [
            ObjectInfo(
                bucket,
                item["Key"][len(base) :],
                int(item["Size"]),
                _etag(item.get("ETag")),
                item["LastModified"],
                guess_content_type(item["Key"]),
            )
            for item in page.get("Contents", [])
        ]
        prefixes = [p["Prefix"][len(base) :] for p in page.get("CommonPrefixes", [])]
        truncated = bool(page.get("IsTruncated"))
        token = page.get("NextContinuationToken") if truncated else None
        return ListResult(objects, prefixes, truncated, token, len(objects) + len(prefixes))

    def iter_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        token = None
        while True:
            page = self.list_objects(bucket, prefix, continuation_token=token)
            yield from page.objects
            if not page.is_truncated or not page.next_continuation_token:
                return
            token = page.next_continuation_token

    def delete_object(self, bucket: str, key: str) -> None:
        real_bucket, real_key = self._loc(bucket, key)
        if self.root_bucket:
            self._require_bucket(bucket)
        try:
            self.client.delete_object(Bucket=real_bucket, Key=real_key)
        except Exception as exc:
            raise self._error(exc, bucket, key) from None

    def copy_object(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str) -> ObjectInfo:
        real_src_bucket, real_src_key = self._loc(src_bucket, src_key)
        real_dst_bucket, real_dst_key = self._loc(dst_bucket, dst_key)
        if self.root_bucket:
            self._require_bucket(dst_bucket)
        try:
            self.client.copy_object(
                CopySource={"Bucket": real_src_bucket, "Key": real_src_key},
                Bucket=real_dst_bucket,
                Key=real_dst_key,
            )
        except Exception as exc:
            raise self._error(exc, src_bucket, src_key) from None
        return self.head_object(dst_bucket, dst_key)
