"""S3 through the gateway with a real boto3 client: operations, XML shapes, S3 error codes."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sconeflow.config import Settings
from sconeflow.gateway.client import boto3_client
from sconeflow.gateway.server import InProcessGateway
from sconeflow.store import LocalStore


@pytest.fixture
def s3(settings: Settings, gateway: InProcessGateway) -> Any:
    return boto3_client(settings, "s3", url=gateway.url)


def _code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    return exc.value.response["Error"]["Code"], exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_bucket_lifecycle(s3: Any, store: LocalStore) -> None:
    s3.create_bucket(Bucket="scones")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["scones"]
    assert s3.head_bucket(Bucket="scones")["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert store.bucket_exists("scones")
    s3.create_bucket(Bucket="scones")  # us-east-1: creating a bucket you own again answers 200
    s3.put_object(Bucket="scones", Key="a", Body=b"1")
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket(Bucket="scones")
    assert _code(exc) == ("BucketNotEmpty", 409)
    s3.delete_object(Bucket="scones", Key="a")
    s3.delete_bucket(Bucket="scones")
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket="scones")
    assert _code(exc) == ("404", 404)
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket="Bad_Name")
    assert _code(exc) == ("InvalidBucketName", 400)


def test_put_get_head_with_metadata_and_etag(s3: Any) -> None:
    s3.create_bucket(Bucket="scones")
    body = b"\x89PNG" + bytes(range(256)) * 10
    put = s3.put_object(
        Bucket="scones",
        Key="test/bike.png",
        Body=body,
        ContentType="image/png",
        Metadata={"label": "bicycle"},
    )
    etag = f'"{hashlib.md5(body).hexdigest()}"'
    assert put["ETag"] == etag
    got = s3.get_object(Bucket="scones", Key="test/bike.png")
    assert got["Body"].read() == body
    assert (got["ContentType"], got["ContentLength"], got["ETag"]) == ("image/png", len(body), etag)
    assert got["Metadata"] == {"label": "bicycle"}
    head = s3.head_object(Bucket="scones", Key="test/bike.png")
    assert (head["ContentLength"], head["ETag"], head["Metadata"]) == (len(body), etag, {"label": "bicycle"})
    assert head["LastModified"].tzinfo is not None


def test_ranges(s3: Any) -> None:
    s3.create_bucket(Bucket="scones")
    s3.put_object(Bucket="scones", Key="k", Body=b"0123456789")
    part = s3.get_object(Bucket="scones", Key="k", Range="bytes=2-5")
    assert (part["Body"].read(), part["ContentRange"], part["ResponseMetadata"]["HTTPStatusCode"]) == (
        b"2345",
        "bytes 2-5/10",
        206,
    )
    assert s3.get_object(Bucket="scones", Key="k", Range="bytes=7-")["Body"].read() == b"789"
    assert s3.get_object(Bucket="scones", Key="k", Range="bytes=-3")["Body"].read() == b"789"
    assert s3.get_object(Bucket="scones", Key="k", Range="bytes=8-100")["Body"].read() == b"89"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="scones", Key="k", Range="bytes=10-12")
    assert _code(exc) == ("InvalidRange", 416)


def test_missing_objects_and_buckets_have_s3_error_codes(s3: Any) -> None:
    with pytest.raises(s3.exceptions.NoSuchBucket) as exc:
        s3.get_object(Bucket="nope-bucket", Key="k")
    assert exc.value.response["Error"]["Message"] == "The specified bucket does not exist"
    assert exc.value.response["Error"]["BucketName"] == "nope-bucket"
    s3.create_bucket(Bucket="scones")
    with pytest.raises(s3.exceptions.NoSuchKey) as exc:
        s3.get_object(Bucket="scones", Key="missing.png")
    assert exc.value.response["Error"]["Key"] == "missing.png"
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket="scones", Key="missing.png")
    assert _code(exc) == ("404", 404)
    with pytest.raises(s3.exceptions.NoSuchBucket):
        s3.list_objects_v2(Bucket="nope-bucket")
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="scones", Key="a/../../etc/passwd", Body=b"x")
    assert _code(exc) == ("InvalidArgument", 400)
    s3.delete_object(Bucket="scones", Key="never-existed")  # like S3: not an error


def test_copy_object(s3: Any) -> None:
    s3.create_bucket(Bucket="src-bucket")
    s3.create_bucket(Bucket="dst-bucket")
    s3.put_object(
        Bucket="src-bucket", Key="a b+c.png", Body=b"pixels", ContentType="image/png", Metadata={"m": "1"}
    )
    copied = s3.copy_object(
        Bucket="dst-bucket", Key="copy.png", CopySource={"Bucket": "src-bucket", "Key": "a b+c.png"}
    )
    assert copied["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(b"pixels").hexdigest()}"'
    got = s3.get_object(Bucket="dst-bucket", Key="copy.png")
    assert (got["Body"].read(), got["ContentType"], got["Metadata"]) == (b"pixels", "image/png", {"m": "1"})
    s3.copy_object(
        Bucket="dst-bucket",
        Key="copy.png",
        CopySource="src-bucket/a b+c.png",
        MetadataDirective="REPLACE",
        ContentType="text/plain",
        Metadata={"n": "2"},
    )
    got = s3.head_object(Bucket="dst-bucket", Key="copy.png")
    assert (got["ContentType"], got["Metadata"]) == ("text/plain", {"n": "2"})
    for directive in ("COPY", "REPLACE"):  # the error names the missing source key either way
        with pytest.raises(s3.exceptions.NoSuchKey) as missing_key:
            s3.copy_object(
                Bucket="dst-bucket", Key="x", CopySource="src-bucket/missing", MetadataDirective=directive
            )
        assert missing_key.value.response["Error"]["Key"] == "missing"
    with pytest.raises(s3.exceptions.NoSuchBucket) as missing_source:
        s3.copy_object(Bucket="dst-bucket", Key="x", CopySource="no-such-source/a.png")
    assert missing_source.value.response["Error"]["BucketName"] == "no-such-source"


def test_list_objects_v2_prefix_delimiter_and_pages(s3: Any) -> None:
    s3.create_bucket(Bucket="scones")
    keys = [f"train/bicycle_{i:03d}.png" for i in range(7)] + ["test/a.png", "test/sub/b.png", "train.lst"]
    for key in keys:
        s3.put_object(Bucket="scones", Key=key, Body=key.encode())
    everything = s3.list_objects_v2(Bucket="scones")
    assert [o["Key"] for o in everything["Contents"]] == sorted(keys)
    assert everything["KeyCount"] == len(keys) and not everything["IsTruncated"]
    top = s3.list_objects_v2(Bucket="scones", Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["test/", "train/"]
    assert [o["Key"] for o in top["Contents"]] == ["train.lst"]
    nested = s3.list_objects_v2(Bucket="scones", Prefix="test/", Delimiter="/")
    assert [o["Key"] for o in nested["Contents"]] == ["test/a.png"]
    assert [p["Prefix"] for p in nested["CommonPrefixes"]] == ["test/sub/"]
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket="scones", Prefix="train/", PaginationConfig={"PageSize": 3}
    )
    sizes = [page["KeyCount"] for page in pages]
    assert sizes == [3, 3, 1]
    after = s3.list_objects_v2(Bucket="scones", StartAfter="train/bicycle_005.png")
    assert [o["Key"] for o in after["Contents"]] == [
        "train/bicycle_006.png"
    ]  # "train." sorts before "train/"
    v1 = s3.list_objects(Bucket="scones", Prefix="test/")
    assert [o["Key"] for o in v1["Contents"]] == ["test/a.png", "test/sub/b.png"]
    assert s3.list_objects_v2(Bucket="scones", MaxKeys=0)["KeyCount"] == 0


def test_url_encoded_listing_round_trips_odd_keys(s3: Any) -> None:
    s3.create_bucket(Bucket="scones")
    key = "weird/a b&c<d>é.png"
    s3.put_object(Bucket="scones", Key=key, Body=b"x")
    listed = s3.list_objects_v2(Bucket="scones")  # boto3 asks for EncodingType=url and decodes the keys
    assert [o["Key"] for o in listed["Contents"]] == [key]
    explicit = s3.list_objects_v2(
        Bucket="scones", EncodingType="url"
    )  # asked for by the caller: left encoded
    assert [o["Key"] for o in explicit["Contents"]] == ["weird/a%20b%26c%3Cd%3E%C3%A9.png"]
    assert s3.get_object(Bucket="scones", Key=key)["Body"].read() == b"x"


def test_delete_objects(s3: Any) -> None:
    s3.create_bucket(Bucket="scones")
    for key in ("a", "b", "c"):
        s3.put_object(Bucket="scones", Key=key, Body=b"x")
    result = s3.delete_objects(Bucket="scones", Delete={"Objects": [{"Key": "a"}, {"Key": "b"}]})
    assert sorted(d["Key"] for d in result["Deleted"]) == ["a", "b"]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="scones")["Contents"]] == ["c"]


def test_content_md5_is_checked(s3: Any) -> None:
    s3.create_bucket(Bucket="scones")
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="scones", Key="k", Body=b"data", ContentMD5="1B2M2Y8AsgTpgAmY7PhCfg==")
    assert _code(exc) == ("BadDigest", 400)


def test_large_object_round_trip(s3: Any) -> None:
    s3.create_bucket(Bucket="scones")
    body = bytes(range(256)) * (3 * 4096)  # 3 MiB: boto3 sends Expect: 100-continue
    s3.put_object(Bucket="scones", Key="big.bin", Body=body)
    assert s3.get_object(Bucket="scones", Key="big.bin")["Body"].read() == body


def test_multipart_upload(s3: Any, store: LocalStore) -> None:
    s3.create_bucket(Bucket="scones")
    first, last = b"a" * (5 * 1024 * 1024), b"tail"
    upload = s3.create_multipart_upload(
        Bucket="scones", Key="big/model.tar.gz", ContentType="application/gzip"
    )
    upload_id = upload["UploadId"]
    etag1 = s3.upload_part(
        Bucket="scones", Key="big/model.tar.gz", UploadId=upload_id, PartNumber=1, Body=first
    )
    etag2 = s3.upload_part(
        Bucket="scones", Key="big/model.tar.gz", UploadId=upload_id, PartNumber=2, Body=last
    )
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(
            Bucket="scones",
            Key="big/model.tar.gz",
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"0000"'}]},
        )
    assert _code(exc) == ("InvalidPart", 400)
    s3.complete_multipart_upload(
        Bucket="scones",
        Key="big/model.tar.gz",
        UploadId=upload_id,
        MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": etag1["ETag"]}, {"PartNumber": 2, "ETag": etag2["ETag"]}]
        },
    )
    assert store.get_object("scones", "big/model.tar.gz") == first + last
    assert store.head_object("scones", "big/model.tar.gz").content_type == "application/gzip"
    with pytest.raises(ClientError) as exc:
        s3.upload_part(Bucket="scones", Key="big/model.tar.gz", UploadId=upload_id, PartNumber=3, Body=b"x")
    assert _code(exc) == ("NoSuchUpload", 404)

    small = s3.create_multipart_upload(Bucket="scones", Key="small")["UploadId"]
    e1 = s3.upload_part(Bucket="scones", Key="small", UploadId=small, PartNumber=1, Body=b"x")["ETag"]
    e2 = s3.upload_part(Bucket="scones", Key="small", UploadId=small, PartNumber=2, Body=b"y")["ETag"]
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(
            Bucket="scones",
            Key="small",
            UploadId=small,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]},
        )
    assert _code(exc) == ("EntityTooSmall", 400)
    s3.abort_multipart_upload(Bucket="scones", Key="small", UploadId=small)
    assert not store.bucket_exists("scones") or "small" not in [o.key for o in store.iter_objects("scones")]


def test_transfer_manager_uploads_and_downloads_big_files(s3: Any, tmp_path: Any) -> None:
    from boto3.s3.transfer import TransferConfig

    s3.create_bucket(Bucket="scones")
    source = tmp_path / "big.bin"
    source.write_bytes(bytes(range(256)) * (40 * 1024))  # 10 MiB: multipart up, ranged GETs down
    config = TransferConfig(multipart_threshold=6 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    s3.upload_file(str(source), "scones", "big.bin", Config=config)
    target = tmp_path / "back.bin"
    s3.download_file("scones", "big.bin", str(target), Config=config)
    assert target.read_bytes() == source.read_bytes()


def test_error_document_shape(gateway: InProcessGateway, store: LocalStore) -> None:
    import re
    import urllib.error
    import urllib.request

    store.create_bucket("scones")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(gateway.url + "/scones/missing.png")
    body = exc.value.read().decode()
    assert exc.value.code == 404
    assert exc.value.headers["Content-Type"] == "application/xml"
    assert exc.value.headers["x-amz-request-id"] and exc.value.headers["x-amz-id-2"]
    assert re.fullmatch(
        r'<\?xml version="1.0" encoding="UTF-8"\?>\n<Error><Code>NoSuchKey</Code>'
        r"<Message>The specified key does not exist.</Message><Key>missing.png</Key>"
        r"<RequestId>[0-9A-F]{16}</RequestId><HostId>[A-Za-z0-9+/=]+</HostId></Error>",
        body,
    ), body


@pytest.mark.parametrize(
    "call",
    [
        lambda s3: s3.put_object_tagging(
            Bucket="scones", Key="t.txt", Tagging={"TagSet": [{"Key": "a", "Value": "b"}]}
        ),
        lambda s3: s3.put_object_acl(Bucket="scones", Key="t.txt", ACL="private"),
        lambda s3: s3.delete_object_tagging(Bucket="scones", Key="t.txt"),
        lambda s3: s3.get_object_tagging(Bucket="scones", Key="t.txt"),
        lambda s3: s3.delete_bucket_policy(Bucket="scones"),
        lambda s3: s3.put_bucket_versioning(Bucket="scones", VersioningConfiguration={"Status": "Enabled"}),
        lambda s3: s3.get_bucket_versioning(Bucket="scones"),
        lambda s3: s3.get_object(Bucket="scones", Key="t.txt", VersionId="3HL4kqtJlcpXroDTDmJ"),
    ],
    ids=[
        "put-tagging",
        "put-acl",
        "delete-tagging",
        "get-tagging",
        "delete-bucket-policy",
        "put-versioning",
        "get-versioning",
        "get-version",
    ],
)
def test_an_operation_the_gateway_lacks_is_501_and_touches_nothing(s3: Any, store: LocalStore, call) -> None:
    """A sub-resource call must not run as the plain object or bucket call it resembles: before this was
    guarded, PutObjectTagging overwrote the object with its Tagging XML, DeleteObjectTagging deleted the
    object and DeleteBucketPolicy the bucket."""
    s3.create_bucket(Bucket="scones")
    s3.put_object(Bucket="scones", Key="t.txt", Body=b"precious")
    with pytest.raises(ClientError) as exc:
        call(s3)
    assert _code(exc) == ("NotImplemented", 501)
    assert "not implemented" in exc.value.response["Error"]["Message"]
    assert store.get_object("scones", "t.txt") == b"precious"
    assert s3.get_object(Bucket="scones", Key="t.txt", VersionId="null")["Body"].read() == b"precious"


def test_conditional_reads_follow_s3s_rules(s3: Any) -> None:
    from datetime import UTC, datetime, timedelta

    s3.create_bucket(Bucket="scones")
    etag = s3.put_object(Bucket="scones", Key="k", Body=b"v1")["ETag"]
    modified = s3.head_object(Bucket="scones", Key="k")["LastModified"]
    later, earlier = modified + timedelta(days=1), modified - timedelta(days=1)
    for call in (s3.get_object, s3.head_object):
        assert call(Bucket="scones", Key="k", IfModifiedSince=earlier)["ETag"] == etag
        assert call(Bucket="scones", Key="k", IfUnmodifiedSince=later)["ETag"] == etag
        with pytest.raises(ClientError) as exc:
            call(Bucket="scones", Key="k", IfModifiedSince=later)
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
        with pytest.raises(ClientError) as exc:
            call(Bucket="scones", Key="k", IfUnmodifiedSince=datetime(2000, 1, 1, tzinfo=UTC))
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
        # A true If-Match overrides a false If-Unmodified-Since; If-None-Match overrides If-Modified-Since.
        assert call(Bucket="scones", Key="k", IfMatch=etag, IfUnmodifiedSince=earlier)["ETag"] == etag
        assert call(Bucket="scones", Key="k", IfNoneMatch='"other"', IfModifiedSince=later)["ETag"] == etag


def test_conditional_writes_refuse_to_overwrite_and_lose_nothing(s3: Any) -> None:
    s3.create_bucket(Bucket="scones")
    etag = s3.put_object(Bucket="scones", Key="k", Body=b"v1", IfNoneMatch="*")["ETag"]  # key was absent
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="scones", Key="k", Body=b"v2", IfNoneMatch="*")
    assert _code(exc) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="scones", Key="k", Body=b"v2", IfMatch='"0000"')
    assert _code(exc) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="scones", Key="absent", Body=b"v2", IfMatch=etag)
    assert _code(exc) == ("NoSuchKey", 404)
    assert s3.get_object(Bucket="scones", Key="k")["Body"].read() == b"v1"
    s3.put_object(Bucket="scones", Key="k", Body=b"v2", IfMatch=etag)  # the ETag still matches
    assert s3.get_object(Bucket="scones", Key="k")["Body"].read() == b"v2"


def test_copy_source_preconditions_fail_with_412(s3: Any) -> None:
    from datetime import timedelta

    s3.create_bucket(Bucket="scones")
    etag = s3.put_object(Bucket="scones", Key="src", Body=b"v1")["ETag"]
    modified = s3.head_object(Bucket="scones", Key="src")["LastModified"]
    source = {"Bucket": "scones", "Key": "src"}
    for condition in (
        {"CopySourceIfMatch": '"deadbeef"'},
        {"CopySourceIfNoneMatch": etag},
        {"CopySourceIfModifiedSince": modified + timedelta(days=1)},
        {"CopySourceIfUnmodifiedSince": modified - timedelta(days=1)},
    ):
        with pytest.raises(ClientError) as exc:
            s3.copy_object(Bucket="scones", Key="dst", CopySource=source, **condition)
        assert _code(exc) == ("PreconditionFailed", 412), condition
    assert "Contents" not in s3.list_objects_v2(Bucket="scones", Prefix="dst")
    s3.copy_object(Bucket="scones", Key="dst", CopySource=source, CopySourceIfMatch=etag)
    assert s3.get_object(Bucket="scones", Key="dst")["Body"].read() == b"v1"


def test_a_body_over_the_gateways_limit_is_s3s_entity_too_large_and_writes_nothing(
    s3: Any, store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sconeflow.gateway import server

    monkeypatch.setattr(server, "MAX_BODY", 4096)
    s3.create_bucket(Bucket="scones")
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="scones", Key="big.bin", Body=b"\0" * 5000)
    assert _code(exc) == ("EntityTooLarge", 400)
    error = exc.value.response["Error"]
    assert (error["MaxSizeAllowed"], error["ProposedSize"]) == ("4096", "5000")
    assert "multipart" in error["Message"]
    assert [info.key for info in store.iter_objects("scones")] == []
    s3.put_object(Bucket="scones", Key="small.bin", Body=b"\0" * 4096)  # the next request is served
    assert store.get_object("scones", "small.bin") == b"\0" * 4096


def test_an_object_put_without_a_content_type_is_binary_octet_stream_as_on_s3(s3: Any) -> None:
    """S3 never guesses from the key (boto3 sends no Content-Type unless given one)."""
    s3.create_bucket(Bucket="scones")
    s3.put_object(Bucket="scones", Key="a.csv", Body=b"x")
    assert s3.head_object(Bucket="scones", Key="a.csv")["ContentType"] == "binary/octet-stream"
    s3.copy_object(
        Bucket="scones",
        Key="b.txt",
        CopySource={"Bucket": "scones", "Key": "a.csv"},
        MetadataDirective="REPLACE",
    )
    assert s3.head_object(Bucket="scones", Key="b.txt")["ContentType"] == "binary/octet-stream"
    s3.put_object(Bucket="scones", Key="c.csv", Body=b"x", ContentType="text/csv")
    assert s3.head_object(Bucket="scones", Key="c.csv")["ContentType"] == "text/csv"


def test_standard_headers_are_kept_copied_and_overridable_per_request(s3: Any, tmp_path) -> None:
    from datetime import UTC, datetime

    s3.create_bucket(Bucket="scones")
    expires = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    given = {
        "CacheControl": "max-age=60",
        "ContentDisposition": 'attachment; filename="report.json"',
        "ContentEncoding": "gzip",
        "ContentLanguage": "en-GB",
    }
    s3.put_object(Bucket="scones", Key="r.json.gz", Body=b"\x1f\x8b", Expires=expires, **given)

    def kept(key: str) -> dict:
        head = s3.head_object(Bucket="scones", Key=key)
        return {name: head.get(name) for name in given} | {"Expires": head.get("ExpiresString")}

    assert kept("r.json.gz") == given | {"Expires": "Wed, 02 Jan 2030 03:04:05 GMT"}
    s3.copy_object(Bucket="scones", Key="copy", CopySource={"Bucket": "scones", "Key": "r.json.gz"})
    assert kept("copy") == kept("r.json.gz")
    s3.copy_object(
        Bucket="scones",
        Key="replaced",
        CopySource={"Bucket": "scones", "Key": "r.json.gz"},
        MetadataDirective="REPLACE",
        CacheControl="no-cache",
    )
    assert kept("replaced") == dict.fromkeys([*given, "Expires"]) | {"CacheControl": "no-cache"}
    got = s3.get_object(
        Bucket="scones",
        Key="r.json.gz",
        ResponseContentType="application/json",
        ResponseCacheControl="no-store",
    )
    assert (got["ContentType"], got["CacheControl"], got["ContentEncoding"]) == (
        "application/json",
        "no-store",
        "gzip",
    )
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * (9 * 1024 * 1024))  # multipart: the headers travel with the upload
    s3.upload_file(str(big), "scones", "big.bin", ExtraArgs={"ContentDisposition": "inline"})
    assert s3.head_object(Bucket="scones", Key="big.bin")["ContentDisposition"] == "inline"


def test_checksums_and_digests_are_verified_and_a_mismatch_writes_nothing(
    s3: Any, settings: Settings, store: LocalStore
) -> None:
    import base64
    import zlib

    from sconeflow.gateway.s3_responses import S3Handler
    from sconeflow.gateway.wire import WireRequest

    s3.create_bucket(Bucket="scones")
    crc = base64.b64encode(zlib.crc32(b"hello").to_bytes(4, "big")).decode()
    s3.put_object(Bucket="scones", Key="ok", Body=b"hello", ChecksumCRC32=crc)
    s3.put_object(
        Bucket="scones", Key="ok256", Body=b"hello", ChecksumAlgorithm="SHA256"
    )  # boto3 computes it
    for bad, code in (
        ({"ChecksumCRC32": "AAAAAA=="}, "BadDigest"),
        ({"ChecksumSHA1": base64.b64encode(b"\0" * 20).decode()}, "BadDigest"),
        ({"ContentMD5": "abc"}, "InvalidDigest"),
    ):
        with pytest.raises(ClientError) as exc:
            s3.put_object(Bucket="scones", Key="bad", Body=b"hello", **bad)
        assert _code(exc) == (code, 400), bad
    # boto3 may send the checksum as an aws-chunked trailer, after the data: it is checked the same way.
    chunked = b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n"
    request = WireRequest(
        "PUT",
        "/scones/bad",
        headers={"content-encoding": "aws-chunked", "x-amz-trailer": "x-amz-checksum-crc32"},
        body=chunked,
    )
    response = S3Handler(settings, store).handle(request)
    assert response.status == 400 and b"<Code>BadDigest</Code>" in response.body
    good = chunked.replace(b"AAAAAA==", crc.encode())
    assert (
        S3Handler(settings, store)
        .handle(WireRequest("PUT", "/scones/good", headers=request.headers, body=good))
        .status
        == 200
    )
    assert store.get_object("scones", "good") == b"hello"
    assert sorted(info.key for info in store.iter_objects("scones")) == ["good", "ok", "ok256"]


def _multipart_put(s3: Any, key: str, parts: list[bytes]) -> dict[str, Any]:
    upload_id = s3.create_multipart_upload(Bucket="scones", Key=key)["UploadId"]
    done = []
    for number, body in enumerate(parts, start=1):
        part = s3.upload_part(Bucket="scones", Key=key, UploadId=upload_id, PartNumber=number, Body=body)
        done.append({"PartNumber": number, "ETag": part["ETag"]})
    return s3.complete_multipart_upload(
        Bucket="scones", Key=key, UploadId=upload_id, MultipartUpload={"Parts": done}
    )


def test_a_multipart_objects_etag_is_s3s_md5_of_part_md5s_everywhere(s3: Any, settings: Settings) -> None:
    s3.create_bucket(Bucket="scones")
    parts = [b"a" * (5 * 1024 * 1024), b"b" * (5 * 1024 * 1024), b"tail"]
    joined = b"".join(hashlib.md5(p).digest() for p in parts)
    etag = f'"{hashlib.md5(joined).hexdigest()}-3"'
    assert etag != f'"{hashlib.md5(b"".join(parts)).hexdigest()}"'
    assert _multipart_put(s3, "big.bin", parts)["ETag"] == etag
    assert s3.head_object(Bucket="scones", Key="big.bin")["ETag"] == etag
    got = s3.get_object(Bucket="scones", Key="big.bin")
    assert (got["ETag"], got["Body"].read()) == (etag, b"".join(parts))
    assert [o["ETag"] for o in s3.list_objects_v2(Bucket="scones")["Contents"]] == [etag]
    assert [o["ETag"] for o in s3.list_objects(Bucket="scones")["Contents"]] == [etag]
    # Conditional reads and writes compare against the multipart ETag.
    for call in (s3.get_object, s3.head_object):
        assert call(Bucket="scones", Key="big.bin", IfMatch=etag)["ETag"] == etag
        with pytest.raises(ClientError) as exc:
            call(Bucket="scones", Key="big.bin", IfNoneMatch=etag)
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
        with pytest.raises(ClientError) as exc:
            call(Bucket="scones", Key="big.bin", IfMatch=f'"{hashlib.md5(b"".join(parts)).hexdigest()}"')
        assert _code(exc)[1] == 412
    # A plain CopyObject is a new single-part object: its ETag is the MD5 of the bytes.
    copied = s3.copy_object(
        Bucket="scones",
        Key="copy.bin",
        CopySource={"Bucket": "scones", "Key": "big.bin"},
        CopySourceIfMatch=etag,
    )
    plain = f'"{hashlib.md5(b"".join(parts)).hexdigest()}"'
    assert copied["CopyObjectResult"]["ETag"] == plain
    assert s3.head_object(Bucket="scones", Key="copy.bin")["ETag"] == plain
    assert s3.head_object(Bucket="scones", Key="big.bin")["ETag"] == etag
    # The ETag is kept with the object: a new store over the same folder reads it back.
    assert LocalStore(settings.buckets_dir).head_object("scones", "big.bin").etag == etag.strip('"')
    s3.put_object(Bucket="scones", Key="big.bin", Body=b"small", IfMatch=etag)  # an If-Match overwrite
    assert s3.head_object(Bucket="scones", Key="big.bin")["ETag"] == f'"{hashlib.md5(b"small").hexdigest()}"'


def test_a_one_part_upload_and_the_transfer_manager_get_multipart_etags(s3: Any, tmp_path: Any) -> None:
    from boto3.s3.transfer import TransferConfig

    s3.create_bucket(Bucket="scones")
    one = _multipart_put(s3, "one.bin", [b"only part"])["ETag"]
    assert one == f'"{hashlib.md5(hashlib.md5(b"only part").digest()).hexdigest()}-1"'
    source = tmp_path / "big.bin"
    source.write_bytes(bytes(range(256)) * (40 * 1024))  # 10 MiB in two 5 MiB parts
    config = TransferConfig(multipart_threshold=6 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    s3.upload_file(str(source), "scones", "big.bin", Config=config)
    assert s3.head_object(Bucket="scones", Key="big.bin")["ETag"].endswith('-2"')


def test_folder_objects_ending_in_a_slash_live_beside_the_keys_under_them(s3: Any, store: LocalStore) -> None:
    s3.create_bucket(Bucket="scones")
    s3.put_object(Bucket="scones", Key="a/b.txt", Body=b"b")
    put = s3.put_object(Bucket="scones", Key="a/", Body=b"")  # what the S3 console's "Create folder" sends
    assert put["ETag"] == f'"{hashlib.md5(b"").hexdigest()}"'
    head = s3.head_object(Bucket="scones", Key="a/")
    assert (head["ContentLength"], head["ETag"]) == (0, put["ETag"])
    assert s3.get_object(Bucket="scones", Key="a/")["Body"].read() == b""
    listed = s3.list_objects_v2(Bucket="scones", Prefix="a/")
    assert [(o["Key"], o["Size"]) for o in listed["Contents"]] == [("a/", 0), ("a/b.txt", 1)]
    top = s3.list_objects_v2(Bucket="scones", Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["a/"] and "Contents" not in top
    inside = s3.list_objects_v2(Bucket="scones", Prefix="a/", Delimiter="/")
    assert [o["Key"] for o in inside["Contents"]] == ["a/", "a/b.txt"] and "CommonPrefixes" not in inside
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket="scones", Prefix="a/", Delimiter="/", PaginationConfig={"PageSize": 1}
    )
    assert [o["Key"] for page in pages for o in page.get("Contents", [])] == ["a/", "a/b.txt"]
    assert [o["Key"] for o in s3.list_objects(Bucket="scones", Prefix="a/")["Contents"]] == ["a/", "a/b.txt"]
    s3.delete_object(Bucket="scones", Key="a/")
    assert s3.get_object(Bucket="scones", Key="a/b.txt")["Body"].read() == b"b"
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket="scones", Key="a/")
    assert _code(exc) == ("404", 404)
    s3.put_object(Bucket="scones", Key="a/", Body=b"")
    s3.delete_object(Bucket="scones", Key="a/b.txt")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="scones")["Contents"]] == ["a/"]
    s3.copy_object(Bucket="scones", Key="copy/", CopySource={"Bucket": "scones", "Key": "a/"})
    assert [o.key for o in store.iter_objects("scones")] == ["a/", "copy/"]
    for bad in ("a/../", "a/.sconeflow-folder"):
        with pytest.raises(ClientError) as exc:
            s3.put_object(Bucket="scones", Key=bad, Body=b"")
        assert _code(exc) == ("InvalidArgument", 400), bad
        assert exc.value.response["Error"]["ArgumentValue"] == bad  # the key arrived as sent
    deleted = s3.delete_objects(Bucket="scones", Delete={"Objects": [{"Key": "a/"}, {"Key": "copy/"}]})
    assert sorted(d["Key"] for d in deleted["Deleted"]) == ["a/", "copy/"]
    s3.delete_bucket(Bucket="scones")
