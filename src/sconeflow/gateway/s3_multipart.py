"""Multipart uploads for the S3 gateway: parts wait on disk under ``<home>/cache/s3-multipart/``.

The AWS CLI and boto3's transfer manager switch to multipart above 8 MB; completing an upload
concatenates the parts into one object in the store, recorded with S3's multipart ETag
(``<md5 of the part MD5s>-<number of parts>``). Upload ids are random, so processes never clash.
Each part ``NNNNN.part`` has a sidecar ``NNNNN.etag`` (its MD5 and size) so that ListParts need not read
the parts; ListMultipartUploads reads the ``upload.json`` of every upload in progress.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from sconeflow.store import NoSuchBucket, ObjectInfo, ObjectStore, validate_key

MIN_PART_BYTES = 5 * 1024 * 1024
MAX_PART_NUMBER = 10_000
_ID_RE = re.compile(r"^[0-9a-f]{32}$")


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

    def complete(self, upload: Upload, parts: list[tuple[int, str]]) -> ObjectInfo:
        folder = self._dir(upload.upload_id)
        if not parts:
            raise MultipartError(
                "MalformedXML",
                "The XML you provided was not well-formed or did not validate against our published schema",
                400,
            )
        numbers = [n for n, _ in parts]
        if numbers != sorted(set(numbers)):
            raise MultipartError(
                "InvalidPartOrder",
                "The list of parts was not in ascending order. The parts "
                "list must be specified in order by part number.",
                400,
            )
        files, digests = [], []
        for index, (number, etag) in enumerate(parts):
            path = folder / f"{number:05d}.part"
            digest = _md5(path) if path.is_file() else None
            if digest is None or digest != etag.strip('"'):
                raise MultipartError(
                    "InvalidPart",
                    "One or more of the specified parts could not be found. The "
                    "part may not have been uploaded, or the specified entity tag may not match "
                    "the part's entity tag.",
                    400,
                )
            if index < len(parts) - 1 and path.stat().st_size < MIN_PART_BYTES:
                raise MultipartError(
                    "EntityTooSmall",
                    "Your proposed upload is smaller than the minimum allowed object size.",
                    400,
                )
            files.append(path)
            digests.append(digest)
        with _Concatenated(files) as reader:
            info = self.store.put_object(
                upload.bucket,
                upload.key,
                reader,
                content_type=upload.content_type,
                metadata=upload.metadata,
                headers=upload.headers,
                etag=multipart_etag(digests),
            )
        shutil.rmtree(folder, ignore_errors=True)
        return info

    def abort(self, upload: Upload) -> None:
        shutil.rmtree(self._dir(upload.upload_id), ignore_errors=True)


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
