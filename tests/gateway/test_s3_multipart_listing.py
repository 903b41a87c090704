"""ListParts, ListMultipartUploads and UploadPartCopy through the gateway, with a real boto3 client."""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sconeflow.config import Settings
from sconeflow.gateway.client import boto3_client
from sconeflow.gateway.s3_responses import OWNER_ID
from sconeflow.gateway.server import InProcessGateway

MIB = 1024 * 1024


@pytest.fixture
def s3(settings: Settings, gateway: InProcessGateway) -> Any:
    client = boto3_client(settings, "s3", url=gateway.url)
    client.create_bucket(Bucket="scones")
    return client


def _code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    return exc.value.response["Error"]["Code"], exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


def _numbers(response: dict[str, Any]) -> list[int]:
    return [part["PartNumber"] for part in response.get("Parts", [])]


def test_list_parts_pages_like_s3_and_forgets_a_completed_upload(s3: Any) -> None:
    key = "models/model.tar.gz"
    upload_id = s3.create_multipart_upload(Bucket="scones", Key=key)["UploadId"]
    empty = s3.list_parts(Bucket="scones", Key=key, UploadId=upload_id)
    assert (
        _numbers(empty),
        empty["IsTruncated"],
        empty["PartNumberMarker"],
        empty["NextPartNumberMarker"],
    ) == (
        [],
        False,
        0,
        0,
    )
    bodies = {1: b"a" * (5 * MIB), 2: b"b" * (5 * MIB), 3: b"tail"}
    etags = {
        n: s3.upload_part(Bucket="scones", Key=key, UploadId=upload_id, PartNumber=n, Body=body)["ETag"]
        for n, body in bodies.items()
    }
    assert etags == {n: f'"{hashlib.md5(body).hexdigest()}"' for n, body in bodies.items()}

    listed = s3.list_parts(Bucket="scones", Key=key, UploadId=upload_id)
    assert (listed["Bucket"], listed["Key"], listed["UploadId"]) == ("scones", key, upload_id)
    assert (listed["PartNumberMarker"], listed["NextPartNumberMarker"], listed["MaxParts"]) == (0, 3, 1000)
    assert listed["IsTruncated"] is False
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed["Parts"]] == [
        (n, etags[n], len(body)) for n, body in bodies.items()
    ]
    assert all(p["LastModified"].tzinfo is not None for p in listed["Parts"])
    assert listed["Initiator"]["ID"] == listed["Owner"]["ID"] == OWNER_ID
    assert listed["StorageClass"] == "STANDARD"

    first = s3.list_parts(Bucket="scones", Key=key, UploadId=upload_id, MaxParts=2)
    assert (_numbers(first), first["IsTruncated"], first["NextPartNumberMarker"], first["MaxParts"]) == (
        [1, 2],
        True,
        2,
        2,
    )
    rest = s3.list_parts(Bucket="scones", Key=key, UploadId=upload_id, MaxParts=2, PartNumberMarker=2)
    assert (_numbers(rest), rest["IsTruncated"], rest["PartNumberMarker"], rest["NextPartNumberMarker"]) == (
        [3],
        False,
        2,
        3,
    )
    past_end = s3.list_parts(Bucket="scones", Key=key, UploadId=upload_id, PartNumberMarker=3)
    assert (_numbers(past_end), past_end["IsTruncated"]) == ([], False)
    assert s3.list_parts(Bucket="scones", Key=key, UploadId=upload_id, MaxParts=5000)["MaxParts"] == 1000

    paginator = s3.get_paginator("list_parts")
    pages = list(
        paginator.paginate(Bucket="scones", Key=key, UploadId=upload_id, PaginationConfig={"PageSize": 2})
    )
    assert [_numbers(page) for page in pages] == [[1, 2], [3]]
    full = paginator.paginate(Bucket="scones", Key=key, UploadId=upload_id).build_full_result()
    assert _numbers(full) == [1, 2, 3]

    # A part uploaded again replaces the listed one (ETag and size).
    bodies[3] = b"new tail!"
    etags[3] = s3.upload_part(Bucket="scones", Key=key, UploadId=upload_id, PartNumber=3, Body=bodies[3])[
        "ETag"
    ]
    last = s3.list_parts(Bucket="scones", Key=key, UploadId=upload_id)["Parts"][-1]
    assert (last["ETag"], last["Size"]) == (etags[3], len(bodies[3]))

    parts = [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in full["Parts"][:2]] + [
        {"PartNumber": 3, "ETag": etags[3]}
    ]
    s3.complete_multipart_upload(
        Bucket="scones", Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    assert s3.get_object(Bucket="scones", Key=key)["Body"].read() == b"".join(bodies.values())
    with pytest.raises(ClientError) as exc:
        s3.list_parts(Bucket="scones", Key=key, UploadId=upload_id)
    assert _code(exc) == ("NoSuchUpload", 404)
    assert exc.value.response["Error"]["UploadId"] == upload_id


@pytest.mark.parametrize("upload_id", ["0" * 32, "not-an-upload-id"])
def test_list_parts_of_an_unknown_upload_is_no_such_upload(s3: Any, upload_id: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.list_parts(Bucket="scones", Key="k", UploadId=upload_id)
    assert _code(exc) == ("NoSuchUpload", 404)


def test_list_parts_names_the_upload_of_its_own_key_only(s3: Any) -> None:
    upload_id = s3.create_multipart_upload(Bucket="scones", Key="a")["UploadId"]
    with pytest.raises(ClientError) as exc:
        s3.list_parts(Bucket="scones", Key="b", UploadId=upload_id)
    assert _code(exc) == ("NoSuchUpload", 404)


@pytest.mark.parametrize(
    ("argument", "value", "message"),
    [
        ("MaxParts", -1, "Argument max-parts must be an integer between 0 and 2147483647"),
        ("MaxParts", 2**31, "Provided max-parts not an integer or within integer range"),
        ("PartNumberMarker", -5, "Argument part-number-marker must be an integer between 0 and 2147483647"),
        ("PartNumberMarker", 2**31, "Provided part-number-marker not an integer or within integer range"),
    ],
)
def test_list_parts_rejects_bad_paging_arguments_as_s3_does(
    s3: Any, argument: str, value: int, message: str
) -> None:
    upload_id = s3.create_multipart_upload(Bucket="scones", Key="k")["UploadId"]
    with pytest.raises(ClientError) as exc:
        s3.list_parts(Bucket="scones", Key="k", UploadId=upload_id, **{argument: value})
    assert _code(exc) == ("InvalidArgument", 400)
    error = exc.value.response["Error"]
    assert error["Message"] == message
    assert (error["ArgumentName"], error["ArgumentValue"]) == (
        "max-parts" if argument == "MaxParts" else "part-number-marker",
        str(value),
    )


def test_list_parts_rejects_a_max_parts_that_is_not_a_number(s3: Any, gateway: InProcessGateway) -> None:
    upload_id = s3.create_multipart_upload(Bucket="scones", Key="k")["UploadId"]
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(f"{gateway.url}/scones/k?uploadId={upload_id}&max-parts=ten")
    body = exc.value.read().decode()
    assert exc.value.code == 400
    assert "<Code>InvalidArgument</Code>" in body
    assert "<Message>Provided max-parts not an integer or within integer range</Message>" in body


def test_upload_file_and_managed_copy_go_multipart_end_to_end(s3: Any, tmp_path: Any) -> None:
    """boto3's transfer manager: upload_file in parts, then copy() in UploadPartCopy ranges (before
    UploadPartCopy was served, each copied part was stored empty and the copy failed)."""
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    source = tmp_path / "big.bin"
    data = bytes(range(256)) * (44 * 1024)  # 11 MiB: 3 parts
    source.write_bytes(data)
    s3.upload_file(str(source), "scones", "big.bin", Config=config)
    head = s3.head_object(Bucket="scones", Key="big.bin")
    assert (head["ContentLength"], head["ETag"].endswith('-3"')) == (len(data), True)
    assert s3.get_object(Bucket="scones", Key="big.bin")["Body"].read() == data
    assert s3.list_multipart_uploads(Bucket="scones").get("Uploads", []) == []

    s3.copy({"Bucket": "scones", "Key": "big.bin"}, "scones", "copy.bin", Config=config)
    copied = s3.head_object(Bucket="scones", Key="copy.bin")
    assert (copied["ContentLength"], copied["ETag"]) == (len(data), head["ETag"])
    assert s3.get_object(Bucket="scones", Key="copy.bin")["Body"].read() == data
    assert s3.list_multipart_uploads(Bucket="scones").get("Uploads", []) == []


def test_upload_part_copy_copies_a_range_and_checks_it(s3: Any) -> None:
    s3.put_object(Bucket="scones", Key="src", Body=b"0123456789")
    upload_id = s3.create_multipart_upload(Bucket="scones", Key="dst")["UploadId"]
    whole = s3.upload_part_copy(
        Bucket="scones", Key="dst", UploadId=upload_id, PartNumber=1, CopySource="scones/src"
    )["CopyPartResult"]
    assert whole["ETag"] == f'"{hashlib.md5(b"0123456789").hexdigest()}"'
    assert whole["LastModified"].tzinfo is not None
    ranged = s3.upload_part_copy(
        Bucket="scones",
        Key="dst",
        UploadId=upload_id,
        PartNumber=2,
        CopySource={"Bucket": "scones", "Key": "src"},
        CopySourceRange="bytes=2-4",
    )["CopyPartResult"]
    assert ranged["ETag"] == f'"{hashlib.md5(b"234").hexdigest()}"'
    assert [p["Size"] for p in s3.list_parts(Bucket="scones", Key="dst", UploadId=upload_id)["Parts"]] == [
        10,
        3,
    ]
    for bad_range in ("bytes=5-10", "bytes=4-2", "bytes=3-"):
        with pytest.raises(ClientError) as exc:
            s3.upload_part_copy(
                Bucket="scones",
                Key="dst",
                UploadId=upload_id,
                PartNumber=3,
                CopySource="scones/src",
                CopySourceRange=bad_range,
            )
        assert _code(exc) == ("InvalidArgument", 400)
    with pytest.raises(ClientError) as exc:
        s3.upload_part_copy(
            Bucket="scones", Key="dst", UploadId=upload_id, PartNumber=3, CopySource="scones/nope"
        )
    assert _code(exc) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as exc:
        s3.upload_part_copy(
            Bucket="scones",
            Key="dst",
            UploadId=upload_id,
            PartNumber=3,
            CopySource="scones/src",
            CopySourceIfMatch='"not-the-etag"',
        )
    assert _code(exc) == ("PreconditionFailed", 412)
    assert _numbers(s3.list_parts(Bucket="scones", Key="dst", UploadId=upload_id)) == [1, 2]
    s3.complete_multipart_upload(
        Bucket="scones",
        Key="dst",
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": whole["ETag"]}]},
    )
    assert s3.get_object(Bucket="scones", Key="dst")["Body"].read() == b"0123456789"


def test_list_multipart_uploads_sorts_pages_and_groups_like_s3(s3: Any) -> None:
    def start(key: str) -> str:
        return s3.create_multipart_upload(Bucket="scones", Key=key)["UploadId"]

    ids = {"b": [start("b"), start("b")], "a/1": [start("a/1")], "a/2": [start("a/2")], "c": [start("c")]}
    expected = [("a/1", ids["a/1"][0]), ("a/2", ids["a/2"][0]), ("b", ids["b"][0]), ("b", ids["b"][1])]
    expected.append(("c", ids["c"][0]))

    listed = s3.list_multipart_uploads(Bucket="scones")
    assert [(u["Key"], u["UploadId"]) for u in listed["Uploads"]] == expected
    assert (listed["Bucket"], listed["MaxUploads"], listed["IsTruncated"]) == ("scones", 1000, False)
    upload = listed["Uploads"][0]
    assert (upload["Initiator"]["ID"], upload["Owner"]["ID"], upload["StorageClass"]) == (
        OWNER_ID,
        OWNER_ID,
        "STANDARD",
    )
    assert upload["Initiated"].tzinfo is not None

    page = s3.list_multipart_uploads(Bucket="scones", MaxUploads=3)
    assert [(u["Key"], u["UploadId"]) for u in page["Uploads"]] == expected[:3]
    assert (page["IsTruncated"], page["NextKeyMarker"], page["NextUploadIdMarker"]) == (
        True,
        "b",
        ids["b"][0],
    )
    rest = s3.list_multipart_uploads(
        Bucket="scones",
        MaxUploads=3,
        KeyMarker=page["NextKeyMarker"],
        UploadIdMarker=page["NextUploadIdMarker"],
    )
    assert [(u["Key"], u["UploadId"]) for u in rest["Uploads"]] == expected[3:]
    assert rest["IsTruncated"] is False
    after_b = s3.list_multipart_uploads(Bucket="scones", KeyMarker="b")  # no upload-id-marker: keys after b
    assert [u["Key"] for u in after_b["Uploads"]] == ["c"]

    pages = s3.get_paginator("list_multipart_uploads").paginate(
        Bucket="scones", PaginationConfig={"PageSize": 2}
    )
    assert [(u["Key"], u["UploadId"]) for page in pages for u in page.get("Uploads", [])] == expected

    grouped = s3.list_multipart_uploads(Bucket="scones", Delimiter="/")
    assert [p["Prefix"] for p in grouped["CommonPrefixes"]] == ["a/"]
    assert [u["Key"] for u in grouped["Uploads"]] == ["b", "b", "c"]
    prefixed = s3.list_multipart_uploads(Bucket="scones", Prefix="a/")
    assert [u["Key"] for u in prefixed["Uploads"]] == ["a/1", "a/2"]

    s3.abort_multipart_upload(Bucket="scones", Key="b", UploadId=ids["b"][0])
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket="scones", Prefix="b")["Uploads"]] == ids[
        "b"
    ][1:]
    with pytest.raises(ClientError) as exc:
        s3.list_multipart_uploads(Bucket="no-such-bucket")
    assert _code(exc) == ("NoSuchBucket", 404)
    with pytest.raises(ClientError) as exc:
        s3.list_multipart_uploads(Bucket="scones", MaxUploads=-1)
    assert _code(exc) == ("InvalidArgument", 400)


def test_checksums_are_answered_back_and_listed_with_the_parts(s3: Any) -> None:
    """S3 answers the x-amz-checksum-* value of PutObject and UploadPart (boto3 sends CRC32 by default),
    keeps a multipart upload's ChecksumAlgorithm, and lists each part's checksum; code that completes an
    upload with ``response["ChecksumCRC32"]`` from UploadPart, as AWS's examples do, needs them."""
    import base64
    import zlib

    def crc32(data: bytes) -> str:
        return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()

    put = s3.put_object(Bucket="scones", Key="k", Body=b"hello", ChecksumAlgorithm="CRC32")
    assert (put["ChecksumCRC32"], put["ChecksumType"]) == (crc32(b"hello"), "FULL_OBJECT")
    sha = s3.put_object(Bucket="scones", Key="k2", Body=b"hello", ChecksumAlgorithm="SHA256")
    assert sha["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(b"hello").digest()).decode()

    created = s3.create_multipart_upload(Bucket="scones", Key="m", ChecksumAlgorithm="CRC32")
    upload_id = created["UploadId"]
    assert created["ChecksumAlgorithm"] == "CRC32"
    bodies = [b"p" * (5 * MIB), b"end"]
    parts = []
    for number, body in enumerate(bodies, 1):
        answer = s3.upload_part(
            Bucket="scones",
            Key="m",
            UploadId=upload_id,
            PartNumber=number,
            Body=body,
            ChecksumAlgorithm="CRC32",
        )
        assert answer["ChecksumCRC32"] == crc32(body)
        parts.append({"PartNumber": number, "ETag": answer["ETag"], "ChecksumCRC32": answer["ChecksumCRC32"]})
    listed = s3.list_parts(Bucket="scones", Key="m", UploadId=upload_id)
    assert listed["ChecksumAlgorithm"] == "CRC32"
    assert [p["ChecksumCRC32"] for p in listed["Parts"]] == [crc32(b) for b in bodies]
    uploads = s3.list_multipart_uploads(Bucket="scones")["Uploads"]
    assert [(u["Key"], u["ChecksumAlgorithm"]) for u in uploads] == [("m", "CRC32")]
    s3.complete_multipart_upload(
        Bucket="scones", Key="m", UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    assert s3.get_object(Bucket="scones", Key="m")["Body"].read() == b"".join(bodies)
