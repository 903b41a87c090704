"""Safe extraction: no member may write outside the target folder; bad tarballs are named errors."""

from __future__ import annotations

import io
import tarfile

import pytest

from sconeflow.data.errors import CorruptArchive, UnsafeArchive
from sconeflow.data.safe_tar import safe_extract


def _tar(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name, data=b"data"):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _special(name, kind, linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info, None


@pytest.mark.parametrize(
    "bad",
    [
        _file("../escape.txt"),
        _file("cifar-100-python/../../escape.txt"),
        _file("/tmp/absolute-escape.txt"),
        _special("cifar-100-python/link", tarfile.SYMTYPE, "/etc/passwd"),
        _special("cifar-100-python/hard", tarfile.LNKTYPE, "cifar-100-python/meta"),
        _special("cifar-100-python/dev", tarfile.CHRTYPE),
        _special("cifar-100-python/blk", tarfile.BLKTYPE),
        _special("cifar-100-python/fifo", tarfile.FIFOTYPE),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "symlink", "hardlink", "chardev", "blockdev", "fifo"],
)
def test_unsafe_members_refuse_the_whole_archive(tmp_path, bad):
    archive = _tar(
        tmp_path / "bad.tar.gz", [_file("cifar-100-python/meta"), bad, _file("cifar-100-python/z")]
    )
    dest = tmp_path / "box" / "dest"
    with pytest.raises(UnsafeArchive):
        safe_extract(archive, dest)
    assert list(dest.iterdir()) == []  # what was extracted before the bad member is gone again
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["bad.tar.gz"]


def test_symlink_followed_by_write_through_it_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    archive = _tar(
        tmp_path / "bad.tar.gz",
        [_special("d", tarfile.SYMTYPE, str(outside)), _file("d/pwned.txt")],
    )
    with pytest.raises(UnsafeArchive):
        safe_extract(archive, tmp_path / "dest")
    assert not (outside / "pwned.txt").exists()


def test_good_archive_extracts_only_wanted_members(tmp_path):
    archive = _tar(tmp_path / "ok.tar.gz", [_file("top/a.txt", b"A"), _file("top/sub/b.txt", b"B")])
    written = safe_extract(archive, tmp_path / "dest", wanted=lambda name: name.endswith("b.txt"))
    assert [p.relative_to(tmp_path / "dest").as_posix() for p in written] == ["top/sub/b.txt"]
    assert (tmp_path / "dest" / "top" / "sub" / "b.txt").read_bytes() == b"B"


@pytest.mark.parametrize("cut", [10, 200, -40])
def test_truncated_or_corrupt_archive_is_a_named_error(small_tarball, tmp_path, cut):
    raw = small_tarball.read_bytes()
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(raw[:cut])
    dest = tmp_path / "dest"
    with pytest.raises(CorruptArchive):
        safe_extract(broken, dest)
    assert not any(dest.rglob("*"))


def test_not_a_tarball_is_a_named_error(tmp_path):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"this is not a tarball at all" * 50)
    with pytest.raises(CorruptArchive):
        safe_extract(junk, tmp_path / "dest")


def test_oversized_member_is_refused(tmp_path):
    archive = _tar(tmp_path / "bomb.tar.gz", [_file("top/huge.bin", b"\0" * 5000)])
    with pytest.raises(UnsafeArchive, match="limit"):
        safe_extract(archive, tmp_path / "dest", max_member_bytes=4096)
    assert not any((tmp_path / "dest").rglob("*"))
