"""Multipart uploads for the S3 gateway: parts wait on disk under ``<home>/cache/s3-multipart/``.

The AWS CLI and boto3's transfer manager switch to multipart above 8 MB; completing an upload
concatenates the parts into one object in the store, recorded with S3's multipart ETag
(``<md5 of the part MD5s>-<number of parts>``). Upload ids are random, so processes never clash.
Each part ``NNNNN.part`` has a sidecar ``NNNNN.etag`` (its MD5 and size) so that ListParts need not read
the parts; ListMultipartUploads reads the ``upload.json`` of every upload in progress.

A completed upload's part sizes (GetObject/HeadObject ``partNumber``) and checksum (the composite
``<base64>-N`` S3 keeps for an upload created with a ``ChecksumAlgorithm``, with each part's) are kept with
the object in the local store's metadata (:class:`~sconeflow.store.ObjectInfo` ``part_sizes`` and
``checksum``), so an overwrite, a copy or a delete carries or drops them with the object. Before that they
were kept in ``objects/<sha1 of bucket and key>.json`` here: such a record is still read for an object that
has a multipart ETag and no part sizes of its own (one completed by an older sconeflow) while it names the
object's ETag and size. A record that no longer does (its object overwritten, copied over or deleted) is
removed when it is read, when an upload completes to its key, and by :meth:`MultipartUploads.sweep_legacy`
when a gateway starts serving S3; the folder goes with the last one.
On the ``s3://`` store backend the real S3 object carries both (a real multipart upload of the same parts).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol

from sconeflow.store import (
    LocalStore,
    NoSuchBucket,
    ObjectChecksum,
    ObjectInfo,
    ObjectStore,
    StoreError,
    validate_key,
)

MIN_PART_BYTES = 5 * 1024 * 1024
MAX_PART_NUMBER = 10_000
_ID_RE = re.compile(r"^[0-9a-f]{32}$")


LEGACY_RECORDS = "objects"  # where part sizes were kept before they moved into the store's metadata


def keeps_checksums(store: ObjectStore) -> bool:
    """Whether ``store.put_object`` keeps an S3 checksum and part sizes with the object (the local store;
    the ``s3://`` store, where S3 carries them: see :mod:`sconeflow.store_s3`)."""
    from sconeflow.store_s3 import S3Store

    return isinstance(store, LocalStore | S3Store)


class MultipartError(Exception):
    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Upload:
    upload_id: str
    bucket: str
    key: str
    content_type: str | None
    metadata: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)
    checksum_algorithm: str | None = None  # CreateMultipartUpload's x-amz-checksum-algorithm
    checksum_type: str | None = None  # and its x-amz-checksum-type (COMPOSITE, FULL_OBJECT)


@dataclass(frozen=True)
class CompletedPart:
    """One ``<Part>`` of a CompleteMultipartUpload request."""

    number: int
    etag: str
    checksums: dict[str, str] = field(default_factory=dict)  # {"ChecksumCRC32": base64, ...} as named


@dataclass(frozen=True)
class ObjectParts:
    """What S3 keeps of a completed multipart object besides its bytes."""

    etag: str  # the multipart ETag: the record holds while the object has it
    sizes: list[int]
    checksum_algorithm: str | None = None  # "CRC32", ... when the upload was created with one
    checksum_type: str | None = None  # "COMPOSITE" or "FULL_OBJECT"
    checksum: str | None = None  # the object's: "<base64>-N" (COMPOSITE) or a plain base64 (FULL_OBJECT)
    part_checksums: list[str | None] = field(default_factory=list)  # each part's, of checksum_algorithm

    def part_range(self, number: int) -> tuple[int, int]:
        """The first and last byte offsets of part ``number`` (1-based; the last is first - 1 when empty)."""
        start = sum(self.sizes[: number - 1])
        return start, start + self.sizes[number - 1] - 1


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...


class _Crc32:
    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes) -> None:
        self.value = zlib.crc32(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


# The checksum algorithms this module computes over part data, by S3's name.
HASHERS: dict[str, Callable[[], Hasher]] = {
    "CRC32": _Crc32,
    "SHA1": lambda: hashlib.sha1(usedforsecurity=False),
    "SHA256": hashlib.sha256,
}
# S3 combines part checksums into a COMPOSITE object checksum for these (CRC64NVME is FULL_OBJECT only).
COMPOSITE_ALGORITHMS = frozenset({"CRC32", "CRC32C", "SHA1", "SHA256"})


def _crc32c(data: bytes) -> bytes:
    """CRC-32C (Castagnoli), bit by bit: only ever run over a few bytes per part (composite checksums)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return (crc ^ 0xFFFFFFFF).to_bytes(4, "big")


def composite_checksum(algorithm: str, part_checksums: list[str]) -> str:
    """S3's checksum of a multipart object created with a COMPOSITE ``algorithm``: the checksum of the
    parts' binary checksums joined in part order, base64, then ``-`` and the number of parts."""
    joined = b"".join(base64.b64decode(value) for value in part_checksums)
    if algorithm == "CRC32C":
        digest = _crc32c(joined)
    else:
        hasher = HASHERS[algorithm]()
        hasher.update(joined)
        digest = hasher.digest()
    return f"{base64.b64encode(digest).decode()}-{len(part_checksums)}"


def checksum_of(algorithm: str, data: bytes) -> str | None:
    """The base64 ``algorithm`` checksum of ``data``; None for one this module cannot compute."""
    if algorithm not in HASHERS:
        return None
    hasher = HASHERS[algorithm]()
    hasher.update(data)
    return base64.b64encode(hasher.digest()).decode()


@dataclass(frozen=True)
class PartInfo:
    number: int
    etag: str  # hex MD5, unquoted
    size: int
    last_modified: datetime
    checksums: dict[str, str] = field(default_factory=dict)  # {"ChecksumCRC32": base64, ...}


@dataclass(frozen=True)
class UploadInfo:
    upload: Upload
    initiated: datetime


class MultipartUploads:
    def __init__(self, root: Path, store: ObjectStore) -> None:
        self.root = root
        self.store = store

    def _dir(self, upload_id: str) -> Path:
        if not _ID_RE.match(upload_id):
            raise _no_such_upload()
        return self.root / upload_id

    def create(
        self,
        bucket: str,
        key: str,
        content_type: str | None,
        metadata: dict[str, str],
        headers: dict[str, str] | None = None,
        *,
        checksum_algorithm: str | None = None,
        checksum_type: str | None = None,
    ) -> Upload:
        validate_key(key)
        if not self.store.bucket_exists(bucket):
            raise NoSuchBucket(f"bucket {bucket!r} does not exist")
        upload = Upload(
            uuid.uuid4().hex,
            bucket,
            key,
            content_type,
            dict(metadata),
            dict(headers or {}),
            checksum_algorithm,
            checksum_type,
        )
        folder = self._dir(upload.upload_id)
        folder.mkdir(parents=True)
        (folder / "upload.json").write_text(json.dumps(upload.__dict__))
        return upload

    def get(self, upload_id: str, bucket: str, key: str) -> Upload:
        folder = self._dir(upload_id)
        try:
            upload = Upload(**json.loads((folder / "upload.json").read_text()))
        except (OSError, ValueError, TypeError):
            raise _no_such_upload() from None
        if (upload.bucket, upload.key) != (bucket, key):
            raise _no_such_upload()
        return upload

    def put_part(
        self, upload: Upload, number: int, data: bytes, checksums: dict[str, str] | None = None
    ) -> str:
        if not 1 <= number <= MAX_PART_NUMBER:
            raise MultipartError(
                "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive", 400
            )
        folder = self._dir(upload.upload_id)
        if not folder.is_dir():  # completed or aborted since ``get``
            raise _no_such_upload()
        etag = hashlib.md5(data, usedforsecurity=False).hexdigest()
        _write_atomically(folder, f"{number:05d}.part", data)
        record = json.dumps({"etag": etag, "size": len(data), "checksums": checksums or {}}).encode()
        _write_atomically(folder, f"{number:05d}.etag", record)
        return etag

    def list_parts(self, upload: Upload, marker: int, max_parts: int) -> tuple[list[PartInfo], bool]:
        """The parts numbered above ``marker``, at most ``max_parts`` of them, in part-number order, and
        whether more follow."""
        folder = self._dir(upload.upload_id)
        try:
            names = os.listdir(folder)
        except OSError:
            raise _no_such_upload() from None
        numbers = sorted(
            number
            for name in names
            if name.endswith(".part") and name[:-5].isdigit() and (number := int(name[:-5])) > marker
        )
        parts = []
        for number in numbers[:max_parts]:
            part = self._part(folder, number)
            if part is not None:
                parts.append(part)
        return parts, len(numbers) > max_parts

    @staticmethod
    def _part(folder: Path, number: int) -> PartInfo | None:
        path = folder / f"{number:05d}.part"
        try:
            stat = path.stat()
        except OSError:  # aborted or completed meanwhile
            return None
        try:
            recorded = json.loads((folder / f"{number:05d}.etag").read_text())
            if recorded["size"] != stat.st_size:  # the part is being replaced: its record comes next
                raise ValueError(recorded)
            etag, checksums = recorded["etag"], dict(recorded.get("checksums") or {})
        except (OSError, ValueError, KeyError, TypeError):
            try:
                etag, checksums = _md5(path), {}
            except OSError:
                return None
        return PartInfo(number, etag, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC), checksums)

    def list_uploads(self, bucket: str) -> list[UploadInfo]:
        """Every upload in progress in ``bucket``, sorted as S3 lists them: by key, then by initiation."""
        if not self.store.bucket_exists(bucket):
            raise NoSuchBucket(f"bucket {bucket!r} does not exist")
        found = []
        try:
            folders = list(self.root.iterdir())
        except OSError:
            folders = []
        for folder in folders:
            if not _ID_RE.match(folder.name):
                continue
            record = folder / "upload.json"
            try:
                upload = Upload(**json.loads(record.read_text()))
                initiated = datetime.fromtimestamp(record.stat().st_mtime, UTC)
            except (OSError, ValueError, TypeError):
                continue
            if upload.bucket == bucket:
                found.append(UploadInfo(upload, initiated))
        found.sort(key=lambda info: (info.upload.key, info.initiated, info.upload.upload_id))
        return found

    def complete(
        self, upload: Upload, parts: list[CompletedPart], full_object_checksum: str | None = None
    ) -> tuple[ObjectInfo, ObjectParts]:
        """Join ``parts`` into the object. Each part's ETag, and each ``Checksum*`` value the request names
        for it, must match the part uploaded (InvalidPart); the object gets S3's multipart ETag and, for
        an upload created with a checksum algorithm, S3's checksum of it (COMPOSITE: of the parts'
        checksums; FULL_OBJECT: the CRC of the whole object, which must match ``full_object_checksum``, the
        request's ``x-amz-checksum-<algorithm>``, when given: BadDigest; CRC32C and CRC64NVME, which this
        module cannot compute, are taken as given, as PutObject takes them)."""
        folder = self._dir(upload.upload_id)
        if not parts:
            raise MultipartError(
                "MalformedXML",
                "The XML you provided was not well-formed or did not validate against our published schema",
                400,
            )
        numbers = [part.number for part in parts]
        if numbers != sorted(set(numbers)):
            raise MultipartError(
                "InvalidPartOrder",
                "The list of parts was not in ascending order. The parts "
                "list must be specified in order by part number.",
                400,
            )
        algorithm = upload.checksum_algorithm
        checksum_type = (upload.checksum_type or "COMPOSITE") if algorithm else None
        whole = HASHERS[algorithm]() if checksum_type == "FULL_OBJECT" and algorithm == "CRC32" else None
        files, digests, sizes, part_checksums = [], [], [], []
        for index, part in enumerate(parts):
            path = folder / f"{part.number:05d}.part"
            stored = self._stored_checksums(folder, part.number)
            wanted = {name[len("Checksum") :] for name in part.checksums}
            if algorithm:
                wanted.add(algorithm)
            computable = sorted(a for a in wanted if f"Checksum{a}" not in stored and a in HASHERS)
            found = _digest_file(path, computable, whole) if path.is_file() else None
            if found is None or found[0] != part.etag.strip('"'):
                raise _invalid_part()
            digest, computed = found
            checksums = {**computed, **stored}
            for name, value in part.checksums.items():
                if name in checksums and checksums[name] != value:
                    raise _invalid_part()
            size = path.stat().st_size
            if index < len(parts) - 1 and size < MIN_PART_BYTES:
                raise MultipartError(
                    "EntityTooSmall",
                    "Your proposed upload is smaller than the minimum allowed object size.",
                    400,
                )
            files.append(path)
            digests.append(digest)
            sizes.append(size)
            part_checksums.append(checksums.get(f"Checksum{algorithm}") if algorithm else None)
        checksum = None
        if checksum_type == "COMPOSITE" and algorithm in COMPOSITE_ALGORITHMS and all(part_checksums):
            checksum = composite_checksum(algorithm, [value for value in part_checksums if value])
        elif whole is not None:
            checksum = base64.b64encode(whole.digest()).decode()
            if full_object_checksum and full_object_checksum != checksum:
                raise MultipartError(
                    "BadDigest", f"The {algorithm} you specified did not match the calculated checksum.", 400
                )
        elif checksum_type == "FULL_OBJECT" and full_object_checksum:
            checksum = full_object_checksum
        record = ObjectParts(
            multipart_etag(digests),
            sizes,
            algorithm,
            checksum_type if checksum else None,
            checksum,
            part_checksums if algorithm else [],
        )
        details: dict = {}
        if keeps_checksums(self.store):
            details["part_sizes"] = sizes
            if checksum and algorithm and checksum_type:
                parts_of = tuple(part_checksums) if checksum_type == "COMPOSITE" else ()
                details["checksum"] = ObjectChecksum(algorithm, checksum, checksum_type, parts_of)
        with _Concatenated(files) as reader:
            info = self.store.put_object(
                upload.bucket,
                upload.key,
                reader,
                content_type=upload.content_type,
                metadata=upload.metadata,
                headers=upload.headers,
                etag=record.etag,
                **details,
            )
        self._drop_legacy_record(upload.bucket, upload.key)
        shutil.rmtree(folder, ignore_errors=True)
        return info, record

    @staticmethod
    def _stored_checksums(folder: Path, number: int) -> dict[str, str]:
        try:
            recorded = json.loads((folder / f"{number:05d}.etag").read_text())
            return {str(k): str(v) for k, v in (recorded.get("checksums") or {}).items()}
        except (OSError, ValueError, AttributeError):
            return {}

    def object_parts(self, info: ObjectInfo) -> ObjectParts | None:
        """The parts of ``info``'s object when it is a completed multipart upload, else None (a single-part
        object). They come from the object's own metadata; for an object completed before part sizes were
        kept there, from its old record under ``objects/`` while that names the same ETag and size."""
        if info.part_sizes:
            checksum = info.checksum
            return ObjectParts(
                info.etag,
                list(info.part_sizes),
                checksum.algorithm if checksum else None,
                checksum.type if checksum else None,
                checksum.value if checksum else None,
                list(checksum.parts) if checksum else [],
            )
        if "-" not in info.etag:  # only a multipart ETag can have an old record: no file is opened
            return None
        record = self._legacy_record(info)
        if record is None:
            self._drop_legacy_record(info.bucket, info.key)  # a leftover that describes no object now
        return record

    def sweep_legacy(self) -> None:
        """Remove the old ``objects/`` records that describe no object any more (see the module)."""
        folder = self.root / LEGACY_RECORDS
        try:
            names = os.listdir(folder)
        except OSError:
            return  # the usual case: nothing from before
        for name in names:
            try:
                raw = json.loads((folder / name).read_text())
                info = self.store.head_object(raw["bucket"], raw["key"])
            except (OSError, ValueError, KeyError, TypeError, StoreError):  # unreadable, or no object now
                info = None
            if info is None or info.part_sizes or self._legacy_record(info) is None:
                (folder / name).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            folder.rmdir()

    def _drop_legacy_record(self, bucket: str, key: str) -> None:
        folder = self.root / LEGACY_RECORDS
        try:
            (folder / _record_name(bucket, key)).unlink(missing_ok=True)
            folder.rmdir()  # the last one gone: no empty folder is left behind
        except OSError:
            pass

    def _legacy_record(self, info: ObjectInfo) -> ObjectParts | None:
        try:
            raw = json.loads((self.root / LEGACY_RECORDS / _record_name(info.bucket, info.key)).read_text())
            record = ObjectParts(
                raw["etag"],
                [int(size) for size in raw["sizes"]],
                raw.get("checksum_algorithm"),
                raw.get("checksum_type"),
                raw.get("checksum"),
                list(raw.get("part_checksums") or []),
            )
            same = (raw["bucket"], raw["key"], record.etag) == (info.bucket, info.key, info.etag)
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return record if same and sum(record.sizes) == info.size else None

    def abort(self, upload: Upload) -> None:
        shutil.rmtree(self._dir(upload.upload_id), ignore_errors=True)


def _invalid_part() -> MultipartError:
    return MultipartError(
        "InvalidPart",
        "One or more of the specified parts could not be found. The "
        "part may not have been uploaded, or the specified entity tag may not match "
        "the part's entity tag.",
        400,
    )


def _record_name(bucket: str, key: str) -> str:
    return hashlib.sha1(f"{bucket}/{key}".encode(), usedforsecurity=False).hexdigest() + ".json"


def _digest_file(
    path: Path, algorithms: list[str], whole: Hasher | None
) -> tuple[str, dict[str, str]] | None:
    """The part's hex MD5 and its base64 ``algorithms`` checksums (``{"ChecksumCRC32": ...}``) in one
    read; ``whole`` is fed the bytes too. None when the part is gone."""
    md5 = hashlib.md5(usedforsecurity=False)
    hashers = {algorithm: HASHERS[algorithm]() for algorithm in algorithms}
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                md5.update(chunk)
                for hasher in hashers.values():
                    hasher.update(chunk)
                if whole is not None:
                    whole.update(chunk)
    except OSError:
        return None
    return md5.hexdigest(), {
        f"Checksum{algorithm}": base64.b64encode(hasher.digest()).decode()
        for algorithm, hasher in hashers.items()
    }


def _no_such_upload() -> MultipartError:
    return MultipartError(
        "NoSuchUpload",
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been "
        "aborted or completed.",
        404,
    )


def multipart_etag(part_md5s: list[str]) -> str:
    """S3's ETag of a completed multipart upload: the MD5 of the parts' binary MD5 digests, joined in
    part order, then ``-`` and the number of parts (not the MD5 of the whole object)."""
    joined = b"".join(bytes.fromhex(md5) for md5 in part_md5s)
    return f"{hashlib.md5(joined, usedforsecurity=False).hexdigest()}-{len(part_md5s)}"


def _write_atomically(folder: Path, name: str, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, folder / name)


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class _Concatenated:
    """A read-only stream over several files, one after another."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = list(paths)
        self.current: BinaryIO | None = None

    def read(self, size: int = -1) -> bytes:
        while True:
            if self.current is None:
                if not self.paths:
                    return b""
                self.current = self.paths.pop(0).open("rb")
            chunk = self.current.read(size)
            if chunk:
                return chunk
            self.current.close()
            self.current = None

    def __enter__(self) -> _Concatenated:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.current is not None:
            self.current.close()
