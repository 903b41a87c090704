"""The object store: S3 semantics over a local directory (default) or real S3 (``s3://``).

Everything in sconeflow reads and writes objects through :class:`ObjectStore`, so the same code runs
on the embedded store, on the local S3-compatible gateway and on AWS.

Local layout under the store root: ``<root>/<bucket>/<key>`` holds the bytes. A key ending in ``/`` (a
"folder" object, as the S3 console and many tools create) is the file
``<root>/<bucket>/<key>.sconeflow-folder`` (:data:`FOLDER_MARKER` inside the folder the key names), so
``a/`` and ``a/b.txt`` live side by side; no key may use that name as a segment, and listings show the
file as the key ``a/``. The content type, ETag, user metadata, standard headers (Cache-Control, ...),
S3 checksum (:class:`ObjectChecksum`) and a multipart object's part sizes live in the object's extended
attribute ``user.sconeflow.meta`` (written on the temporary file before
the rename, so bytes and metadata appear together), or, where the file system has no user xattrs, in a
sidecar ``<root>/.meta/<bucket>/<sha1(key)[:2]>/<sha1(key)>.json``. Bucket names can never start with
``.``, so ``.meta`` never collides with a bucket. Metadata records the size and mtime it describes; if
the file changed behind the store's back, the ETag is recomputed and the checksum and part sizes, which
described the old bytes, are dropped. Metadata written before a field existed simply lacks it.
A bucket's creation time is recorded in ``<root>/.meta/<bucket>/bucket.json``.
Writes go to a temporary file in the target folder, then ``os.replace``: a crash never leaves a
half-written object visible.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import errno
import hashlib
import json
import logging
import mimetypes
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import urlparse

from sconeflow.errors import SconeflowError

log = logging.getLogger(__name__)

MAX_KEY_BYTES = 1024
XATTR_NAME = "user.sconeflow.meta"
_HAS_XATTR = hasattr(os, "setxattr") and hasattr(os, "getxattr")
MAX_SEGMENT_BYTES = 255
META_DIR = ".meta"
FOLDER_MARKER = ".sconeflow-folder"  # the file that holds a key ending in "/" inside the key's folder
BUCKET_RECORD = "bucket.json"  # in META_DIR/<bucket>/, beside the two-hex-digit folders of object metadata
_CHUNK = 1 << 20
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP_RE = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")


class StoreError(SconeflowError):
    """Base of the object store's errors."""


class NoSuchBucket(StoreError):
    """The bucket does not exist."""


class NoSuchKey(StoreError):
    """The object does not exist."""


class BucketAlreadyExists(StoreError):
    """A bucket with that name exists already."""


class BucketNotEmpty(StoreError):
    """A bucket that still holds objects cannot be deleted."""


class InvalidBucketName(StoreError):
    """The bucket name breaks S3's naming rules."""


class InvalidKey(StoreError):
    """The key is empty, too long, not UTF-8, or would escape its bucket."""


class KeyConflict(StoreError):
    """The key clashes with another key on a file system (``a`` and ``a/b`` cannot both exist locally)."""


class InvalidRange(StoreError):
    """The requested byte range is not satisfiable."""


# The HTTP headers S3 stores with an object and returns on GET and HEAD (besides Content-Type).
STANDARD_HEADERS = ("Cache-Control", "Content-Disposition", "Content-Encoding", "Content-Language", "Expires")


@dataclass(frozen=True)
class ObjectChecksum:
    """The additional checksum S3 keeps with an object (``x-amz-checksum-*``), answered by HeadObject and
    GetObject with ``ChecksumMode=ENABLED``."""

    algorithm: str  # S3's name: "CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"
    value: str  # base64; a COMPOSITE one is "<base64>-<number of parts>"
    type: str = "FULL_OBJECT"  # or "COMPOSITE" (a multipart object's checksum of its parts' checksums)
    parts: tuple[str | None, ...] = ()  # a multipart object's part checksums, of ``algorithm``, in order

    def to_json(self) -> dict:
        parts = list(self.parts)
        return {"algorithm": self.algorithm, "value": self.value, "type": self.type, "parts": parts}

    @classmethod
    def from_json(cls, raw: object) -> ObjectChecksum | None:
        """The checksum recorded by :meth:`to_json`; None for anything else (no record, a damaged one)."""
        if not isinstance(raw, dict):
            return None
        algorithm, value, kind = raw.get("algorithm"), raw.get("value"), raw.get("type") or "FULL_OBJECT"
        parts = raw.get("parts") or []
        if not (isinstance(algorithm, str) and isinstance(value, str) and algorithm and value):
            return None
        if not isinstance(kind, str) or not isinstance(parts, list):
            return None
        return cls(algorithm, value, kind, tuple(p if isinstance(p, str) else None for p in parts))


@dataclass(frozen=True)
class ObjectInfo:
    bucket: str
    key: str
    size: int
    etag: str
    last_modified: datetime
    content_type: str = "binary/octet-stream"
    metadata: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # of STANDARD_HEADERS, as given
    checksum: ObjectChecksum | None = None  # the S3 checksum it was uploaded with, if any
    part_sizes: tuple[int, ...] = ()  # a completed multipart upload's part sizes; () for one part


@dataclass(frozen=True)
class BucketInfo:
    name: str
    created: datetime


@dataclass(frozen=True)
class ListResult:
    objects: list[ObjectInfo]
    common_prefixes: list[str]
    is_truncated: bool
    next_continuation_token: str | None
    key_count: int


class ObjectStore(Protocol):
    """What every store backend offers (local directory, real S3)."""

    uri: str

    def create_bucket(self, bucket: str, *, exist_ok: bool = False) -> None: ...
    def delete_bucket(self, bucket: str) -> None: ...
    def bucket_exists(self, bucket: str) -> bool: ...
    def list_buckets(self) -> list[BucketInfo]: ...
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
    ) -> ObjectInfo: ...
    def get_object(
        self, bucket: str, key: str, *, byte_range: tuple[int, int | None] | None = None
    ) -> bytes: ...
    def open_object(self, bucket: str, key: str) -> BinaryIO: ...
    def head_object(self, bucket: str, key: str) -> ObjectInfo: ...
    def list_objects(
        self,
        bucket: str,
        prefix: str = "",
        *,
        delimiter: str | None = None,
        max_keys: int = 1000,
        continuation_token: str | None = None,
        start_after: str | None = None,
    ) -> ListResult: ...
    def iter_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]: ...
    def delete_object(self, bucket: str, key: str) -> None: ...
    def copy_object(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str) -> ObjectInfo: ...


def validate_bucket_name(bucket: str) -> None:
    """S3 general-purpose bucket naming rules."""
    problem = None
    if not 3 <= len(bucket) <= 63:
        problem = "must be 3 to 63 characters long"
    elif not _BUCKET_RE.match(bucket):
        problem = "may hold only a-z, 0-9, '.' and '-', and must start and end with a letter or digit"
    elif ".." in bucket or ".-" in bucket or "-." in bucket:
        problem = "must not contain '..', '.-' or '-.'"
    elif _IP_RE.match(bucket):
        problem = "must not be formatted as an IP address"
    elif bucket.startswith(("xn--", "sthree-", "amzn-s3-demo-")) or bucket.endswith(
        ("-s3alias", "--ol-s3", "--x-s3")
    ):
        problem = "uses a prefix or suffix reserved by S3"
    if problem:
        raise InvalidBucketName(f"invalid bucket name {bucket!r}: {problem}")


def validate_key(key: str) -> None:
    """S3's key rules plus safety: the key must stay inside its bucket on a file system."""
    if not isinstance(key, str) or not key:
        raise InvalidKey("object key must be a non-empty string")
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidKey(f"object key {key!r} is not valid UTF-8") from exc
    if len(encoded) > MAX_KEY_BYTES:
        raise InvalidKey(f"object key is {len(encoded)} bytes; S3 allows at most {MAX_KEY_BYTES}")
    if "\x00" in key:
        raise InvalidKey(f"object key {key!r} contains a NUL byte")
    if "\\" in key:
        raise InvalidKey(
            f"object key {key!r} contains a backslash, which could escape the bucket on some systems"
        )
    if key.startswith("/"):
        raise InvalidKey(f"object key {key!r} is an absolute path")
    segments = key.split("/")
    if any(segment in (".", "..") for segment in segments):
        raise InvalidKey(f"object key {key!r} has a '.' or '..' segment that would escape its bucket")
    if any(segment == "" for segment in segments[:-1]):
        raise InvalidKey(f"object key {key!r} has an empty path segment ('//')")
    if FOLDER_MARKER in segments:
        raise InvalidKey(
            f"object key {key!r} uses the reserved name {FOLDER_MARKER} (where the local store keeps keys "
            "ending in '/')"
        )
    if segments[-1].startswith(".tmp-") and segments[-1].endswith(".part"):
        raise InvalidKey(f"object key {key!r} uses the reserved temporary-file pattern .tmp-*.part")
    if segments[0] == META_DIR:
        raise InvalidKey(f"object key {key!r} uses the reserved prefix {META_DIR}/")


def _file_parts(key: str) -> list[str]:
    """The path segments of a valid key's file under its bucket folder: a key ending in ``/`` is the
    :data:`FOLDER_MARKER` file inside the folder the key names."""
    parts = key.split("/")
    if parts[-1] == "":
        parts[-1] = FOLDER_MARKER
    return parts


def guess_content_type(key: str) -> str:
    return mimetypes.guess_type(key)[0] or "binary/octet-stream"


def standard_headers(headers: dict[str, str] | None) -> dict[str, str]:
    """The :data:`STANDARD_HEADERS` among ``headers`` (any case), under their canonical names."""
    wanted = {name.lower(): name for name in STANDARD_HEADERS}
    return {wanted[k.lower()]: v for k, v in (headers or {}).items() if k.lower() in wanted and v}


def _utc_from_timestamp(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def _encode_token(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode("utf-8")).decode("ascii")


def _decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
    except (ValueError, UnicodeDecodeError) as exc:
        raise StoreError(f"invalid continuation token {token!r}") from exc


def common_prefix(key: str, prefix: str, delimiter: str | None) -> str | None:
    """The CommonPrefixes entry ``key`` rolls up into (S3 listing): ``prefix`` plus everything up to and
    including the first ``delimiter`` after it; None when the key is listed itself."""
    if not delimiter:
        return None
    cut = key.find(delimiter, len(prefix))
    return key[: cut + len(delimiter)] if cut >= 0 else None


class LocalStore:
    """An S3-like object store in a local directory."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.uri = self.root.as_uri()
        self._xattrs = _HAS_XATTR

    # -- paths -------------------------------------------------------------------------------
    def _bucket_dir(self, bucket: str) -> Path:
        validate_bucket_name(bucket)
        return self.root / bucket

    def _existing_bucket_dir(self, bucket: str) -> Path:
        path = self._bucket_dir(bucket)
        if not path.is_dir():
            raise NoSuchBucket(f"bucket {bucket!r} does not exist")
        return path

    def _object_path(self, bucket: str, key: str) -> Path:
        validate_key(key)
        parts = _file_parts(key)
        for segment in parts:
            if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
                raise InvalidKey(
                    f"object key segment {segment[:40]!r}... is longer than {MAX_SEGMENT_BYTES} bytes, "
                    "which a local file system cannot store"
                )
        base = self._existing_bucket_dir(bucket)
        path = base.joinpath(*parts)
        # Refuse symlinks anywhere between the bucket folder and the object.
        probe = base
        for part in parts:
            probe = probe / part
            if probe.is_symlink():
                raise InvalidKey(f"object key {key!r} passes through a symbolic link; refused")
        if not path.resolve().is_relative_to(base.resolve()):
            raise InvalidKey(f"object key {key!r} resolves outside bucket {bucket!r}")
        return path

    def _meta_path(self, bucket: str, key: str) -> Path:
        # Hashed, flat names: a key's metadata file can never clash with another key's folder.
        digest = hashlib.sha1(key.encode("utf-8"), usedforsecurity=False).hexdigest()
        return self.root / META_DIR / bucket / digest[:2] / (digest + ".json")

    # -- buckets -----------------------------------------------------------------------------
    def create_bucket(self, bucket: str, *, exist_ok: bool = False) -> None:
        path = self._bucket_dir(bucket)
        if path.is_dir():
            if exist_ok:
                return
            raise BucketAlreadyExists(f"bucket {bucket!r} already exists")
        try:
            path.mkdir(parents=True, exist_ok=exist_ok)
        except FileExistsError:
            raise BucketAlreadyExists(f"bucket {bucket!r} already exists") from None
        self._record_creation(bucket, datetime.now(UTC))

    def _record_creation(self, bucket: str, created: datetime) -> None:
        record = self.root / META_DIR / bucket / BUCKET_RECORD
        try:
            record.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write_text(record, json.dumps({"created": created.isoformat()}))
        except OSError:  # a read-only home: the folder's time stands in
            pass

    def _created(self, bucket: str, folder: Path) -> datetime:
        """When the bucket was created: recorded by create_bucket, so writes into the bucket's folder (which
        move its mtime) never change it. A folder made by hand gets its mtime recorded the first time."""
        try:
            record = json.loads((self.root / META_DIR / bucket / BUCKET_RECORD).read_text())
            return datetime.fromisoformat(record["created"])
        except (OSError, ValueError, KeyError, TypeError):
            created = _utc_from_timestamp(folder.stat().st_mtime)
            self._record_creation(bucket, created)
            return created

    def delete_bucket(self, bucket: str) -> None:
        path = self._existing_bucket_dir(bucket)
        if next(self._walk_keys(bucket, ""), None) is not None:
            raise BucketNotEmpty(f"bucket {bucket!r} is not empty")
        shutil.rmtree(path)  # only empty folders and stray temporary files are left
        shutil.rmtree(self.root / META_DIR / bucket, ignore_errors=True)
        with contextlib.suppress(OSError):  # the last bucket leaves no empty metadata folder behind
            (self.root / META_DIR).rmdir()

    def bucket_exists(self, bucket: str) -> bool:
        try:
            return self._bucket_dir(bucket).is_dir()
        except InvalidBucketName:
            return False

    def list_buckets(self) -> list[BucketInfo]:
        buckets = []
        for entry in sorted(self.root.iterdir()):
            if entry.is_dir() and not entry.is_symlink() and self.bucket_exists(entry.name):
                buckets.append(BucketInfo(entry.name, self._created(entry.name, entry)))
        return buckets

    # -- objects -----------------------------------------------------------------------------
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
        """Write an object atomically. ``defer_etag``: skip the MD5 now (a writer that republishes growing
        files, e.g. data capture); the ETag is computed, and cached, the first time the object is listed or
        headed, and the returned info's ``etag`` is empty. ``etag``: record this ETag instead of the MD5
        (a completed multipart upload's ``<md5 of the part MD5s>-<parts>``, as S3 gives); it is kept with
        the object's metadata until the file changes behind the store's back. ``checksum``: the S3 checksum
        to keep with the object (taken as given: the caller verified it). ``part_sizes``: a completed
        multipart upload's part sizes, kept when they add up to the object's size."""
        path = self._object_path(bucket, key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise KeyConflict(f"key {key!r} clashes with an existing object that is a prefix of it") from exc
        if path.is_dir():
            raise KeyConflict(f"key {key!r} clashes with existing keys under {key + '/'!r}")
        digest = hashlib.md5(usedforsecurity=False)
        hashing = not defer_etag and etag is None
        tmp_name = _temp_name(path.parent)
        try:
            with os.fdopen(_create_exclusive(tmp_name), "wb") as out:
                if isinstance(data, bytes | bytearray | memoryview):
                    if hashing:
                        digest.update(data)
                    out.write(data)
                else:
                    while chunk := data.read(_CHUNK):
                        if hashing:
                            digest.update(chunk)
                        out.write(chunk)
                out.flush()
                stat = os.fstat(out.fileno())
                meta = {
                    "content_type": content_type or guess_content_type(key),
                    "etag": etag if etag is not None else ("" if defer_etag else digest.hexdigest()),
                    "size": stat.st_size,
                    "mtime_ns": stat.st_mtime_ns,
                    "metadata": dict(metadata or {}),
                    "headers": standard_headers(headers),
                }
                if checksum is not None:
                    meta["checksum"] = checksum.to_json()
                if part_sizes and sum(part_sizes) == stat.st_size:
                    meta["part_sizes"] = [int(size) for size in part_sizes]
                in_xattr = self._write_xattr(out.fileno(), meta)
            meta_path = self._meta_path(bucket, key)
            if in_xattr:
                meta_path.unlink(missing_ok=True)  # an older sidecar must not outlive this write
            else:
                meta_path.parent.mkdir(parents=True, exist_ok=True)
                _atomic_write_text(meta_path, json.dumps(meta))
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return ObjectInfo(
            bucket=bucket,
            key=key,
            size=stat.st_size,
            etag=meta["etag"],
            last_modified=_utc_from_timestamp(stat.st_mtime),
            content_type=meta["content_type"],
            metadata=meta["metadata"],
            headers=meta["headers"],
            checksum=checksum,
            part_sizes=tuple(meta.get("part_sizes", ())),
        )

    def _write_xattr(self, fd: int, meta: dict) -> bool:
        """Keep the metadata in an extended attribute of the object itself when the file system can."""
        if not self._xattrs:
            return False
        try:
            os.setxattr(fd, XATTR_NAME, json.dumps(meta, separators=(",", ":")).encode("utf-8"))
            return True
        except OSError as exc:
            if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM, errno.EACCES):
                self._xattrs = False  # this file system has no user xattrs: use sidecar files
            return False  # e.g. E2BIG / ENOSPC for large user metadata: a sidecar file for this one

    def _info(self, bucket: str, key: str, path: Path) -> ObjectInfo:
        stat = path.stat()
        meta = self._read_meta(bucket, key, path)
        fresh = meta.get("size") == stat.st_size and meta.get("mtime_ns") == stat.st_mtime_ns
        etag = meta["etag"] if fresh and meta.get("etag") else self._hash(path, meta)
        return ObjectInfo(
            bucket=bucket,
            key=key,
            size=stat.st_size,
            etag=etag,
            last_modified=_utc_from_timestamp(stat.st_mtime),
            content_type=meta.get("content_type") or guess_content_type(key),
            metadata=meta.get("metadata") or {},
            headers=meta.get("headers") or {},
            checksum=ObjectChecksum.from_json(meta.get("checksum")) if fresh else None,
            part_sizes=_part_sizes(meta.get("part_sizes"), stat.st_size) if fresh else (),
        )

    def _hash(self, path: Path, meta: dict) -> str:
        """The object's MD5; kept in its extended attribute when ``meta`` describes this very file (the
        attribute goes to the inode that was hashed, so a concurrent replacement is never mislabelled)."""
        digest = hashlib.md5(usedforsecurity=False)
        with path.open("rb") as handle:
            stat = os.fstat(handle.fileno())
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
            etag = digest.hexdigest()
            if self._xattrs and meta.get("size") == stat.st_size and meta.get("mtime_ns") == stat.st_mtime_ns:
                try:  # a cache only: a reader without write access just hashes again next time
                    cached = json.dumps({**meta, "etag": etag}, separators=(",", ":")).encode("utf-8")
                    os.setxattr(handle.fileno(), XATTR_NAME, cached)
                except OSError:
                    pass
        return etag

    def _read_meta(self, bucket: str, key: str, path: Path) -> dict:
        if _HAS_XATTR:
            try:
                return json.loads(os.getxattr(path, XATTR_NAME, follow_symlinks=False))
            except (OSError, ValueError):
                pass  # no attribute (sidecar file, or a file system without xattrs)
        try:
            return json.loads(self._meta_path(bucket, key).read_text())
        except (OSError, ValueError):
            return {}

    def head_object(self, bucket: str, key: str) -> ObjectInfo:
        path = self._object_path(bucket, key)
        if not path.is_file():
            raise NoSuchKey(f"s3://{bucket}/{key} does not exist")
        return self._info(bucket, key, path)

    def get_object(self, bucket: str, key: str, *, byte_range: tuple[int, int | None] | None = None) -> bytes:
        with self.open_object(bucket, key) as handle:
            if byte_range is None:
                return handle.read()
            start, end = byte_range
            size = os.fstat(handle.fileno()).st_size
            if start >= size or (end is not None and end < start):
                raise InvalidRange(f"range {start}-{end} is not satisfiable for an object of {size} bytes")
            handle.seek(start)
            length = (min(end, size - 1) - start + 1) if end is not None else size - start
            return handle.read(length)

    def open_object(self, bucket: str, key: str) -> BinaryIO:
        path = self._object_path(bucket, key)
        try:
            return path.open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise NoSuchKey(f"s3://{bucket}/{key} does not exist") from exc

    def delete_object(self, bucket: str, key: str) -> None:
        """Delete a key; like S3, deleting a missing key is not an error."""
        path = self._object_path(bucket, key)
        if path.is_file():
            path.unlink()
            self._meta_path(bucket, key).unlink(missing_ok=True)
            base = self._existing_bucket_dir(bucket)
            parent = path.parent
            while parent != base:
                try:
                    parent.rmdir()
                except OSError:
                    break
                parent = parent.parent

    def copy_object(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str) -> ObjectInfo:
        """A copy with the source's content type, metadata, headers and checksum. Like S3's CopyObject it
        is one part: it gets the plain MD5 as its ETag and no part sizes."""
        info = self.head_object(src_bucket, src_key)
        with self.open_object(src_bucket, src_key) as handle:
            return self.put_object(
                dst_bucket,
                dst_key,
                handle,
                content_type=info.content_type,
                metadata=info.metadata,
                headers=info.headers,
                checksum=dataclasses.replace(info.checksum, parts=()) if info.checksum else None,
            )

    def _walk_keys(self, bucket: str, prefix: str) -> Iterator[str]:
        """All keys under ``prefix`` in S3's (UTF-8 byte) order, descending only into matching folders."""
        base = self._existing_bucket_dir(bucket)
        folder, _, _ = prefix.rpartition("/")
        parts = folder.split("/") if folder else []
        if any(p in ("", ".", "..") or "\\" in p or "\x00" in p for p in parts):
            return  # no valid key lies under such a prefix; never walk outside the bucket
        start = base
        for part in parts:
            start = start / part
            if start.is_symlink() or not start.is_dir():
                return
        stack: list[tuple[Path, str]] = [(start, folder + "/" if folder else "")]
        entries: list[str] = []
        while stack:
            directory, rel = stack.pop()
            for entry in os.scandir(directory):
                name = rel + entry.name
                if entry.name.startswith(".tmp-") and entry.name.endswith(".part"):
                    continue
                if entry.is_symlink():
                    continue
                if entry.name == FOLDER_MARKER:  # the key ending in "/" that names this folder
                    if rel and entry.is_file() and rel.startswith(prefix):
                        entries.append(rel)
                    continue
                if entry.is_dir():
                    if (name + "/").startswith(prefix) or prefix.startswith(name + "/"):
                        stack.append((Path(entry.path), name + "/"))
                elif name.startswith(prefix):
                    entries.append(name)
        entries.sort(key=lambda k: k.encode("utf-8"))
        yield from entries

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
        # The continuation token is the last key or common prefix returned, base64-encoded.
        after = _decode_token(continuation_token) if continuation_token else (start_after or "")
        after_bytes = after.encode("utf-8")
        skip_prefix = _rolled_up(after, prefix, delimiter)
        if max_keys <= 0:
            return ListResult([], [], False, None, 0)
        objects: list[ObjectInfo] = []
        prefixes: list[str] = []
        last: str | None = None
        truncated = False
        base = self._existing_bucket_dir(bucket)
        for key in self._walk_keys(bucket, prefix):
            if after and key.encode("utf-8") <= after_bytes:
                continue
            if skip_prefix and key.startswith(skip_prefix):
                continue
            common = common_prefix(key, prefix, delimiter)
            if common is not None and prefixes and prefixes[-1] == common:
                continue
            if len(objects) + len(prefixes) >= max_keys:
                truncated = True
                break
            if common is not None:
                prefixes.append(common)
                last = common
            else:
                try:
                    objects.append(self._info(bucket, key, base.joinpath(*_file_parts(key))))
                except FileNotFoundError:  # deleted by another process while listing
                    continue
                last = key
        token = _encode_token(last) if truncated and last is not None else None
        return ListResult(objects, prefixes, truncated, token, len(objects) + len(prefixes))

    def iter_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        base = self._existing_bucket_dir(bucket)
        for key in self._walk_keys(bucket, prefix):
            try:
                yield self._info(bucket, key, base.joinpath(*_file_parts(key)))
            except FileNotFoundError:  # deleted by another process while listing
                continue


def _part_sizes(raw: object, size: int) -> tuple[int, ...]:
    """Recorded part sizes, when they are a list of non-negative integers adding up to ``size``."""
    if not isinstance(raw, list) or not raw:
        return ()
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in raw) or sum(raw) != size:
        return ()
    return tuple(raw)


def _rolled_up(after: str, prefix: str, delimiter: str | None) -> str | None:
    """The common prefix a listing resumes after (from a token, a marker or start-after), whose keys it
    must skip; None when ``after`` is a key. A key that merely ends in the delimiter (an ``a/`` object
    listed under the prefix ``a/``) rolled nothing up."""
    if not delimiter or not after.endswith(delimiter) or not after.startswith(prefix):
        return None
    return after if delimiter in after[len(prefix) :] else None


def _temp_name(folder: Path) -> str:
    """A fresh ``.tmp-*.part`` path in ``folder``, named before the file exists: an interrupt that
    arrives while the file is being created still leaves the caller a name to remove (with
    ``tempfile.mkstemp`` it arrived inside the call, and the file was left behind unnamed)."""
    return os.path.join(folder, f".tmp-{secrets.token_hex(8)}.part")


def _create_exclusive(name: str) -> int:
    return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = _temp_name(path.parent)
    try:
        with os.fdopen(_create_exclusive(tmp), "w") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def open_store(uri: str) -> ObjectStore:
    """A store for ``file:///path`` (or a plain path) or ``s3://`` (real S3 through boto3)."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        path = parsed.path if parsed.scheme == "file" else uri
        return LocalStore(path)
    if parsed.scheme == "s3":
        from sconeflow.store_s3 import S3Store

        return S3Store(uri)
    raise StoreError(f"unsupported store URI {uri!r}: use file:///path or s3://")


def parse_object_uri(uri: str, default_bucket: str | None = None) -> tuple[str, str]:
    """``s3://bucket/key`` or ``bucket/key`` -> (bucket, key)."""
    text = uri[len("s3://") :] if uri.startswith("s3://") else uri
    bucket, _, key = text.partition("/")
    if not bucket and default_bucket:
        bucket = default_bucket
    return bucket, key
