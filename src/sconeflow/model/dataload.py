"""Read a prepared split (``<split>.lst`` + PNGs + ``classes.json``) from the bucket, with named errors.

Uses the data stage's ``sconeflow.data.dataset.load_split`` when it is installed; its own reader of the
same layout otherwise. Either way the result is checked here: no images -> EmptySplit, fewer than two
classes in a training split -> SingleClassSplit.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass

import numpy as np

from sconeflow.errors import SconeflowError
from sconeflow.model.errors import (
    CorruptImage,
    EmptySplit,
    InvalidManifest,
    ManifestMissing,
    SingleClassSplit,
)
from sconeflow.store import NoSuchBucket, NoSuchKey, ObjectStore

log = logging.getLogger(__name__)

IMAGE_SIZE = 32


@dataclass(frozen=True)
class SplitData:
    images: np.ndarray  # uint8 N x 32 x 32 x 3
    labels: np.ndarray  # int64 N
    keys: list[str]
    classes: list[str]

    def __len__(self) -> int:
        return len(self.labels)


def load_split_data(store: ObjectStore, bucket: str, split: str, *, require_classes: int = 0) -> SplitData:
    """The split as arrays; ``require_classes=2`` for training (every class index must be < len(classes))."""
    try:
        from sconeflow.data.dataset import load_split  # the data stage's reader
    except ImportError:
        load_split = None
    if load_split is not None:
        from sconeflow.data.errors import DatasetNotFound, UnreadableImage

        try:
            split_obj = load_split(store, bucket, split)
        except (NoSuchKey, NoSuchBucket, DatasetNotFound) as exc:
            raise ManifestMissing(f"split {split!r} is not prepared in bucket {bucket!r}: {exc}") from exc
        except UnreadableImage as exc:  # names the object
            raise CorruptImage(str(exc)) from None
        data = SplitData(
            images=np.asarray(split_obj.images, dtype=np.uint8),
            labels=np.asarray(split_obj.labels, dtype=np.int64),
            keys=list(split_obj.keys),
            classes=list(split_obj.classes),
        )
    else:
        data = _read_split(store, bucket, split)
    return check_split(data, split, bucket, require_classes=require_classes)


def check_split(data: SplitData, split: str, bucket: str, *, require_classes: int = 0) -> SplitData:
    if len(data) == 0:
        raise EmptySplit(f"split {split!r} in bucket {bucket!r} holds no images")
    if data.images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3):
        raise CorruptImage(f"split {split!r} images are {data.images.shape[1:]}, expected 32x32x3")
    if data.labels.min() < 0 or data.labels.max() >= len(data.classes):
        raise InvalidManifest(
            f"split {split!r} has class indices outside 0..{len(data.classes) - 1} (classes.json lists "
            f"{len(data.classes)})"
        )
    present = np.unique(data.labels)
    if require_classes and len(present) < require_classes:
        names = ", ".join(data.classes[i] for i in present)
        raise SingleClassSplit(
            f"split {split!r} in bucket {bucket!r} holds only class {names}: a classifier needs at least "
            f"{require_classes} classes"
        )
    return data


def _read_split(store: ObjectStore, bucket: str, split: str) -> SplitData:
    """Reader of the prepared layout, used when the data stage is not installed."""
    from PIL import Image, UnidentifiedImageError

    try:
        manifest = store.get_object(bucket, f"{split}.lst").decode("utf-8")
    except (NoSuchKey, NoSuchBucket) as exc:
        raise ManifestMissing(f"manifest s3://{bucket}/{split}.lst does not exist") from exc
    try:
        classes_doc = json.loads(store.get_object(bucket, "classes.json"))
        classes = list(classes_doc["classes"])
    except (NoSuchKey, NoSuchBucket) as exc:
        raise ManifestMissing(f"s3://{bucket}/classes.json does not exist") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidManifest(f"s3://{bucket}/classes.json is malformed: {exc}") from exc
    images, labels, keys = [], [], []
    for lineno, line in enumerate(manifest.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 3:
            raise InvalidManifest(f"{split}.lst line {lineno}: expected index<TAB>class<TAB>path")
        try:
            label = int(float(parts[1]))
        except ValueError as exc:
            raise InvalidManifest(f"{split}.lst line {lineno}: class {parts[1]!r} is not a number") from exc
        key = f"{split}/{parts[2]}"
        try:
            raw = store.get_object(bucket, key)
        except NoSuchKey as exc:
            raise ManifestMissing(
                f"{split}.lst line {lineno} names s3://{bucket}/{key}, which does not exist"
            ) from exc
        try:
            with Image.open(io.BytesIO(raw)) as im:
                arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise CorruptImage(f"s3://{bucket}/{key} is not a readable image: {exc}") from exc
        if arr.shape != (IMAGE_SIZE, IMAGE_SIZE, 3):
            raise CorruptImage(f"s3://{bucket}/{key} is {arr.shape[1]}x{arr.shape[0]}, expected 32x32")
        images.append(arr)
        labels.append(label)
        keys.append(key)
    stacked = np.stack(images) if images else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    return SplitData(stacked, np.asarray(labels, dtype=np.int64), keys, classes)


def describe_error(exc: BaseException) -> str:
    """The one-line failure reason recorded on a job."""
    if isinstance(exc, SconeflowError):
        return f"{exc.name}: {exc}"
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"
