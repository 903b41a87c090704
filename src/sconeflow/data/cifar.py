"""Read CIFAR-100 python-format data (``meta``, ``train``, ``test``) from a folder or a tarball, safely.

Tarballs are extracted with :mod:`sconeflow.data.safe_tar` into a temporary folder, pickles are read
with :mod:`sconeflow.data.safe_pickle`, and every field is validated (types, shapes, label ranges),
so a malformed file gives a named error instead of a half-made dataset.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sconeflow.data.errors import CorruptArchive, CorruptDataset, SourceNotFound
from sconeflow.data.safe_pickle import safe_loads
from sconeflow.data.safe_tar import safe_extract
from sconeflow.data.transform import ROW_BYTES

FOLDER_NAME = "cifar-100-python"
MEMBERS = ("meta", "train", "test")
SPLITS = ("train", "test")


@dataclass(frozen=True)
class CifarSplit:
    name: str
    filenames: list[str]
    fine_labels: np.ndarray  # int64 (N,)
    coarse_labels: np.ndarray  # int64 (N,)
    data: np.ndarray  # uint8 (N, 3072)

    def __len__(self) -> int:
        return len(self.filenames)


@dataclass(frozen=True)
class CifarData:
    fine_label_names: list[str]
    coarse_label_names: list[str]
    splits: dict[str, CifarSplit]


def _text(value: Any, what: str) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.decode("latin-1")
    if isinstance(value, str):
        return value
    raise CorruptDataset(f"{what} must be a string, not {type(value).__name__}")


def _field(obj: Any, key: str, what: str) -> Any:
    if not isinstance(obj, dict):
        raise CorruptDataset(f"{what} must hold a dict, not {type(obj).__name__}")
    for candidate in (key, key.encode("ascii")):
        if candidate in obj:
            return obj[candidate]
    raise CorruptDataset(f"{what} has no {key!r} entry")


def parse_meta(raw: bytes) -> tuple[list[str], list[str]]:
    obj = safe_loads(raw, what="meta")
    fine = _field(obj, "fine_label_names", "meta")
    coarse = _field(obj, "coarse_label_names", "meta")
    if not isinstance(fine, list) or not isinstance(coarse, list) or not fine:
        raise CorruptDataset("meta label names must be non-empty lists")
    fine_names = [_text(v, "a fine label name") for v in fine]
    twice = sorted({name for name in fine_names if fine_names.count(name) > 1})
    if twice:  # classes are chosen by name: the rows of the second id would be dropped silently
        raise CorruptDataset(
            f"meta lists the fine label name(s) {', '.join(map(repr, twice))} more than once"
        )
    return fine_names, [_text(v, "a coarse label name") for v in coarse]


def parse_split(raw: bytes, name: str, n_fine: int, n_coarse: int) -> CifarSplit:
    obj = safe_loads(raw, what=name)
    data = _field(obj, "data", name)
    filenames = _field(obj, "filenames", name)
    fine = _field(obj, "fine_labels", name)
    coarse = _field(obj, "coarse_labels", name)
    well_formed = isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
    if not well_formed or data.shape[1] != ROW_BYTES:
        found = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise CorruptDataset(f"{name}: 'data' must be a uint8 array of shape (N, {ROW_BYTES}), not {found}")
    n = data.shape[0]
    for label, values in (("filenames", filenames), ("fine_labels", fine), ("coarse_labels", coarse)):
        if not isinstance(values, list) or len(values) != n:
            raise CorruptDataset(f"{name}: {label!r} must be a list of {n} entries")
    if any(not _is_int(v) for v in fine) or any(not _is_int(v) for v in coarse):
        raise CorruptDataset(f"{name}: labels must be integers")
    fine_arr = np.asarray(fine, dtype=np.int64)
    coarse_arr = np.asarray(coarse, dtype=np.int64)
    if n and (fine_arr.min() < 0 or fine_arr.max() >= n_fine):
        raise CorruptDataset(f"{name}: a fine label is outside 0..{n_fine - 1}")
    if n and (coarse_arr.min() < 0 or coarse_arr.max() >= n_coarse):
        raise CorruptDataset(f"{name}: a coarse label is outside 0..{n_coarse - 1}")
    names = [_text(v, f"{name}: a filename") for v in filenames]
    return CifarSplit(name, names, fine_arr, coarse_arr, data)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # True would be label 1


def _find_folder(root: Path) -> Path:
    for candidate in (root, root / FOLDER_NAME):
        if all((candidate / member).is_file() for member in MEMBERS):
            return candidate
    missing = [m for m in MEMBERS if not (root / m).is_file() and not (root / FOLDER_NAME / m).is_file()]
    raise SourceNotFound(f"{root} holds no CIFAR-100 python files (missing: {', '.join(missing)})")


def read_folder(folder: str | os.PathLike[str]) -> CifarData:
    """Read an extracted ``cifar-100-python/`` folder (or a folder holding one)."""
    base = _find_folder(Path(folder))
    fine, coarse = parse_meta((base / "meta").read_bytes())
    splits = {s: parse_split((base / s).read_bytes(), s, len(fine), len(coarse)) for s in SPLITS}
    return CifarData(fine, coarse, splits)


def _is_member(name: str) -> bool:
    parts = [part for part in name.split("/") if part not in ("", ".")]  # "./cifar-100-python/meta" too
    return bool(parts) and parts[-1] in MEMBERS and len(parts) <= 2


def read_tarball(
    path: str | os.PathLike[str],
    *,
    work_dir: str | os.PathLike[str] | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> CifarData:
    """Safely extract the CIFAR members of ``path`` into a temporary folder and read them."""
    archive = Path(path)
    if not archive.is_file():
        raise SourceNotFound(f"{archive} does not exist")
    if work_dir is not None:
        Path(work_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="extract-") as tmp:
        files = safe_extract(archive, tmp, wanted=_is_member, on_bytes=on_bytes)
        if not files:
            raise CorruptArchive(f"{archive.name} holds no {FOLDER_NAME}/meta, train, test members")
        folder = files[0].parent
        missing = [member for member in MEMBERS if not (folder / member).is_file()]
        if missing:  # named inside the archive: the temporary folder is gone when this is read
            raise CorruptArchive(
                f"{archive.name} has no {', '.join(missing)} member beside {_inside(folder, Path(tmp))}"
            )
        return read_folder(folder)


def _inside(folder: Path, root: Path) -> str:
    """How the archive names ``folder`` ('cifar-100-python/', or 'its top level')."""
    relative = folder.relative_to(root).as_posix()
    return "its top level" if relative == "." else f"{relative}/"


def read_source(
    path: str | os.PathLike[str],
    *,
    work_dir: str | os.PathLike[str] | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> CifarData:
    """A tarball path or an extracted folder (``on_bytes(n)`` reports extraction progress)."""
    source = Path(path).expanduser()
    if source.is_dir():
        return read_folder(source)
    if source.is_file():
        return read_tarball(source, work_dir=work_dir, on_bytes=on_bytes)
    raise SourceNotFound(f"--source {source} is neither a tarball nor a folder")
