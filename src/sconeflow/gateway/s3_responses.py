"""The S3 REST/XML wire layer (path-style) over an :class:`~sconeflow.store.ObjectStore`.

Operations: ListBuckets, CreateBucket, DeleteBucket, HeadBucket, GetBucketLocation, PutObject,
GetObject (with Range), HeadObject, DeleteObject, DeleteObjects, CopyObject, ListObjectsV2, ListObjects,
multipart uploads (Create, UploadPart, UploadPartCopy, Complete, Abort, ListParts,
ListMultipartUploads), GetObject/HeadObject of one part (``partNumber``) and browser-based uploads (POST
Object: an HTML form's multipart/form-data with a POST policy). A request naming any other operation
through a query sub-resource (``?tagging``, ``?acl``, ``?policy``, ``?versioning``, ...) answers 501
NotImplemented and touches nothing.
Errors are S3's XML error documents with S3's codes and statuses; HEAD errors carry no body, as on S3.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
import uuid
import zlib
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import BinaryIO
from urllib.parse import quote, unquote, urlencode, urlsplit
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from sconeflow.config import Settings
from sconeflow.gateway.s3_errors import S3Error
from sconeflow.gateway.s3_multipart import (
    HASHERS,
    CompletedPart,
    MultipartError,
    MultipartUploads,
    ObjectParts,
    Upload,
    checksum_of,
    keeps_checksums,
)
from sconeflow.gateway.s3_post import MAX_POST_BYTES, check_post_policy, parse_form_data
from sconeflow.gateway.wire import WireRequest, WireResponse
from sconeflow.store import (
    STANDARD_HEADERS,
    BucketAlreadyExists,
    BucketNotEmpty,
    InvalidBucketName,
    InvalidKey,
    InvalidRange,
    KeyConflict,
    NoSuchBucket,
    NoSuchKey,
    ObjectChecksum,
    ObjectInfo,
    ObjectStore,
    StoreError,
    common_prefix,
)

XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"
XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
OWNER_ID = "75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a"
MAX_KEYS = 1000
MAX_PARTS = 1000  # ListParts' default and largest page
MAX_UPLOADS = 1000  # ListMultipartUploads' default and largest page
MAX_INT = 2_147_483_647
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
_COPY_RANGE_RE = re.compile(r"^bytes=(\d+)-(\d+)$")
_OWNER = f"<ID>{OWNER_ID}</ID><DisplayName>sconeflow</DisplayName>"
# Query sub-resources that name another S3 operation (PutObjectTagging, GetBucketPolicy, ...). None is
# implemented; answering them as the plain object or bucket call would overwrite an object with a
# Tagging document, delete the object on DeleteObjectTagging or the bucket on DeleteBucketPolicy.
_CONDITIONAL_WRITES = threading.Lock()
UNSUPPORTED_SUBRESOURCES = frozenset(
    {
        "accelerate", "acl", "analytics", "attributes", "cors", "encryption", "intelligent-tiering",
        "inventory", "legal-hold", "lifecycle", "logging", "metrics", "notification", "object-lock",
        "ownershipControls", "policy", "policyStatus", "publicAccessBlock", "replication",
        "requestPayment", "restore", "retention", "select", "session", "tagging", "torrent",
        "versioning", "versions", "website",
    }
)  # fmt: skip


def _content_type(request: WireRequest) -> str:
    """The Content-Type to store: the request's, else S3's default. Unlike ``sconeflow store cp`` (and the
    AWS CLI, which guess from the file name before sending), S3 never guesses from the key."""
    return request.header("content-type") or "binary/octet-stream"


def _stored_headers(request: WireRequest) -> dict[str, str]:
    """The standard headers S3 keeps with an object (Cache-Control, Content-Disposition, ...). The
    ``aws-chunked`` transfer coding is not part of the object's Content-Encoding."""
    headers = {name: request.header(name) or "" for name in STANDARD_HEADERS}
    codings = [c.strip() for c in headers["Content-Encoding"].split(",") if c.strip()]
    headers["Content-Encoding"] = ",".join(c for c in codings if c.lower() != "aws-chunked")
    return {name: value for name, value in headers.items() if value}


# GetObject's response-* query parameters override these response headers (presigned downloads use them).
RESPONSE_OVERRIDES = {
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
    "response-content-language": "Content-Language",
    "response-content-type": "Content-Type",
    "response-expires": "Expires",
}


def not_implemented(what: str) -> S3Error:
    """S3's 501 for a request naming an operation this gateway does not have; nothing is touched."""
    return S3Error(
        "NotImplemented",
        f"A header or query you provided implies functionality that is not implemented: {what} is not "
        "supported by the sconeflow gateway",
        501,
    )


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def _http_date(ts: datetime) -> str:
    # astimezone: a time from boto3 (the s3:// store) carries dateutil's tzutc, which usegmt refuses
    return format_datetime(ts.astimezone(UTC).replace(microsecond=0), usegmt=True)


def _http_date_or_none(value: str | None) -> datetime | None:
    """An HTTP date header as an aware datetime; None when absent or unparsable (RFC 7232: ignore it)."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _etag_listed(etag: str, header: str) -> bool:
    return header.strip() == "*" or etag in [t.strip() for t in header.split(",")]


def failed_precondition(
    info: ObjectInfo,
    *,
    if_match: str | None,
    if_none_match: str | None,
    if_modified_since: str | None,
    if_unmodified_since: str | None,
) -> tuple[int, str] | None:
    """S3's conditional-request rules for an existing object: ``(412, header)`` or ``(304, header)``
    when a condition fails, else None. A true If-Match overrides If-Unmodified-Since, and If-None-Match
    overrides If-Modified-Since (GetObject reference); dates compare to the second."""
    etag = f'"{info.etag}"'
    modified = info.last_modified.replace(microsecond=0)
    if if_match:
        if not _etag_listed(etag, if_match):
            return 412, "If-Match"
    elif (since := _http_date_or_none(if_unmodified_since)) is not None and modified > since:
        return 412, "If-Unmodified-Since"
    if if_none_match:
        if _etag_listed(etag, if_none_match):
            return 304, "If-None-Match"
    elif (since := _http_date_or_none(if_modified_since)) is not None and modified <= since:
        return 304, "If-Modified-Since"
    return None


def precondition_failed(condition: str) -> S3Error:
    return S3Error(
        "PreconditionFailed",
        "At least one of the pre-conditions you specified did not hold",
        412,
        Condition=condition,
    )


def _xml(body: str, status: int = 200, headers: dict[str, str] | None = None) -> WireResponse:
    return WireResponse(
        status, {"Content-Type": "application/xml", **(headers or {})}, (XML_HEAD + body).encode()
    )


def _e(text: str) -> str:
    return escape(text)


def _host_id() -> str:
    return base64.b64encode(uuid.uuid4().bytes + uuid.uuid4().bytes).decode()


def error_response(error: S3Error, request: WireRequest) -> WireResponse:
    """S3's error document (``Code``, ``Message``, the error's own fields, ``RequestId``, ``HostId``)."""
    request_id = uuid.uuid4().hex[:16].upper()
    host_id = _host_id()
    headers = {"x-amz-request-id": request_id, "x-amz-id-2": host_id}
    if error.status == 416 and "size" in error.extra:
        headers["Content-Range"] = f"bytes */{error.extra['size']}"
    if request.method == "HEAD":
        return WireResponse(error.status, headers, b"")
    extra = "".join(f"<{k}>{_e(v)}</{k}>" for k, v in error.extra.items() if k != "size")
    body = (
        f"<Error><Code>{error.code}</Code><Message>{_e(error.message)}</Message>{extra}"
        f"<RequestId>{request_id}</RequestId><HostId>{host_id}</HostId></Error>"
    )
    return _xml(body, error.status, headers)


def entity_too_large(request: WireRequest, limit: int) -> WireResponse:
    """S3's EntityTooLarge for a body over the gateway's in-memory ``limit``; multipart has no such cap."""
    proposed = request.header("content-length") or "unknown"
    error = S3Error(
        "EntityTooLarge",
        f"Your proposed upload exceeds the maximum allowed size: this local gateway takes at most {limit} "
        "bytes in one request; upload larger objects with multipart (boto3's upload_file, aws s3 cp)",
        400,
        ProposedSize=proposed,
        MaxSizeAllowed=str(limit),
    )
    return error_response(error, request)


def _int_argument(request: WireRequest, name: str, default: int) -> int:
    """A non-negative integer query argument (``max-parts``, ``part-number-marker``, ``max-uploads``), with
    S3's InvalidArgument for anything else."""
    value = request.query_one(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number > MAX_INT or number < -MAX_INT - 1:
        raise S3Error(
            "InvalidArgument",
            f"Provided {name} not an integer or within integer range",
            400,
            ArgumentName=name,
            ArgumentValue=value,
        )
    if number < 0:
        raise S3Error(
            "InvalidArgument",
            f"Argument {name} must be an integer between 0 and {MAX_INT}",
            400,
            ArgumentName=name,
            ArgumentValue=value,
        )
    return number


def _part_number(request: WireRequest) -> int:
    value = request.query_one("partNumber") or ""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= 10_000:
        raise S3Error(
            "InvalidArgument",
            "Part number must be an integer between 1 and 10000, inclusive",
            400,
            ArgumentName="partNumber",
            ArgumentValue=value,
        )
    return number


def _checksum_algorithm(upload: Upload) -> str:
    algorithm = upload.checksum_algorithm
    return f"<ChecksumAlgorithm>{_e(algorithm)}</ChecksumAlgorithm>" if algorithm else ""


def _translate(exc: StoreError, bucket: str, key: str | None) -> S3Error:
    if isinstance(exc, NoSuchBucket):
        return S3Error("NoSuchBucket", "The specified bucket does not exist", 404, BucketName=bucket)
    if isinstance(exc, NoSuchKey):
        return S3Error("NoSuchKey", "The specified key does not exist.", 404, Key=key or "")
    if isinstance(exc, BucketAlreadyExists):
        return S3Error(
            "BucketAlreadyOwnedByYou",
            "Your previous request to create the named bucket succeeded and you already own it.",
            409,
            BucketName=bucket,
        )
    if isinstance(exc, BucketNotEmpty):
        return S3Error(
            "BucketNotEmpty", "The bucket you tried to delete is not empty", 409, BucketName=bucket
        )
    if isinstance(exc, InvalidBucketName):
        return S3Error("InvalidBucketName", "The specified bucket is not valid.", 400, BucketName=bucket)
    if isinstance(exc, InvalidKey):
        if "bytes; S3 allows" in str(exc):
            return S3Error("KeyTooLongError", "Your key is too long", 400)
        return S3Error("InvalidArgument", str(exc), 400, ArgumentName="key", ArgumentValue=key or "")
    if isinstance(exc, KeyConflict):
        return S3Error("InvalidArgument", str(exc), 400, ArgumentName="key", ArgumentValue=key or "")
    if isinstance(exc, InvalidRange):
        return S3Error("InvalidRange", "The requested range is not satisfiable", 416)
    return S3Error("InternalError", f"We encountered an internal error. Please try again. ({exc})", 500)


def decode_aws_chunked(body: bytes) -> tuple[bytes, dict[str, str]]:
    """Undo ``Content-Encoding: aws-chunked`` (signed or unsigned chunks); also return the trailers
    (e.g. ``x-amz-checksum-crc32``, which boto3 sends after the data), names lower-cased."""
    out = bytearray()
    pos = 0
    while True:
        eol = body.find(b"\r\n", pos)
        if eol < 0:
            raise S3Error("IncompleteBody", "The aws-chunked body ended early", 400)
        try:
            size = int(body[pos:eol].split(b";", 1)[0], 16)
        except ValueError:
            raise S3Error("IncompleteBody", "The aws-chunked body has a malformed chunk size", 400) from None
        pos = eol + 2
        if size == 0:
            trailers = {}
            for line in body[pos:].decode("latin-1").split("\r\n"):
                name, sep, value = line.partition(":")
                if sep:
                    trailers[name.strip().lower()] = value.strip()
            return bytes(out), trailers
        out += body[pos : pos + size]
        pos += size + 2


# The additional checksums S3 verifies that the standard library can compute (CRC32C and CRC64NVME need
# a native library; they are accepted unverified).
_CHECKSUMS = {
    "crc32": ("CRC32", lambda data: zlib.crc32(data).to_bytes(4, "big")),
    "sha1": ("SHA1", lambda data: hashlib.sha1(data, usedforsecurity=False).digest()),
    "sha256": ("SHA256", lambda data: hashlib.sha256(data).digest()),
}


# ``x-amz-checksum-*`` headers that name a setting, not a checksum value.
_CHECKSUM_SETTINGS = frozenset({"x-amz-checksum-algorithm", "x-amz-checksum-type", "x-amz-checksum-mode"})


def _checksum_names(checksums: dict[str, str]) -> dict[str, str]:
    """``{"x-amz-checksum-crc32": v}`` as S3's XML names them: ``{"ChecksumCRC32": v}``."""
    return {"Checksum" + name[len("x-amz-checksum-") :].upper(): value for name, value in checksums.items()}


# S3's additional checksum algorithms, by the lower-case name their ``x-amz-checksum-<name>`` header uses.
CHECKSUM_ALGORITHMS = {
    "crc32": "CRC32",
    "crc32c": "CRC32C",
    "crc64nvme": "CRC64NVME",
    "sha1": "SHA1",
    "sha256": "SHA256",
}


def object_checksum(given: dict[str, str]) -> ObjectChecksum | None:
    """The checksum S3 keeps with an object from the (verified) ``x-amz-checksum-<algorithm>`` values of a
    PutObject or POST Object: FULL_OBJECT, of the one algorithm given (the first, in S3's order, if more)."""
    for name, algorithm in CHECKSUM_ALGORITHMS.items():
        value = given.get(f"x-amz-checksum-{name}")
        if value:
            return ObjectChecksum(algorithm, value.strip())
    return None


def checksum_headers(checksum: ObjectChecksum | None) -> dict[str, str]:
    """``x-amz-checksum-<algorithm>`` and ``x-amz-checksum-type`` for ``checksum`` (none for None)."""
    if checksum is None:
        return {}
    return {
        f"x-amz-checksum-{checksum.algorithm.lower()}": checksum.value,
        "x-amz-checksum-type": checksum.type,
    }


def verify_digests(body: bytes, given: dict[str, str]) -> None:
    """Content-MD5 and ``x-amz-checksum-*`` values (headers or aws-chunked trailers) against ``body``:
    S3's InvalidDigest for a value that is not base64 of the right length, BadDigest for a mismatch."""
    md5 = given.get("content-md5")
    if md5:
        try:
            valid = len(base64.b64decode(md5, validate=True)) == 16
        except ValueError:
            valid = False
        if not valid:
            raise S3Error("InvalidDigest", "The Content-MD5 you specified is not valid.", 400)
        if base64.b64decode(md5) != hashlib.md5(body, usedforsecurity=False).digest():
            raise S3Error("BadDigest", "The Content-MD5 you specified did not match what we received.", 400)
    for algorithm, (name, digest) in _CHECKSUMS.items():
        value = given.get(f"x-amz-checksum-{algorithm}")
        if value and value != base64.b64encode(digest(body)).decode():
            raise S3Error(
                "BadDigest", f"The {name} you specified did not match the calculated checksum.", 400
            )


class S3Handler:
    """Stateless: every request goes straight to the store."""

    def __init__(self, settings: Settings, store: ObjectStore) -> None:
        self.settings = settings
        self.store = store
        self._uploads().sweep_legacy()  # records of an older sconeflow that describe no object now

    def handle(self, request: WireRequest) -> WireResponse:
        path = request.path.lstrip("/")
        bucket, _, key = path.partition("/")
        try:
            response = self._dispatch(request, bucket, key)
        except S3Error as error:
            return error_response(error, request)
        except StoreError as exc:
            return error_response(_translate(exc, bucket, key or None), request)
        response.headers.setdefault("x-amz-request-id", uuid.uuid4().hex[:16].upper())
        return response

    def _dispatch(self, request: WireRequest, bucket: str, key: str) -> WireResponse:
        method = request.method
        if not bucket:
            if method == "GET":
                return self.list_buckets()
            raise S3Error(
                "MethodNotAllowed", "The specified method is not allowed against this resource.", 405
            )
        asked = sorted(UNSUPPORTED_SUBRESOURCES.intersection(request.query))
        if asked:
            raise not_implemented(f"the ?{asked[0]} sub-resource")
        if request.query_one("versionId") not in (None, "null"):  # no versioning: only the null version
            raise not_implemented("object versions (?versionId)")
        if not key:
            if "uploads" in request.query:
                if method == "GET":
                    return self.list_multipart_uploads(request, bucket)
                raise S3Error(
                    "MethodNotAllowed", "The specified method is not allowed against this resource.", 405
                )
            if method == "PUT":
                return self.create_bucket(bucket)
            if method == "DELETE":
                self.store.delete_bucket(bucket)
                return WireResponse(204)
            if method == "HEAD":
                if not self.store.bucket_exists(bucket):
                    raise NoSuchBucket(bucket)
                return WireResponse(200, {"x-amz-bucket-region": self.settings.region})
            if method == "GET":
                if "location" in request.query:
                    return self.bucket_location(bucket)
                if request.query_one("list-type") == "2":
                    return self.list_objects(request, bucket, v2=True)
                return self.list_objects(request, bucket, v2=False)
            if method == "POST" and "delete" in request.query:
                return self.delete_objects(request, bucket)
            if method == "POST" and not request.query:
                return self.post_object(request, bucket)
            raise S3Error(
                "MethodNotAllowed", "The specified method is not allowed against this resource.", 405
            )
        upload_id = request.query_one("uploadId")
        if method == "POST" and "uploads" in request.query:
            return self.create_multipart_upload(request, bucket, key)
        if upload_id is not None:
            return self.multipart(request, bucket, key, upload_id)
        if method == "PUT":
            if request.header("x-amz-copy-source"):
                return self.copy_object(request, bucket, key)
            return self.put_object(request, bucket, key)
        if method in ("GET", "HEAD"):
            return self.get_object(request, bucket, key, head=method == "HEAD")
        if method == "DELETE":
            self.store.delete_object(bucket, key)
            return WireResponse(204)
        raise S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.", 405)

    # -- multipart uploads -----------------------------------------------------------------------
    def _uploads(self) -> MultipartUploads:
        return MultipartUploads(self.settings.cache_dir / "s3-multipart", self.store)

    def create_multipart_upload(self, request: WireRequest, bucket: str, key: str) -> WireResponse:
        algorithm = (request.header("x-amz-checksum-algorithm") or "").upper() or None
        checksum_type = (request.header("x-amz-checksum-type") or "").upper() or None
        upload = self._uploads().create(
            bucket,
            key,
            _content_type(request),
            self._metadata(request),
            _stored_headers(request),
            checksum_algorithm=algorithm,
            checksum_type=checksum_type if algorithm else None,
        )
        headers = {}
        if algorithm:
            headers["x-amz-checksum-algorithm"] = algorithm
            if checksum_type:
                headers["x-amz-checksum-type"] = checksum_type
        return _xml(
            f'<InitiateMultipartUploadResult xmlns="{XMLNS}"><Bucket>{_e(bucket)}</Bucket>'
            f"<Key>{_e(key)}</Key><UploadId>{upload.upload_id}</UploadId></InitiateMultipartUploadResult>",
            headers=headers,
        )

    def multipart(self, request: WireRequest, bucket: str, key: str, upload_id: str) -> WireResponse:
        uploads = self._uploads()
        try:
            if request.method == "GET":  # ListParts: its arguments are checked before the upload
                marker = _int_argument(request, "part-number-marker", 0)
                max_parts = _int_argument(request, "max-parts", MAX_PARTS)
                return self.list_parts(uploads.get(upload_id, bucket, key), marker, max_parts)
            upload = uploads.get(upload_id, bucket, key)
            if request.method == "PUT" and request.header("x-amz-copy-source"):
                return self.upload_part_copy(request, uploads, upload)
            if request.method == "PUT":
                body, checksums = self._body(request)
                etag = uploads.put_part(upload, _part_number(request), body, _checksum_names(checksums))
                return WireResponse(200, {"ETag": f'"{etag}"', **checksums})
            if request.method == "DELETE":
                uploads.abort(upload)
                return WireResponse(204)
            if request.method == "POST":
                algorithm = (upload.checksum_algorithm or "").lower()
                full = request.header(f"x-amz-checksum-{algorithm}") if algorithm else None
                info, record = uploads.complete(upload, self._completed_parts(request.body), full)
                checksum = ""
                if record.checksum:
                    name = f"Checksum{record.checksum_algorithm}"
                    checksum = f"<{name}>{_e(record.checksum)}</{name}>"
                    checksum += f"<ChecksumType>{record.checksum_type}</ChecksumType>"
                return _xml(
                    f'<CompleteMultipartUploadResult xmlns="{XMLNS}">'
                    f"<Location>/{_e(bucket)}/{_e(key)}</Location>"
                    f"<Bucket>{_e(bucket)}</Bucket><Key>{_e(key)}</Key><ETag>&quot;{info.etag}&quot;</ETag>"
                    f"{checksum}</CompleteMultipartUploadResult>"
                )
        except MultipartError as exc:
            extra = {"UploadId": upload_id} if exc.code == "NoSuchUpload" else {}
            raise S3Error(exc.code, exc.message, exc.status, **extra) from None
        raise S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.", 405)

    def list_parts(self, upload: Upload, marker: int, max_parts: int) -> WireResponse:
        max_parts = min(max_parts, MAX_PARTS)
        if max_parts == 0:
            parts, truncated = [], False
        else:
            parts, truncated = self._uploads().list_parts(upload, marker, max_parts)
        body = [
            f'<ListPartsResult xmlns="{XMLNS}"><Bucket>{_e(upload.bucket)}</Bucket>'
            f"<Key>{_e(upload.key)}</Key><UploadId>{upload.upload_id}</UploadId>"
            f"<PartNumberMarker>{marker}</PartNumberMarker>"
            f"<NextPartNumberMarker>{parts[-1].number if parts else 0}</NextPartNumberMarker>"
            f"<MaxParts>{max_parts}</MaxParts><IsTruncated>{'true' if truncated else 'false'}</IsTruncated>"
        ]
        body.extend(
            f"<Part><PartNumber>{part.number}</PartNumber>"
            f"<LastModified>{_iso(part.last_modified)}</LastModified>"
            f"<ETag>&quot;{part.etag}&quot;</ETag><Size>{part.size}</Size>"
            + "".join(f"<{name}>{_e(value)}</{name}>" for name, value in sorted(part.checksums.items()))
            + "</Part>"
            for part in parts
        )
        body.append(
            f"<Initiator>{_OWNER}</Initiator><Owner>{_OWNER}</Owner><StorageClass>STANDARD</StorageClass>"
            + _checksum_algorithm(upload)
            + "</ListPartsResult>"
        )
        return _xml("".join(body))

    def upload_part_copy(
        self, request: WireRequest, uploads: MultipartUploads, upload: Upload
    ) -> WireResponse:
        """UploadPartCopy: a part from (a byte range of) an existing object."""
        number = _part_number(request)
        src_bucket, src_key, source = self._copy_source(request)
        if source is None:
            try:
                source = self.store.head_object(src_bucket, src_key)
            except NoSuchKey:
                raise S3Error("NoSuchKey", "The specified key does not exist.", 404, Key=src_key) from None
        copy_range = request.header("x-amz-copy-source-range")
        byte_range = None
        if copy_range:
            match = _COPY_RANGE_RE.match(copy_range.strip())
            if not match:
                raise S3Error(
                    "InvalidArgument",
                    "The x-amz-copy-source-range value must be of the form bytes=first-last where first and "
                    "last are the zero-based offsets of the first and last bytes to copy",
                    400,
                    ArgumentName="x-amz-copy-source-range",
                    ArgumentValue=copy_range,
                )
            byte_range = (int(match.group(1)), int(match.group(2)))
            if byte_range[1] < byte_range[0] or byte_range[1] >= source.size:
                raise S3Error(
                    "InvalidArgument",
                    f"Range specified is not valid for source object of size: {source.size}",
                    400,
                    ArgumentName="x-amz-copy-source-range",
                    ArgumentValue=copy_range,
                )
        try:
            data = self.store.get_object(src_bucket, src_key, byte_range=byte_range)
        except NoSuchKey:
            raise S3Error("NoSuchKey", "The specified key does not exist.", 404, Key=src_key) from None
        # S3 gives a copied part the checksum the upload was created with, as an uploaded part brings one.
        algorithm = upload.checksum_algorithm
        value = checksum_of(algorithm, data) if algorithm else None
        checksums = {f"Checksum{algorithm}": value} if value else {}
        etag = uploads.put_part(upload, number, data, checksums)
        return _xml(
            f'<CopyPartResult xmlns="{XMLNS}"><LastModified>{_iso(datetime.now(UTC))}</LastModified>'
            f"<ETag>&quot;{etag}&quot;</ETag>"
            + "".join(f"<{name}>{_e(v)}</{name}>" for name, v in checksums.items())
            + "</CopyPartResult>"
        )

    def list_multipart_uploads(self, request: WireRequest, bucket: str) -> WireResponse:
        prefix = request.query_one("prefix", "") or ""
        delimiter = request.query_one("delimiter") or None
        encoding = request.query_one("encoding-type")
        key_marker = request.query_one("key-marker", "") or ""
        upload_id_marker = (request.query_one("upload-id-marker", "") or "") if key_marker else ""
        max_uploads = min(_int_argument(request, "max-uploads", MAX_UPLOADS), MAX_UPLOADS)
        everything = self._uploads().list_uploads(bucket)  # NoSuchBucket first, as on S3

        # Uploads sort by key, then by initiation: the markers name the last one already listed.
        later_keys = (i for i, info in enumerate(everything) if info.upload.key > key_marker)
        start = next(later_keys, len(everything))
        if upload_id_marker:
            same_key = [i for i, info in enumerate(everything) if info.upload.key == key_marker]
            ids = [everything[i].upload.upload_id for i in same_key]
            if upload_id_marker in ids:
                start = same_key[ids.index(upload_id_marker)] + 1
            elif same_key:  # an id this gateway never gave: the ids after it in string order
                later = [i for i in same_key if everything[i].upload.upload_id > upload_id_marker]
                start = later[0] if later else start

        uploads, prefixes = [], []
        truncated = False
        last_key = last_id = ""
        for info in everything[start:]:
            key = info.upload.key
            if not key.startswith(prefix):
                continue
            common = common_prefix(key, prefix, delimiter)
            if common is not None and (common in prefixes or (key_marker and common <= key_marker)):
                continue
            if len(uploads) + len(prefixes) >= max_uploads:
                truncated = True
                break
            if common is not None:
                prefixes.append(common)
                last_key, last_id = common, ""
            else:
                uploads.append(info)
                last_key, last_id = key, info.upload.upload_id

        def enc(text: str) -> str:
            return _e(quote(text, safe="/") if encoding == "url" else text)

        body = [
            f'<ListMultipartUploadsResult xmlns="{XMLNS}"><Bucket>{_e(bucket)}</Bucket>'
            f"<KeyMarker>{enc(key_marker)}</KeyMarker><UploadIdMarker>{_e(upload_id_marker)}</UploadIdMarker>"
            f"<NextKeyMarker>{enc(last_key if truncated else '')}</NextKeyMarker>"
            f"<Prefix>{enc(prefix)}</Prefix>"
        ]
        if delimiter:
            body.append(f"<Delimiter>{enc(delimiter)}</Delimiter>")
        body.append(
            f"<NextUploadIdMarker>{_e(last_id if truncated else '')}</NextUploadIdMarker>"
            f"<MaxUploads>{max_uploads}</MaxUploads>"
            f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>"
        )
        if encoding == "url":
            body.append("<EncodingType>url</EncodingType>")
        body.extend(
            f"<Upload><Key>{enc(info.upload.key)}</Key><UploadId>{info.upload.upload_id}</UploadId>"
            f"<Initiator>{_OWNER}</Initiator><Owner>{_OWNER}</Owner><StorageClass>STANDARD</StorageClass>"
            f"<Initiated>{_iso(info.initiated)}</Initiated>{_checksum_algorithm(info.upload)}</Upload>"
            for info in uploads
        )
        body.extend(f"<CommonPrefixes><Prefix>{enc(common)}</Prefix></CommonPrefixes>" for common in prefixes)
        body.append("</ListMultipartUploadsResult>")
        return _xml("".join(body))

    @staticmethod
    def _completed_parts(body: bytes) -> list[CompletedPart]:
        try:
            root = ElementTree.fromstring(body)
            ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
            return [
                CompletedPart(
                    int(part.findtext(f"{ns}PartNumber") or ""),
                    part.findtext(f"{ns}ETag") or "",
                    {
                        child.tag[len(ns) :]: (child.text or "").strip()
                        for child in part
                        if child.tag.startswith(f"{ns}Checksum") and (child.text or "").strip()
                    },
                )
                for part in root.findall(f"{ns}Part")
            ]
        except (ElementTree.ParseError, ValueError):
            raise S3Error(
                "MalformedXML",
                "The XML you provided was not well-formed or did not validate against our published schema",
                400,
            ) from None

    # -- browser-based uploads -------------------------------------------------------------------
    def post_object(self, request: WireRequest, bucket: str) -> WireResponse:
        """POST Object: what ``generate_presigned_post`` hands a browser form. The ``key`` field may hold
        ``${filename}``; the answer is ``success_action_redirect`` (303), else ``success_action_status``
        (201: a PostResponse document; 200 and the default 204: no body)."""
        content_type = request.header("content-type") or ""
        if not content_type.lower().startswith("multipart/form-data"):
            raise S3Error(
                "PreconditionFailed",
                "At least one of the pre-conditions you specified did not hold",
                412,
                Condition="Bucket POST must be of the enclosure-type multipart/form-data",
            )
        if not self.store.bucket_exists(bucket):
            raise NoSuchBucket(bucket)
        fields, upload = parse_form_data(content_type, request.body)
        if "key" not in fields:
            raise S3Error(
                "InvalidArgument",
                "Bucket POST must contain a field named 'key'.  If it is specified, please check the order "
                "of the fields.",
                400,
                ArgumentName="key",
                ArgumentValue="",
            )
        if upload is None:
            raise S3Error(
                "InvalidArgument",
                "POST requires exactly one file upload per request.",
                400,
                ArgumentName="file",
                ArgumentValue="0",
            )
        if fields.get("policy"):
            check_post_policy(fields["policy"], bucket, fields, len(upload.data))
        if len(upload.data) > MAX_POST_BYTES:
            raise S3Error(
                "EntityTooLarge",
                "Your proposed upload exceeds the maximum allowed size",
                400,
                ProposedSize=str(len(upload.data)),
                MaxSizeAllowed=str(MAX_POST_BYTES),
            )
        digests = {k: v for k, v in fields.items() if k == "content-md5" or k.startswith("x-amz-checksum-")}
        verify_digests(upload.data, digests)
        key = fields["key"].replace("${filename}", upload.filename)
        try:
            info = self.store.put_object(
                bucket,
                key,
                upload.data,
                content_type=fields.get("content-type") or "binary/octet-stream",
                metadata={
                    k[len("x-amz-meta-") :]: v for k, v in fields.items() if k.startswith("x-amz-meta-")
                },
                headers={name: fields[name.lower()] for name in STANDARD_HEADERS if fields.get(name.lower())},
                **self._kept_checksum(object_checksum(digests)),
            )
        except StoreError as exc:
            raise _translate(exc, bucket, key) from None
        etag = f'"{info.etag}"'
        host = request.header("host") or "127.0.0.1"
        location = f"http://{host}/{quote(bucket)}/{quote(key, safe='/')}"
        headers = {"ETag": etag, "Location": location}
        redirect = fields.get("success_action_redirect") or fields.get("redirect") or ""
        target = urlsplit(redirect)
        if target.scheme in ("http", "https") and target.netloc:  # S3 ignores a redirect it cannot follow
            query = urlencode({"bucket": bucket, "key": key, "etag": etag})
            headers["Location"] = f"{redirect}{'&' if target.query else '?'}{query}"
            return WireResponse(303, headers)
        status = fields.get("success_action_status", "").strip()
        if status == "201":
            return _xml(
                f"<PostResponse><Location>{_e(location)}</Location><Bucket>{_e(bucket)}</Bucket>"
                f"<Key>{_e(key)}</Key><ETag>{_e(etag)}</ETag></PostResponse>",
                201,
                headers,
            )
        return WireResponse(200 if status == "200" else 204, headers)

    # -- buckets ---------------------------------------------------------------------------------
    def list_buckets(self) -> WireResponse:
        items = "".join(
            f"<Bucket><Name>{_e(b.name)}</Name><CreationDate>{_iso(b.created)}</CreationDate></Bucket>"
            for b in self.store.list_buckets()
        )
        return _xml(
            f'<ListAllMyBucketsResult xmlns="{XMLNS}"><Owner><ID>{OWNER_ID}</ID>'
            f"<DisplayName>sconeflow</DisplayName></Owner><Buckets>{items}</Buckets></ListAllMyBucketsResult>"
        )

    def create_bucket(self, bucket: str) -> WireResponse:
        try:
            self.store.create_bucket(bucket)
        except BucketAlreadyExists:
            if self.settings.region != "us-east-1":
                raise
            # us-east-1 answers 200 when you already own the bucket
        return WireResponse(200, {"Location": f"/{bucket}"})

    def bucket_location(self, bucket: str) -> WireResponse:
        if not self.store.bucket_exists(bucket):
            raise NoSuchBucket(bucket)
        region = "" if self.settings.region == "us-east-1" else self.settings.region
        return _xml(f'<LocationConstraint xmlns="{XMLNS}">{region}</LocationConstraint>')

    def list_objects(self, request: WireRequest, bucket: str, *, v2: bool) -> WireResponse:
        prefix = request.query_one("prefix", "") or ""
        delimiter = request.query_one("delimiter") or None
        encoding = request.query_one("encoding-type")
        try:
            max_keys = int(request.query_one("max-keys", str(MAX_KEYS)) or MAX_KEYS)
        except ValueError:
            raise S3Error(
                "InvalidArgument", "Provided max-keys not an integer or within integer range", 400
            ) from None
        if max_keys < 0:
            raise S3Error(
                "InvalidArgument", "Argument maxKeys must be an integer between 0 and 2147483647", 400
            )
        max_keys = min(max_keys, MAX_KEYS)
        token = request.query_one("continuation-token") if v2 else None
        start_after = request.query_one("start-after" if v2 else "marker") or None
        if max_keys == 0:
            objects, prefixes, truncated, next_token = [], [], False, None
        else:
            try:
                result = self.store.list_objects(
                    bucket,
                    prefix,
                    delimiter=delimiter,
                    max_keys=max_keys,
                    continuation_token=token,
                    start_after=start_after,
                )
            except (NoSuchBucket, InvalidBucketName):
                raise
            except StoreError as exc:
                if token:
                    raise S3Error(
                        "InvalidArgument", "The continuation token provided is incorrect", 400
                    ) from exc
                raise
            objects, prefixes = result.objects, result.common_prefixes
            truncated, next_token = result.is_truncated, result.next_continuation_token

        def enc(text: str) -> str:
            return _e(quote(text, safe="/") if encoding == "url" else text)

        parts = [f'<ListBucketResult xmlns="{XMLNS}"><Name>{_e(bucket)}</Name><Prefix>{enc(prefix)}</Prefix>']
        if v2:
            if token:
                parts.append(f"<ContinuationToken>{_e(token)}</ContinuationToken>")
            if start_after:
                parts.append(f"<StartAfter>{enc(start_after)}</StartAfter>")
            parts.append(f"<KeyCount>{len(objects) + len(prefixes)}</KeyCount>")
        else:
            parts.append(f"<Marker>{enc(start_after or '')}</Marker>")
        parts.append(f"<MaxKeys>{max_keys}</MaxKeys>")
        if delimiter:
            parts.append(f"<Delimiter>{enc(delimiter)}</Delimiter>")
        if encoding == "url":
            parts.append("<EncodingType>url</EncodingType>")
        parts.append(f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>")
        if truncated and v2 and next_token:
            parts.append(f"<NextContinuationToken>{_e(next_token)}</NextContinuationToken>")
        if truncated and not v2 and delimiter:
            last = max([o.key for o in objects] + prefixes)
            parts.append(f"<NextMarker>{enc(last)}</NextMarker>")
        owner = f"<Owner><ID>{OWNER_ID}</ID><DisplayName>sconeflow</DisplayName></Owner>"
        fetch_owner = not v2 or request.query_one("fetch-owner") == "true"
        for info in objects:
            parts.append(
                f"<Contents><Key>{enc(info.key)}</Key><LastModified>{_iso(info.last_modified)}</LastModified>"
                f"<ETag>&quot;{info.etag}&quot;</ETag><Size>{info.size}</Size>"
                f"{owner if fetch_owner else ''}<StorageClass>STANDARD</StorageClass></Contents>"
            )
        for common in prefixes:
            parts.append(f"<CommonPrefixes><Prefix>{enc(common)}</Prefix></CommonPrefixes>")
        parts.append("</ListBucketResult>")
        return _xml("".join(parts))

    def delete_objects(self, request: WireRequest, bucket: str) -> WireResponse:
        if not self.store.bucket_exists(bucket):
            raise NoSuchBucket(bucket)
        try:
            root = ElementTree.fromstring(request.body)
        except ElementTree.ParseError:
            raise S3Error(
                "MalformedXML",
                "The XML you provided was not well-formed or did not validate against our published schema",
                400,
            ) from None
        ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
        quiet = (root.findtext(f"{ns}Quiet") or "").lower() == "true"
        deleted, errors = [], []
        for obj in root.findall(f"{ns}Object"):
            key = obj.findtext(f"{ns}Key") or ""
            try:
                self.store.delete_object(bucket, key)
                deleted.append(f"<Deleted><Key>{_e(key)}</Key></Deleted>")
            except StoreError as exc:
                err = _translate(exc, bucket, key)
                errors.append(
                    f"<Error><Key>{_e(key)}</Key><Code>{err.code}</Code>"
                    f"<Message>{_e(err.message)}</Message></Error>"
                )
        body = "".join(([] if quiet else deleted) + errors)
        return _xml(f'<DeleteResult xmlns="{XMLNS}">{body}</DeleteResult>')

    # -- objects ---------------------------------------------------------------------------------
    def _body(self, request: WireRequest) -> tuple[bytes, dict[str, str]]:
        """The body (aws-chunked undone, digests verified) and its ``x-amz-checksum-<algorithm>`` values
        (headers or trailers), which S3 answers back on PutObject and UploadPart."""
        body = request.body
        encoding = (request.header("content-encoding") or "").lower()
        sha = request.header("x-amz-content-sha256") or ""
        trailers: dict[str, str] = {}
        if "aws-chunked" in encoding or sha.startswith("STREAMING-"):
            body, trailers = decode_aws_chunked(body)
        given = {
            k: v for k, v in request.headers.items() if k == "content-md5" or k.startswith("x-amz-checksum-")
        }
        given.update(trailers)
        verify_digests(body, given)
        checksums = {
            name: value
            for name, value in given.items()
            if name.startswith("x-amz-checksum-") and name not in _CHECKSUM_SETTINGS and value
        }
        return body, checksums

    @staticmethod
    def _metadata(request: WireRequest) -> dict[str, str]:
        return {k[len("x-amz-meta-") :]: v for k, v in request.headers.items() if k.startswith("x-amz-meta-")}

    def put_object(self, request: WireRequest, bucket: str, key: str) -> WireResponse:
        body, checksums = self._body(request)
        if_match, if_none_match = request.header("if-match"), request.header("if-none-match")
        if if_none_match is not None and if_none_match.strip() != "*":
            raise S3Error(
                "NotImplemented",
                "A header you provided implies functionality that is not implemented",
                501,
                Header="If-None-Match",
            )
        with _CONDITIONAL_WRITES:  # the check and the write as one step for this gateway's threads
            if if_match is not None or if_none_match is not None:
                self._check_write_conditions(bucket, key, if_match, if_none_match)
            info = self.store.put_object(
                bucket,
                key,
                body,
                content_type=_content_type(request),
                metadata=self._metadata(request),
                headers=_stored_headers(request),
                **self._kept_checksum(object_checksum(checksums)),
            )
        if checksums:
            checksums["x-amz-checksum-type"] = "FULL_OBJECT"
        return WireResponse(200, {"ETag": f'"{info.etag}"', **checksums})

    def _kept_checksum(self, checksum: ObjectChecksum | None) -> dict[str, ObjectChecksum]:
        """``put_object``'s ``checksum`` argument, for a store that keeps one (the local store)."""
        return {"checksum": checksum} if checksum is not None and keeps_checksums(self.store) else {}

    def _check_write_conditions(
        self, bucket: str, key: str, if_match: str | None, if_none_match: str | None
    ) -> None:
        """S3's conditional writes: ``If-None-Match: *`` refuses to overwrite an existing key, ``If-Match``
        writes only over the object with that ETag (and a missing key is NoSuchKey)."""
        try:
            info = self.store.head_object(bucket, key)
        except NoSuchKey:
            if if_match is not None:
                raise
            return
        if if_none_match is not None:
            raise precondition_failed("If-None-Match")
        if if_match is not None and not _etag_listed(f'"{info.etag}"', if_match):
            raise precondition_failed("If-Match")

    def _copy_source(self, request: WireRequest) -> tuple[str, str, ObjectInfo | None]:
        """The bucket and key ``x-amz-copy-source`` names, after its ``x-amz-copy-source-if-*`` conditions
        (412 when one fails); the source's info when the conditions needed it."""
        source = unquote((request.header("x-amz-copy-source") or "").split("?versionId=")[0]).lstrip("/")
        src_bucket, _, src_key = source.partition("/")
        if not src_bucket or not src_key:
            raise S3Error(
                "InvalidArgument",
                "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
                400,
                ArgumentName="x-amz-copy-source",
                ArgumentValue=source,
            )
        if not self.store.bucket_exists(src_bucket):  # name the source, not the destination
            raise S3Error("NoSuchBucket", "The specified bucket does not exist", 404, BucketName=src_bucket)
        conditions = {
            name: request.header(f"x-amz-copy-source-{name.replace('_', '-')}")
            for name in ("if_match", "if_none_match", "if_modified_since", "if_unmodified_since")
        }
        if any(conditions.values()):
            try:
                source_info = self.store.head_object(src_bucket, src_key)
            except NoSuchKey:
                raise S3Error("NoSuchKey", "The specified key does not exist.", 404, Key=src_key) from None
            failed = failed_precondition(source_info, **conditions)
            if failed is not None:  # CopyObject answers 412 where GetObject would answer 304
                raise precondition_failed(f"x-amz-copy-source-{failed[1]}")
            return src_bucket, src_key, source_info
        return src_bucket, src_key, None

    def copy_object(self, request: WireRequest, bucket: str, key: str) -> WireResponse:
        """CopyObject. The copy keeps the source's checksum (S3: "that checksum value will be copied to the
        new object by default") unless ``x-amz-checksum-algorithm`` asks for another, computed over the copy
        (which also makes copying an object onto itself legal)."""
        src_bucket, src_key, _ = self._copy_source(request)
        algorithm = self._copy_checksum_algorithm(request)
        replace = (request.header("x-amz-metadata-directive") or "COPY").upper() == "REPLACE"
        if replace or algorithm:
            try:
                source = self.store.head_object(src_bucket, src_key)
                with self.store.open_object(src_bucket, src_key) as data:
                    # (a store that keeps no checksum is not read twice for nothing)
                    checksum = self._copy_checksum(
                        data, source, algorithm if keeps_checksums(self.store) else None
                    )
                    info = self.store.put_object(
                        bucket,
                        key,
                        data,
                        content_type=_content_type(request) if replace else source.content_type,
                        metadata=self._metadata(request) if replace else source.metadata,
                        headers=_stored_headers(request) if replace else source.headers,
                        **self._kept_checksum(checksum),
                    )
            except NoSuchKey:  # name the source, not the destination
                raise S3Error("NoSuchKey", "The specified key does not exist.", 404, Key=src_key) from None
        else:
            if (src_bucket, src_key) == (bucket, key):  # (a new checksum algorithm took the other branch)
                raise S3Error(
                    "InvalidRequest",
                    "This copy request is illegal because it is trying to copy an object to itself without "
                    "changing the object's metadata, storage class, website redirect location or encryption "
                    "attributes.",
                    400,
                )
            try:
                info = self.store.copy_object(src_bucket, src_key, bucket, key)
            except NoSuchKey:
                raise S3Error("NoSuchKey", "The specified key does not exist.", 404, Key=src_key) from None
        checksum = ""
        if info.checksum is not None:
            name, kept = f"Checksum{info.checksum.algorithm}", info.checksum
            checksum = f"<{name}>{_e(kept.value)}</{name}><ChecksumType>{kept.type}</ChecksumType>"
        return _xml(
            f'<CopyObjectResult xmlns="{XMLNS}"><LastModified>{_iso(info.last_modified)}</LastModified>'
            f"<ETag>&quot;{info.etag}&quot;</ETag>{checksum}</CopyObjectResult>"
        )

    @staticmethod
    def _copy_checksum_algorithm(request: WireRequest) -> str | None:
        """CopyObject's ``x-amz-checksum-algorithm``: S3's name, or None when absent. An unknown one is
        S3's 400; one this gateway cannot compute (CRC32C, CRC64NVME need a native library) is 501."""
        given = (request.header("x-amz-checksum-algorithm") or "").strip()
        if not given:
            return None
        algorithm = CHECKSUM_ALGORITHMS.get(given.lower())
        if algorithm is None:
            raise S3Error(
                "InvalidRequest",
                "Checksum algorithm provided is unsupported. Please try again with any of the valid types: "
                "[CRC32, CRC32C, CRC64NVME, SHA1, SHA256]",
                400,
            )
        if algorithm not in HASHERS:
            raise not_implemented(f"computing a {algorithm} checksum for CopyObject")
        return algorithm

    @staticmethod
    def _copy_checksum(data: BinaryIO, source: ObjectInfo, algorithm: str | None) -> ObjectChecksum | None:
        """The copy's checksum: the source's (without its parts': the copy is one part), or a FULL_OBJECT
        ``algorithm`` checksum of ``data``, read through and rewound (the very file then copied)."""
        if algorithm is None:
            kept = source.checksum
            return ObjectChecksum(kept.algorithm, kept.value, kept.type) if kept else None
        hasher = HASHERS[algorithm]()
        while chunk := data.read(1 << 20):
            hasher.update(chunk)
        data.seek(0)
        return ObjectChecksum(algorithm, base64.b64encode(hasher.digest()).decode())

    def get_object(self, request: WireRequest, bucket: str, key: str, *, head: bool) -> WireResponse:
        part_number = _part_number(request) if "partNumber" in request.query else None
        if part_number is not None and request.header("range"):
            raise S3Error(
                "InvalidRequest", "Cannot specify both Range header and partNumber query parameter", 400
            )
        info = self.store.head_object(bucket, key)
        headers = self._object_headers(info)
        failed = failed_precondition(
            info,
            if_match=request.header("if-match"),
            if_none_match=request.header("if-none-match"),
            if_modified_since=request.header("if-modified-since"),
            if_unmodified_since=request.header("if-unmodified-since"),
        )
        if failed is not None:
            status, condition = failed
            if status == 304:
                return WireResponse(304, {"ETag": headers["ETag"], "Last-Modified": headers["Last-Modified"]})
            raise precondition_failed(condition)
        for parameter, header in RESPONSE_OVERRIDES.items():
            value = request.query_one(parameter)
            if value is not None:
                headers[header] = value
        checksum_mode = (request.header("x-amz-checksum-mode") or "").upper() == "ENABLED"
        parts = self._uploads().object_parts(info) if part_number or checksum_mode else None
        if part_number is not None:
            return self._get_part(info, parts, part_number, headers, head=head, checksum_mode=checksum_mode)
        byte_range = self._parse_range(request.header("range"), info.size)
        if checksum_mode and byte_range is None:  # as on S3, a range gets no whole-object checksum
            headers.update(checksum_headers(self._whole_checksum(info, parts)))
        if byte_range is None:
            headers["Content-Length"] = str(info.size)
            body = b"" if head else self.store.get_object(bucket, key)
            return WireResponse(200, headers, body)
        start, end = byte_range
        headers["Content-Range"] = f"bytes {start}-{end}/{info.size}"
        headers["Content-Length"] = str(end - start + 1)
        body = b"" if head else self.store.get_object(bucket, key, byte_range=(start, end))
        return WireResponse(206, headers, body)

    @staticmethod
    def _whole_checksum(info: ObjectInfo, parts: ObjectParts | None) -> ObjectChecksum | None:
        """The object's checksum: kept with it, or (an object completed by an older sconeflow) in its
        multipart record."""
        if info.checksum is not None:
            return info.checksum
        if parts is not None and parts.checksum and parts.checksum_algorithm:
            return ObjectChecksum(
                parts.checksum_algorithm, parts.checksum, parts.checksum_type or "COMPOSITE"
            )
        return None

    def _get_part(
        self,
        info: ObjectInfo,
        parts: ObjectParts | None,
        number: int,
        headers: dict[str, str],
        *,
        head: bool,
        checksum_mode: bool,
    ) -> WireResponse:
        """GetObject/HeadObject ``partNumber``: the bytes of that part of a multipart object, as a 206 with
        ``x-amz-mp-parts-count``; a single-part object is one part (the whole object, without the count)."""
        count = len(parts.sizes) if parts is not None else 1
        if number > count:
            raise S3Error(
                "InvalidPartNumber",
                "The requested partnumber is not satisfiable",
                416,
                PartNumberRequested=str(number),
                ActualPartCount=str(count),
            )
        start, end = parts.part_range(number) if parts is not None else (0, info.size - 1)
        if parts is None and checksum_mode:  # the whole object: its own checksum
            headers.update(checksum_headers(info.checksum))
        if parts is not None:
            headers["x-amz-mp-parts-count"] = str(count)
            part_checksum = parts.part_checksums[number - 1] if len(parts.part_checksums) >= number else None
            if checksum_mode and part_checksum and parts.checksum_type == "COMPOSITE":
                headers[f"x-amz-checksum-{(parts.checksum_algorithm or '').lower()}"] = part_checksum
                headers["x-amz-checksum-type"] = "COMPOSITE"
        headers["Content-Length"] = str(end - start + 1)
        if end < start:  # an empty object (or part): nothing to range over
            return WireResponse(200, headers, b"")
        headers["Content-Range"] = f"bytes {start}-{end}/{info.size}"
        body = b"" if head else self.store.get_object(info.bucket, info.key, byte_range=(start, end))
        return WireResponse(206, headers, body)

    @staticmethod
    def _object_headers(info: ObjectInfo) -> dict[str, str]:
        headers = {
            "Content-Type": info.content_type,
            "ETag": f'"{info.etag}"',
            "Last-Modified": _http_date(info.last_modified),
            "Accept-Ranges": "bytes",
        }
        headers.update(info.headers)
        for name, value in info.metadata.items():
            headers[f"x-amz-meta-{name}"] = value
        return headers

    @staticmethod
    def _parse_range(value: str | None, size: int) -> tuple[int, int] | None:
        """None for no (or an ignorable) Range header; S3 ignores ranges it cannot parse."""
        if not value:
            return None
        match = _RANGE_RE.match(value.strip())
        if not match or (not match.group(1) and not match.group(2)):
            return None
        first, last = match.group(1), match.group(2)
        if not first:
            suffix = int(last)
            if suffix == 0:
                raise S3Error("InvalidRange", "The requested range is not satisfiable", 416, size=str(size))
            return max(0, size - suffix), size - 1
        start = int(first)
        end = int(last) if last else size - 1
        if start >= size:
            raise S3Error(
                "InvalidRange",
                "The requested range is not satisfiable",
                416,
                size=str(size),
                RangeRequested=value,
                ActualObjectSize=str(size),
            )
        if end < start:
            return None
        return start, min(end, size - 1)
