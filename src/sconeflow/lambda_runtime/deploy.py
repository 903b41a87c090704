"""Deploy a function from a zip, as ``CreateFunction`` / ``UpdateFunctionCode`` do on AWS.

The zip is checked (size, member names that would escape, zip bombs) and unpacked into
``<home>/lambda-code/<function>/<sha256 prefix>/``; the registry then points the function at that folder,
so its warm workers are replaced by ones running the new code.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from sconeflow.config import Settings
from sconeflow.lambda_runtime.errors import InvalidParameterValue, RequestTooLarge

MAX_ZIP_BYTES = 50 * 1024 * 1024  # AWS: 50 MB zipped for direct upload
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024  # AWS: 250 MB unzipped
MAX_FILES = 20_000


def code_root(settings: Settings) -> Path:
    return settings.home / "lambda-code"


def unpack_zip(settings: Settings, function: str, data: bytes) -> Path:
    """Unpack ``data`` (a zip) for ``function``; the same zip twice gives the same folder."""
    if len(data) > MAX_ZIP_BYTES:
        raise RequestTooLarge(f"the deployment package is {len(data)} bytes; the limit is {MAX_ZIP_BYTES}")
    digest = hashlib.sha256(data).hexdigest()[:16]
    target = code_root(settings) / function / digest
    facts = {"CodeSha256": base64.b64encode(hashlib.sha256(data).digest()).decode(), "CodeSize": len(data)}
    if target.is_dir():
        _record_package(target, facts)
        return target
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, ValueError) as exc:
        raise InvalidParameterValue(
            f"Could not unzip uploaded file. Please check your file, then try to upload again. ({exc})"
        ) from None
    if len(members) > MAX_FILES:
        raise InvalidParameterValue(
            f"the deployment package holds {len(members)} files; the limit is {MAX_FILES}"
        )
    total = sum(m.file_size for m in members)
    if total > MAX_UNZIPPED_BYTES:
        raise InvalidParameterValue(
            f"Unzipped size must be smaller than {MAX_UNZIPPED_BYTES} bytes (this package: {total})"
        )
    for member in members:
        path = PurePosixPath(member.filename)
        if (
            path.is_absolute()
            or ".." in path.parts
            or "\\" in member.filename
            or member.filename.startswith("/")
        ):
            raise InvalidParameterValue(f"the deployment package has an unsafe path: {member.filename!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=target.parent))
    try:
        written = 0
        for member in members:
            if member.is_dir():
                (staging / member.filename).mkdir(parents=True, exist_ok=True)
                continue
            destination = staging / member.filename
            destination.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as source, destination.open("wb") as out:
                while chunk := source.read(1 << 20):
                    written += len(chunk)
                    if written > MAX_UNZIPPED_BYTES:  # the header lied about the sizes
                        raise InvalidParameterValue(
                            "the deployment package unzips to more than its header says"
                        )
                    out.write(chunk)
        staging.replace(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _record_package(target, facts)
    return target


def _package_record(code_dir: Path) -> Path:
    return code_dir.parent / f"{code_dir.name}.package.json"  # beside the folder: not in the task root


def _record_package(code_dir: Path, facts: dict) -> None:
    record = _package_record(code_dir)
    tmp = record.with_name(f".{record.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(facts))
    tmp.replace(record)


def package_facts(code_dir: Path) -> tuple[str, int]:
    """``CodeSha256`` (base64 SHA-256) and ``CodeSize`` (bytes) of the zip a function's code came from, as
    Lambda reports them. Code registered as a folder (or the built-in handlers) has no zip: the hash then
    covers the folder's files (relative path and bytes, in order) and the size is their total."""
    try:
        facts = json.loads(_package_record(code_dir).read_text())
        return str(facts["CodeSha256"]), int(facts["CodeSize"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    digest, size = hashlib.sha256(), 0
    for path in sorted(p for p in code_dir.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        data = path.read_bytes()
        digest.update(path.relative_to(code_dir).as_posix().encode() + b"\0" + data)
        size += len(data)
    return base64.b64encode(digest.digest()).decode(), size
