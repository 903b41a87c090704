"""Checksums and part sizes kept with the object (the store's per-object metadata), with real boto3: a
PutObject's or POST Object's ``x-amz-checksum-*`` answered by HeadObject/GetObject with
``ChecksumMode=ENABLED``, copied by CopyObject (or computed anew for ``x-amz-checksum-algorithm``), never
answered for a byte range, and a multipart object's part sizes kept without a gateway cache file."""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from typing import Any

import pytest
import urllib3
from botocore.config import Config
from botocore.exceptions import ClientError

from sconeflow.config import Settings
from sconeflow.gateway.client import boto3_client
from sconeflow.gateway.server import InProcessGateway, start_in_process
from sconeflow.store import LocalStore

MIB = 1024 * 1024
BODY = b"scones, jam and clotted cream " * 100


@pytest.fixture
def s3(settings: Settings, gateway: InProcessGateway) -> Any:
    client = boto3_client(settings, "s3", url=gateway.url)
    client.create_bucket(Bucket="scones")
    return client


def _crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def _sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _checksums(answer: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in answer.items() if k.startswith("Checksum")}


def _upload(s3: Any, key: str, parts: list[bytes], **create: Any) -> dict[str, Any]:
    upload_id = s3.create_multipart_upload(Bucket="scones", Key=key, **create)["UploadId"]
    done = []
    for number, body in enumerate(parts, 1):
        answer = s3.upload_part(Bucket="scones", Key=key, UploadId=upload_id, PartNumber=number, Body=body)
        done.append({"PartNumber": number, "ETag": answer["ETag"], **_checksums(answer)})
    return s3.complete_multipart_upload(
        Bucket="scones", Key=key, UploadId=upload_id, MultipartUpload={"Parts": done}
    )


def test_a_put_objects_checksum_is_kept_and_answered_when_asked(
    s3: Any, settings: Settings, gateway: InProcessGateway
) -> None:
    s3.put_object(Bucket="scones", Key="plain.txt", Body=BODY)  # boto3 sends a CRC32 by default
    head = s3.head_object(Bucket="scones", Key="plain.txt", ChecksumMode="ENABLED")
    assert _checksums(head) == {"ChecksumCRC32": _crc32(BODY), "ChecksumType": "FULL_OBJECT"}
    assert _checksums(s3.head_object(Bucket="scones", Key="plain.txt")) == {}  # only when asked
    got = s3.get_object(Bucket="scones", Key="plain.txt", ChecksumMode="ENABLED")
    assert (got["ChecksumCRC32"], got["ChecksumType"], got["Body"].read()) == (
        _crc32(BODY),
        "FULL_OBJECT",
        BODY,
    )
    # Part 1 of a single-part object is the whole object, with its checksum.
    part = s3.get_object(Bucket="scones", Key="plain.txt", PartNumber=1, ChecksumMode="ENABLED")
    assert (part["ChecksumCRC32"], part["Body"].read()) == (_crc32(BODY), BODY)

    # The algorithm the client chose, and a value the gateway cannot check (CRC32C), kept as given.
    s3.put_object(Bucket="scones", Key="sha.txt", Body=BODY, ChecksumAlgorithm="SHA256")
    head = s3.head_object(Bucket="scones", Key="sha.txt", ChecksumMode="ENABLED")
    assert _checksums(head) == {"ChecksumSHA256": _sha256(BODY), "ChecksumType": "FULL_OBJECT"}
    s3.put_object(Bucket="scones", Key="c.txt", Body=b"123456789", ChecksumCRC32C="4waSgw==")
    assert (
        s3.head_object(Bucket="scones", Key="c.txt", ChecksumMode="ENABLED")["ChecksumCRC32C"] == "4waSgw=="
    )

    # Kept with the object: another gateway process over the same home answers it too.
    other = start_in_process(settings)
    try:
        again = boto3_client(settings, "s3", url=other.url)
        head = again.head_object(Bucket="scones", Key="sha.txt", ChecksumMode="ENABLED")
        assert head["ChecksumSHA256"] == _sha256(BODY)
    finally:
        other.close()

    # An overwrite without a checksum leaves none: the old one described other bytes.
    quiet = boto3_client(
        settings,
        "s3",
        url=gateway.url,
        config=Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required"),
    )
    quiet.put_object(Bucket="scones", Key="sha.txt", Body=b"other bytes")
    assert _checksums(s3.head_object(Bucket="scones", Key="sha.txt", ChecksumMode="ENABLED")) == {}


def test_a_byte_range_gets_no_whole_object_checksum(s3: Any, tmp_path: Any) -> None:
    from boto3.s3.transfer import TransferConfig

    s3.put_object(Bucket="scones", Key="plain.txt", Body=BODY)
    # botocore asks for checksums on every GetObject and checks the one it gets against the bytes: a
    # whole-object checksum on a ranged answer would fail the download.
    got = s3.get_object(Bucket="scones", Key="plain.txt", Range="bytes=0-9", ChecksumMode="ENABLED")
    assert (got["Body"].read(), _checksums(got)) == (BODY[:10], {})
    head = s3.head_object(Bucket="scones", Key="plain.txt", Range="bytes=0-9", ChecksumMode="ENABLED")
    assert _checksums(head) == {}

    data = b"x" * (5 * MIB) + b"the end"
    source = tmp_path / "full.bin"
    source.write_bytes(data)
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    s3.upload_file(
        str(source), "scones", "full.bin", Config=config, ExtraArgs={"ChecksumCRC32": _crc32(data)}
    )
    assert s3.head_object(Bucket="scones", Key="full.bin", ChecksumMode="ENABLED")["ChecksumCRC32"] == _crc32(
        data
    )
    got = s3.get_object(Bucket="scones", Key="full.bin", Range="bytes=10-19")
    assert (got["Body"].read(), _checksums(got)) == (data[10:20], {})


def test_a_post_objects_checksum_is_kept(s3: Any) -> None:
    value = _sha256(BODY)
    post = s3.generate_presigned_post(
        "scones",
        "form.bin",
        Fields={"x-amz-checksum-sha256": value},
        Conditions=[{"x-amz-checksum-sha256": value}],
    )
    fields = {**post["fields"], "file": ("form.bin", BODY, "application/octet-stream")}
    response = urllib3.PoolManager().request("POST", post["url"], fields=fields, redirect=False)
    assert response.status == 204
    head = s3.head_object(Bucket="scones", Key="form.bin", ChecksumMode="ENABLED")
    assert _checksums(head) == {"ChecksumSHA256": value, "ChecksumType": "FULL_OBJECT"}


def test_copy_object_keeps_the_checksum_or_computes_the_one_asked_for(s3: Any) -> None:
    s3.put_object(Bucket="scones", Key="src.txt", Body=BODY, ChecksumAlgorithm="SHA256")
    sha = {"ChecksumSHA256": _sha256(BODY), "ChecksumType": "FULL_OBJECT"}

    copied = s3.copy_object(
        Bucket="scones", Key="copy.txt", CopySource={"Bucket": "scones", "Key": "src.txt"}
    )
    assert _checksums(copied["CopyObjectResult"]) == sha
    assert _checksums(s3.head_object(Bucket="scones", Key="copy.txt", ChecksumMode="ENABLED")) == sha
    s3.copy_object(
        Bucket="scones",
        Key="replaced.txt",
        CopySource={"Bucket": "scones", "Key": "src.txt"},
        MetadataDirective="REPLACE",
        Metadata={"flavour": "plain"},
    )
    head = s3.head_object(Bucket="scones", Key="replaced.txt", ChecksumMode="ENABLED")
    assert (_checksums(head), head["Metadata"]) == (sha, {"flavour": "plain"})

    # x-amz-checksum-algorithm: the copy gets that algorithm's checksum of its bytes instead; this also
    # makes copying an object onto itself legal (S3's way to change an object's checksum algorithm).
    s3.put_object(Bucket="scones", Key="src.txt", Body=BODY, ChecksumAlgorithm="SHA256", Metadata={"a": "1"})
    answer = s3.copy_object(
        Bucket="scones",
        Key="src.txt",
        CopySource={"Bucket": "scones", "Key": "src.txt"},
        ChecksumAlgorithm="CRC32",
    )
    crc = {"ChecksumCRC32": _crc32(BODY), "ChecksumType": "FULL_OBJECT"}
    assert _checksums(answer["CopyObjectResult"]) == crc
    head = s3.head_object(Bucket="scones", Key="src.txt", ChecksumMode="ENABLED")
    assert (_checksums(head), head["Metadata"]) == (crc, {"a": "1"})
    assert s3.get_object(Bucket="scones", Key="src.txt")["Body"].read() == BODY
    with pytest.raises(ClientError) as exc:  # without a new algorithm, a copy onto itself stays illegal
        s3.copy_object(Bucket="scones", Key="src.txt", CopySource={"Bucket": "scones", "Key": "src.txt"})
    assert exc.value.response["Error"]["Code"] == "InvalidRequest"


def test_a_multipart_objects_part_sizes_are_kept_with_it_not_in_a_cache_file(
    s3: Any, settings: Settings
) -> None:
    parts = [b"a" * (5 * MIB), b"tail"]
    done = _upload(s3, "mp.bin", parts, ChecksumAlgorithm="CRC32")
    assert not (settings.cache_dir / "s3-multipart" / "objects").exists()
    got = s3.get_object(Bucket="scones", Key="mp.bin", PartNumber=2, ChecksumMode="ENABLED")
    assert (got["PartsCount"], got["Body"].read(), got["ChecksumCRC32"]) == (2, b"tail", _crc32(b"tail"))
    head = s3.head_object(Bucket="scones", Key="mp.bin", ChecksumMode="ENABLED")
    assert (head["ChecksumCRC32"], head["ChecksumType"]) == (done["ChecksumCRC32"], "COMPOSITE")

    # A copy is one part with the plain MD5, as on S3; the composite checksum goes with it.
    s3.copy_object(Bucket="scones", Key="mp-copy.bin", CopySource={"Bucket": "scones", "Key": "mp.bin"})
    copy = s3.head_object(Bucket="scones", Key="mp-copy.bin", PartNumber=1, ChecksumMode="ENABLED")
    assert "PartsCount" not in copy and "-" not in copy["ETag"].strip('"')
    assert copy["ContentLength"] == 5 * MIB + 4
    # Deleted and written again as one part: nothing of the old parts is left to answer.
    s3.delete_object(Bucket="scones", Key="mp.bin")
    s3.put_object(Bucket="scones", Key="mp.bin", Body=b"".join(parts))
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="scones", Key="mp.bin", PartNumber=2)
    assert exc.value.response["Error"]["Code"] == "InvalidPartNumber"


def test_an_object_completed_by_an_older_sconeflow_keeps_its_parts_from_the_old_record(
    s3: Any, settings: Settings
) -> None:
    """Before part sizes were kept with the object they were in ``cache/s3-multipart/objects/``: such a
    record still answers for its object, and goes away once the object is overwritten."""
    store = LocalStore(settings.buckets_dir)
    etag = "0123456789abcdef0123456789abcdef-2"
    store.put_object("scones", "old.bin", b"first" + b"second", etag=etag)  # no part sizes of its own
    records = settings.cache_dir / "s3-multipart" / "objects"
    records.mkdir(parents=True)
    record = records / (hashlib.sha1(b"scones/old.bin").hexdigest() + ".json")
    record.write_text(
        json.dumps(
            {
                "bucket": "scones",
                "key": "old.bin",
                "etag": etag,
                "sizes": [5, 6],
                "checksum_algorithm": "CRC32",
                "checksum_type": "COMPOSITE",
                "checksum": "AAAAAA==-2",
                "part_checksums": [_crc32(b"first"), _crc32(b"second")],
            }
        )
    )
    got = s3.get_object(Bucket="scones", Key="old.bin", PartNumber=2, ChecksumMode="ENABLED")
    assert (got["PartsCount"], got["Body"].read(), got["ChecksumCRC32"]) == (2, b"second", _crc32(b"second"))
    head = s3.head_object(Bucket="scones", Key="old.bin", ChecksumMode="ENABLED")
    assert (head["ChecksumCRC32"], head["ChecksumType"]) == ("AAAAAA==-2", "COMPOSITE")

    s3.put_object(Bucket="scones", Key="old.bin", Body=b"new bytes")
    assert _checksums(
        s3.head_object(Bucket="scones", Key="old.bin", PartNumber=1, ChecksumMode="ENABLED")
    ) == {
        "ChecksumCRC32": _crc32(b"new bytes"),
        "ChecksumType": "FULL_OBJECT",
    }
    # The record, which describes no object now, is removed when a gateway next starts serving S3; with
    # it goes the last one, and so the folder.
    other = start_in_process(settings)
    try:
        boto3_client(settings, "s3", url=other.url).list_buckets()
    finally:
        other.close()
    assert not records.exists()


def test_a_legacy_record_that_still_describes_its_object_survives_a_restart(
    s3: Any, settings: Settings
) -> None:
    store = LocalStore(settings.buckets_dir)
    etag = "0123456789abcdef0123456789abcdef-2"
    store.put_object("scones", "kept.bin", b"ab", etag=etag)
    records = settings.cache_dir / "s3-multipart" / "objects"
    records.mkdir(parents=True)
    kept = records / (hashlib.sha1(b"scones/kept.bin").hexdigest() + ".json")
    kept.write_text(json.dumps({"bucket": "scones", "key": "kept.bin", "etag": etag, "sizes": [1, 1]}))
    (records / (hashlib.sha1(b"scones/gone.bin").hexdigest() + ".json")).write_text(
        json.dumps({"bucket": "scones", "key": "gone.bin", "etag": etag, "sizes": [1, 1]})
    )
    (records / ".tmp-abandoned").write_text("{")
    other = start_in_process(settings)
    try:
        again = boto3_client(settings, "s3", url=other.url)
        assert again.get_object(Bucket="scones", Key="kept.bin", PartNumber=2)["Body"].read() == b"b"
    finally:
        other.close()
    assert [path.name for path in records.iterdir()] == [kept.name]
