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

Checksums and multipart objects are carried by S3 itself, so the methods take the local store's arguments
(same signatures as :class:`~sconeflow.store.LocalStore`):

- ``put_object(checksum=...)``: a FULL_OBJECT CRC32, CRC32C, CRC64NVME, SHA1 or SHA256 checksum goes to
  S3 as the matching ``Checksum*`` value (with ``ChecksumAlgorithm``), and S3 verifies it (``BadDigest``
  becomes a :class:`~sconeflow.store.StoreError`). A COMPOSITE checksum cannot be given to a single PUT:
  it is only carried by a multipart object (below); otherwise it is dropped.
- ``put_object(part_sizes=...)``: when the sizes add up to the object's size and every part but the last
  is at least S3's 5 MiB minimum, the object is written as a real multipart upload with exactly those
  parts, so S3 gives it the same ``<md5 of the part MD5s>-N`` ETag and the same part boundaries
  (GetObject/HeadObject ``PartNumber``) the client of a multipart upload saw; with a checksum, the upload
  is created with its algorithm and type (COMPOSITE: each part's checksum is sent, S3 composes them;
  FULL_OBJECT: the whole object's value is given to CompleteMultipartUpload). Sizes S3 cannot carry (they
  do not add up, or a part is too small) are dropped and the object is one PUT, as the local store drops
  sizes that do not add up. ``etag=`` cannot be imposed on S3: the ETag is always S3's own (equal to the
  given one when it came from the same parts); ``defer_etag`` is accepted and changes nothing.
- ``head_object`` asks with ``ChecksumMode=ENABLED`` and fills ``ObjectInfo.checksum`` with the checksum
  S3 keeps (note that botocore sends a CRC32 with every PUT by default, and AWS adds a CRC64NVME to
  objects stored without one, so objects written without a checksum usually have one on S3); for an
  object with a multipart ETag it reads the part sizes (and part checksums) with GetObjectAttributes
  ``ObjectParts`` or, where that lists no parts (S3 lists them only for objects with a checksum), with
  one ``HeadObject PartNumber=n`` per part. Listings carry neither (S3's ListObjectsV2 has no values).
- ``open_object`` returns a seekable file: a seek re-opens the object at that offset with a ranged GET.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import zlib
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
    ObjectChecksum,
    ObjectInfo,
    StoreError,
    guess_content_type,
    standard_headers,
    validate_bucket_name,
    validate_key,
)

_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
BUCKET_MARKERS = ".buckets"  # namespaced layout: <prefix>.buckets/<bucket> marks a bucket
CHECKSUM_ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")  # S3's additional checksums
FULL_OBJECT_MULTIPART = ("CRC32", "CRC32C", "CRC64NVME")  # the ones S3 keeps whole for a multipart object
MIN_PART_BYTES = 5 * 1024 * 1024  # S3's minimum size of every part but the last
MAX_PARTS = 10_000
_MULTIPART_ETAG = re.compile(r"^[0-9a-fA-F]{32}-(\d+)$")


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
    """An object on S3 as a readable, seekable, closeable binary file: reads come from one GET's streaming
    body; a seek drops it, and the next read opens the object again from there (a ranged GET)."""

    def __init__(self, body: Any, size: int, reopen: Any) -> None:
        self._body: Any = body
        self._size = size
        self._pos = 0
        self._reopen = reopen  # start offset -> a new streaming body from there

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        target = base + offset
        if target < 0:
            raise ValueError(f"negative seek position {target}")
        if target != self._pos:
            self._drop()
            self._pos = target
        return self._pos

    def _drop(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def readinto(self, buffer: Any) -> int:
        if self._pos >= self._size or not len(buffer):
            return 0
        if self._body is None:
            self._body = self._reopen(self._pos)
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def close(self) -> None:
        try:
            self._drop()
        finally:
            super().close()


def _read_all(data: BinaryIO) -> bytes:
    """Everything ``data`` holds: read until it answers b"" (a stream's ``read()`` may return less than
    all, as the gateway's concatenation of multipart parts does: one part per call)."""
    chunks = []
    while chunk := data.read(1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _carried_part_sizes(part_sizes: list[int] | tuple[int, ...] | None, size: int) -> tuple[int, ...]:
    """The part sizes a real multipart upload of ``size`` bytes can have, or () when S3 cannot carry them
    (they do not add up, there are too many, or a part but the last is under S3's minimum)."""
    if not part_sizes:
        return ()
    sizes = tuple(int(n) for n in part_sizes)
    if sum(sizes) != size or len(sizes) > MAX_PARTS or any(n < 0 for n in sizes):
        return ()
    if any(n < MIN_PART_BYTES for n in sizes[:-1]):
        return ()
    return sizes


def _carried_checksum(checksum: ObjectChecksum | None, *, multipart: bool) -> ObjectChecksum | None:
    """The part of ``checksum`` S3 can carry: a FULL_OBJECT one of an algorithm it knows (for a multipart
    object only the CRCs), or a COMPOSITE one on a multipart object; None for anything else."""
    if checksum is None or checksum.algorithm not in CHECKSUM_ALGORITHMS:
        return None
    if checksum.type == "FULL_OBJECT":
        if multipart and checksum.algorithm not in FULL_OBJECT_MULTIPART:
            return None
        return ObjectChecksum(checksum.algorithm, checksum.value, "FULL_OBJECT")
    if checksum.type == "COMPOSITE" and multipart:
        return checksum
    return None


def _part_checksum(algorithm: str, data: bytes) -> str | None:
    """base64 ``algorithm`` checksum of ``data``; None for those the standard library cannot compute."""
    if algorithm == "CRC32":
        digest = zlib.crc32(data).to_bytes(4, "big")
    elif algorithm in ("SHA1", "SHA256"):
        digest = hashlib.new(algorithm.lower(), data).digest()
    else:
        return None
    return base64.b64encode(digest).decode("ascii")


def _part_checksums_available(checksum: ObjectChecksum, count: int) -> bool:
    """Whether each of ``count`` parts can be sent with its ``checksum.algorithm`` checksum: given, computed
    here, or by botocore (CRC32C and CRC64NVME need awscrt)."""
    if checksum.algorithm in ("CRC32", "SHA1", "SHA256") or (
        len(checksum.parts) == count and all(checksum.parts)
    ):
        return True
    from botocore.compat import HAS_CRT

    return bool(HAS_CRT)


def _checksum_of(head: dict[str, Any]) -> ObjectChecksum | None:
    """The checksum a HeadObject/GetObject response (``ChecksumMode=ENABLED``) carries, if any."""
    for algorithm in CHECKSUM_ALGORITHMS:
        value = head.get(f"Checksum{algorithm}")
        if value:
            kind = head.get("ChecksumType") or ("COMPOSITE" if "-" in value else "FULL_OBJECT")
            return ObjectChecksum(algorithm, value, kind)
    return None


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
        defer_etag: bool = False,
        etag: str | None = None,
        checksum: ObjectChecksum | None = None,
        part_sizes: list[int] | tuple[int, ...] | None = None,
    ) -> ObjectInfo:
        """Write an object (see the module for ``checksum`` and ``part_sizes``). ``defer_etag`` and
        ``etag`` are accepted for the local store's interface: S3 computes its own ETag, equal to a given
        multipart ``etag`` when the object is written with the same ``part_sizes``."""
        real_bucket, real_key = self._loc(bucket, key)
        if self.root_bucket:
            self._require_bucket(bucket)
        body = bytes(data) if isinstance(data, bytes | bytearray | memoryview) else _read_all(data)
        ctype = content_type or guess_content_type(key)
        common: dict[str, Any] = {
            "Bucket": real_bucket,
            "Key": real_key,
            "ContentType": ctype,
            "Metadata": dict(metadata or {}),
            **_header_params(headers),
        }
        sizes = _carried_part_sizes(part_sizes, len(body))
        kept = _carried_checksum(checksum, multipart=bool(sizes))
        if sizes and kept is not None and not _part_checksums_available(kept, len(sizes)):
            kept = None  # parts S3 must be given a CRC32C/CRC64NVME of, which only awscrt computes
        try:
            if sizes:
                new_etag = self._put_multipart(common, body, sizes, kept)
            else:
                if kept is not None:
                    common["ChecksumAlgorithm"] = kept.algorithm
                    common[f"Checksum{kept.algorithm}"] = kept.value
                new_etag = _etag(self.client.put_object(Body=body, **common).get("ETag"))
        except Exception as exc:
            raise self._error(exc, bucket, key) from None
        return ObjectInfo(
            bucket,
            key,
            len(body),
            new_etag,
            datetime.now(UTC),
            ctype,
            dict(metadata or {}),
            standard_headers(headers),
            kept,
            sizes,
        )

    def _put_multipart(
        self, common: dict[str, Any], body: bytes, sizes: tuple[int, ...], kept: ObjectChecksum | None
    ) -> str:
        """One multipart upload of ``body`` cut at ``sizes``; S3's ETag of the object. An upload that fails
        is aborted."""
        create = dict(common)
        if kept is not None:
            create["ChecksumAlgorithm"] = kept.algorithm
            create["ChecksumType"] = kept.type
        upload_id = self.client.create_multipart_upload(**create)["UploadId"]
        where = {"Bucket": common["Bucket"], "Key": common["Key"], "UploadId": upload_id}
        try:
            done = []
            view, offset = memoryview(body), 0
            for number, size in enumerate(sizes, start=1):
                chunk = bytes(view[offset : offset + size])
                offset += size
                args: dict[str, Any] = {}
                entry: dict[str, Any] = {"PartNumber": number}
                if kept is not None:
                    given = kept.parts[number - 1] if len(kept.parts) >= number else None
                    value = given or _part_checksum(kept.algorithm, chunk)
                    if value:
                        args[f"Checksum{kept.algorithm}"] = entry[f"Checksum{kept.algorithm}"] = value
                    else:  # CRC32C/CRC64NVME not given: botocore computes it (it needs awscrt for that)
                        args["ChecksumAlgorithm"] = kept.algorithm
                response = self.client.upload_part(Body=chunk, PartNumber=number, **where, **args)
                entry["ETag"] = response["ETag"]
                if kept is not None and response.get(f"Checksum{kept.algorithm}"):
                    entry[f"Checksum{kept.algorithm}"] = response[f"Checksum{kept.algorithm}"]
                done.append(entry)
            complete: dict[str, Any] = {}
            if kept is not None and kept.type == "FULL_OBJECT":
                complete = {f"Checksum{kept.algorithm}": kept.value, "ChecksumType": "FULL_OBJECT"}
            response = self.client.complete_multipart_upload(
                MultipartUpload={"Parts": done}, **where, **complete
            )
        except BaseException:
            try:
                self.client.abort_multipart_upload(**where)
            except Exception:  # the original error is the one to report
                pass
            raise
        return _etag(response.get("ETag"))

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
        """The object as a seekable binary file (a seek re-opens it there with a ranged GET)."""
        real_bucket, real_key = self._loc(bucket, key)
        try:
            response = self.client.get_object(Bucket=real_bucket, Key=real_key)
        except Exception as exc:
            raise self._key_error(exc, bucket, key) from None
        etag = response.get("ETag")

        def reopen(start: int) -> Any:
            # If-Match: bytes from the very object opened, never from one written over it since.
            args = {"IfMatch": etag} if etag else {}
            try:
                again = self.client.get_object(
                    Bucket=real_bucket, Key=real_key, Range=f"bytes={start}-", **args
                )
            except Exception as exc:
                raise self._key_error(exc, bucket, key) from None
            return again["Body"]

        raw = _Body(response["Body"], int(response.get("ContentLength") or 0), reopen)
        return io.BufferedReader(raw)  # type: ignore[return-value]

    def head_object(self, bucket: str, key: str) -> ObjectInfo:
        """The object's info, with the checksum S3 keeps (``ChecksumMode=ENABLED``) and, for a multipart
        object, its part sizes (see the module)."""
        real_bucket, real_key = self._loc(bucket, key)
        try:
            head = self.client.head_object(Bucket=real_bucket, Key=real_key, ChecksumMode="ENABLED")
        except Exception as exc:
            raise self._key_error(exc, bucket, key) from None
        size = int(head["ContentLength"])
        etag = _etag(head.get("ETag"))
        checksum = _checksum_of(head)
        sizes: tuple[int, ...] = ()
        match = _MULTIPART_ETAG.match(etag)
        if match:
            try:
                sizes, part_checksums = self._parts(real_bucket, real_key, int(match.group(1)), checksum)
            except Exception as exc:
                raise self._key_error(exc, bucket, key) from None
            if sum(sizes) != size:
                sizes, part_checksums = (), ()
            if checksum is not None and checksum.type == "COMPOSITE":
                value = checksum.value
                if sizes and "-" not in value:  # (moto leaves the "-N" off; S3 answers it)
                    value = f"{value}-{len(sizes)}"
                parts = part_checksums if any(part_checksums) else ()
                checksum = ObjectChecksum(checksum.algorithm, value, "COMPOSITE", parts)
        return ObjectInfo(
            bucket,
            key,
            size,
            etag,
            head["LastModified"],
            head.get("ContentType") or guess_content_type(key),
            dict(head.get("Metadata") or {}),
            _headers_of(head),
            checksum,
            sizes,
        )

    def _parts(
        self, real_bucket: str, real_key: str, count: int, checksum: ObjectChecksum | None
    ) -> tuple[tuple[int, ...], tuple[str | None, ...]]:
        """A multipart object's part sizes and (of the object's checksum algorithm) part checksums:
        GetObjectAttributes ObjectParts, else (no parts listed) HeadObject with each PartNumber."""
        algorithm = checksum.algorithm if checksum is not None else None
        sizes: list[int] = []
        sums: list[str | None] = []
        marker = 0
        while True:
            args: dict[str, Any] = {"MaxParts": 1000}
            if marker:
                args["PartNumberMarker"] = marker
            try:
                attrs = self.client.get_object_attributes(
                    Bucket=real_bucket, Key=real_key, ObjectAttributes=["ObjectParts"], **args
                )
            except Exception as exc:
                if _code(exc) in _NOT_FOUND:
                    raise
                break  # an endpoint without GetObjectAttributes: ask each part
            listing = attrs.get("ObjectParts") or {}
            found = listing.get("Parts") or []
            if not found:
                break
            for part in found:
                sizes.append(int(part["Size"]))
                sums.append(part.get(f"Checksum{algorithm}") if algorithm else None)
            if not listing.get("IsTruncated"):
                break
            marker = int(listing.get("NextPartNumberMarker") or 0)
            if not marker:
                break
        if len(sizes) == count:
            return tuple(sizes), tuple(sums)
        sizes, sums = [], []
        for number in range(1, min(count, MAX_PARTS) + 1):
            head = self.client.head_object(
                Bucket=real_bucket, Key=real_key, PartNumber=number, ChecksumMode="ENABLED"
            )
            sizes.append(int(head["ContentLength"]))
            sums.append(head.get(f"Checksum{algorithm}") if algorithm else None)
        return tuple(sizes), tuple(sums)

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
