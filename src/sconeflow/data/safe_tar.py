"""Safe tarball extraction: no member may write outside the target folder.

Every member is checked before anything is written for it: absolute names, ``..`` segments, symbolic
and hard links, devices and FIFOs are refused with :class:`UnsafeArchive`. Files are written by this
module (never ``TarFile.extract``), with plain permissions. On any error everything extracted so far
is removed again, so a refused or corrupt tarball leaves nothing behind.
"""

from __future__ import annotations

import logging
import os
import shutil
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from sconeflow.data.errors import CorruptArchive, UnsafeArchive

log = logging.getLogger(__name__)

MAX_MEMBER_BYTES = 2 << 30  # the official CIFAR-100 train file is 155 MB
_READ_ERRORS = (tarfile.TarError, EOFError, zlib.error, OSError, ValueError)


def check_member(member: tarfile.TarInfo, dest: Path) -> Path:
    """The path ``member`` would be written to under ``dest``; :class:`UnsafeArchive` if it is unsafe."""
    name = member.name
    if not name or "\x00" in name:
        raise UnsafeArchive(f"tar member {name!r} has an empty name or a NUL byte")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchive(f"tar member {name!r} has an absolute path")
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if ".." in parts:
        raise UnsafeArchive(f"tar member {name!r} has a '..' segment that would escape the target folder")
    if member.issym() or member.islnk():
        raise UnsafeArchive(f"tar member {name!r} is a link (to {member.linkname!r}); links are refused")
    if member.ischr() or member.isblk() or member.isfifo() or member.isdev():
        raise UnsafeArchive(f"tar member {name!r} is a device or FIFO; refused")
    if not (member.isfile() or member.isdir()):
        raise UnsafeArchive(f"tar member {name!r} has unsupported type {member.type!r}")
    target = dest.joinpath(*[p for p in parts if p not in ("", ".")])
    root = dest.resolve()
    if not target.resolve().is_relative_to(root):
        raise UnsafeArchive(f"tar member {name!r} resolves outside the target folder")
    return target


def safe_extract(
    archive: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    wanted: Callable[[str], bool] | None = None,
    on_bytes: Callable[[int], None] | None = None,
    max_member_bytes: int = MAX_MEMBER_BYTES,
) -> list[Path]:
    """Extract ``archive`` (any compression tarfile reads) into ``dest``; return the files written.

    ``wanted(name)`` picks which regular files to write (all by default); every member is checked
    for safety whether it is wanted or not, so one bad member refuses the whole archive. A wanted
    member larger than ``max_member_bytes`` (a decompression bomb) is refused too.
    """
    dest_path = Path(dest)
    dest_path.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    made_dirs: list[Path] = []
    try:
        with tarfile.open(archive, mode="r|*") as tar:
            for member in tar:
                target = check_member(member, dest_path)
                if member.isdir() or (wanted is not None and not wanted(member.name)):
                    continue
                if member.size > max_member_bytes:
                    raise UnsafeArchive(
                        f"tar member {member.name!r} ({member.size} bytes) exceeds {max_member_bytes} (limit)"
                    )
                _make_parents(target.parent, dest_path, made_dirs)
                source = tar.extractfile(member)
                if source is None:  # pragma: no cover - regular files always have data
                    continue
                with source, open(target, "wb") as out:
                    written.append(target)
                    while chunk := source.read(1 << 20):
                        out.write(chunk)
                        if on_bytes:
                            on_bytes(len(chunk))
                if target.stat().st_size != member.size:
                    raise CorruptArchive(f"tar member {member.name!r} is truncated")
    except (UnsafeArchive, CorruptArchive):
        _undo(written, made_dirs)
        raise
    except _READ_ERRORS as exc:
        _undo(written, made_dirs)
        raise _corrupt(archive, exc) from None
    except BaseException:
        _undo(written, made_dirs)
        raise
    return written


def _corrupt(archive: str | os.PathLike[str], exc: BaseException) -> CorruptArchive:
    return CorruptArchive(f"{Path(archive).name} is not a readable tarball ({type(exc).__name__}: {exc})")


def _make_parents(folder: Path, dest: Path, made: list[Path]) -> None:
    missing = []
    probe = folder
    while probe != dest and not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for path in reversed(missing):
        path.mkdir()
        made.append(path)


def _undo(written: list[Path], made_dirs: list[Path]) -> None:
    for path in written:
        path.unlink(missing_ok=True)
    for path in reversed(made_dirs):
        shutil.rmtree(path, ignore_errors=True)
