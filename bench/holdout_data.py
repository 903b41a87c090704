"""What the training benches share: the shared mini dataset prepared in a temporary home, and held-out folds.

``bench/train_holdout.py`` (whole jobs), ``member_screen.py`` (single members), ``student_views.py``,
``student_screen.py`` and ``quant_screen.py`` (students and their graphs) all judge recipes on training
images held out from a fixed stratified partition; the real test split is never read by any of them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from sconeflow.config import Settings, load_settings  # noqa: E402
from sconeflow.data.prepare import prepare_dataset  # noqa: E402
from sconeflow.model.dataload import SplitData, load_split_data  # noqa: E402
from sconeflow.store import ObjectStore, open_store  # noqa: E402

MINI = REPO.parent / "shared" / "datasets" / "cifar-100-vehicles-mini.tar.gz"
FOLDS = 5  # the screens' cross-validation: 5 folds of 200 images


def parse_change(text: str) -> tuple[str, object]:
    key, _, value = text.partition("=")
    if "," in value:
        return key, tuple(int(v) for v in value.split(","))
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


FOLD_SEED = 2026  # the cross-validation partition: fixed, so every recipe is judged on the same folds


def cross_validation_fold(by_class: dict[str, list[str]], folds: int, fold: int) -> set[str]:
    """Fold ``fold`` of a stratified ``folds``-way partition of the training lines (classes spread evenly)."""
    rng = random.Random(FOLD_SEED)
    held: set[str] = set()
    for label in sorted(by_class):
        lines = sorted(by_class[label])
        rng.shuffle(lines)
        held.update(line for i, line in enumerate(lines) if i % folds == fold)
    return held


def hold_out(store, bucket: str, per_class: int, seed: int, folds: int = 0) -> int:
    """Replace the bucket's test split by held-out training images; return how many.

    ``folds=0``: a random sample of ``per_class`` images of each class (drawn with ``seed``). ``folds=K``:
    fold ``seed`` of a fixed stratified K-way partition, so K jobs hold out every training image once.
    """
    for info in list(store.iter_objects(bucket, "test/")):
        store.delete_object(bucket, info.key)
    lines = [line for line in store.get_object(bucket, "train.lst").decode().splitlines() if line.strip()]
    by_class: dict[str, list[str]] = {}
    for line in lines:
        by_class.setdefault(line.split("\t")[1], []).append(line)
    if folds:
        held = cross_validation_fold(by_class, folds, seed)
    else:
        rng = random.Random(1000 + seed)
        held = {line for members in by_class.values() for line in rng.sample(members, per_class)}
    for line in held:
        name = line.split("\t")[2]
        store.put_object(bucket, f"test/{name}", store.get_object(bucket, f"train/{name}"))
        store.delete_object(bucket, f"train/{name}")
    keep = [line for line in lines if line not in held]
    store.put_object(bucket, "train.lst", ("\n".join(keep) + "\n").encode())
    store.put_object(bucket, "test.lst", ("\n".join(line for line in lines if line in held) + "\n").encode())
    return len(held)


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """--threads, --source and --json, shared by the training benches."""
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--source", type=Path, default=MINI)
    parser.add_argument("--json", type=Path)


def source_missing(source: Path) -> bool:
    if source.is_file():
        return False
    print(f"dataset {source} is absent", file=sys.stderr)
    return True


@contextlib.contextmanager
def prepared_home(source: Path) -> Iterator[tuple[Settings, ObjectStore]]:
    """A temporary sconeflow home with ``source`` prepared into its bucket (both classes)."""
    with tempfile.TemporaryDirectory(prefix="sconeflow-bench-") as tmp:
        settings = load_settings(Path(tmp) / "home")
        settings.ensure_dirs()
        prepare_dataset(settings, source=source, classes=["bicycle", "motorcycle"])
        yield settings, open_store(settings.resolved_store_uri)


def load_fold(source: Path, split: int, folds: int = FOLDS) -> tuple[SplitData, SplitData]:
    """The training images without fold ``split`` and the fold itself (:func:`hold_out`'s partition)."""
    with prepared_home(source) as (settings, store):
        hold_out(store, settings.bucket, 0, split, folds)
        return (
            load_split_data(store, settings.bucket, "train", require_classes=2),
            load_split_data(store, settings.bucket, "test"),
        )


def load_training_images(source: Path) -> SplitData:
    """All the training images of ``source`` (the test split is not read)."""
    with prepared_home(source) as (settings, store):
        return load_split_data(store, settings.bucket, "train", require_classes=2)
