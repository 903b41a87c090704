"""The local store keeps an object's S3 checksum and a multipart object's part sizes in its per-object
metadata (extended attribute or sidecar), with the same life as the bytes they describe."""

from __future__ import annotations

import pytest

from sconeflow.store import LocalStore, ObjectChecksum

COMPOSITE = ObjectChecksum("CRC32", "AAAAAA==-2", "COMPOSITE", ("AAAAAQ==", "AAAAAg=="))


@pytest.mark.parametrize("xattrs", [True, False], ids=["xattr", "sidecar"])
def test_checksum_and_part_sizes_are_kept_across_restarts_until_the_file_changes(
    store: LocalStore, xattrs: bool
) -> None:
    store._xattrs = xattrs and store._xattrs  # False: as on a file system without user xattrs
    store.create_bucket("kept")
    info = store.put_object(
        "kept", "m.bin", b"firstsecond", etag="e-2", checksum=COMPOSITE, part_sizes=[5, 6]
    )
    assert (info.checksum, info.part_sizes) == (COMPOSITE, (5, 6))
    reopened = LocalStore(store.root)  # a restart: nothing but what is on disk
    reopened._xattrs = store._xattrs
    head = reopened.head_object("kept", "m.bin")
    assert (head.checksum, head.part_sizes, head.etag) == (COMPOSITE, (5, 6), "e-2")
    assert [(o.checksum, o.part_sizes) for o in reopened.iter_objects("kept")] == [(COMPOSITE, (5, 6))]

    # Changed behind the store's back: the checksum and part sizes described other bytes.
    (store.root / "kept" / "m.bin").write_bytes(b"changed outside")
    head = reopened.head_object("kept", "m.bin")
    assert (head.checksum, head.part_sizes) == (None, ())

    # An overwrite without them has none; part sizes that do not add up to the object are not kept.
    store.put_object("kept", "m.bin", b"abc", checksum=ObjectChecksum("SHA1", "x"), part_sizes=[1, 1])
    head = store.head_object("kept", "m.bin")
    assert (head.checksum, head.part_sizes) == (ObjectChecksum("SHA1", "x"), ())
    store.put_object("kept", "m.bin", b"abc")
    assert (store.head_object("kept", "m.bin").checksum, store.head_object("kept", "m.bin").part_sizes) == (
        None,
        (),
    )


def test_a_copy_keeps_the_checksum_as_one_part(store: LocalStore) -> None:
    store.create_bucket("kept")
    store.put_object("kept", "src.bin", b"firstsecond", etag="e-2", checksum=COMPOSITE, part_sizes=[5, 6])
    copy = store.copy_object("kept", "src.bin", "kept", "dst.bin")
    head = store.head_object("kept", "dst.bin")
    assert copy.checksum == head.checksum == ObjectChecksum("CRC32", "AAAAAA==-2", "COMPOSITE")
    assert head.part_sizes == () and "-" not in head.etag


def test_ten_thousand_parts_fit_even_when_an_extended_attribute_cannot_hold_them(store: LocalStore) -> None:
    store.create_bucket("kept")
    sizes = [1] * 10_000
    checksum = ObjectChecksum("SHA256", "A" * 44 + "-10000", "COMPOSITE", tuple("B" * 44 for _ in sizes))
    store.put_object("kept", "big.bin", b"x" * 10_000, etag="e-10000", checksum=checksum, part_sizes=sizes)
    head = LocalStore(store.root).head_object("kept", "big.bin")
    assert (head.checksum, len(head.part_sizes), head.etag) == (checksum, 10_000, "e-10000")


def test_damaged_records_read_as_none() -> None:
    assert ObjectChecksum.from_json({"algorithm": "CRC32"}) is None
    assert ObjectChecksum.from_json(["CRC32", "x"]) is None
    assert ObjectChecksum.from_json({"algorithm": "CRC32", "value": "x"}) == ObjectChecksum("CRC32", "x")
