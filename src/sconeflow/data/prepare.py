"""``sconeflow data prepare``: extract CIFAR-100, keep the chosen classes, load PNGs and manifests.

Everything is read, validated and encoded in memory before the first object is written, so a bad
source (corrupt tarball, wrong checksum, unknown class, unreachable URL) leaves the bucket untouched.
Writes skip objects whose ETag (MD5) already matches, and a failure while writing undoes this run's
writes, so re-running is idempotent and a run is all-or-nothing. Stale images under ``train/`` and
``test/`` that the new dataset does not list are removed last.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sconeflow.config import Settings
from sconeflow.data import cifar
from sconeflow.data.cifar_names import COARSE_GROUPS
from sconeflow.data.dataset import (
    CLASSES_KEY,
    SPLITS,
    ManifestEntry,
    format_manifest,
    image_key,
    manifest_key,
)
from sconeflow.data.download import CIFAR100_MD5, CIFAR100_URL, download, verify_md5
from sconeflow.data.errors import CorruptDataset, DownloadError, EmptyClass, UnknownClass
from sconeflow.data.transform import encode_png, rows_to_images
from sconeflow.store import InvalidKey, NoSuchBucket, ObjectStore, open_store, validate_key

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: prepares of one bucket are not serialised
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

DEFAULT_CLASSES = ("bicycle", "motorcycle")

# progress(phase, done, total): phases "download" (bytes), "encode" and "upload" (objects)
ProgressFn = Callable[[str, int, int | None], None]


@dataclass
class PrepareReport:
    bucket: str
    store_uri: str
    source: str
    classes: list[str]
    counts: dict[str, dict[str, int]]  # split -> class -> images
    written: int = 0
    unchanged: int = 0
    removed: int = 0
    seconds: float = 0.0
    keys: dict[str, str] = field(default_factory=dict)  # what -> s3 URI

    @property
    def total_images(self) -> int:
        return sum(sum(c.values()) for c in self.counts.values())


@dataclass(frozen=True)
class _Object:
    key: str
    body: bytes
    content_type: str
    md5: str


def resolve_classes(
    fine_names: Sequence[str], classes: Sequence[str] | None, coarse: Sequence[str] | None
) -> list[str]:
    """The class list in order: ``classes`` then the members of the ``coarse`` groups, deduplicated."""
    wanted = [c.strip() for c in (classes or []) if c.strip()]
    for group in coarse or []:
        group = group.strip()
        if group not in COARSE_GROUPS:
            hint = difflib.get_close_matches(group, COARSE_GROUPS, n=1)
            raise UnknownClass(
                f"unknown coarse group {group!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
            )
        wanted += [name for name in fine_names if name in COARSE_GROUPS[group]]
    if not wanted:
        wanted = list(DEFAULT_CLASSES)
    result = list(dict.fromkeys(wanted))
    missing = [c for c in result if c not in fine_names]
    if missing:
        hints = {c: difflib.get_close_matches(c, fine_names, n=1) for c in missing}
        described = ", ".join(
            f"{c!r}" + (f" (did you mean {h[0]!r}?)" if h else "") for c, h in hints.items()
        )
        raise UnknownClass(f"not a fine label name in the dataset's meta: {described}")
    if len(result) < 2:
        raise EmptyClass(f"an image classifier needs at least two classes, got {result}")
    return result


def _select(data: cifar.CifarData, classes: list[str]) -> tuple[dict[str, list[_Object]], dict, list]:
    """Encode the chosen rows of each split: (objects per split, counts, manifests)."""
    label_of = {data.fine_label_names.index(name): index for index, name in enumerate(classes)}
    objects: dict[str, list[_Object]] = {}
    counts: dict[str, dict[str, int]] = {}
    manifests: list[_Object] = []
    for split in SPLITS:
        part = data.splits[split]
        mask = np.isin(part.fine_labels, list(label_of))
        rows = np.flatnonzero(mask)
        counts[split] = {name: 0 for name in classes}
        entries: list[ManifestEntry] = []
        seen: set[str] = set()
        images = rows_to_images(part.data[rows])
        split_objects = []
        for position, (row, image) in enumerate(zip(rows, images, strict=True)):
            filename = part.filenames[row]
            key = _checked_image_key(split, filename)
            if filename in seen:
                raise CorruptDataset(f"{split}: filename {filename!r} appears twice among the chosen rows")
            seen.add(filename)
            label = label_of[int(part.fine_labels[row])]
            counts[split][classes[label]] += 1
            entries.append(ManifestEntry(position, label, filename))
            body = encode_png(image)
            split_objects.append(
                _Object(key, body, "image/png", hashlib.md5(body, usedforsecurity=False).hexdigest())
            )
        empty = [name for name, n in counts[split].items() if n == 0]
        if empty:
            raise EmptyClass(f"class {', '.join(map(repr, empty))} has no rows in the {split} split")
        objects[split] = split_objects
        manifests.append(_text_object(manifest_key(split), format_manifest(entries), "text/plain"))
    return objects, counts, manifests


def _checked_image_key(split: str, filename: str) -> str:
    """The object key of a row's image; CorruptDataset when its filename cannot be a manifest path.

    A ``.lst`` line is ``index<TAB>class<TAB>path`` ending in a newline, so a TAB or a line break in
    the name (or an empty name, which would be the folder key ``train/``) would write a manifest that
    no reader can parse back.
    """
    key = image_key(split, filename)
    try:
        if not filename:
            raise InvalidKey("the name is empty")
        if "/" in filename:
            raise InvalidKey(f"filename {filename!r} contains '/'")
        if "\t" in filename or filename.splitlines() != [filename]:
            raise InvalidKey("a TAB or line break would break the index<TAB>class<TAB>path manifest")
        validate_key(key)
    except InvalidKey as exc:
        raise CorruptDataset(f"{split}: unusable filename {filename!r}: {exc}") from None
    return key


def _text_object(key: str, body: bytes, content_type: str) -> _Object:
    return _Object(key, body, content_type, hashlib.md5(body, usedforsecurity=False).hexdigest())


def _classes_document(data: cifar.CifarData, classes: list[str], counts: dict, source: str) -> bytes:
    document = {
        "classes": classes,
        "fine_label_ids": [data.fine_label_names.index(name) for name in classes],
        "counts": counts,
        "image_shape": [32, 32, 3],
        "image_format": "png",
        "manifest_format": "index\\tclass_index\\tpath (path relative to the split prefix)",
        "splits": {split: {"prefix": f"{split}/", "manifest": manifest_key(split)} for split in SPLITS},
        "source": source,
    }
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")


class _Writer:
    """Puts objects unless unchanged; remembers enough to undo this run's writes."""

    def __init__(self, store: ObjectStore, bucket: str, existing: dict[str, str]) -> None:
        self.store, self.bucket, self.existing = store, bucket, existing
        self.created: list[str] = []
        self.replaced: list[tuple[str, bytes, str]] = []
        self.written = self.unchanged = 0

    def put(self, obj: _Object) -> None:
        old = self.existing.get(obj.key)
        if old == obj.md5:
            self.unchanged += 1
            return
        if old is None:
            self.created.append(obj.key)
        else:
            info = self.store.head_object(self.bucket, obj.key)
            self.replaced.append((obj.key, self.store.get_object(self.bucket, obj.key), info.content_type))
        self.store.put_object(self.bucket, obj.key, obj.body, content_type=obj.content_type)
        self.written += 1

    def undo(self) -> None:
        for key in self.created:
            try:
                self.store.delete_object(self.bucket, key)
            except Exception:  # best effort while already failing
                log.warning("could not remove s3://%s/%s while undoing a failed prepare", self.bucket, key)
        for key, body, content_type in self.replaced:
            try:
                self.store.put_object(self.bucket, key, body, content_type=content_type)
            except Exception:
                log.warning("could not restore s3://%s/%s while undoing a failed prepare", self.bucket, key)


def _existing_etags(store: ObjectStore, bucket: str) -> dict[str, str]:
    etags: dict[str, str] = {}
    try:
        for prefix in (*(f"{split}/" for split in SPLITS), *(manifest_key(s) for s in SPLITS), CLASSES_KEY):
            for info in store.iter_objects(bucket, prefix):
                etags[info.key] = info.etag.strip('"')
    except NoSuchBucket:
        store.create_bucket(bucket, exist_ok=True)
    return etags


@contextlib.contextmanager
def _bucket_lock(settings: Settings, store: ObjectStore, bucket: str) -> Iterator[None]:
    """Serialise the load step of prepares of one bucket that share a home (other processes too).

    Without it two runs interleave: one run's undo (after Ctrl-C or an error) deletes objects the other
    run found unchanged and reported as written, and one run's stale removal deletes images the other
    run's manifests list. Reading and encoding stay outside the lock; a waiting run can be interrupted.
    """
    if fcntl is None:  # pragma: no cover
        yield
        return
    folder = settings.run_dir / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(f"{store.uri}\n{bucket}".encode()).hexdigest()[:16]
    with open(folder / f"data-prepare-{bucket}-{digest}.lock", "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("another prepare is loading s3://%s/ from this home; waiting for it", bucket)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load_source(
    settings: Settings,
    source: str | Path | None,
    *,
    url: str | None = None,
    md5: str | None = None,
    progress: ProgressFn | None = None,
) -> tuple[cifar.CifarData, str]:
    """Read CIFAR data from ``source`` (tarball or folder) or download it; return it and a label."""
    work_dir = settings.cache_dir / "tmp"
    if source is None:
        link = url or CIFAR100_URL
        checksum = md5 if md5 is not None else (CIFAR100_MD5 if link == CIFAR100_URL else None)
        on_bytes = (lambda done, total: progress("download", done, total)) if progress else None
        try:
            path = download(link, settings.cache_dir / "downloads", md5=checksum, progress=on_bytes)
        except DownloadError as exc:
            raise DownloadError(f"{exc} (offline? pass --source with a local tarball or folder)") from None
        return cifar.read_tarball(path, work_dir=work_dir, on_bytes=_extract_progress(progress)), link
    path = Path(source).expanduser()
    if md5 is not None and path.is_file():
        verify_md5(path, md5)
    return cifar.read_source(path, work_dir=work_dir, on_bytes=_extract_progress(progress)), str(path)


def _extract_progress(progress: ProgressFn | None) -> Callable[[int], None] | None:
    """Report extracted bytes as phase "extract" (total unknown until the end of the stream)."""
    if progress is None:
        return None
    done = [0]

    def on_bytes(count: int) -> None:
        done[0] += count
        progress("extract", done[0], None)

    return on_bytes


def prepare_dataset(
    settings: Settings,
    source: str | Path | None = None,
    classes: Sequence[str] | None = None,
    *,
    coarse: Sequence[str] | None = None,
    bucket: str | None = None,
    store: ObjectStore | None = None,
    url: str | None = None,
    md5: str | None = None,
    progress: ProgressFn | None = None,
) -> PrepareReport:
    """Stage the chosen CIFAR-100 classes into ``bucket`` as PNGs + manifests + classes.json."""
    started = time.perf_counter()
    store = store or open_store(settings.resolved_store_uri)
    bucket = bucket or settings.bucket
    data, source_label = load_source(settings, source, url=url, md5=md5, progress=progress)
    chosen = resolve_classes(data.fine_label_names, classes, coarse)
    objects, counts, manifests = _select(data, chosen)
    classes_doc = _text_object(
        CLASSES_KEY, _classes_document(data, chosen, counts, Path(source_label).name), "application/json"
    )
    wanted = [obj for split in SPLITS for obj in objects[split]]
    with _bucket_lock(settings, store, bucket):
        existing = _existing_etags(store, bucket)
        writer = _Writer(store, bucket, existing)
        total = len(wanted) + len(manifests) + 1
        try:
            for done, obj in enumerate([*wanted, *manifests, classes_doc], start=1):
                writer.put(obj)
                if progress and (done % 64 == 0 or done == total):
                    progress("upload", done, total)
        except BaseException:
            writer.undo()
            raise
        keep = {obj.key for obj in wanted}
        stale = [key for key in existing if key.split("/", 1)[0] in SPLITS and "/" in key and key not in keep]
        for key in stale:
            store.delete_object(bucket, key)
    base = f"s3://{bucket}/"
    report = PrepareReport(
        bucket=bucket,
        store_uri=store.uri,
        source=source_label,
        classes=chosen,
        counts=counts,
        written=writer.written,
        unchanged=writer.unchanged,
        removed=len(stale),
        seconds=time.perf_counter() - started,
        keys={
            **{f"{s} images": f"{base}{s}/" for s in SPLITS},
            **{f"{s} manifest": f"{base}{manifest_key(s)}" for s in SPLITS},
            "classes": f"{base}{CLASSES_KEY}",
        },
    )
    log.info("prepared %d images into %s in %.2f s", report.total_images, base, report.seconds)
    return report
