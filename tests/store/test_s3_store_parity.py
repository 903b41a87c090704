"""S3Store carries what LocalStore keeps with an object wherever real S3 can: the S3 checksum (given to S3,
read back with ``ChecksumMode=ENABLED``) and a multipart object's parts (a real multipart upload with the
same part sizes, so the same ETag and part boundaries), with the local store's method signatures.

S3 is played by moto; every assertion about "the real object" asks S3 directly with boto3."""

from __future__ import annotations

import base64
import hashlib
import inspect
import zlib
from collections.abc import Iterator
from typing import Any

import pytest

from sconeflow.store import LocalStore, ObjectChecksum

MIB = 1024 * 1024
FIRST = b"a" * (5 * MIB)
SECOND = b"b" * 1000
DATA = FIRST + SECOND


def _crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def _sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _crc32_composite(parts: list[bytes]) -> str:
    """S3's composite CRC32, computed independently: the CRC32 of the parts' binary CRC32s, then ``-N``."""
    joined = b"".join(zlib.crc32(p).to_bytes(4, "big") for p in parts)
    return f"{_crc32(joined)}-{len(parts)}"


def _multipart_etag(parts: list[bytes]) -> str:
    joined = b"".join(hashlib.md5(p, usedforsecurity=False).digest() for p in parts)
    return f"{hashlib.md5(joined, usedforsecurity=False).hexdigest()}-{len(parts)}"


@pytest.fixture(params=["s3", "s3-prefixed"])
def s3_store(request: pytest.FixtureRequest, settings: Any) -> Iterator[Any]:
    moto = pytest.importorskip("moto")
    import boto3

    from sconeflow.store_s3 import S3Store

    with moto.mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        if request.param == "s3":
            store = S3Store("s3://", client=client)
        else:
            client.create_bucket(Bucket="root-bucket")
            store = S3Store("s3://root-bucket/some/prefix", client=client)
        store.create_bucket("kept")
        yield store


def _real(store: Any, key: str) -> tuple[str, str]:
    """Where the store keeps ``kept/<key>`` on S3."""
    return store._loc("kept", key)


def test_public_methods_have_the_local_stores_signatures() -> None:
    from sconeflow.store_s3 import S3Store

    def public(cls: type) -> dict[str, inspect.Signature]:
        return {
            name: inspect.signature(member)
            for name, member in vars(cls).items()
            if callable(member) and not name.startswith("_")
        }

    local, remote = public(LocalStore), public(S3Store)
    assert sorted(local) == sorted(remote)
    for name, signature in local.items():
        assert remote[name] == signature, name


def test_a_full_object_checksum_goes_to_s3_and_comes_back(s3_store: Any) -> None:
    checksum = ObjectChecksum("SHA256", _sha256(b"hello"))
    info = s3_store.put_object("kept", "sha.txt", b"hello", checksum=checksum)
    assert info.checksum == checksum
    bucket, key = _real(s3_store, "sha.txt")
    raw = s3_store.client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert raw["ChecksumSHA256"] == checksum.value  # S3 itself holds it (and verified it)
    head = s3_store.head_object("kept", "sha.txt")
    assert head.checksum == checksum and head.part_sizes == ()

    crc = ObjectChecksum("CRC32", _crc32(b"other"))
    s3_store.put_object("kept", "crc.txt", b"other", checksum=crc)
    assert s3_store.head_object("kept", "crc.txt").checksum == crc


def test_part_sizes_make_a_real_multipart_object_with_the_same_etag(s3_store: Any) -> None:
    etag = _multipart_etag([FIRST, SECOND])
    info = s3_store.put_object("kept", "m.bin", DATA, etag=etag, part_sizes=[len(FIRST), len(SECOND)])
    assert (info.etag, info.part_sizes) == (etag, (len(FIRST), len(SECOND)))
    bucket, key = _real(s3_store, "m.bin")
    assert s3_store.client.head_object(Bucket=bucket, Key=key)["ETag"].strip('"') == etag
    raw = s3_store.client.head_object(Bucket=bucket, Key=key, PartNumber=2)
    assert (raw["PartsCount"], raw["ContentLength"]) == (2, len(SECOND))
    head = s3_store.head_object("kept", "m.bin")
    assert (head.etag, head.part_sizes, head.size) == (etag, (len(FIRST), len(SECOND)), len(DATA))
    assert s3_store.get_object("kept", "m.bin") == DATA


def test_a_composite_checksum_is_carried_by_the_multipart_object(s3_store: Any) -> None:
    composite = ObjectChecksum(
        "CRC32", _crc32_composite([FIRST, SECOND]), "COMPOSITE", (_crc32(FIRST), _crc32(SECOND))
    )
    s3_store.put_object("kept", "c.bin", DATA, checksum=composite, part_sizes=[len(FIRST), len(SECOND)])
    head = s3_store.head_object("kept", "c.bin")
    assert head.part_sizes == (len(FIRST), len(SECOND))
    assert (head.checksum.algorithm, head.checksum.type, head.checksum.value) == (
        "CRC32",
        "COMPOSITE",
        composite.value,
    )


def test_a_full_object_crc_of_a_multipart_object_is_given_to_s3(s3_store: Any) -> None:
    whole = ObjectChecksum("CRC32", _crc32(DATA))
    s3_store.put_object("kept", "f.bin", DATA, checksum=whole, part_sizes=[len(FIRST), len(SECOND)])
    bucket, key = _real(s3_store, "f.bin")
    raw = s3_store.client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert (raw["ChecksumCRC32"], raw["ChecksumType"]) == (whole.value, "FULL_OBJECT")
    head = s3_store.head_object("kept", "f.bin")
    assert (head.checksum, head.part_sizes) == (whole, (len(FIRST), len(SECOND)))


def test_part_sizes_s3_cannot_carry_give_one_part(s3_store: Any) -> None:
    # Not adding up to the object (the local store drops those too), or a part under S3's 5 MiB minimum.
    for key, sizes in (("short.bin", [1, 1]), ("small.bin", [2, 3])):
        info = s3_store.put_object("kept", key, b"hello", part_sizes=sizes)
        head = s3_store.head_object("kept", key)
        assert info.part_sizes == head.part_sizes == ()
        assert head.etag == hashlib.md5(b"hello", usedforsecurity=False).hexdigest()


def test_a_copy_is_one_part(s3_store: Any) -> None:
    s3_store.put_object("kept", "src.bin", DATA, part_sizes=[len(FIRST), len(SECOND)])
    copy = s3_store.copy_object("kept", "src.bin", "kept", "dst.bin")
    assert copy.part_sizes == () and "-" not in copy.etag


def test_an_opened_object_can_seek_like_a_local_file(s3_store: Any) -> None:
    s3_store.put_object("kept", "seek.bin", b"0123456789")
    with s3_store.open_object("kept", "seek.bin") as handle:
        assert handle.read(4) == b"0123"
        assert handle.seekable()
        handle.seek(0)
        assert handle.read() == b"0123456789"
        handle.seek(-3, 2)
        assert (handle.tell(), handle.read()) == (7, b"789")
        handle.seek(5)
        assert handle.read(2) == b"56"


class _OnePiecePerRead:
    """A stream whose ``read()`` answers one piece per call, as sockets and the gateway's joined multipart
    parts do: only b"" says it is over."""

    def __init__(self, *pieces: bytes) -> None:
        self.pieces = list(pieces)

    def read(self, size: int = -1) -> bytes:
        return self.pieces.pop(0) if self.pieces else b""


def test_a_stream_is_written_whole_however_it_reads(s3_store: Any, store: LocalStore) -> None:
    """The local store reads until b""; S3Store once took one ``read()`` for everything (a multipart
    upload completed through the gateway kept only its first part)."""
    for backend in (store, s3_store):
        backend.create_bucket("kept", exist_ok=True)
        info = backend.put_object("kept", "joined.bin", _OnePiecePerRead(b"first ", b"second ", b"third"))
        assert info.size == len(b"first second third")
        assert backend.get_object("kept", "joined.bin") == b"first second third"


def test_s3_verifies_a_given_checksum_and_answers_the_parts(settings: Any) -> None:
    """Against an S3 that checks checksums (sconeflow's own gateway; moto checks none): a wrong one is
    refused, and a composite checksum comes back with each part's."""
    from sconeflow.gateway.client import boto3_client
    from sconeflow.gateway.server import start_in_process
    from sconeflow.store import StoreError
    from sconeflow.store_s3 import S3Store

    gateway = start_in_process(settings)
    try:
        store = S3Store("s3://", client=boto3_client(settings, "s3", url=gateway.url))
        store.create_bucket("kept")
        with pytest.raises(StoreError, match="BadDigest"):
            store.put_object(
                "kept", "bad.txt", b"hello", checksum=ObjectChecksum("SHA256", _sha256(b"other"))
            )
        assert not [o.key for o in store.iter_objects("kept")]
        parts = (_crc32(FIRST), _crc32(SECOND))
        composite = ObjectChecksum("CRC32", _crc32_composite([FIRST, SECOND]), "COMPOSITE", parts)
        store.put_object("kept", "c.bin", DATA, checksum=composite, part_sizes=[len(FIRST), len(SECOND)])
        head = store.head_object("kept", "c.bin")
        assert (head.checksum, head.part_sizes) == (composite, (len(FIRST), len(SECOND)))
        assert head.etag == _multipart_etag([FIRST, SECOND])
    finally:
        gateway.close()


def test_a_full_object_crc32c_without_part_checksums_never_fails_the_write(s3_store: Any) -> None:
    """CRC32C part checksums are computed only by awscrt (optional): without it, and with no part checksums
    given, the multipart object is written without the checksum rather than not at all."""
    from botocore.compat import HAS_CRT

    whole = ObjectChecksum("CRC32C", "AAAAAA==")  # taken as given by the local store, too
    info = s3_store.put_object("kept", "c.bin", DATA, checksum=whole, part_sizes=[len(FIRST), len(SECOND)])
    assert info.part_sizes == s3_store.head_object("kept", "c.bin").part_sizes == (len(FIRST), len(SECOND))
    assert s3_store.get_object("kept", "c.bin") == DATA
    if not HAS_CRT:
        assert info.checksum is None
