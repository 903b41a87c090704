"""What only the local directory store has to get right: file-system safety and atomic writes."""

from __future__ import annotations

import hashlib
import os

import pytest

from sconeflow.store import (
    InvalidKey,
    KeyConflict,
    LocalStore,
    NoSuchKey,
    open_store,
    parse_object_uri,
    validate_key,
)


class _Exploding:
    """A stream that fails half-way, like a crash or a dropped upload."""

    def __init__(self) -> None:
        self.calls = 0

    def read(self, size: int = -1) -> bytes:
        self.calls += 1
        if self.calls > 2:
            raise OSError("connection lost")
        return b"x" * 1000


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_failed_write_leaves_old_object_and_no_temporary_files(store: LocalStore):
    store.create_bucket("atomic")
    store.put_object("atomic", "data/obj.bin", b"old contents")
    before = _files(store.root / "atomic")
    with pytest.raises(OSError):
        store.put_object("atomic", "data/obj.bin", _Exploding())
    assert store.get_object("atomic", "data/obj.bin") == b"old contents"
    assert store.head_object("atomic", "data/obj.bin").etag == hashlib.md5(b"old contents").hexdigest()
    assert _files(store.root / "atomic") == before
    with pytest.raises(OSError):
        store.put_object("atomic", "data/new.bin", _Exploding())
    with pytest.raises(NoSuchKey):
        store.get_object("atomic", "data/new.bin")
    assert [o.key for o in store.iter_objects("atomic")] == ["data/obj.bin"]


def test_an_interrupt_as_the_temporary_file_is_created_leaves_no_file(store: LocalStore, monkeypatch):
    """Ctrl-C or SIGTERM (handled as an interrupt) can land right after the temporary file exists."""
    store.create_bucket("atomic")
    store.put_object("atomic", "data/obj.bin", b"old contents")
    before = _files(store.root / "atomic")
    real_open = os.open

    def open_then_interrupt(path, flags, mode=0o777, *args, **kwargs):
        fd = real_open(path, flags, mode, *args, **kwargs)
        if os.path.basename(path).startswith(".tmp-"):
            os.close(fd)
            raise KeyboardInterrupt
        return fd

    monkeypatch.setattr(os, "open", open_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        store.put_object("atomic", "data/obj.bin", b"new contents")
    monkeypatch.undo()
    assert _files(store.root / "atomic") == before
    assert store.get_object("atomic", "data/obj.bin") == b"old contents"


def test_temporary_files_never_show_in_listings(store: LocalStore):
    store.create_bucket("atomic")
    (store.root / "atomic" / ".tmp-abc.part").write_bytes(b"half")
    assert store.list_objects("atomic").objects == []
    with pytest.raises(InvalidKey):
        validate_key("x/.tmp-abc.part")


def test_symlink_inside_bucket_cannot_be_used_to_escape(store: LocalStore, tmp_path):
    store.create_bucket("links")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    os.symlink(outside, store.root / "links" / "door")
    os.symlink(outside / "secret.txt", store.root / "links" / "file-link")
    for key in ("door/secret.txt", "door/new.txt", "file-link"):
        with pytest.raises(InvalidKey):
            store.get_object("links", key)
        with pytest.raises(InvalidKey):
            store.put_object("links", key, b"pwned")
    assert (outside / "secret.txt").read_text() == "secret"
    assert not (outside / "new.txt").exists()
    assert store.list_objects("links").objects == []
    assert store.list_objects("links", "door/").objects == []


def test_prefixes_cannot_walk_outside_the_bucket(store: LocalStore):
    store.create_bucket("inner")
    store.create_bucket("other")
    store.put_object("other", "secret.txt", b"s")
    for prefix in ("../other/", "../", "/", "./", "a/../../other/", "..\\other\\"):
        assert store.list_objects("inner", prefix).objects == []


def test_key_and_prefix_conflicts_are_named_errors(store: LocalStore):
    store.create_bucket("conflicts")
    store.put_object("conflicts", "a", b"file")
    with pytest.raises(KeyConflict):
        store.put_object("conflicts", "a/b", b"x")
    store.put_object("conflicts", "d/e", b"x")
    with pytest.raises(KeyConflict):
        store.put_object("conflicts", "d", b"x")


def test_overlong_path_segment_is_a_named_error(store: LocalStore):
    store.create_bucket("long-names")
    with pytest.raises(InvalidKey, match="longer than"):
        store.put_object("long-names", "x" * 300, b"x")


def test_etag_follows_changes_made_behind_the_store(store: LocalStore):
    store.create_bucket("changes")
    store.put_object("changes", "k.txt", b"one")
    (store.root / "changes" / "k.txt").write_bytes(b"changed outside")
    assert store.head_object("changes", "k.txt").etag == hashlib.md5(b"changed outside").hexdigest()


def test_metadata_of_similar_keys_never_clash(store: LocalStore):
    store.create_bucket("meta")
    store.put_object("meta", "a", b"1", metadata={"k": "a"})
    store.put_object("meta", "a.json/x", b"2", metadata={"k": "a.json/x"})
    assert store.head_object("meta", "a").metadata == {"k": "a"}
    assert store.head_object("meta", "a.json/x").metadata == {"k": "a.json/x"}


def test_delete_removes_empty_folders_and_bucket_with_leftover_temp_file(store: LocalStore):
    store.create_bucket("cleanup")
    store.put_object("cleanup", "a/b/c", b"x")
    store.delete_object("cleanup", "a/b/c")
    assert not (store.root / "cleanup" / "a").exists()
    (store.root / "cleanup" / ".tmp-x.part").write_bytes(b"")
    store.delete_bucket("cleanup")
    assert not store.bucket_exists("cleanup")


def test_a_buckets_creation_date_does_not_move_when_objects_are_written(store: LocalStore):
    store.create_bucket("dated")
    (created,) = [b.created for b in store.list_buckets() if b.name == "dated"]
    folder = store.root / "dated"
    store.put_object("dated", "top.json", b"{}")  # a write into the bucket's folder moves its mtime
    os.utime(folder, (folder.stat().st_atime + 3600, folder.stat().st_mtime + 3600))
    assert [b.created for b in store.list_buckets() if b.name == "dated"] == [created]
    (store.root / "byhand").mkdir()  # a folder made outside sconeflow: its time, recorded once
    (first,) = [b.created for b in store.list_buckets() if b.name == "byhand"]
    os.utime(store.root / "byhand", (0, 3600))
    assert [b.created for b in store.list_buckets() if b.name == "byhand"] == [first]
    store.delete_object("dated", "top.json")
    store.delete_bucket("dated")
    store.create_bucket("dated")  # a new bucket of the same name is a new creation
    assert [b.created for b in store.list_buckets() if b.name == "dated"] != [created]
    store.delete_bucket("dated")
    store.delete_bucket("byhand")
    assert list(store.root.iterdir()) == []  # no metadata folder outlives the last bucket


def test_open_store_and_object_uris(tmp_path):
    local = open_store((tmp_path / "s").as_uri())
    assert isinstance(local, LocalStore) and local.root == (tmp_path / "s").resolve()
    assert isinstance(open_store(str(tmp_path / "p")), LocalStore)
    assert parse_object_uri("s3://bucket/a/b.png") == ("bucket", "a/b.png")
    assert parse_object_uri("bucket/key") == ("bucket", "key")


def test_sidecar_metadata_when_xattrs_are_unavailable(store: LocalStore):
    store.create_bucket("sidecar")
    store.put_object("sidecar", "a.bin", b"with xattr", metadata={"m": "1"})
    store._xattrs = False  # as on a file system without user extended attributes
    store.put_object("sidecar", "b.bin", b"sidecar", content_type="text/x-custom", metadata={"m": "2"})
    store.put_object("sidecar", "a.bin", b"now a sidecar", metadata={"m": "3"})
    head_a, head_b = store.head_object("sidecar", "a.bin"), store.head_object("sidecar", "b.bin")
    assert (head_a.etag, head_a.metadata) == (hashlib.md5(b"now a sidecar").hexdigest(), {"m": "3"})
    assert (head_b.content_type, head_b.metadata) == ("text/x-custom", {"m": "2"})
    store._xattrs = True
    store.put_object("sidecar", "b.bin", b"back to xattr")
    assert store.head_object("sidecar", "b.bin").metadata == {}
    assert store.head_object("sidecar", "b.bin").etag == hashlib.md5(b"back to xattr").hexdigest()


def test_concurrent_writers_never_mix_bytes_and_metadata(store: LocalStore):
    import threading

    store.create_bucket("race")
    bodies = [bytes([i]) * (1000 + i) for i in range(8)]

    def writer(body: bytes) -> None:
        for _ in range(25):
            store.put_object("race", "shared/key.bin", body)

    threads = [threading.Thread(target=writer, args=(b,)) for b in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    body = store.get_object("race", "shared/key.bin")
    assert body in bodies
    assert store.head_object("race", "shared/key.bin").etag == hashlib.md5(body).hexdigest()
    assert [o.key for o in store.iter_objects("race")] == ["shared/key.bin"]


def test_killed_writer_leaves_the_old_object_visible(store: LocalStore):
    import subprocess
    import sys
    import textwrap

    store.create_bucket("crash")
    store.put_object("crash", "big.bin", b"old")
    script = textwrap.dedent(
        f"""
        import sys, time
        from sconeflow.store import LocalStore

        class Slow:
            sent = 0
            def read(self, size=-1):
                self.sent += 1
                if self.sent == 2:
                    print("writing", flush=True)
                time.sleep(0.05)
                return b"n" * 65536

        LocalStore({str(store.root)!r}).put_object("crash", "big.bin", Slow())
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "writing"
    finally:
        child.kill()
        child.wait(timeout=30)
    assert store.get_object("crash", "big.bin") == b"old"
    assert [o.key for o in store.list_objects("crash").objects] == ["big.bin"]


def test_a_deferred_etag_is_computed_when_listed_and_then_kept(store: LocalStore):
    store.create_bucket("deferred")
    body = b'{"captureData":{}}\n' * 100
    info = store.put_object(
        "deferred", "cap/a.jsonl", body, content_type="application/jsonl", defer_etag=True
    )
    assert info.etag == "" and info.size == len(body)
    path = store.root / "deferred" / "cap" / "a.jsonl"
    assert not store._read_meta("deferred", "cap/a.jsonl", path).get("etag")  # nothing hashed at write
    listed = next(iter(store.iter_objects("deferred", "cap/")))
    assert listed.etag == hashlib.md5(body).hexdigest()
    assert listed.content_type == "application/jsonl"
    if store._xattrs:  # cached on the object itself, so later listings do not hash again
        assert store._read_meta("deferred", "cap/a.jsonl", path)["etag"] == listed.etag
    store.put_object("deferred", "cap/a.jsonl", body + b"{}\n", defer_etag=True)  # a republished file
    assert store.head_object("deferred", "cap/a.jsonl").etag == hashlib.md5(body + b"{}\n").hexdigest()
    store.put_object("deferred", "cap/a.jsonl", b"plain")  # an ordinary write hashes as before
    assert store._read_meta("deferred", "cap/a.jsonl", path)["etag"] == hashlib.md5(b"plain").hexdigest()


@pytest.mark.parametrize("xattrs", [True, False], ids=["xattr", "sidecar"])
def test_a_given_etag_is_kept_across_restarts_until_the_file_changes(store: LocalStore, xattrs: bool):
    store._xattrs = xattrs and store._xattrs  # False: as on a file system without user xattrs
    store.create_bucket("multi")
    etag = hashlib.md5(hashlib.md5(b"part").digest()).hexdigest() + "-1"
    assert store.put_object("multi", "m/obj.bin", b"part", etag=etag).etag == etag
    reopened = LocalStore(store.root)  # a restart: nothing but what is on disk
    reopened._xattrs = store._xattrs
    assert reopened.head_object("multi", "m/obj.bin").etag == etag
    assert [o.etag for o in reopened.iter_objects("multi")] == [etag]
    path = store.root / "multi" / "m" / "obj.bin"
    path.write_bytes(b"changed outside")  # then the ETag is the MD5 of what is there
    assert reopened.head_object("multi", "m/obj.bin").etag == hashlib.md5(b"changed outside").hexdigest()


def test_a_key_ending_in_a_slash_is_a_marker_file_that_never_collides(store: LocalStore):
    store.create_bucket("folders")
    store.put_object("folders", "a/b.txt", b"b")
    store.put_object("folders", "a/", b"")
    folder = store.root / "folders" / "a"
    assert sorted(p.name for p in folder.iterdir()) == [".sconeflow-folder", "b.txt"]
    assert [o.key for o in store.iter_objects("folders")] == ["a/", "a/b.txt"]  # never the marker's name
    with pytest.raises(InvalidKey, match="reserved name"):
        store.get_object("folders", "a/.sconeflow-folder")
    with pytest.raises(KeyConflict):  # "a" would be a file where the folder "a" is
        store.put_object("folders", "a", b"x")
    store.put_object("folders", "f", b"file")
    with pytest.raises(KeyConflict):
        store.put_object("folders", "f/", b"")
    for key in ("../", "a/../", "a/./", "../a/", "./"):
        with pytest.raises(InvalidKey, match="would escape its bucket"):
            store.put_object("folders", key, b"")
    store.delete_object("folders", "a/b.txt")
    assert folder.is_dir()  # the "a/" object still lives there
    store.delete_object("folders", "a/")
    assert not folder.exists()  # the last key under it gone, the folder goes too
    assert validate_key("a/") is None and validate_key("a/b/") is None
