"""GetObject/HeadObject of one part (``PartNumber``) and CompleteMultipartUpload's checksums (the parts'
``x-amz-checksum-*`` values checked, S3's composite ``<base64>-N`` answered and kept), with real boto3."""

from __future__ import annotations

import base64
import hashlib
import zlib
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sconeflow.config import Settings
from sconeflow.gateway.client import boto3_client
from sconeflow.gateway.server import InProcessGateway, start_in_process

MIB = 1024 * 1024


@pytest.fixture
def s3(settings: Settings, gateway: InProcessGateway) -> Any:
    client = boto3_client(settings, "s3", url=gateway.url)
    client.create_bucket(Bucket="scones")
    return client


def _code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    return exc.value.response["Error"]["Code"], exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


def _crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def _composite(parts: list[bytes], digest: Any) -> str:
    """S3's composite checksum, computed here independently: the checksum of the parts' binary checksums."""
    return f"{base64.b64encode(digest(b''.join(digest(p) for p in parts))).decode()}-{len(parts)}"


def _crc32_bytes(data: bytes) -> bytes:
    return zlib.crc32(data).to_bytes(4, "big")


def _sha256_bytes(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


PARTS = [b"a" * (5 * MIB), bytes(range(256)) * (20 * 1024), b"tail of the object"]  # 5 MiB, 5 MiB, 18 B


def _upload(s3: Any, key: str, parts: list[bytes], **create: Any) -> dict[str, Any]:
    upload_id = s3.create_multipart_upload(Bucket="scones", Key=key, **create)["UploadId"]
    done = []
    for number, body in enumerate(parts, 1):
        algorithm = (
            {"ChecksumAlgorithm": create["ChecksumAlgorithm"]} if "ChecksumAlgorithm" in create else {}
        )
        answer = s3.upload_part(
            Bucket="scones", Key=key, UploadId=upload_id, PartNumber=number, Body=body, **algorithm
        )
        done.append(
            {
                "PartNumber": number,
                "ETag": answer["ETag"],
                **{k: v for k, v in answer.items() if k.startswith("Checksum")},
            }
        )
    return s3.complete_multipart_upload(
        Bucket="scones", Key=key, UploadId=upload_id, MultipartUpload={"Parts": done}
    )


def test_get_and_head_of_one_part_answer_that_parts_bytes(s3: Any, settings: Settings) -> None:
    etag = _upload(s3, "model.tar.gz", PARTS)["ETag"]
    whole = b"".join(PARTS)
    got = s3.get_object(Bucket="scones", Key="model.tar.gz", PartNumber=2)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["Body"].read() == PARTS[1]
    assert (got["ContentRange"], got["ContentLength"], got["PartsCount"], got["ETag"]) == (
        f"bytes {5 * MIB}-{10 * MIB - 1}/{len(whole)}",
        5 * MIB,
        3,
        etag,
    )
    head = s3.head_object(Bucket="scones", Key="model.tar.gz", PartNumber=3)
    assert (head["ResponseMetadata"]["HTTPStatusCode"], head["ContentLength"], head["PartsCount"]) == (
        206,
        len(PARTS[2]),
        3,
    )
    assert head["ContentRange"] == f"bytes {10 * MIB}-{len(whole) - 1}/{len(whole)}"
    assert "PartsCount" not in s3.head_object(Bucket="scones", Key="model.tar.gz")  # only with PartNumber
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="scones", Key="model.tar.gz", PartNumber=4)
    assert _code(exc) == ("InvalidPartNumber", 416)
    assert exc.value.response["Error"]["ActualPartCount"] == "3"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="scones", Key="model.tar.gz", PartNumber=1, Range="bytes=0-9")
    assert _code(exc) == ("InvalidRequest", 400)

    # The part sizes are kept with the object: another gateway process over the same home answers too.
    other = start_in_process(settings)
    try:
        again = boto3_client(settings, "s3", url=other.url)
        assert again.get_object(Bucket="scones", Key="model.tar.gz", PartNumber=3)["Body"].read() == PARTS[2]
    finally:
        other.close()

    # An overwrite is one part again: the old part sizes no longer describe the object.
    s3.put_object(Bucket="scones", Key="model.tar.gz", Body=whole[: 6 * MIB])
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket="scones", Key="model.tar.gz", PartNumber=2)
    assert _code(exc) == ("416", 416)  # HEAD: no body, so botocore sees the status only
    first = s3.get_object(Bucket="scones", Key="model.tar.gz", PartNumber=1)
    assert first["ContentLength"] == 6 * MIB and "PartsCount" not in first


def test_a_single_part_object_is_its_own_part_one(s3: Any) -> None:
    s3.put_object(Bucket="scones", Key="t.txt", Body=b"0123456789")
    got = s3.get_object(Bucket="scones", Key="t.txt", PartNumber=1)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert (got["Body"].read(), got["ContentRange"]) == (b"0123456789", "bytes 0-9/10")
    assert "PartsCount" not in got
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="scones", Key="t.txt", PartNumber=2)
    assert _code(exc) == ("InvalidPartNumber", 416)
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="scones", Key="missing.txt", PartNumber=1)
    assert _code(exc) == ("NoSuchKey", 404)


def test_upload_file_gets_s3s_composite_crc32(s3: Any, tmp_path: Any) -> None:
    from boto3.s3.transfer import TransferConfig

    data = b"".join(PARTS[:2]) + b"end"
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    config = TransferConfig(multipart_threshold=6 * MIB, multipart_chunksize=5 * MIB)
    s3.upload_file(str(source), "scones", "big.bin", Config=config)  # boto3 sends CRC32 by default
    expected = _composite([PARTS[0], PARTS[1], b"end"], _crc32_bytes)
    head = s3.head_object(Bucket="scones", Key="big.bin", ChecksumMode="ENABLED")
    assert (head["ChecksumCRC32"], head["ChecksumType"]) == (expected, "COMPOSITE")
    assert "ChecksumCRC32" not in s3.head_object(Bucket="scones", Key="big.bin")  # only when asked
    got = s3.get_object(Bucket="scones", Key="big.bin", ChecksumMode="ENABLED")
    assert got["ChecksumCRC32"] == expected and got["Body"].read() == data
    # One part with the checksum mode: that part's own CRC32, which botocore checks against the bytes.
    part = s3.get_object(Bucket="scones", Key="big.bin", PartNumber=2, ChecksumMode="ENABLED")
    assert (part["ChecksumCRC32"], part["Body"].read()) == (_crc32(PARTS[1]), PARTS[1])
    downloaded = tmp_path / "back.bin"
    s3.download_file("scones", "big.bin", str(downloaded))
    assert downloaded.read_bytes() == data


def test_complete_checks_each_parts_checksum_and_answers_the_composite(s3: Any) -> None:
    key = "checked.bin"
    upload_id = s3.create_multipart_upload(Bucket="scones", Key=key, ChecksumAlgorithm="CRC32")["UploadId"]
    parts = []
    for number, body in enumerate(PARTS[1:], 1):
        answer = s3.upload_part(
            Bucket="scones",
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=body,
            ChecksumAlgorithm="CRC32",
        )
        assert answer["ChecksumCRC32"] == _crc32(body)
        parts.append({"PartNumber": number, "ETag": answer["ETag"], "ChecksumCRC32": answer["ChecksumCRC32"]})
    wrong = [parts[0], {**parts[1], "ChecksumCRC32": _crc32(b"something else")}]
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(
            Bucket="scones", Key=key, UploadId=upload_id, MultipartUpload={"Parts": wrong}
        )
    assert _code(exc) == ("InvalidPart", 400)
    with pytest.raises(ClientError):
        s3.head_object(Bucket="scones", Key=key)  # nothing was written
    done = s3.complete_multipart_upload(
        Bucket="scones", Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    expected = _composite(PARTS[1:], _crc32_bytes)
    assert (done["ChecksumCRC32"], done["ChecksumType"]) == (expected, "COMPOSITE")
    head = s3.head_object(Bucket="scones", Key=key, ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == expected


def test_a_sha256_upload_gets_the_sha256_composite(s3: Any) -> None:
    done = _upload(s3, "sha.bin", PARTS[1:], ChecksumAlgorithm="SHA256")
    expected = _composite(PARTS[1:], _sha256_bytes)
    assert (done["ChecksumSHA256"], done["ChecksumType"]) == (expected, "COMPOSITE")
    head = s3.head_object(Bucket="scones", Key="sha.bin", ChecksumMode="ENABLED")
    assert (head["ChecksumSHA256"], head["ChecksumType"]) == (expected, "COMPOSITE")


def test_a_full_object_crc32_upload_is_checked_and_kept_whole(s3: Any, tmp_path: Any) -> None:
    from boto3.s3.transfer import TransferConfig

    data = b"".join(PARTS[:2]) + b"end"
    source = tmp_path / "full.bin"
    source.write_bytes(data)
    config = TransferConfig(multipart_threshold=6 * MIB, multipart_chunksize=5 * MIB)
    # A checksum of the whole file makes s3transfer create the upload with ChecksumType FULL_OBJECT.
    s3.upload_file(
        str(source), "scones", "full.bin", Config=config, ExtraArgs={"ChecksumCRC32": _crc32(data)}
    )
    head = s3.head_object(Bucket="scones", Key="full.bin", ChecksumMode="ENABLED")
    assert (head["ChecksumCRC32"], head["ChecksumType"]) == (_crc32(data), "FULL_OBJECT")
    assert s3.get_object(Bucket="scones", Key="full.bin", ChecksumMode="ENABLED")["Body"].read() == data

    with pytest.raises(Exception) as exc:  # s3transfer re-raises the ClientError of the completion
        s3.upload_file(
            str(source), "scones", "bad.bin", Config=config, ExtraArgs={"ChecksumCRC32": _crc32(b"x")}
        )
    assert "BadDigest" in str(exc.value)
    assert "Contents" not in s3.list_objects_v2(Bucket="scones", Prefix="bad")


def _crc32c_bytes(data: bytes) -> bytes:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return (crc ^ 0xFFFFFFFF).to_bytes(4, "big")


def test_a_crc32c_upload_gets_the_crc32c_composite(s3: Any) -> None:
    assert _crc32c_bytes(b"123456789").hex() == "e3069283"  # the CRC-32C check value
    body = b"small enough to checksum here"
    part = base64.b64encode(_crc32c_bytes(body)).decode()
    upload_id = s3.create_multipart_upload(Bucket="scones", Key="c.bin", ChecksumAlgorithm="CRC32C")[
        "UploadId"
    ]
    etag = s3.upload_part(
        Bucket="scones", Key="c.bin", UploadId=upload_id, PartNumber=1, Body=body, ChecksumCRC32C=part
    )["ETag"]
    done = s3.complete_multipart_upload(
        Bucket="scones",
        Key="c.bin",
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag, "ChecksumCRC32C": part}]},
    )
    assert (done["ChecksumCRC32C"], done["ChecksumType"]) == (_composite([body], _crc32c_bytes), "COMPOSITE")
