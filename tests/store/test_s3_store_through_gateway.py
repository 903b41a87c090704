"""The gateway over the ``s3://`` store answers checksums and multipart parts as it does over the local
store: the same boto3 calls (put with a checksum, upload_file in parts, HeadObject ``ChecksumMode``,
GetObject ``PartNumber``, CopyObject with a new checksum algorithm) get the same answers from both, and
the object on S3 (moto) is a real multipart object with the ETag the client saw."""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from sconeflow.config import Settings
from sconeflow.gateway.client import boto3_client
from sconeflow.gateway.server import start_in_process

MIB = 1024 * 1024
PARTS = [b"a" * (5 * MIB), b"b" * (5 * MIB), b"the end"]
DATA = b"".join(PARTS)


def _crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def _sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _multipart_etag(parts: list[bytes]) -> str:
    joined = b"".join(hashlib.md5(p, usedforsecurity=False).digest() for p in parts)
    return f"{hashlib.md5(joined, usedforsecurity=False).hexdigest()}-{len(parts)}"


def _checksums(response: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in response.items() if k.startswith("Checksum")}


def _scenario(s3: Any, tmp_path: Path) -> dict[str, Any]:
    """What a boto3 client sees of checksums and parts; the same whatever store is behind the gateway."""
    from boto3.s3.transfer import TransferConfig

    seen: dict[str, Any] = {}
    s3.create_bucket(Bucket="scones")
    s3.put_object(Bucket="scones", Key="sha.txt", Body=b"hello", ChecksumSHA256=_sha256(b"hello"))
    seen["put"] = _checksums(s3.head_object(Bucket="scones", Key="sha.txt", ChecksumMode="ENABLED"))

    source = tmp_path / "big.bin"
    source.write_bytes(DATA)
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB, max_concurrency=2)
    s3.upload_file(str(source), "scones", "big.bin", Config=config, ExtraArgs={"ChecksumAlgorithm": "CRC32"})
    head = s3.head_object(Bucket="scones", Key="big.bin", ChecksumMode="ENABLED")
    seen["multipart"] = (head["ETag"], head["ContentLength"], _checksums(head))
    part = s3.get_object(Bucket="scones", Key="big.bin", PartNumber=3, ChecksumMode="ENABLED")
    seen["part 3"] = (part["Body"].read(), part["PartsCount"], part["ContentRange"], part["ETag"])
    part = s3.head_object(Bucket="scones", Key="big.bin", PartNumber=2)
    seen["part 2"] = (part["ContentLength"], part["PartsCount"], part["ContentRange"])
    seen["whole"] = s3.get_object(Bucket="scones", Key="big.bin")["Body"].read() == DATA

    copied = s3.copy_object(
        Bucket="scones", Key="copy.txt", CopySource="scones/sha.txt", ChecksumAlgorithm="CRC32"
    )
    seen["copy"] = (
        _checksums(copied["CopyObjectResult"]),
        _checksums(s3.head_object(Bucket="scones", Key="copy.txt", ChecksumMode="ENABLED")),
    )
    return seen


EXPECTED = {
    "put": {"ChecksumSHA256": _sha256(b"hello"), "ChecksumType": "FULL_OBJECT"},
    "part 3": (b"the end", 3, f"bytes {10 * MIB}-{10 * MIB + 6}/{len(DATA)}", f'"{_multipart_etag(PARTS)}"'),
    "part 2": (5 * MIB, 3, f"bytes {5 * MIB}-{10 * MIB - 1}/{len(DATA)}"),
    "whole": True,
    "copy": (
        {"ChecksumCRC32": _crc32(b"hello"), "ChecksumType": "FULL_OBJECT"},
        {"ChecksumCRC32": _crc32(b"hello"), "ChecksumType": "FULL_OBJECT"},
    ),
}


@pytest.fixture
def moto_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    moto = pytest.importorskip("moto")
    import boto3

    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    with moto.mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="root-bucket")
        yield client


def test_checksums_and_parts_through_the_gateway_match_the_local_store(
    settings: Settings, tmp_path: Path, moto_s3: Any
) -> None:
    answers = {}
    for name, uri in (("local", ""), ("s3", "s3://root-bucket/gateway")):
        home = tmp_path / name
        run_settings = replace(settings, home=home, store_uri=uri)
        run_settings.ensure_dirs()
        gateway = start_in_process(run_settings)
        try:
            work = tmp_path / f"{name}-files"
            work.mkdir()
            answers[name] = _scenario(boto3_client(run_settings, "s3", url=gateway.url), work)
        finally:
            gateway.close()
    assert answers["s3"] == answers["local"]
    etag, length, checksums = answers["s3"].pop("multipart")
    assert (etag, length) == (f'"{_multipart_etag(PARTS)}"', len(DATA))
    assert checksums["ChecksumCRC32"] in (  # boto3 asks for S3's composite CRC32 or the whole object's
        _crc32(DATA),
        f"{_crc32(b''.join(zlib.crc32(p).to_bytes(4, 'big') for p in PARTS))}-3",
    )
    assert answers["s3"] == EXPECTED

    # On S3 itself: a real multipart object with the ETag and part boundaries the client saw.
    raw = moto_s3.head_object(Bucket="root-bucket", Key="gateway/scones/big.bin")
    assert raw["ETag"] == f'"{_multipart_etag(PARTS)}"'
    raw = moto_s3.head_object(Bucket="root-bucket", Key="gateway/scones/big.bin", PartNumber=3)
    assert (raw["PartsCount"], raw["ContentLength"]) == (3, len(PARTS[2]))
