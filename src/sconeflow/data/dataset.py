"""The prepared dataset in the object store: layout, manifests, and :func:`load_split`.

Layout in the bucket (the contract every later stage relies on)::

    train/<cifar filename>.png   test/<cifar filename>.png    32x32 RGB PNGs
    train.lst   test.lst     SageMaker image-classification manifests: index<TAB>class<TAB>path
    classes.json             {"classes": [...], "counts": {...}, ...}

Paths in a manifest are relative to the split's prefix (``0\\t0\\tbicycle_s_000513.png``).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import numpy as np

from sconeflow.data.errors import CorruptDataset, DatasetNotFound, UnreadableImage
from sconeflow.store import NoSuchBucket, NoSuchKey, ObjectStore

CLASSES_KEY = "classes.json"
SPLITS = ("train", "test")


def manifest_key(split: str) -> str:
    return f"{split}.lst"


def image_key(split: str, filename: str) -> str:
    return f"{split}/{filename}"


@dataclass(frozen=True)
class ManifestEntry:
    index: int
    label: int
    path: str  # relative to the split prefix


@dataclass(frozen=True)
class Split:
    """One split, loaded: images uint8 (N, 32, 32, 3), labels int64 (N,), object keys, class names."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    keys: list[str]
    classes: list[str]

    def __len__(self) -> int:
        return len(self.keys)


def format_manifest(entries: list[ManifestEntry]) -> bytes:
    return "".join(f"{e.index}\t{e.label}\t{e.path}\n" for e in entries).encode("utf-8")


def parse_manifest(text: str, *, what: str = "manifest") -> list[ManifestEntry]:
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise CorruptDataset(f"{what} line {number}: expected index<TAB>class<TAB>path, got {line!r}")
        try:
            entries.append(ManifestEntry(int(fields[0]), int(float(fields[1])), fields[2]))
        except ValueError:
            raise CorruptDataset(f"{what} line {number}: index and class must be numbers: {line!r}") from None
    return entries


def _get(store: ObjectStore, bucket: str, key: str) -> bytes:
    try:
        return store.get_object(bucket, key)
    except (NoSuchKey, NoSuchBucket):
        raise DatasetNotFound(
            f"s3://{bucket}/{key} does not exist; run `sconeflow data prepare` first"
        ) from None


def load_classes(store: ObjectStore, bucket: str) -> dict:
    """The parsed ``classes.json`` of a prepared dataset."""
    try:
        document = json.loads(_get(store, bucket, CLASSES_KEY))
    except ValueError as exc:
        raise CorruptDataset(f"s3://{bucket}/{CLASSES_KEY} is not JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("classes"), list):
        raise CorruptDataset(f"s3://{bucket}/{CLASSES_KEY} has no 'classes' list")
    return document


def read_manifest(store: ObjectStore, bucket: str, split: str) -> list[ManifestEntry]:
    key = manifest_key(split)
    return parse_manifest(_get(store, bucket, key).decode("utf-8"), what=f"s3://{bucket}/{key}")


def decode_png(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _decode_object(store: ObjectStore, bucket: str, key: str) -> np.ndarray:
    """One listed image; UnreadableImage (naming the object) when it is not a readable image."""
    data = _get(store, bucket, key)
    try:
        return decode_png(data)
    except Exception as exc:  # Pillow raises assorted errors on damaged data
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise UnreadableImage(f"s3://{bucket}/{key} is not a readable image ({reason})") from None


def load_split(store: ObjectStore, bucket: str, split: str) -> Split:
    """Load a prepared split (``train`` or ``test``) from the store into arrays."""
    classes = [str(c) for c in load_classes(store, bucket)["classes"]]
    entries = read_manifest(store, bucket, split)
    keys = [image_key(split, e.path) for e in entries]
    labels = np.asarray([e.label for e in entries], dtype=np.int64)
    if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
        raise CorruptDataset(
            f"s3://{bucket}/{manifest_key(split)} has a class index outside 0..{len(classes) - 1}"
        )
    images = [_decode_object(store, bucket, key) for key in keys]
    stacked = np.stack(images) if images else np.zeros((0, 32, 32, 3), dtype=np.uint8)
    return Split(split, stacked, labels, keys, classes)
