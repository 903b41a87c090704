"""Behaviour every ObjectStore backend shares (local directory and S3 through boto3/moto)."""

from __future__ import annotations

import hashlib
import io

import pytest

from sconeflow.store import (
    BucketAlreadyExists,
    BucketNotEmpty,
    InvalidBucketName,
    InvalidKey,
    InvalidRange,
    NoSuchBucket,
    NoSuchKey,
)


def test_put_get_head_roundtrip(any_store):
    any_store.create_bucket("data-bucket")
    body = b"\x89PNG fake image bytes"
    info = any_store.put_object("data-bucket", "train/bicycle_s_000513.png", body, metadata={"a": "1"})
    assert info.etag == hashlib.md5(body).hexdigest()
    assert info.size == len(body)
    head = any_store.head_object("data-bucket", "train/bicycle_s_000513.png")
    assert (head.size, head.etag, head.content_type) == (len(body), info.etag, "image/png")
    assert head.metadata == {"a": "1"}
    assert head.last_modified.tzinfo is not None
    assert any_store.get_object("data-bucket", "train/bicycle_s_000513.png") == body
    with any_store.open_object("data-bucket", "train/bicycle_s_000513.png") as handle:
        assert handle.read() == body


def test_standard_headers_round_trip_and_copy(any_store):
    any_store.create_bucket("data-bucket")
    headers = {
        "Cache-Control": "max-age=60",
        "Content-Disposition": "attachment",
        "Content-Encoding": "gzip",
        "Content-Language": "en",
        "Expires": "Wed, 02 Jan 2030 03:04:05 GMT",
    }
    info = any_store.put_object(
        "data-bucket", "r.gz", b"x", headers={"cache-control": "max-age=60", **headers}
    )
    assert info.headers == headers
    assert any_store.head_object("data-bucket", "r.gz").headers == headers
    any_store.copy_object("data-bucket", "r.gz", "data-bucket", "copy.gz")
    assert any_store.head_object("data-bucket", "copy.gz").headers == headers
    assert any_store.head_object("data-bucket", "r.gz").metadata == {}


def test_put_from_a_stream_and_ranges(any_store):
    any_store.create_bucket("data-bucket")
    body = bytes(range(256)) * 10
    info = any_store.put_object("data-bucket", "blob.bin", io.BytesIO(body), content_type="application/x-t")
    assert info.etag == hashlib.md5(body).hexdigest()
    assert any_store.head_object("data-bucket", "blob.bin").content_type == "application/x-t"
    assert any_store.get_object("data-bucket", "blob.bin", byte_range=(10, 19)) == body[10:20]
    assert any_store.get_object("data-bucket", "blob.bin", byte_range=(2550, None)) == body[2550:]
    with pytest.raises(InvalidRange):
        any_store.get_object("data-bucket", "blob.bin", byte_range=(5000, None))


def test_overwrite_changes_etag(any_store):
    any_store.create_bucket("data-bucket")
    first = any_store.put_object("data-bucket", "k", b"one")
    second = any_store.put_object("data-bucket", "k", b"two")
    assert first.etag != second.etag
    assert any_store.get_object("data-bucket", "k") == b"two"


def test_missing_things_are_named_errors(any_store):
    with pytest.raises(NoSuchBucket):
        any_store.get_object("no-such-bucket", "k")
    with pytest.raises(NoSuchBucket):
        any_store.list_objects("no-such-bucket")
    any_store.create_bucket("data-bucket")
    with pytest.raises(NoSuchKey):
        any_store.get_object("data-bucket", "missing")
    with pytest.raises(NoSuchKey):
        any_store.head_object("data-bucket", "missing")
    any_store.delete_object("data-bucket", "missing")  # like S3: deleting a missing key is fine


def test_bucket_lifecycle(any_store):
    any_store.create_bucket("bucket-one")
    assert any_store.bucket_exists("bucket-one")
    assert not any_store.bucket_exists("bucket-two")
    with pytest.raises(BucketAlreadyExists):
        any_store.create_bucket("bucket-one")
    any_store.create_bucket("bucket-one", exist_ok=True)
    assert "bucket-one" in [b.name for b in any_store.list_buckets()]
    any_store.put_object("bucket-one", "a/b", b"x")
    with pytest.raises(BucketNotEmpty):
        any_store.delete_bucket("bucket-one")
    any_store.delete_object("bucket-one", "a/b")
    any_store.delete_bucket("bucket-one")
    assert not any_store.bucket_exists("bucket-one")
    with pytest.raises(NoSuchBucket):
        any_store.delete_bucket("bucket-one")


def test_copy_object(any_store):
    any_store.create_bucket("src-bucket")
    any_store.create_bucket("dst-bucket")
    any_store.put_object("src-bucket", "a.json", b"{}", content_type="application/json")
    info = any_store.copy_object("src-bucket", "a.json", "dst-bucket", "copies/a.json")
    assert info.etag == hashlib.md5(b"{}").hexdigest()
    assert any_store.get_object("dst-bucket", "copies/a.json") == b"{}"
    with pytest.raises(NoSuchKey):
        any_store.copy_object("src-bucket", "nope", "dst-bucket", "x")


def _fill(store, keys):
    store.create_bucket("list-bucket")
    for key in keys:
        store.put_object("list-bucket", key, key.encode())


def test_list_prefix_and_delimiter(any_store):
    _fill(any_store, ["a.txt", "train/x/1.png", "train/x/2.png", "train/y.png", "test/z.png", "trainer"])
    keys = [o.key for o in any_store.list_objects("list-bucket").objects]
    assert keys == sorted(keys) and len(keys) == 6
    page = any_store.list_objects("list-bucket", "train")
    assert [o.key for o in page.objects] == ["train/x/1.png", "train/x/2.png", "train/y.png", "trainer"]
    page = any_store.list_objects("list-bucket", "train/", delimiter="/")
    assert [o.key for o in page.objects] == ["train/y.png"]
    assert page.common_prefixes == ["train/x/"]
    page = any_store.list_objects("list-bucket", delimiter="/")
    assert page.common_prefixes == ["test/", "train/"]
    assert [o.key for o in page.objects] == ["a.txt", "trainer"]
    assert page.key_count == 4
    assert not page.is_truncated


def test_list_pagination_with_continuation_tokens(any_store):
    keys = [f"k/{i:03d}" for i in range(23)]
    _fill(any_store, keys)
    seen, token, pages = [], None, 0
    while True:
        page = any_store.list_objects("list-bucket", "k/", max_keys=5, continuation_token=token)
        seen += [o.key for o in page.objects]
        pages += 1
        if not page.is_truncated:
            assert page.next_continuation_token is None
            break
        assert page.key_count == 5
        token = page.next_continuation_token
    assert seen == keys and pages == 5
    assert [o.key for o in any_store.iter_objects("list-bucket", "k/")] == keys


def test_list_pagination_over_common_prefixes(any_store):
    _fill(any_store, [f"d{i}/f{j}" for i in range(4) for j in range(3)] + ["top"])
    prefixes, objects, token = [], [], None
    while True:
        page = any_store.list_objects("list-bucket", delimiter="/", max_keys=2, continuation_token=token)
        prefixes += page.common_prefixes
        objects += [o.key for o in page.objects]
        if not page.is_truncated:
            break
        token = page.next_continuation_token
    assert prefixes == ["d0/", "d1/", "d2/", "d3/"] and objects == ["top"]


def test_list_start_after_and_zero_max_keys(any_store):
    _fill(any_store, ["a", "b", "c"])
    assert [o.key for o in any_store.list_objects("list-bucket", start_after="a").objects] == ["b", "c"]
    any_store.put_object("list-bucket", "d0/x", b"")
    any_store.put_object("list-bucket", "d1/x", b"")
    page = any_store.list_objects("list-bucket", delimiter="/", start_after="d0/")
    assert page.common_prefixes == ["d1/"] and page.objects == []
    empty = any_store.list_objects("list-bucket", max_keys=0)
    assert empty.objects == [] and empty.key_count == 0


def test_keys_ending_in_a_slash_are_objects_beside_the_keys_under_them(any_store):
    _fill(any_store, ["a/b.txt", "z"])
    for folder in ("a/", "a/c/"):  # zero-byte "folder" objects, as the S3 console makes them
        any_store.put_object("list-bucket", folder, b"")
    head = any_store.head_object("list-bucket", "a/")
    assert (head.size, head.etag) == (0, hashlib.md5(b"").hexdigest())
    any_store.put_object("list-bucket", "a/", b"not empty")  # S3 allows bytes in them too
    assert any_store.get_object("list-bucket", "a/") == b"not empty"
    assert [o.key for o in any_store.list_objects("list-bucket").objects] == ["a/", "a/b.txt", "a/c/", "z"]
    assert [o.key for o in any_store.iter_objects("list-bucket", "a/")] == ["a/", "a/b.txt", "a/c/"]
    page = any_store.list_objects("list-bucket", delimiter="/")
    assert (page.common_prefixes, [o.key for o in page.objects]) == (["a/"], ["z"])
    page = any_store.list_objects("list-bucket", "a/", delimiter="/")
    assert (page.common_prefixes, [o.key for o in page.objects]) == (["a/c/"], ["a/", "a/b.txt"])
    seen, token = [], None
    while True:  # a page that ends on the "a/" object resumes with the keys under it
        page = any_store.list_objects(
            "list-bucket", "a/", delimiter="/", max_keys=1, continuation_token=token
        )
        seen += [o.key for o in page.objects] + page.common_prefixes
        if not page.is_truncated:
            break
        token = page.next_continuation_token
    assert seen == ["a/", "a/b.txt", "a/c/"]
    any_store.delete_object("list-bucket", "a/")
    assert any_store.get_object("list-bucket", "a/b.txt") == b"a/b.txt"
    with pytest.raises(NoSuchKey):
        any_store.head_object("list-bucket", "a/")
    any_store.put_object("list-bucket", "a/", b"")
    any_store.delete_object("list-bucket", "a/b.txt")
    any_store.delete_object("list-bucket", "a/c/")
    assert [o.key for o in any_store.iter_objects("list-bucket")] == ["a/", "z"]
    with pytest.raises(BucketNotEmpty):
        any_store.delete_bucket("list-bucket")


BAD_KEYS = [
    "",
    "../escape",
    "a/../../b",
    "/etc/passwd",
    "a\x00b",
    "a\\..\\b",
    "a//b",
    "./a",
    "../",
    "a/../",
    "a//",
    "/",
    "a/.sconeflow-folder",  # where the local store keeps a key ending in "/"
    ".sconeflow-folder/b",
    "x" * 1025,
]
BAD_BUCKETS = ["ab", "a" * 64, "Upper-case", "under_score", "-leading", "trailing-", "two..dots", "dot.-dash",
               "192.168.1.10", "xn--punycode", "name-s3alias", ".hidden", "sp ace"]  # fmt: skip
GOOD_BUCKETS = ["abc", "sconeflow-default", "my.bucket-1", "a" * 63]


def test_bad_keys_are_refused(any_store):
    any_store.create_bucket("key-bucket")
    for key in BAD_KEYS:
        with pytest.raises(InvalidKey):
            any_store.put_object("key-bucket", key, b"x")
        with pytest.raises(InvalidKey):
            any_store.get_object("key-bucket", key)
    assert list(any_store.iter_objects("key-bucket")) == []


def test_key_of_exactly_1024_bytes_is_fine(any_store):
    any_store.create_bucket("key-bucket")
    key = "/".join(["é" * 100] * 5) + "/" + "k" * 19  # 5*200 + 5 + 19 = 1024 UTF-8 bytes
    assert len(key.encode()) == 1024
    any_store.put_object("key-bucket", key, b"x")
    assert any_store.get_object("key-bucket", key) == b"x"


def test_bucket_names_follow_s3_rules(any_store):
    for name in BAD_BUCKETS:
        with pytest.raises(InvalidBucketName):
            any_store.create_bucket(name)
    for name in GOOD_BUCKETS:
        any_store.create_bucket(name)
        assert any_store.bucket_exists(name)
