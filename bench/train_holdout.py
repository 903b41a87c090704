"""Compare training recipes on validation only: the test split is deleted, held-out training images stand in.

Prepares the shared mini dataset into a temporary sconeflow home, deletes the real test split from that
bucket, moves a stratified sample of training images (``--per-class`` per class, drawn with the split's
seed) into ``test/`` with their own ``test.lst``, and trains the default recipe there with the given
changes. The job's "test" figures are then held-out *training* images: safe to choose a recipe by.

    python bench/train_holdout.py --split 0 --set student_widths=32,128,128
    python bench/train_holdout.py --split 1 --threads 1 --set student_widths=null --json out.json
    for k in 0 1 2 3 4; do python bench/train_holdout.py --folds 5 --split $k --json cv-$k.json; done

Session 4 chose ``student_widths`` (32,128,128) this way (docs/training.md).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from sconeflow.config import load_settings  # noqa: E402
from sconeflow.data.prepare import prepare_dataset  # noqa: E402
from sconeflow.model.recipe import TrainConfig  # noqa: E402
from sconeflow.store import open_store  # noqa: E402

MINI = REPO.parent / "shared" / "datasets" / "cifar-100-vehicles-mini.tar.gz"


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
    """--threads, --source and --json, shared with bench/member_screen.py."""
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--source", type=Path, default=MINI)
    parser.add_argument("--json", type=Path)


def source_missing(source: Path) -> bool:
    if source.is_file():
        return False
    print(f"dataset {source} is absent", file=sys.stderr)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", type=int, default=0, help="seed of the held-out sample (and of the job)")
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument(
        "--folds",
        type=int,
        default=0,
        help="hold out fold --split of a fixed stratified K-fold partition instead of a random sample",
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE", help="a TrainConfig change (JSON value)"
    )
    add_run_options(parser)
    args = parser.parse_args()
    if source_missing(args.source):
        return 2
    from sconeflow.model.train import train

    if args.folds and not 0 <= args.split < args.folds:
        print(f"--split must be a fold number below --folds {args.folds}", file=sys.stderr)
        return 2
    changes = dict(parse_change(text) for text in args.set)
    with tempfile.TemporaryDirectory(prefix="sconeflow-holdout-") as tmp:
        settings = load_settings(Path(tmp) / "home")
        settings.ensure_dirs()
        prepare_dataset(settings, source=args.source, classes=["bicycle", "motorcycle"])
        store = open_store(settings.resolved_store_uri)
        held = hold_out(store, settings.bucket, args.per_class, args.split, args.folds)
        config = TrainConfig(seed=args.split, num_threads=args.threads, **changes)
        job = train(settings, config)
        from sconeflow.model.artifact import read_artifact, resolve_model

        _, meta = read_artifact(resolve_model(settings, job.name).data)
    metrics = job.final_metrics
    row = {
        "split": args.split,
        "changes": {k: list(v) if isinstance(v, tuple) else v for k, v in changes.items()},
        "held_out_images": held,
        "held_out_accuracy": metrics["test_accuracy"],
        "held_out_nll": metrics.get("test_nll"),
        "held_out_errors": round((1 - metrics["test_accuracy"]) * held),
        "val_accuracy": metrics.get("val_accuracy"),
        # the shipped graph (int8 or float32) and, when int8 shipped, its float32 source's errors
        "shipped_graph": "int8" if "test_accuracy_float32" in metrics else "float32",
        "held_out_errors_float32": round(
            (1 - metrics.get("test_accuracy_float32", metrics["test_accuracy"])) * held
        ),
        "train_wall_seconds": metrics["train_wall_seconds"],
        "int8_checks": meta.get("quantization", {}).get("checks", []),
    }
    print(
        f"split {args.split} {row['changes'] or 'default'}: held-out accuracy {row['held_out_accuracy']:.2%} "
        f"of {held}, NLL {row['held_out_nll']:.4f}, training {row['train_wall_seconds']:.0f} s"
    )
    if args.json:
        args.json.write_text(json.dumps(row, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
